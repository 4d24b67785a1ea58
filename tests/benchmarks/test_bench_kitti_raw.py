"""Throughput of the KITTI Raw GT depth map (monodepth2 semantics, vectorised) on a KITTI-size scan.

One call = one frame: ~120,000 Velodyne points onto a 375 x 1242 image with a KITTI-like projection (about a third of
the points land in the image, many sharing pixels). frames/s = 1 / mean.
Run with ``pytest tests/benchmarks/test_bench_kitti_raw.py --benchmark-enable``; no timing is asserted.
"""
from __future__ import annotations

import numpy as np
import pytest

from vipocc.data.kitti_raw import velodyne_depth_map

IMAGE_SIZE = (375, 1242)
# Velodyne (x fwd, y left, z up) -> camera (x right, y down, z fwd), KITTI-like intrinsics
_VELO_TO_CAM = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.08], [1.0, 0.0, 0.0, -0.27]])
_K = np.array([[721.5, 0.0, 609.6], [0.0, 721.5, 172.9], [0.0, 0.0, 1.0]])


def _scan(rng: np.random.Generator, n: int = 120_000) -> np.ndarray:
    """Points on a 64-beam-like pattern: azimuth uniform, elevation in [-24.8, 2] deg, range 2-80 m."""
    azimuth = rng.uniform(-np.pi, np.pi, n)
    elevation = np.radians(rng.uniform(-24.8, 2.0, n))
    distance = rng.uniform(2.0, 80.0, n)
    xyz = np.stack([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                    np.sin(elevation)], axis=1) * distance[:, None]
    return np.concatenate([xyz, rng.uniform(0, 1, (n, 1))], axis=1).astype(np.float32)


@pytest.mark.parametrize("reference_duplicates", [True, False])
def test_bench_velodyne_depth_map(benchmark, reference_duplicates):
    points = _scan(np.random.default_rng(0))
    depth = benchmark(velodyne_depth_map, points, _K @ _VELO_TO_CAM, IMAGE_SIZE,
                      reference_duplicates=reference_duplicates)
    assert depth.shape == IMAGE_SIZE and np.count_nonzero(depth) > 10_000
