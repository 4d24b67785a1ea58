"""Throughput of the KYN lidar occupancy GT: vectorized module vs the literal per-scan, per-bin oracle.

One call = one frame's GT on KYN's grid: 460 x 80 queries (z 50 -> 4 m), T scans of a synthetic street (64-ring
Velodyne pattern, ~96k points each: road, side walls, parked cars, 80 m range) driving 0.8 m per scan. seconds per
frame = mean (workers = threads). The literal oracle (one torch thread) costs the same per scan at any T, so its
T = 4 time x 75 estimates its T = 300 time; speedup = that / the vectorized T = 300 time.
Run with ``pytest tests/benchmarks/test_bench_occupancy_gt.py --benchmark-enable``; no timing is asserted.
"""

from __future__ import annotations

import importlib.util
import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from vipocc.data.occupancy_gt import lidar_occupancy, query_grid


def _load_oracle():
    path = Path(__file__).resolve().parents[1] / "data" / "reference_occupancy.py"
    spec = importlib.util.spec_from_file_location("reference_occupancy_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


oracle = _load_oracle()
N_BASE_SCANS = 6


def _street_scan(rng: np.random.Generator, n_azimuth: int = 1600, n_rings: int = 64, max_range: float = 80.0):
    """[N, 4] float32 returns of one Velodyne sweep in a street: road plane, walls at +-W, 8 parked cars."""
    elevation = np.radians(np.linspace(2.0, -24.9, n_rings))[:, None]
    azimuth = np.linspace(-math.pi, math.pi, n_azimuth, endpoint=False)[None, :] + rng.uniform(0, 0.004)
    direction = np.stack(np.broadcast_arrays(np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                                             np.sin(elevation)), axis=-1).reshape(-1, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        hit = np.where(direction[:, 2] < 0, oracle.SENSOR_HEIGHT / -direction[:, 2], np.inf)
        half_width = rng.uniform(6, 9)
        wall = np.abs(half_width / direction[:, 1])
        hit = np.minimum(hit, np.where(np.isfinite(wall), wall, np.inf))
        for _ in range(8):
            side = rng.choice([-1, 1]) * (half_width - 1.5)
            low = np.array([rng.uniform(-40, 60) - 2, side - 0.9, -oracle.SENSOR_HEIGHT])
            t1, t2 = (low - 0) / direction, (low + [4.0, 1.8, 1.5]) / direction
            enter, leave = np.nanmax(np.minimum(t1, t2), axis=1), np.nanmin(np.maximum(t1, t2), axis=1)
            hit = np.where((enter <= leave) & (enter > 0), np.minimum(hit, enter), hit)
    returned = hit < max_range
    points = direction[returned] * (hit[returned] * (1 + rng.normal(0, 0.001, returned.sum())))[:, None]
    return np.concatenate((points, rng.uniform(0, 1, (len(points), 1))), axis=1).astype(np.float32)


@cache
def _street(n_scans: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    base = [_street_scan(rng) for _ in range(N_BASE_SCANS)]
    scans = [base[t % N_BASE_SCANS] for t in range(n_scans)]
    poses = [oracle.velo_pose(np.array([0.0, -0.3, 0.8 * t]), rng.normal(0, 0.01)) for t in range(n_scans)]
    return scans, np.array(poses, dtype=np.float32)


@pytest.mark.parametrize(("n_scans", "workers"), [(300, 1), (300, 2), (4, 1)])
def test_bench_occupancy_gt_vectorized(benchmark, n_scans, workers):
    scans, poses = _street(n_scans)
    queries = query_grid((50.0, 4.0)).reshape(-1, 3)
    occupied, visible = benchmark.pedantic(lidar_occupancy, args=(queries, scans, poses),
                                           kwargs={"workers": workers}, rounds=5, iterations=1, warmup_rounds=1)
    assert occupied.shape == visible.shape == (len(queries),) and 0 < visible.mean() < 1
    benchmark.extra_info["points"] = int(sum(len(s) for s in scans))


def test_bench_occupancy_gt_literal_oracle(benchmark):
    scans, poses = _street(4)
    queries = query_grid((50.0, 4.0)).reshape(-1, 3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # torch's 2-thread kernels collapse when the other core is busy; 1 thread is fair
    try:
        expected = benchmark.pedantic(oracle.reference_occupancy, args=(queries, scans, poses), rounds=3,
                                      iterations=1)
    finally:
        torch.set_num_threads(threads)
    occupied, visible = lidar_occupancy(queries, scans, poses)
    np.testing.assert_array_equal(occupied, expected[0])
    np.testing.assert_array_equal(visible, expected[1])
