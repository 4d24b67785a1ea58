"""Throughput of the prior backends on 192x640 images: images/s = images_per_call / mean.

Real-code-path backends run the tiny random models (tiny_models); their numbers measure the pipeline overhead
(resizing, processors, post-processing) plus a tiny network, not the real ViT-L / Swin-T / ViT-H cost.
Run with ``pytest tests/benchmarks/test_bench_priors.py --benchmark-enable``; no timing is asserted.
"""
from __future__ import annotations

import numpy as np
import pytest

from vipocc.priors import depth_anything, grounded_sam, simulated, tiny_models

H, W = 192, 640
BATCH = 4


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, size=(BATCH, H, W, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def oracle():
    """Street-like oracle maps: ground plane depth, sky above the horizon, three car rectangles."""
    v = np.arange(H)[:, None] + 0.5
    depth = np.where(v > 122, 282.2 * 1.55 / np.maximum(v - 121.9, 1e-6), np.inf) * np.ones((1, W))
    semantic = np.where(v > 122, 7, 23).astype(np.uint8) * np.ones((1, W), np.uint8)
    instance = np.zeros((H, W), np.uint16)
    for car_id, (v0, u0) in enumerate([(120, 100), (110, 300), (115, 500)], start=1):
        instance[v0:v0 + 30, u0:u0 + 60] = car_id
        semantic[v0:v0 + 30, u0:u0 + 60] = 26
        depth[v0:v0 + 30, u0:u0 + 60] = 8.0 + 4 * car_id
    return depth, instance, semantic


def test_bench_depth_anything_tiny(benchmark, tmp_path_factory, images):
    model = depth_anything.load_depth_anything(
        tiny_models.build_tiny_depth_anything(tmp_path_factory.mktemp("bench_da")), device="auto")
    if not benchmark.disabled:  # warm-up: oneDNN builds its kernels on the first call at a new size
        depth_anything.predict_depth(model, images)
    out = benchmark.pedantic(depth_anything.predict_depth, args=(model, images), kwargs={"batch_size": BATCH},
                             rounds=3, iterations=1)
    benchmark.extra_info["images_per_call"] = BATCH
    assert out.shape == (BATCH, H, W)


def test_bench_grounded_sam_tiny(benchmark, tmp_path_factory, images):
    root = tmp_path_factory.mktemp("bench_gsam")
    models = grounded_sam.load_grounded_sam(tiny_models.build_tiny_grounding_dino(root / "dino"),
                                            tiny_models.build_tiny_sam(root / "sam"), device="auto")
    if not benchmark.disabled:
        grounded_sam.detect_instances(models, images)  # warm-up
    out = benchmark.pedantic(grounded_sam.detect_instances, args=(models, images), kwargs={"batch_size": BATCH},
                             rounds=3, iterations=1)
    benchmark.extra_info["images_per_call"] = BATCH
    assert len(out) == BATCH


def test_bench_simulated_depth(benchmark, oracle):
    rng = np.random.default_rng(0)
    out = benchmark(simulated.simulate_depth_prior, oracle[0], rng)
    benchmark.extra_info["images_per_call"] = 1
    assert out.shape == (H, W)


def test_bench_simulated_instances(benchmark, oracle):
    rng = np.random.default_rng(0)
    detections, mask = benchmark(simulated.simulate_instances, oracle[1], oracle[2], rng)
    benchmark.extra_info["images_per_call"] = 1
    assert mask.shape == (H, W) and len(detections) >= 2
