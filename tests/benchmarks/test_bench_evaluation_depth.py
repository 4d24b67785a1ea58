"""Throughput (frames/s) of the depth and pseudo-depth evaluators with a tiny network on CPU (demo renders:
test_bench_evaluation_demo.py).

Tiny network: ResNet-18 field and depth branch, 16 samples per ray, 96x320 images (the default workflow size).
frames/s = 1 / (mean time per benchmark round) for the one-frame rounds below.
"""
import numpy as np
import pytest
import torch

from vipocc.evaluation.depth import DepthFrame, evaluate_depth
from vipocc.evaluation.pseudo_depth import evaluate_pseudo_depth
from vipocc.models.network import NetworkConfig, ViPOccNetwork

H, W = 96, 320


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return ViPOccNetwork(NetworkConfig(encoder_depth=18, n_samples=16)).eval()


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    return DepthFrame("seq", 0, False, torch.from_numpy(rng.uniform(-1, 1, (1, 3, H, W)).astype(np.float32)),
                      torch.tensor([[[1.5, 0, 0], [0, 4.8, 0], [0, 0, 1]]]),
                      rng.uniform(3, 60, (H, W)).astype(np.float32),
                      torch.from_numpy(rng.uniform(3, 60, (1, 1, H, W)).astype(np.float32)))


@pytest.mark.parametrize("source", ["rendered", "predicted"])
def test_bench_depth(benchmark, network, frame, source):
    rows = benchmark(evaluate_depth, network, [frame], source, device="cpu")
    assert len(rows) == 1


def test_bench_pseudo_depth(benchmark, frame):
    rows = benchmark(evaluate_pseudo_depth, [frame] * 10, "median")
    assert len(rows) == 10  # 10 frames per round

