"""LiDAR depth GT (vipocc.data.depth_gt).

Truth: the literal Counter-loop oracle ``reference_depth_gt.py`` (bit identity, random and smoke-world scans),
hand-computed maps for the reference's quirks (last write wins, the ``v*(W-1)+u-1`` key collision, behind-camera
erasure), an exact set characterisation of where ``filter_behind_camera`` changes the map, and the synthetic world's
exact oracle depth (geometry).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from scipy.spatial.transform import Rotation

from vipocc.config import config_hash, validate_config
from vipocc.data import commands
from vipocc.data.calibration import load_calibration
from vipocc.data.depth_gt import (depth_gt_path, depth_gt_sequence, lidar_depth_map, project_velodyne,
                                  read_velodyne, velodyne_path)
from vipocc.data.poses import load_poses
from vipocc.geometry.transforms import invert_rigid, make_transform
from vipocc.synthetic.oracle import WorldOracle


def _load_oracle():
    path = Path(__file__).resolve().parent / "reference_depth_gt.py"
    spec = importlib.util.spec_from_file_location("reference_depth_gt_oracle", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference_depth_map = _load_oracle().reference_depth_map
SMOKE_SIZE = (64, 208)  # the smoke preset's preprocess image_size (raw images are 47x176)
TEST_SEQ = "2013_05_28_drive_0004_sync"


# ----------------------------------------------------------------------------------------- synthetic scans


def _random_rig(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random rigid velodyne -> rect transform and a KITTI-360-like normalised K."""
    R = Rotation.from_rotvec(rng.normal(scale=0.5, size=3)).as_matrix()
    T = make_transform(R, rng.normal(scale=1.0, size=3))
    K = np.array([[0.78 + rng.uniform(-0.1, 0.1), 0.0, rng.uniform(-0.1, 0.1)],
                  [0.0, 2.94 + rng.uniform(-0.3, 0.3), rng.uniform(0.1, 0.3)],
                  [0.0, 0.0, 1.0]])
    return T, K


def _points_on_pixels(rows, cols, z, T, K, size, rng) -> np.ndarray:
    """Velodyne points [N,4] whose reference projection lands on pixel (row, col) with z-depth z (also z < 0:
    a point behind the camera at -z along the mirrored ray). Sub-pixel jitter stays 0.35 px from rounding edges."""
    H, W = size
    u_n = 2.0 * (np.asarray(cols) + rng.uniform(-0.35, 0.35, len(z))) / W - 1.0
    v_n = 2.0 * (np.asarray(rows) + rng.uniform(-0.35, 0.35, len(z))) / H - 1.0
    rect = (np.linalg.inv(K) @ np.stack([u_n, v_n, np.ones_like(u_n)])) * np.asarray(z)
    velo = invert_rigid(T) @ np.vstack([rect, np.ones(len(z))])
    return np.column_stack([velo[:3].T, rng.uniform(0, 1, len(z))]).astype(np.float32)


def _random_scan(rng, size, T, K, n=600) -> np.ndarray:
    """Pixel hits crowded onto a small image (many duplicates), a third behind the camera, extra hits on the
    border columns of adjacent rows (the key collision), points outside the image and points at z = 0."""
    H, W = size
    rows = rng.integers(0, H, n)
    cols = rng.integers(0, W, n)
    border = rng.random(n) < 0.3
    cols[border] = np.where(rng.random(border.sum()) < 0.5, 0, W - 1)
    z = rng.uniform(1.0, 60.0, n)
    z[rng.random(n) < 0.33] *= -1.0
    inside = _points_on_pixels(rows, cols, z, T, K, size, rng)
    outside = rng.normal(scale=30.0, size=(n // 3, 4)).astype(np.float32)
    on_plane = _points_on_pixels([0, 1], [0, 1], [1.0, 1.0], T, K, size, rng)
    rect = np.c_[on_plane[:, :3], np.ones(2)] @ T.T
    rect[:, 2] = 0.0  # exactly on the camera plane: the division gives inf/nan, the reference drops it
    on_plane[:, :3] = (rect @ invert_rigid(T).T)[:, :3]
    scan = np.concatenate([inside, outside, on_plane])
    return scan[rng.permutation(len(scan))]


@pytest.mark.parametrize("seed, size", [(0, (6, 9)), (1, (5, 2)), (2, (12, 17)), (3, (1, 7)), (4, (192, 640))])
@pytest.mark.parametrize("filter_behind_camera", [False, True])
def test_bit_identical_to_literal_reference_on_random_scans(seed, size, filter_behind_camera):
    rng = np.random.default_rng(seed)
    T, K = _random_rig(rng)
    scan = _random_scan(rng, size, T, K, n=600 if size[0] < 100 else 20000)
    ours = lidar_depth_map(scan, T, K, size, filter_behind_camera)
    expected = reference_depth_map(scan, T, K, size, filter_behind_camera)
    assert ours.dtype == np.float32 and ours.shape == size
    np.testing.assert_array_equal(ours, expected)
    # the scan really exercises the quirks: duplicates, collisions across rows, behind-camera hits
    rows, cols, z = project_velodyne(scan, T, K, size)
    keys = rows * (size[1] - 1) + cols - 1
    _, counts = np.unique(keys, return_counts=True)
    assert (counts > 1).any() and (z < 0).any()
    if size[0] > 1 and size[1] > 2:
        pixel = rows * size[1] + cols
        key_pixels = {(k, p) for k, p in zip(keys.tolist(), pixel.tolist())}
        assert len(key_pixels) > len(set(keys.tolist()))  # some key is shared by two different pixels


def test_empty_and_all_outside_scans_give_zero_maps():
    T, K = np.eye(4), np.diag([1.0, 1.0, 1.0])
    assert not lidar_depth_map(np.zeros((0, 4), np.float32), T, K, (4, 5)).any()
    far_side = np.array([[100.0, 0.0, 1.0, 0.0]], np.float32)  # u_n = 100, outside
    assert not lidar_depth_map(far_side, T, K, (4, 5)).any()


def test_hand_computed_quirks():
    """W=4, H=3, T = I, K = I: u = round((x/z * 0.5 + 0.5) * 4), v = round((y/z * 0.5 + 0.5) * 3)."""
    W, H = 4, 3

    def at(row, col, z):  # a point landing on (row, col) at z-depth z (z < 0: behind, mirrored)
        u_n, v_n = 2.0 * (col + 0.1) / W - 1.0, 2.0 * (row + 0.1) / H - 1.0
        return [u_n * z, v_n * z, z, 0.0]

    scan = np.array([
        at(0, 3, 7.0),   # key 0*3+3-1 = 2: the first point of key 2, on pixel (0, 3)
        at(1, 0, 2.0),   # key 1*3+0-1 = 2: same key, other pixel
        at(1, 0, 9.0),   # key 2 again: pixel (1, 0) keeps its last write, 9, not its own min 2
        at(2, 2, 6.0),   # key 2*3+2-1 = 7, a real return ...
        at(2, 2, -4.0),  # ... erased by a behind-camera point on the same pixel: min -4 -> 0
        at(2, 1, -5.0),  # a lone behind-camera point: last write -5 -> 0
        at(1, 2, 3.0),   # key 4, three hits: min 1.5 on the only pixel
        at(1, 2, 1.5),
        at(1, 2, 8.0),
        at(0, 1, 4.0),   # a single hit
    ], dtype=np.float32)
    expected = np.zeros((H, W), np.float32)
    expected[0, 3], expected[1, 0], expected[1, 2], expected[0, 1] = 2.0, 9.0, 1.5, 4.0
    np.testing.assert_allclose(lidar_depth_map(scan, np.eye(4), np.eye(3), (H, W)), expected, rtol=1e-6)

    corrected = expected.copy()
    corrected[2, 2] = 6.0  # the real return survives once behind-camera points are dropped
    np.testing.assert_allclose(lidar_depth_map(scan, np.eye(4), np.eye(3), (H, W), True), corrected, rtol=1e-6)


@pytest.mark.parametrize("bad, match", [
    (dict(points_velo=np.zeros((3, 5))), "points_velo"),
    (dict(T_velo_to_rect=np.eye(3)), "T_velo_to_rect"),
    (dict(K_norm=np.eye(4)), "K_norm"),
    (dict(image_size=(0, 10)), "image_size"),
    (dict(image_size=(10,)), "image_size"),
])
def test_bad_arguments_are_named(bad, match):
    args = dict(points_velo=np.zeros((3, 4)), T_velo_to_rect=np.eye(4), K_norm=np.eye(3), image_size=(4, 4))
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        lidar_depth_map(**args)


# ----------------------------------------------------------------------------------------- the smoke world


@pytest.fixture(scope="module")
def world(smoke_world):
    root = smoke_world / "kitti360"
    return root, load_calibration(root), WorldOracle(smoke_world)


def _smoke_scans(root, oracle, per_seq=3):
    for seq in oracle.sequences:
        frames = load_poses(root, seq).frames
        for frame in frames[:: max(1, len(frames) // per_seq)][:per_seq]:
            yield seq, int(frame), read_velodyne(velodyne_path(root, seq, frame))


def test_bit_identical_to_literal_reference_on_smoke_world(world):
    root, calib, oracle = world
    collisions = behind = 0
    for seq, frame, scan in _smoke_scans(root, oracle):
        for cam in (0, 1):
            T = calib.T_velo_to_rect[cam]
            for filter_behind in (False, True):
                np.testing.assert_array_equal(
                    lidar_depth_map(scan, T, calib.K_perspective, SMOKE_SIZE, filter_behind),
                    reference_depth_map(scan, T, calib.K_perspective, SMOKE_SIZE, filter_behind),
                    err_msg=f"{seq} {frame} cam {cam} filter {filter_behind}")
            rows, cols, z = project_velodyne(scan, T, calib.K_perspective, SMOKE_SIZE)
            behind += int((z < 0).sum())
            collisions += int(np.isin(rows[cols == 0] - 1, rows[cols == SMOKE_SIZE[1] - 1]).sum())
    assert behind > 0 and collisions > 0  # real scans hit both quirks


def test_filter_behind_camera_differs_exactly_where_expected(world):
    """Interior columns (1..W-2) have a key of their own, so there the reference differs from the corrected map
    exactly on pixels hit by both a real return and a behind-camera point (erased to 0). Border columns share keys
    across rows: a difference there needs a behind-camera point somewhere in the key."""
    root, calib, oracle = world
    H, W = SMOKE_SIZE
    total_diff = 0
    for seq, frame, scan in _smoke_scans(root, oracle):
        for cam in (0, 1):
            T = calib.T_velo_to_rect[cam]
            reference = lidar_depth_map(scan, T, calib.K_perspective, SMOKE_SIZE)
            corrected = lidar_depth_map(scan, T, calib.K_perspective, SMOKE_SIZE, filter_behind_camera=True)
            rows, cols, z = project_velodyne(scan, T, calib.K_perspective, SMOKE_SIZE)
            real_hit = np.zeros((H, W), bool)
            behind_hit = np.zeros((H, W), bool)
            real_hit[rows[z > 0], cols[z > 0]] = True
            behind_hit[rows[z <= 0], cols[z <= 0]] = True
            differs = reference != corrected
            interior = np.zeros((H, W), bool)
            interior[:, 1:-1] = True
            np.testing.assert_array_equal(differs & interior, real_hit & behind_hit & interior)
            assert np.all(reference[differs & interior] == 0) and np.all(corrected[differs & interior] > 0)
            behind_keys = set((rows[z <= 0] * (W - 1) + cols[z <= 0] - 1).tolist())
            vv, uu = np.nonzero(differs & ~interior)
            assert set((vv * (W - 1) + uu - 1).tolist()) <= behind_keys
            total_diff += int(differs.sum())
    assert total_diff > 0


def _oracle_comparison(depth, oracle_depth, raw_size, shift=(0, 0)):
    """Relative error of GT pixels against the oracle z-depth at the image grid's pixel centres
    (u_raw = (u + 0.5) * W_raw / W - 0.5, nearest raw pixel), and a per-pixel classification of the outliers."""
    (H, W), (H0, W0) = depth.shape, raw_size
    v, u = np.nonzero(depth > 0)
    u_raw = (u + shift[1] + 0.5) * W0 / W - 0.5
    v_raw = (v + shift[0] + 0.5) * H0 / H - 0.5
    ui = np.clip(np.round(u_raw).astype(int), 0, W0 - 1)
    vi = np.clip(np.round(v_raw).astype(int), 0, H0 - 1)
    truth = oracle_depth[vi, ui].astype(np.float64)
    lidar = depth[v, u].astype(np.float64)
    with np.errstate(invalid="ignore"):
        rel = np.abs(lidar - truth) / truth  # nan where the oracle sees sky (inf)
    window = sliding_window_view(np.pad(oracle_depth.astype(np.float64), 1, mode="edge"), (3, 3))[vi, ui]
    window = window.reshape(len(vi), 9)
    with np.errstate(invalid="ignore"):
        at_edge = ~(window.max(1) <= 1.1 * window.min(1))       # depth jump (or sky) within one raw pixel
    hidden = ~(lidar <= 1.05 * truth)                            # camera sees a nearer surface: lidar parallax
    border = (u == 0) | (u == W - 1)                             # the reference's key collision
    return rel, ~(rel <= 0.05), at_edge | hidden | border


def test_lidar_gt_agrees_with_oracle_depth(world, tmp_path):
    """depth_gt_sequence files vs the exact oracle z-depth, both cameras, both modes.

    Outliers (> 5 %) are explained: a depth edge within one raw pixel (the GT pixel's lidar point and the image's
    pixel centre are up to ~0.6 raw px apart, and the raw oracle is coarse: 176x47), a lidar point hidden from the
    camera (the Velodyne sits above and behind the camera, so it sees around nearer objects), or a border column
    (key collision). What remains are thin objects (lamp posts narrower than a pixel) and grazing ground: < 0.1 % here.
    """
    root, calib, oracle = world
    frames = [int(f) for f in load_poses(root, TEST_SEQ).frames[::5]]
    derived = tmp_path / "derived"
    for filter_behind in (False, True):
        depth_gt_sequence(root, derived / str(filter_behind), TEST_SEQ, frames=frames, image_size=SMOKE_SIZE,
                          filter_behind_camera=filter_behind, calibration=calib, progress=False)
        for cam in (0, 1):
            rels, outliers, unexplained, shifted = [], 0, 0, []
            for frame in frames:
                depth = np.load(depth_gt_path(derived / str(filter_behind), TEST_SEQ, f"image_0{cam}", frame))
                assert depth.dtype == np.float32 and depth.shape == SMOKE_SIZE
                truth = oracle.depth(TEST_SEQ, cam, frame)
                rel, outlier, explained = _oracle_comparison(depth, truth, calib.raw_size)
                rels.append(rel)
                outliers += int(outlier.sum())
                unexplained += int((outlier & ~explained).sum())
                shifted.append(_oracle_comparison(depth, truth, calib.raw_size, shift=(1, 1))[0])
            rel = np.concatenate(rels)
            n = rel.size
            assert n > 1000
            median = np.nanmedian(rel)
            assert median < 0.02, (filter_behind, cam, median)
            assert outliers < 0.15 * n and unexplained < 0.005 * n, (filter_behind, cam, outliers, unexplained, n)
            # the GT grid is the image grid: one pixel off diagonally is clearly worse
            assert np.nanmedian(np.concatenate(shifted)) > 1.5 * median


# ----------------------------------------------------------------------------------------- files and CLI


def _copy_sequence(smoke_world: Path, dest: Path, seq: str = TEST_SEQ) -> Path:
    """A private raw root holding the calibration, the poses and the scans of one sequence (safe to damage)."""
    src = smoke_world / "kitti360"
    shutil.copytree(src / "calibration", dest / "calibration")
    shutil.copytree(src / "data_poses" / seq, dest / "data_poses" / seq)
    shutil.copytree(src / "data_3d_raw" / seq, dest / "data_3d_raw" / seq)
    return dest


def test_depth_gt_sequence_files_resume_and_errors(smoke_world, tmp_path):
    raw = _copy_sequence(smoke_world, tmp_path / "raw")
    derived = tmp_path / "derived"
    frames = [int(f) for f in load_poses(raw, TEST_SEQ).frames]
    stats = depth_gt_sequence(raw, derived, TEST_SEQ, image_size=SMOKE_SIZE, progress=False)
    assert stats.frames == len(frames) and len(stats.written) == 2 * len(frames)
    for cam in ("image_00", "image_01"):
        names = sorted(p.name for p in (derived / "depth_gt" / TEST_SEQ / cam).iterdir())
        assert names == [f"{f:010d}.npy" for f in frames]
    again = depth_gt_sequence(raw, derived, TEST_SEQ, image_size=SMOKE_SIZE, progress=False)
    assert again.written == [] and again.skipped == 2 * len(frames)

    # a truncated scan: error naming it, nothing written for that frame, no temporary left behind
    frame = frames[3]
    scan = velodyne_path(raw, TEST_SEQ, frame)
    scan.write_bytes(scan.read_bytes()[:-7])
    for cam in ("image_00", "image_01"):
        depth_gt_path(derived, TEST_SEQ, cam, frame).unlink()
    with pytest.raises(ValueError, match=str(scan)):
        depth_gt_sequence(raw, derived, TEST_SEQ, image_size=SMOKE_SIZE, progress=False)
    assert not depth_gt_path(derived, TEST_SEQ, "image_00", frame).exists()
    assert not list((derived / "depth_gt").rglob("*.tmp"))
    scan.unlink()
    with pytest.raises(FileNotFoundError, match=str(scan)):
        depth_gt_sequence(raw, derived, TEST_SEQ, frames=[frame], image_size=SMOKE_SIZE, progress=False)
    with pytest.raises(ValueError, match="poses.txt"):
        depth_gt_sequence(raw, derived, TEST_SEQ, frames=[frames[-1] + 100], image_size=SMOKE_SIZE, progress=False)


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_depth_gt_command_manifest_and_config_change(smoke_world, tmp_path):
    raw = _copy_sequence(smoke_world, tmp_path / "raw")
    derived = tmp_path / "derived"
    frames = [int(f) for f in load_poses(raw, TEST_SEQ).frames]
    config = {"dataset": {"kind": "synthetic"}, "preprocess": {"image_size": list(SMOKE_SIZE)},
              "depth_gt": {"cameras": ["image_00"]}}
    argv = ["depth-gt", "--seq", TEST_SEQ, "--out", str(derived), "--raw-root", str(raw), "--no-progress"]
    assert _run_cli(*argv, "--config-json", json.dumps(config)) == 0
    manifest = json.loads((derived / "manifests" / "depth_gt" / f"{TEST_SEQ}.json").read_text())
    full = validate_config(config)
    stage = {"dataset": full["dataset"], "depth_gt": full["depth_gt"], "image_size": list(SMOKE_SIZE)}
    assert manifest["config_hash"] == config_hash(stage)
    assert manifest["files"] == [f"depth_gt/{TEST_SEQ}/image_00/{f:010d}.npy" for f in frames]
    assert manifest["written"] == len(frames)
    first = np.load(derived / manifest["files"][0])

    # same config: nothing to do; filter_behind_camera changed (same file names): every file is redone
    assert _run_cli(*argv, "--config-json", json.dumps(config)) == 0
    assert json.loads((derived / "manifests" / "depth_gt" / f"{TEST_SEQ}.json").read_text())["written"] == 0
    config["depth_gt"]["filter_behind_camera"] = True
    assert _run_cli(*argv, "--config-json", json.dumps(config)) == 0
    manifest = json.loads((derived / "manifests" / "depth_gt" / f"{TEST_SEQ}.json").read_text())
    assert manifest["written"] == len(frames)
    corrected = np.load(derived / manifest["files"][0])
    scan = read_velodyne(velodyne_path(raw, TEST_SEQ, frames[0]))
    calib = load_calibration(raw)
    np.testing.assert_array_equal(first, lidar_depth_map(scan, calib.T_velo_to_rect[0], calib.K_perspective,
                                                         SMOKE_SIZE))
    np.testing.assert_array_equal(corrected, lidar_depth_map(scan, calib.T_velo_to_rect[0], calib.K_perspective,
                                                             SMOKE_SIZE, True))


def test_config_change_is_seen_after_snakemake_deleted_the_manifest(smoke_world, tmp_path):
    """Snakemake deletes a job's outputs (the done-manifest) before rerunning it; the settings stamp beside it must
    still make the rerun redo files of another image size instead of keeping them."""
    raw = _copy_sequence(smoke_world, tmp_path / "raw")
    derived = tmp_path / "derived"
    argv = ["depth-gt", "--seq", TEST_SEQ, "--out", str(derived), "--raw-root", str(raw), "--no-progress"]
    manifest_path = derived / "manifests" / "depth_gt" / f"{TEST_SEQ}.json"
    config = {"dataset": {"kind": "synthetic"}, "preprocess": {"image_size": list(SMOKE_SIZE)},
              "depth_gt": {"cameras": ["image_00"]}}
    assert _run_cli(*argv, "--config-json", json.dumps(config)) == 0
    smaller = [SMOKE_SIZE[0] // 2, SMOKE_SIZE[1] // 2]
    config["preprocess"]["image_size"] = smaller
    manifest_path.unlink()
    assert _run_cli(*argv, "--config-json", json.dumps(config)) == 0
    manifest = json.loads(manifest_path.read_text())
    assert manifest["written"] == len(manifest["files"]) > 0
    assert {np.load(derived / f).shape for f in manifest["files"]} == {tuple(smaller)}


def test_an_interrupted_recomputation_is_redone_whole(tmp_path):
    """Stamp logic of begin/finish_sequence_job: same settings resume, other settings redo, and a redo that was
    interrupted (the folder mixes old and new files) is redone again even with the new settings."""
    from vipocc.commandline import begin_sequence_job, finish_sequence_job

    manifest = tmp_path / "manifests" / "stage" / "seq.json"
    assert begin_sequence_job(manifest, "a") is False  # nothing recorded: existing files are trusted
    finish_sequence_job(manifest, "a")
    assert begin_sequence_job(manifest, "a") is False
    finish_sequence_job(manifest, "a")
    assert begin_sequence_job(manifest, "b") is True  # settings changed ... and the job is killed here
    assert begin_sequence_job(manifest, "b") is True  # the rerun cannot trust the mix of a and b files
    finish_sequence_job(manifest, "b")
    assert begin_sequence_job(manifest, "b") is False
    assert begin_sequence_job(manifest, "b", force=True) is True
