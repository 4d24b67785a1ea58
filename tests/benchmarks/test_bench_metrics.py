"""Throughput of the per-frame metrics (one KITTI-360 depth image, one occupancy frame)."""

from __future__ import annotations

import numpy as np

from vipocc.evaluation.metrics import depth_metrics, scene_and_object_scores


def _depth_pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sparse-LiDAR-like GT [192, 640] (about 5 % valid) and a dense prediction."""
    rng = np.random.default_rng(seed)
    gt = np.where(rng.random((192, 640)) < 0.05, rng.uniform(2.0, 90.0, (192, 640)), 0.0)
    pred = rng.uniform(1.0, 80.0, (192, 640)).astype(np.float32)
    return gt, pred


def _occupancy_frame(seed: int = 0) -> tuple[np.ndarray, ...]:
    """A 4-20 m slice [160, 80]: random occupancy, visible near part, three objects."""
    rng = np.random.default_rng(seed)
    occ = rng.random((160, 80)) < 0.3
    vis = np.zeros((160, 80), bool)
    vis[60:] = rng.random((100, 80)) < 0.6
    pred = rng.random((160, 80)) < 0.3
    labels = np.where(occ, 255, 0).astype(np.uint8)
    labels[20:40, 10:20], labels[80:95, 50:60], labels[130:150, 30:36] = 1, 2, 3
    return occ, vis, pred, labels


def test_bench_depth_metrics_kitti360(benchmark):
    gt, pred = _depth_pair()
    result = benchmark(depth_metrics, gt, pred)
    assert 0 < result["a3"] <= 1


def test_bench_depth_metrics_median_upsampled(benchmark):
    gt, pred = _depth_pair()
    result = benchmark(depth_metrics, gt, pred[::2, ::2], "median")
    assert np.isfinite(result["abs_rel"])


def test_bench_scene_and_object_scores(benchmark):
    occ, vis, pred, labels = _occupancy_frame()
    result = benchmark(scene_and_object_scores, occ, vis, pred, labels)
    assert 0 <= result["scene_o_acc"] <= 1 and 0 <= result["object_o_acc"] <= 1
