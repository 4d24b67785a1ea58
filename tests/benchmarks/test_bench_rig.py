"""Throughput of the camera models and writers used to synthesise the world (no timing assertions).

Run with ``pytest tests/benchmarks/test_bench_rig.py --benchmark-enable``; by default each runs once as a test.
"""

import numpy as np

from vipocc.geometry.cameras import mei_ray_dirs, pinhole_ray_dirs, project_mei, unproject_mei
from vipocc.synthetic import kitti360_export as ke
from vipocc.synthetic.rig import kitti360_rig


def test_bench_fisheye_rays_half_res(benchmark):
    rig = kitti360_rig(0.5)  # 700 x 700 = 490k pixels (Rig.camera_rays caches this; measure the computation)
    dirs, valid = benchmark(mei_ray_dirs, rig.mei[2])
    assert dirs.shape == (700 * 700, 3) and valid.any()


def test_bench_perspective_rays_full_res(benchmark):
    rig = kitti360_rig(1.0)  # 1408 x 376 = 529k pixels
    dirs = benchmark(pinhole_ray_dirs, rig.K_rect[0], *rig.perspective_size)
    assert dirs.shape == (1408 * 376, 3)


def test_bench_project_mei_500k(benchmark):
    rig = kitti360_rig(1.0)
    pts = np.random.default_rng(0).normal(size=(500_000, 3))
    uv, valid = benchmark(project_mei, pts, rig.mei[2])
    assert uv.shape == (500_000, 2) and valid.any()


def test_bench_unproject_mei_500k(benchmark):
    rig = kitti360_rig(1.0)
    uv = np.random.default_rng(0).uniform(0, 1400, size=(500_000, 2))
    dirs, valid = benchmark(unproject_mei, uv, rig.mei[2])
    assert dirs.shape == (500_000, 3) and valid.any()


def test_bench_lidar_rays_2048(benchmark):
    rig = kitti360_rig(1.0)
    dirs = benchmark(rig.lidar_rays, 2048)
    assert dirs.shape == (64 * 2048, 3)


def test_bench_write_png_full_res(benchmark, tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(376, 1408, 3), dtype=np.uint8)
    path = benchmark(ke.write_image, tmp_path / "img.png", rgb)
    assert path.is_file()
