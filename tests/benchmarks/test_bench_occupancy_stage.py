"""Seconds per frame of the ground-truth jobs on the smoke world (the benchmark's mean = seconds per frame).

* ``occupancy_gt_job``: the whole per-frame job of :func:`occupancy_gt_sequence` (read the scans, lidar GT on the
  460 x 80 KYN grid, object labels, exact occupancy, atomic writes) for the first test frame, which has 24 scans
  (the smoke sequence ends there) of ~16k points (64 beams x 256 azimuth steps; a real HDL-64 scan has ~120k).
* ``occupancy_gt_300_scans``: the compute of one frame with the paper's 300 scans, made by cycling the smoke
  sequence's 24 scans with their own poses (the geometry stays consistent; the file reading is left out).
* ``voxel_gt_frame``: labels and camera visible mask of one 256 x 256 x 32 voxel grid.

Extrapolation to real KITTI-360 (300 scans of ~120k points): the lidar GT cost grows about linearly in points, so
multiply the 300-scan figure by ~7.5, and add the reading of 300 x 1.9 MB scans (shared between neighbouring test
frames by the job's scan cache). Run with ``pytest tests/benchmarks/test_bench_occupancy_stage.py
--benchmark-enable``; no timing is asserted.
"""

from __future__ import annotations

import numpy as np
import pytest

from vipocc.data.bboxes import load_bboxes, stack_boxes
from vipocc.data.calibration import load_calibration
from vipocc.data.depth_gt import read_velodyne, velodyne_path
from vipocc.data.occupancy_stage import (OccupancyGtSettings, frame_occupancy, occupancy_gt_sequence,
                                         world_to_reference)
from vipocc.data.poses import load_poses
from vipocc.data.voxel_gt import voxel_gt_sequence
from vipocc.synthetic.oracle import WorldOracle

SEQ = "2013_05_28_drive_0004_sync"


@pytest.fixture(scope="module")
def world(smoke_world):
    raw = smoke_world / "kitti360"
    oracle = WorldOracle(smoke_world)
    return raw, load_calibration(raw), load_poses(raw, SEQ), oracle.scene(SEQ), \
        oracle.root / "oracle" / SEQ / "scene.npz"


def test_bench_occupancy_gt_job(benchmark, world, tmp_path):
    raw, calibration, _, scene, scene_path = world
    stats = benchmark(occupancy_gt_sequence, raw, tmp_path, SEQ, [0], OccupancyGtSettings(), calibration=calibration,
                      scene=scene, scene_path=scene_path, overwrite=True, progress=False)
    assert stats.scans_used == {0: 24} and len(stats.written) == 4


def test_bench_occupancy_gt_300_scans(benchmark, world):
    raw, calibration, poses, scene, _ = world
    index = np.arange(300) % len(poses)  # 24 posed frames, cycled
    scans = [read_velodyne(velodyne_path(raw, SEQ, poses.frames[i])) for i in range(len(poses))]
    world_to_ref = world_to_reference(poses.imu_to_world[0], calibration)
    velo = world_to_ref[None] @ poses.imu_to_world[index] @ calibration.T_velo_to_pose
    boxes = stack_boxes(load_bboxes(raw, SEQ))
    gt = benchmark(frame_occupancy, [scans[i] for i in index], velo, world_to_ref, OccupancyGtSettings(), boxes, 0,
                   scene=scene)
    assert gt.scans_used == 300 and gt.occupied.shape == (460, 80)


def test_bench_voxel_gt_frame(benchmark, world, tmp_path):
    raw, calibration, _, scene, scene_path = world
    stats = benchmark(voxel_gt_sequence, raw, tmp_path, SEQ, [4], scene, scene_path=scene_path,
                      calibration=calibration, overwrite=True, progress=False)
    assert len(stats.written) == 2
