"""Throughput of SNOG anchor sampling: vectorized sampler vs the literal one-candidate loop.

One call = one image's file: 25 draws x 64 anchors = 1600 anchors on a 192x640 image. anchors/s = 1600 / mean.
Run with ``pytest tests/benchmarks/test_bench_snog.py --benchmark-enable``; no timing is asserted.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from vipocc.priors.snog import sample_anchor_sets


def _load_oracle():
    path = Path(__file__).resolve().parents[1] / "priors" / "reference_snog.py"
    spec = importlib.util.spec_from_file_location("reference_snog_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ORACLE = _load_oracle()
IMAGE_SIZE = (192, 640)
N_SETS, NUM_PATCHES = 25, 64

SCENES = {
    # Three cars (one at the border) plus non-phrase labels, as Grounded-SAM reports them on a street frame.
    "street": [
        {"label": "car", "logit": 0.6, "box": [100, 90, 160, 140], "pixel_num": 2000},
        {"label": "car", "logit": 0.5, "box": [600, 120, 660, 190], "pixel_num": 1500},
        {"label": "car", "logit": 0.4, "box": [400, 100, 440, 130], "pixel_num": 800},
        {"label": "road", "logit": 0.7, "box": [0, 100, 640, 192], "pixel_num": 40000},
    ],
    "no_detection": [],
}


@pytest.mark.parametrize("scene", list(SCENES))
def test_bench_snog_vectorized(benchmark, scene):
    rng = np.random.default_rng(0)
    out = benchmark(sample_anchor_sets, SCENES[scene], IMAGE_SIZE, N_SETS, rng=rng)
    benchmark.extra_info["anchors_per_call"] = N_SETS * NUM_PATCHES
    assert out.shape == (N_SETS, NUM_PATCHES, 2)


@pytest.mark.parametrize("scene", list(SCENES))
def test_bench_snog_reference_loop(benchmark, scene):
    rng = np.random.default_rng(0)

    def one_file():
        return [ORACLE.reference_sample_anchors(SCENES[scene], IMAGE_SIZE, rng) for _ in range(N_SETS)]

    out = benchmark.pedantic(one_file, rounds=3, iterations=1)
    benchmark.extra_info["anchors_per_call"] = N_SETS * NUM_PATCHES
    assert len(out) == N_SETS and out[0].shape == (NUM_PATCHES, 2)
