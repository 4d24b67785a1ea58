"""Throughput of KITTI-360 preprocessing at 192x640 from full-resolution images (no timing assertions).

One preprocessed frame = 2 perspective resizes (1408x376 -> 640x192) + 2 fisheye resamplings (1400x1400 -> virtual
pinhole 640x192), including the reference's float pipeline and uint8 cast (no file I/O).
Run with ``pytest tests/benchmarks/test_bench_images.py --benchmark-enable``; by default each runs once as a test.
"""

import numpy as np
import pytest

from vipocc.data.calibration import fisheye_rotation_matrices, normalize_K, normalize_mei
from vipocc.data.images import fisheye_to_pinhole_grid, resample_fisheye, resize_perspective
from vipocc.synthetic.rig import kitti360_rig

SIZE = (192, 640)


@pytest.fixture(scope="module")
def full_res():
    rig = kitti360_rig(1.0)
    K = normalize_K(rig.K_rect[0], rig.image_size(0))
    rotation = fisheye_rotation_matrices((0, -15))
    grids = {cam: fisheye_to_pinhole_grid(K, SIZE, normalize_mei(rig.mei[cam]), rotation[cam]) for cam in (2, 3)}
    rng = np.random.default_rng(0)
    perspective = [rng.integers(0, 256, (376, 1408, 3), dtype=np.uint8) for _ in range(2)]
    fisheye = [rng.integers(0, 256, (1400, 1400, 3), dtype=np.uint8) for _ in range(2)]
    return K, grids, perspective, fisheye


def _preprocess_frame(grids, perspective, fisheye):
    out = [resize_perspective(image, SIZE) for image in perspective]
    out += [resample_fisheye(image, grids[cam]) for cam, image in zip((2, 3), fisheye)]
    return out


def test_bench_preprocess_frame_192x640(benchmark, full_res):
    _, grids, perspective, fisheye = full_res
    out = benchmark(_preprocess_frame, grids, perspective, fisheye)
    assert [o.shape for o in out] == [(192, 640, 3)] * 4


def test_bench_resize_perspective_192x640(benchmark, full_res):
    out = benchmark(resize_perspective, full_res[2][0], SIZE)
    assert out.shape == (192, 640, 3)


def test_bench_resample_fisheye_192x640(benchmark, full_res):
    out = benchmark(resample_fisheye, full_res[3][0], full_res[1][2])
    assert out.shape == (192, 640, 3)


def test_bench_fisheye_grid_192x640(benchmark, full_res):
    K, _, _, _ = full_res
    rig = kitti360_rig(1.0)
    rotation = fisheye_rotation_matrices((0, -15))[2]
    grid = benchmark(fisheye_to_pinhole_grid, K, SIZE, normalize_mei(rig.mei[2]), rotation)
    assert grid.shape == (192, 640, 2)
