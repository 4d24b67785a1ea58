"""Voxel GT: grid geometry by hand, camera visibility against an analytic wall, labels vs the oracle on random
voxels of a smoke-world frame, visible voxels are free, the fast labels / visibility equal the previous plain
algorithm (tests/data/reference_voxel_gt.py) bit for bit, resumability, and both reader layouts (ours and
SSCBench's match-file indirection) including the errors."""

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from vipocc.data import voxel_gt as vg
from vipocc.data.calibration import load_calibration
from vipocc.data.gt_commands import register
from vipocc.data.poses import load_poses
from vipocc.synthetic.oracle import WorldOracle
from vipocc.synthetic.raycast import Raycaster
from vipocc.synthetic.scene import Scene, box_solid, convex_solid, yaw_axes

SEQ = "2013_05_28_drive_0004_sync"
FRAME = 4


def _load_reference():
    path = Path(__file__).resolve().parent / "reference_voxel_gt.py"
    spec = importlib.util.spec_from_file_location("reference_voxel_gt_oracle", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load_reference()


def centre(i: int, j: int, k: int) -> np.ndarray:
    """Voxel centre in the velodyne frame, from the SSCBench definition written out by hand."""
    return np.array([1.0 + 0.2 * i + 0.1, -25.6 + 0.2 * j + 0.1, -2.5 + 0.2 * k + 0.1])


def flat(i: int, j: int, k: int) -> int:
    return (i * 256 + j) * 32 + k


def test_voxel_centres_follow_the_sscbench_grid():
    centers = vg.voxel_centers()
    assert centers.shape == (256 * 256 * 32, 3)
    for index in [(0, 0, 0), (255, 255, 31), (10, 128, 12), (3, 0, 31)]:
        np.testing.assert_allclose(centers[flat(*index)], centre(*index), atol=1e-12)


def test_camera_visibility_of_voxels_behind_an_analytic_wall():
    wall = box_solid(np.array([20.0, 0.0, 0.0]), np.array([1.0, 10.0, 10.0]), semantic=11, material=2)
    slab = box_solid(np.array([0.0, 0.0, -50.0]), np.array([200.0, 200.0, 1.0]), semantic=7, material=0)
    scene = Scene.from_solids([wall, slab])  # the slab far below only extends the modelled world in xy
    # camera at the world origin looking along world +x (camera x = -y, y = -z, z = +x); velodyne frame = world
    cam_to_world = np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1.0]])
    visible = vg.camera_visible_mask(Raycaster(scene), cam_to_world, np.eye(3), np.eye(4))
    labels = vg.voxel_labels(scene, np.eye(4))
    cases = {  # voxel -> visible? (centre x = 1.1 + 0.2 i, y = -25.5 + 0.2 j, z = -2.4 + 0.2 k)
        (40, 128, 12): True,    # x = 9.1 in front of the wall, on the axis
        (93, 128, 12): False,   # x = 19.7: inside the wall
        (120, 128, 12): False,  # x = 25.1 behind the wall
        (120, 20, 12): True,    # x = 25.1, y = -21.5: the line of sight passes beside the wall (|y| at 19.5 = 16.7)
        (40, 10, 12): False,    # x = 9.1, y = -23.5: outside the 90 degree field of view (|y| > x)
        (2, 128, 31): False,    # x = 1.5, z = 3.8: above the field of view (|z| > x)
    }
    for index, expected in cases.items():
        assert visible[index] == expected, (index, centre(*index))
    assert labels[93, 128, 12] == 11 and labels[96, 128, 12] == 11 and labels[120, 128, 12] == 0
    assert labels[91, 128, 12] == 0 and visible[91, 128, 12]  # x = 19.3, just in front of the face at 19.5
    assert not (visible & (labels != 0)).any()
    # without the slab, voxels outside the world's xy extent (the wall's) are unknown
    alone = vg.voxel_labels(Scene.from_solids([wall]), np.eye(4))
    assert alone[120, 128, 12] == vg.UNKNOWN and alone[91, 128, 12] == vg.UNKNOWN and alone[93, 128, 12] == 11


def pose(yaw: float, pitch: float, roll: float, translation) -> np.ndarray:
    """[4, 4] rigid transform: R = Rz(yaw) Ry(pitch) Rx(roll), then the translation."""
    cz, sz, cy, sy, cx, sx = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    T = np.eye(4)
    T[:3, :3] = (np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
                 @ np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]))
    T[:3, 3] = translation
    return T


def tricky_scene() -> Scene:
    """Overlapping solids of several shapes; in the identity pose the building's faces and the road's top lie on
    planes of voxel centres (x = 19.5 at i = 92, y = -3.5 / 3.5 at j = 110 / 145, z = 0 at k = 12)."""
    crown = np.random.default_rng(5).normal(size=(40, 3)) * [2.0, 2.5, 1.5] + [21.0, -6.0, 3.0]
    return Scene.from_solids([
        box_solid(np.array([14.0, 2.0, 0.7]), np.array([4.2, 1.8, 1.6]), 0.3, semantic=26, material=3),  # sunk car
        convex_solid(crown, semantic=21, material=6),
        box_solid(np.array([22.5, 0.0, 1.0]), np.array([6.0, 7.0, 2.0]), semantic=11, material=2),  # on-grid faces
        box_solid(np.array([24.0, 2.0, 1.5]), np.array([3.0, 3.0, 3.0]), semantic=0, material=2),  # class-less
        box_solid(np.array([0.0, 0.0, -1.0]), np.array([200.0, 200.0, 2.0]), semantic=7, material=0),  # road
        box_solid(np.array([-3.0, 10.0, 1.0]), np.array([12.0, 2.0, 2.0]), 0.05, semantic=11, material=2),
        box_solid(np.array([500.0, 0.0, 1.0]), np.array([2.0, 2.0, 2.0]), semantic=17, material=7),  # off the grid
        convex_solid(np.array([[30, -20, 0], [34, -20, 0], [30, -16, 0], [30, -20, 5.0]]) @ yaw_axes(0.2).T,
                     semantic=8, material=1),  # a tetrahedron
    ])


@pytest.mark.parametrize(("velo_to_world", "chunk"), [(np.eye(4), None),
                                                     (pose(0.4, 0.02, -0.01, [3.3, -1.7, 0.25]), 5000)],
                         ids=["on-grid", "tilted-small-batches"])
def test_labels_equal_the_plain_oracle_algorithm(velo_to_world, chunk, monkeypatch):
    if chunk is not None:  # many small batches of solids instead of one per shape
        monkeypatch.setattr(vg, "_CHUNK_PLANES", chunk)
    scene = tricky_scene()
    labels = vg.voxel_labels(scene, velo_to_world)
    np.testing.assert_array_equal(labels, reference.reference_labels(scene, velo_to_world))
    assert {1, 7, 8, 11, 21, 26} <= set(np.unique(labels).tolist())
    if np.array_equal(velo_to_world, np.eye(4)):
        # centres on the building's faces and on the road's top belong to them (closed solids)
        assert labels[92, 128, 15] == 11 and labels[91, 128, 15] == 0 and labels[110, 110, 15] == 11
        assert labels[93, 145, 15] == 11 and labels[93, 146, 15] == 0 and labels[40, 128, 12] == 7
        assert labels[40, 128, 13] == 0


def test_visibility_skipping_occupied_voxels_equals_casting_every_voxel():
    scene = tricky_scene()
    velo_to_world = pose(0.4, 0.02, -0.01, [3.3, -1.7, 0.25])
    velo_to_cam = np.array([[0, -1, 0, 0], [0, 0, -1, 1.0], [1, 0, 0, 0], [0, 0, 0, 1]])  # camera 1 m up
    cam_to_world = velo_to_world @ np.linalg.inv(velo_to_cam)
    K = np.array([[2.5, 0, 0.05], [0, 6.0, -0.1], [0, 0, 1]])  # a narrow view: fewer reference rays
    labels = vg.voxel_labels(scene, velo_to_world)
    fast = vg.camera_visible_mask(Raycaster(scene), cam_to_world, K, velo_to_world, (labels != 0) & (labels != 255))
    np.testing.assert_array_equal(fast, reference.reference_visible(Raycaster(scene), cam_to_world, K,
                                                                    velo_to_world))
    assert 0.05 < fast.mean() < 0.9 and not (fast & (labels != 0)).any()
    with pytest.raises(ValueError, match="occupied"):
        vg.camera_visible_mask(Raycaster(scene), cam_to_world, K, velo_to_world, np.zeros((256, 256), bool))


@pytest.fixture(scope="module")
def smoke_voxels(smoke_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("voxels")
    oracle = WorldOracle(smoke_world)
    stats = vg.voxel_gt_sequence(smoke_world / "kitti360", out, SEQ, [FRAME], oracle.scene(SEQ),
                                 scene_path=oracle.root / "oracle" / SEQ / "scene.npz", progress=False)
    assert len(stats.written) == 2
    return out


def test_labels_match_the_oracle_on_random_voxels(smoke_world, smoke_voxels):
    raw = smoke_world / "kitti360"
    labels = np.load(vg.label_path(smoke_voxels / "voxel_gt", SEQ, FRAME))
    assert labels.dtype == np.uint8 and labels.shape == (256, 256, 32)
    calibration, poses = load_calibration(raw), load_poses(raw, SEQ)
    velo_to_world = poses.imu_to_world[poses.index_of(FRAME)] @ calibration.T_velo_to_pose
    rng = np.random.default_rng(7)
    index = rng.integers(0, [256, 256, 32], size=(3000, 3))
    occupied = np.flatnonzero(labels.ravel() != 0)  # plus occupied voxels, which are rarer
    index = np.concatenate([index, np.stack(np.unravel_index(rng.choice(occupied, 1000), labels.shape), axis=1)])
    points = np.stack([centre(*i) for i in index]) @ velo_to_world[:3, :3].T + velo_to_world[:3, 3]
    truth = WorldOracle(smoke_world).scene(SEQ).semantic_at(points)  # 0 = free
    np.testing.assert_array_equal(labels[tuple(index.T)], truth)
    assert {7, 11, 26} <= set(np.unique(labels).tolist())  # road, building, car


def test_visible_voxels_are_free_and_seen_from_image_00(smoke_world, smoke_voxels):
    visible = np.load(vg.visible_mask_path(smoke_voxels / "voxel_gt", SEQ, FRAME))
    labels = np.load(vg.label_path(smoke_voxels / "voxel_gt", SEQ, FRAME))
    assert visible.dtype == np.bool_ and visible.shape == (256, 256, 32)
    assert visible.sum() > 100_000
    assert not (visible & (labels != 0)).any()  # a visible voxel cannot be inside a solid
    # independent: visible centres are truly free in the oracle and lie in image_00's view
    raw = smoke_world / "kitti360"
    calibration, poses = load_calibration(raw), load_poses(raw, SEQ)
    velo_to_rect = calibration.T_velo_to_rect[0]
    chosen = np.random.default_rng(3).choice(np.flatnonzero(visible.ravel()), 2000, replace=False)
    index = np.stack(np.unravel_index(chosen, visible.shape), axis=1)
    velo = np.stack([centre(*i) for i in index])
    cam = velo @ velo_to_rect[:3, :3].T + velo_to_rect[:3, 3]
    uv = cam @ calibration.K_perspective.T
    assert (cam[:, 2] > 0).all() and (np.abs(uv[:, :2] / uv[:, 2:]) <= 1 + 1e-9).all()
    velo_to_world = poses.imu_to_world[poses.index_of(FRAME)] @ calibration.T_velo_to_pose
    world = velo @ velo_to_world[:3, :3].T + velo_to_world[:3, 3]
    assert not WorldOracle(smoke_world).occupied(SEQ, world).any()
    # and occlusion happens: free voxels in view behind the buildings are hidden
    in_view_free_hidden = (labels == 0) & ~visible
    assert in_view_free_hidden.sum() > 10_000


def test_written_frame_equals_the_plain_oracle_algorithm(smoke_world, smoke_voxels):
    raw = smoke_world / "kitti360"
    calibration, poses = load_calibration(raw), load_poses(raw, SEQ)
    imu_to_world = poses.imu_to_world[poses.index_of(FRAME)]
    velo_to_world = imu_to_world @ calibration.T_velo_to_pose
    scene = WorldOracle(smoke_world).scene(SEQ)
    labels = np.load(vg.label_path(smoke_voxels / "voxel_gt", SEQ, FRAME))
    visible = np.load(vg.visible_mask_path(smoke_voxels / "voxel_gt", SEQ, FRAME))
    np.testing.assert_array_equal(labels, reference.reference_labels(scene, velo_to_world))
    np.testing.assert_array_equal(visible, reference.reference_visible(
        Raycaster(scene), imu_to_world @ calibration.view_to_pose(0), calibration.K_perspective, velo_to_world))


def test_second_run_writes_nothing(smoke_world, smoke_voxels):
    oracle = WorldOracle(smoke_world)
    again = vg.voxel_gt_sequence(smoke_world / "kitti360", smoke_voxels, SEQ, [FRAME], oracle.scene(SEQ),
                                 scene_path=oracle.root / "oracle" / SEQ / "scene.npz", progress=False)
    assert again.written == [] and again.skipped == 1
    assert not [p for p in smoke_voxels.rglob("*") if p.name.endswith(".tmp")]


def test_frames_reader_gives_labels_visibility_and_the_velo_to_camera_transform(smoke_world, smoke_voxels):
    raw = smoke_world / "kitti360"
    calibration, poses = load_calibration(raw), load_poses(raw, SEQ)
    key = poses.imu_to_world[poses.index_of(FRAME)] @ calibration.T_rect_to_pose[0]
    sample = vg.load_voxel_gt(smoke_voxels / "voxel_gt", raw, SEQ, FRAME, key)
    assert sample["voxel"].dtype == np.int32 and sample["voxel"].shape == (256, 256, 32)
    assert sample["voxel_visible"].dtype == np.bool_ and sample["voxel_frame"] == FRAME
    # same frame, key camera = rectified cam0: voxellidar2c is the calibration's velo -> rect transform
    np.testing.assert_allclose(sample["voxellidar2c"], calibration.T_velo_to_rect[0], atol=1e-5)
    assert sample["voxellidar2c"].dtype == np.float32
    with pytest.raises(FileNotFoundError, match="0000000008_1_1.npy"):
        vg.load_voxel_gt(smoke_voxels / "voxel_gt", raw, SEQ, 8, key)


def write_sscbench(root, seq, frames):
    """A fake SSCBench folder: match file in the parent (as SSCBench ships it), labels for every 5th frame."""
    root.mkdir(parents=True)
    lines = [f"{seq} {frame:010d}.png {i:06d}.png" for i, frame in enumerate(frames)]
    (root.parent / vg.MATCH_FILE).write_text("\n".join(lines) + "\n")
    (root / "labels" / seq).mkdir(parents=True)
    for ssc_id in range(0, len(frames), 5):
        grid = np.full(vg.VOXEL_SHAPE, ssc_id, dtype=np.uint8)
        np.save(vg.sscbench_label_path(root, seq, ssc_id), grid)


def test_sscbench_reader_matches_the_next_labelled_frame(smoke_world, tmp_path):
    raw = smoke_world / "kitti360"
    posed = [int(f) for f in load_poses(raw, SEQ).frames]  # 0..11, 14..25
    root = tmp_path / "sscbench" / "preprocess"
    write_sscbench(root, SEQ, posed[:16])  # labelled SSCBench ids 0, 5, 10, 15 -> frames 0, 5, 10, 17
    reader = vg.VoxelGtReader(root, raw, "sscbench", require_visible=False)
    expected = {0: (0, 0), 1: (5, 5), 5: (5, 5), 6: (10, 10), 11: (15, 17), 17: (15, 17)}
    key = np.eye(4)
    for frame, (ssc_id, voxel_frame) in expected.items():
        sample = reader(SEQ, frame, key)
        assert sample["voxel_frame"] == voxel_frame and (sample["voxel"] == ssc_id).all()
        assert "voxel_visible" not in sample
    with pytest.raises(ValueError, match="no labelled SSCBench frame at or after frame 18"):
        reader(SEQ, 18, key)
    assert vg.check_voxel_gt_files(root, SEQ, [0, 6, 17]) == [vg.sscbench_label_path(root, SEQ, i)
                                                              for i in (0, 10, 15)]
    vg.sscbench_label_path(root, SEQ, 10).unlink()
    with pytest.raises(FileNotFoundError, match="(?s)1 of 2 files.*000010_1_1.npy"):
        vg.check_voxel_gt_files(root, SEQ, [0, 6])


def test_match_file_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / vg.MATCH_FILE
    path.write_text("seq 0000000001.png 000000.png\nseq frame.png\n")
    with pytest.raises(ValueError, match=rf"{vg.MATCH_FILE}:2:"):
        vg.read_match_file(path)
    with pytest.raises(FileNotFoundError, match="kitti_360_match.txt"):
        vg.VoxelGtReader(tmp_path / "a" / "b", tmp_path, "sscbench").voxel_file("seq", 0)


def test_cli_voxel_gt_with_source_path_only_checks(smoke_world, tmp_path):
    root = tmp_path / "sscbench" / "preprocess"
    write_sscbench(root, SEQ, [int(f) for f in load_poses(smoke_world / "kitti360", SEQ).frames])
    config = json.dumps({"dataset": {"kind": "synthetic"}, "synthetic": {"preset": "smoke"},
                         "voxel_gt": {"source": "path", "path": str(root)}})
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["voxel-gt", "--config-json", config, "--seq", SEQ, "--out", str(tmp_path / "out"),
                              "--raw-root", str(smoke_world / "kitti360"), "--split-dir",
                              str(smoke_world / "splits" / "kitti360"), "--no-progress"])
    assert args.func(args) == 0
    manifest = json.loads((tmp_path / "out" / "manifests" / "voxel_gt" / f"{SEQ}.json").read_text())
    assert manifest["frame_numbers"] == [0, 4, 8] and manifest["layout"] == "sscbench"
    assert len(manifest["files"]) == 3  # frame 0 -> id 0; 4 and 8 -> ids 5 and 10 (frames 5 and 10)
    assert not (tmp_path / "out" / "voxel_gt").exists()
