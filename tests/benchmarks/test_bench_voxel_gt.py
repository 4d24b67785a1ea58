"""Throughput (frames/s) of the synthetic voxel GT (labels + camera visible mask of one frame, what the rule
voxel_gt_sequence computes per frame, file writes aside) on the default world, fast module vs the previous plain
algorithm (tests/data/reference_voxel_gt.py: the oracle at all 2 M centres, one ray per in-view centre).

World: the default preset's test sequence (street and poses rebuilt with build_sequence, no rendering), frame 36
of 72; camera image_00 of the KITTI-360 rig. frames/s = 1 / (mean time per round); timings are reported in
extra_info, never asserted. Run with ``pytest tests/benchmarks/test_bench_voxel_gt.py --benchmark-enable``.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from vipocc.config import resolve_world_config, validate_config
from vipocc.data import voxel_gt as vg
from vipocc.data.calibration import normalize_K
from vipocc.synthetic.raycast import Raycaster
from vipocc.synthetic.rig import kitti360_rig
from vipocc.synthetic.world import SequenceSpec, build_sequence

FRAME_INDEX = 36


def _load_reference():
    path = Path(__file__).resolve().parents[1] / "data" / "reference_voxel_gt.py"
    spec = importlib.util.spec_from_file_location("reference_voxel_gt_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load_reference()


@pytest.fixture(scope="module")
def frame():
    """(scene, caster, cam_to_world, K_norm, velo_to_world) of one default-world test frame."""
    config = validate_config({"dataset": {"kind": "synthetic"}, "synthetic": {"preset": "default"}})
    world = resolve_world_config(config)
    index = next(i for i, seq in enumerate(world["sequences"]) if seq["split"] == "test")
    block = world["sequences"][index]
    spec = SequenceSpec(block["name"], block["split"], block["frames"], block["first_frame"], block["gap_at"],
                        block["gap_length"])
    scene, imu_to_world = build_sequence(world, index, spec)
    rig = kitti360_rig(world["resolution_scale"])
    K = normalize_K(rig.P_rect_00[:, :3], rig.perspective_size[::-1])
    pose = imu_to_world[FRAME_INDEX]
    return scene, Raycaster(scene), pose @ rig.T_rect_to_pose[0], K, pose @ rig.T_velo_to_pose


def _labels(scene, caster, cam_to_world, K, velo_to_world):
    return vg.voxel_labels(scene, velo_to_world)


def _visible(scene, caster, cam_to_world, K, velo_to_world, occupied):
    return vg.camera_visible_mask(caster, cam_to_world, K, velo_to_world, occupied)


def _frame(scene, caster, cam_to_world, K, velo_to_world):
    labels = vg.voxel_labels(scene, velo_to_world)
    return labels, vg.camera_visible_mask(caster, cam_to_world, K, velo_to_world,
                                          (labels != vg.EMPTY) & (labels != vg.UNKNOWN))


def _reference_frame(scene, caster, cam_to_world, K, velo_to_world):
    return (reference.reference_labels(scene, velo_to_world),
            reference.reference_visible(caster, cam_to_world, K, velo_to_world))


@pytest.mark.parametrize("part", ["labels", "visible", "frame", "reference_frame"])
def test_bench_voxel_gt(benchmark, frame, part):
    if part == "visible":
        labels = _labels(*frame)
        args = (*frame, (labels != vg.EMPTY) & (labels != vg.UNKNOWN))
    else:
        args = frame
    function = {"labels": _labels, "visible": _visible, "frame": _frame, "reference_frame": _reference_frame}[part]
    out = benchmark.pedantic(function, args=args, rounds=3 if part != "reference_frame" else 2, iterations=1)
    if part in ("frame", "reference_frame"):
        labels, visible = out
        assert labels.shape == visible.shape == vg.VOXEL_SHAPE and not (visible & (labels != 0)).any()
        benchmark.extra_info["occupied_fraction"] = float(((labels != 0) & (labels != 255)).mean())
        benchmark.extra_info["visible_fraction"] = float(visible.mean())
    if benchmark.stats is not None:  # None when run as a plain test (--benchmark-disable)
        benchmark.extra_info["frames_per_s"] = 1.0 / benchmark.stats.stats.mean
