"""Throughput of the preprocessing stage at KITTI-360 resolution: preprocessed images and LiDAR depth GT.

Input: a full-size raw frame (1408x376 perspective PNGs, 1400x1400 fisheye PNGs with some texture, a 128k-point
Velodyne scan of 64 beams x 2000 azimuths with street-like ranges, half of it behind the camera), output 192x640.
frames/s = frames per call / mean. Run with ``pytest tests/benchmarks/test_bench_depth_gt.py --benchmark-enable``;
no timing is asserted.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from vipocc.data.calibration import load_calibration
from vipocc.data.depth_gt import depth_gt_sequence, lidar_depth_map
from vipocc.data.preprocess import preprocess_sequence
from vipocc.synthetic import kitti360_export as export
from vipocc.synthetic.rig import kitti360_rig

SEQ = "2013_05_28_drive_0000_sync"
FRAMES = [3, 4, 5]
IMAGE_SIZE = (192, 640)


def _load_oracle():
    path = Path(__file__).resolve().parents[1] / "data" / "reference_depth_gt.py"
    spec = importlib.util.spec_from_file_location("reference_depth_gt_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _textured(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth colour blobs plus fine noise: PNG sizes close to real street images."""
    coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    return np.clip(smooth + rng.integers(-6, 7, smooth.shape), 0, 255).astype(np.uint8)


def _scan(rng: np.random.Generator, rig) -> np.ndarray:
    dirs = rig.lidar_rays(2000)
    ranges = rng.uniform(3.0, 80.0, len(dirs))
    return np.column_stack([dirs * ranges[:, None], rng.uniform(0, 1, len(dirs))]).astype(np.float32)


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("kitti360_full")
    rig = kitti360_rig(1.0)
    export.write_calibration(root, rig)
    export.write_poses(root, SEQ, FRAMES, np.repeat(np.eye(4)[None], len(FRAMES), axis=0), rig)
    for frame in FRAMES:
        for cam in range(4):
            export.write_image(export.image_path(root, SEQ, cam, frame), _textured(rng, *rig.image_size(cam)))
        export.write_velodyne(root, SEQ, frame, _scan(rng, rig))
    return root


def test_bench_preprocess_frames(benchmark, raw_root, tmp_path):
    """Read 4 raw PNGs, resize 2, resample 2 fisheyes, write 4 PNGs (grid computed once per call)."""
    stats = benchmark(preprocess_sequence, raw_root, tmp_path, SEQ, image_size=IMAGE_SIZE, overwrite=True,
                      progress=False)
    assert len(stats.written) == 4 * len(FRAMES)


def test_bench_depth_gt_frames(benchmark, raw_root, tmp_path):
    """Read the scan, project it into image_00 and image_01, write 2 .npy files."""
    stats = benchmark(depth_gt_sequence, raw_root, tmp_path, SEQ, image_size=IMAGE_SIZE, overwrite=True,
                      progress=False)
    assert len(stats.written) == 2 * len(FRAMES)


@pytest.mark.parametrize("implementation", ["vectorized", "reference_loop"])
def test_bench_lidar_depth_map(benchmark, raw_root, implementation):
    calib = load_calibration(raw_root)
    scan = np.fromfile(export.velodyne_path(raw_root, SEQ, FRAMES[0]), dtype=np.float32).reshape(-1, 4)
    function = lidar_depth_map if implementation == "vectorized" else _load_oracle().reference_depth_map
    depth = benchmark(function, scan, calib.T_velo_to_rect[0], calib.K_perspective, IMAGE_SIZE)
    assert depth.shape == IMAGE_SIZE and (depth > 0).any()
