"""Seconds per training step (forward, losses, backward, Adam, StepLR) of BTS and ViPOcc.

Configurations: the synthetic default (ResNet-18, 96x320, batch 2, 1024 photometric + 512 depth rays, 64 samples)
and the paper's (ResNet-50, 192x640, batch 8, 4096 + 2048 rays, 64 samples; slow on CPU). Inputs are random images
with a plausible 8-view rig, so no data is read. Measure with

    .venv/bin/pytest tests/benchmarks/test_bench_training.py --benchmark-enable            # CPU
    VIPOCC_BENCH_DEVICE=cuda .venv/bin/pytest tests/benchmarks/test_bench_training.py --benchmark-enable \
        [-m slow]  # GPU; add VIPOCC_BENCH_AMP=bf16 for autocast
"""
import os

import pytest
import torch

from vipocc.config import validate_config
from vipocc.training.experiments import training_settings
from vipocc.training.trainer import Samplers, StepBatch, build_network, step_generators, training_step

DEVICE = torch.device(os.environ.get("VIPOCC_BENCH_DEVICE", "cpu"))
AMP = os.environ.get("VIPOCC_BENCH_AMP") or None

DEFAULT = {"encoder_depth": 18, "batch_size": 2, "ray_batch_size": 1024, "depth_ray_batch_size": 512}
PAPER = {"encoder_depth": 50, "batch_size": 8, "ray_batch_size": 4096, "depth_ray_batch_size": 2048}


def settings(experiment, size, training):
    config = validate_config({"dataset": {"kind": "synthetic"}, "preprocess": {"image_size": list(size)},
                              "training": training})
    return training_settings(config, experiment)


def rig_batch(batch: int, size: tuple[int, int], generator: torch.Generator) -> StepBatch:
    """Random images and priors on the KITTI-360 rig layout: slots 0-3 perspective (key / other camera 0.6 m to the
    right, t / t+1 0.8 m ahead), slots 4-7 the fisheye views 8-9 m ahead and 1 m sideways; KITTI-360's normalised K."""
    height, width = size
    K = torch.tensor([[0.785, 0.0, -0.03], [0.0, 2.94, 0.27], [0.0, 0.0, 1.0]])
    offsets = torch.tensor([[0, 0, 0], [0, 0, 0.8], [0.6, 0, 0], [0.6, 0, 0.8],
                            [-1.0, 0, 8.0], [-1.0, 0, 8.8], [1.6, 0, 8.0], [1.6, 0, 8.8]])
    poses = torch.eye(4).repeat(batch, 8, 1, 1)
    poses[..., :3, 3] = offsets
    images = torch.rand((batch, 8, 3, height, width), generator=generator) * 2 - 1
    prior = 5 + 30 * torch.rand((batch, 2, 1, height, width), generator=generator)
    return StepBatch(images=images.to(DEVICE), K=K.expand(batch, 8, 3, 3).contiguous().to(DEVICE),
                     poses=poses.to(DEVICE), w2c=torch.linalg.inv(poses).to(DEVICE), pseudo_depth=prior.to(DEVICE))


def run_steps(benchmark, experiment, size, training):
    s = settings(experiment, size, training)
    model = build_network(s).to(DEVICE)
    optimizer = torch.optim.Adam(model.parameters(), lr=s.lr, fused=True)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, s.lr_step, s.lr_gamma)
    batch = rig_batch(s.batch_size, s.image_size, torch.Generator().manual_seed(0))
    samplers = Samplers.from_settings(s)
    step = iter(range(10**6))

    def one_step():
        loss, values = training_step(model, batch, s, samplers, step_generators(0, 0, next(step), DEVICE), AMP)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return values

    return benchmark, one_step


@pytest.mark.parametrize("experiment", ["bts", "vipocc"])
def test_bench_step_default_configuration(benchmark, experiment):
    bench, one_step = run_steps(benchmark, experiment, (96, 320), DEFAULT)
    one_step()  # warm-up: first-call allocations and kernel selection
    values = bench.pedantic(one_step, rounds=3, iterations=1)
    assert torch.isfinite(torch.tensor(values["loss"]))


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["bts", "vipocc"])
def test_bench_step_paper_configuration(benchmark, experiment):
    bench, one_step = run_steps(benchmark, experiment, (192, 640), PAPER)
    rounds = 5 if DEVICE.type == "cuda" else 1
    if DEVICE.type == "cuda":
        one_step()
    values = bench.pedantic(one_step, rounds=rounds, iterations=1)
    assert torch.isfinite(torch.tensor(values["loss"]))
