"""Per-sequence priors jobs (vipocc.priors.stage) on the smoke world, with the simulated backends.

Truths: hand-written reference paths; OpenCV's INTER_NEAREST_EXACT resize (pixel-centre nearest sampling) for the
perspective resampling of the oracle; exact ray casting of the scene (embree) along each view pixel's ray for the
depth and labels of perspective and virtual fisheye views; the oracle's instance ids for the detections; scipy's
pairwise distances for the non-overlap of anchors; file mtimes for resuming; hashlib for weight hashes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.distance import pdist

from vipocc.data.calibration import load_calibration
from vipocc.data.poses import load_poses
from vipocc.data.preprocess import preprocess_sequence
from vipocc.priors import stage
from vipocc.priors.stage import (OracleViews, SimulatedDepthBackend, SimulatedInstanceBackend, SnogSettings, View,
                                 depth_prior_path, depth_prior_sequence, detections_path, frame_rng,
                                 instance_mask_path, instance_prior_sequence, resolve_backend, snog_anchor_path,
                                 snog_anchor_sequence)
from vipocc.synthetic.oracle import WorldOracle
from vipocc.synthetic.raycast import Raycaster

SEQ = "2013_05_28_drive_0003_sync"
SIZE = (64, 192)
FOLDERS = ("data_64x192", "data_64x192_0x-15")  # by hand: what the reference would name them
CAMERAS = ("image_00", "image_01")
SKY = 23


@pytest.fixture(scope="module")
def prepared(smoke_world, tmp_path_factory):
    """SEQ preprocessed at SIZE (read-only for the tests); (raw_root, derived_root, frames, oracle views)."""
    raw = smoke_world / "kitti360"
    derived = tmp_path_factory.mktemp("derived")
    preprocess_sequence(raw, derived, SEQ, image_size=SIZE, progress=False)
    frames = [int(f) for f in load_poses(raw, SEQ).frames]
    views = OracleViews(smoke_world, SIZE, load_calibration(raw, (0, -15)))
    return raw, derived, frames, views


@pytest.fixture(scope="module")
def depth_run(prepared, tmp_path_factory):
    """Simulated depth prior of every frame of both perspective cameras in a copy of the derived root."""
    _, derived, frames, views = prepared
    root = _linked_copy(derived, tmp_path_factory.mktemp("depth_run"))
    stats = depth_prior_sequence(root, SEQ, frames, CAMERAS, FOLDERS, SIZE, SimulatedDepthBackend(views, seed=3),
                                 progress=False)
    return root, stats


def _linked_copy(derived: Path, target: Path) -> Path:
    """A new derived root whose data_2d_raw/ is the prepared one (so jobs can write their own outputs)."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "data_2d_raw").symlink_to(derived / "data_2d_raw", target_is_directory=True)
    return target


def _views(frames, cameras=CAMERAS):
    return [View(SEQ, cam, FOLDERS[cam >= "image_02"], f) for cam in cameras for f in frames]


def _abs_rel(gt: np.ndarray, pred: np.ndarray, median: bool) -> float:
    valid = gt > 0
    pred = pred[valid] * (np.median(gt[valid]) / np.median(pred[valid]) if median else 1.0)
    return float(np.mean(np.abs(pred - gt[valid]) / gt[valid]))


# ---------------------------------------------------------------------------------------------- naming


@pytest.mark.parametrize("requested, kind, prior, expected", [
    ("auto", "synthetic", "depth", "simulated"),
    ("auto", "kitti360", "depth", "depth_anything"),
    ("auto", "kitti360", "instances", "grounded_sam"),
    ("depth_anything", "synthetic", "depth", "depth_anything"),
    ("grounded_sam", "synthetic", "instances", "grounded_sam"),
])
def test_resolve_backend(requested, kind, prior, expected):
    assert resolve_backend(requested, kind, prior) == expected


@pytest.mark.parametrize("requested, kind, prior, message", [
    ("simulated", "kitti360", "depth", "oracle"),
    ("grounded_sam", "synthetic", "depth", "priors.depth.backend"),
    ("auto", "synthetic", "semantics", "prior"),
])
def test_resolve_backend_refuses(requested, kind, prior, message):
    with pytest.raises(ValueError, match=message):
        resolve_backend(requested, kind, prior)


def test_paths_follow_the_reference_layout(tmp_path):
    view = View(SEQ, "image_01", "data_192x640", 42)
    base = tmp_path / "samples" / SEQ / "image_01" / "data_192x640"
    assert depth_prior_path(tmp_path, view) == tmp_path / "depth" / SEQ / "image_01" / "data_192x640" / "0000000042.npy"
    assert snog_anchor_path(tmp_path, view) == base / "0000000042.npy"
    assert detections_path(tmp_path, view) == base / "0000000042.json"
    assert instance_mask_path(tmp_path, view) == base / "0000000042_mask.npy"
    assert view.image_path(tmp_path) == tmp_path / "data_2d_raw" / SEQ / "image_01" / "data_192x640" / "0000000042.png"
    assert stage.view_folder("image_03", ("a", "b")) == "b" and stage.view_folder("image_00", ("a", "b")) == "a"


def test_frame_rng_depends_only_on_its_key():
    a, b = View(SEQ, "image_00", "f", 5), View(SEQ, "image_00", "f", 6)
    first = frame_rng(7, "depth", a).random(4)
    frame_rng(7, "depth", b).random(100)  # drawing elsewhere does not matter
    assert np.array_equal(frame_rng(7, "depth", a).random(4), first)
    others = [frame_rng(7, "depth", b), frame_rng(8, "depth", a), frame_rng(7, "snog", a),
              frame_rng(7, "depth", View(SEQ, "image_01", "f", 5))]
    assert all(not np.array_equal(rng.random(4), first) for rng in others)
    with pytest.raises(ValueError, match="seed"):
        frame_rng(-1, "depth", a)


def test_mask_dtype_and_weights_hash(tmp_path):
    assert stage.mask_dtype(255) == np.uint8 and stage.mask_dtype(256) == np.uint16
    with pytest.raises(ValueError, match="uint16"):
        stage.mask_dtype(70000)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "model" / "config.json").write_text("{}")
    assert stage.weights_sha256(tmp_path / "model") == {"model.safetensors": hashlib.sha256(b"weights").hexdigest()}
    assert stage.weights_sha256(tmp_path / "model" / "model.safetensors") == {
        "model.safetensors": hashlib.sha256(b"weights").hexdigest()}
    with pytest.raises(FileNotFoundError, match="nothing"):
        stage.weights_sha256(tmp_path / "nothing")


# ------------------------------------------------------------------------------------------ oracle views


@pytest.mark.parametrize("size", [(64, 192), (96, 320), (40, 88)])
def test_perspective_labels_are_pixel_centre_nearest(prepared, size):
    """OpenCV's INTER_NEAREST_EXACT samples src = floor((dst + 0.5) * scale): the pixel-centre nearest rule."""
    _, _, frames, full = prepared
    views = OracleViews(full.oracle.root, size)
    for cam in (0, 1):
        view = View(SEQ, f"image_{cam:02d}", "x", frames[3])
        for kind in ("instance", "semantic"):
            raw = getattr(full.oracle, kind)(SEQ, cam, frames[3])
            expected = cv2.resize(raw, size[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
            assert np.array_equal(getattr(views, kind)(view), expected), (cam, kind)


def _exact_view(world: Path, raw: Path, cam: int, frame: int):
    """Ray-cast z-depth (inf = sky) and semantic id of every pixel of a preprocessed view, from the scene itself.

    Pixel rays: perspective pixel u sits at x = 2 (u + 0.5) / W - 1 (the normalised K's pixel-edge convention);
    virtual fisheye pixel u at x = linspace(-1, 1, W)[u] (the preprocessing grid's); ray = K^-1 [x, y, 1].
    """
    calibration = load_calibration(raw, (0, -15))
    poses = load_poses(raw, SEQ)
    cam_to_world = poses.imu_to_world[poses.index_of(frame)] @ calibration.view_to_pose(cam)
    height, width = SIZE
    if cam < 2:
        x, y = 2 * (np.arange(width) + 0.5) / width - 1, 2 * (np.arange(height) + 0.5) / height - 1
    else:
        x, y = np.linspace(-1, 1, width), np.linspace(-1, 1, height)
    xx, yy = np.meshgrid(x, y)
    rays = np.stack([xx, yy, np.ones_like(xx)], -1).reshape(-1, 3) @ np.linalg.inv(calibration.K_perspective).T
    unit = rays / np.linalg.norm(rays, axis=1, keepdims=True)
    dirs = unit @ cam_to_world[:3, :3].T
    scene = WorldOracle(world).scene(SEQ)
    hits = Raycaster(scene).cast(cam_to_world[:3, 3], dirs)
    z = np.where(hits.hit, hits.distance * unit[:, 2], np.inf).reshape(height, width)
    inside = np.where(hits.hit[:, None], hits.points + 1e-3 * dirs, 0.0)
    semantic = np.where(hits.hit, scene.semantic_at(inside), SKY).reshape(height, width)
    return z, semantic


@pytest.mark.parametrize("cam", [0, 1, 2, 3])
def test_view_depth_and_labels_match_ray_casting(prepared, cam):
    raw, _, frames, views = prepared
    frame = frames[10]
    exact_z, exact_semantic = _exact_view(views.oracle.root, raw, cam, frame)
    view = View(SEQ, f"image_{cam:02d}", FOLDERS[cam >= 2], frame)
    depth, semantic = views.depth(view), views.semantic(view)
    assert depth.shape == SIZE and depth.dtype == np.float32
    solid = np.isfinite(depth) & np.isfinite(exact_z)
    relative = np.abs(depth[solid] - exact_z[solid]) / exact_z[solid]
    # nearest sampling moves a pixel by < 1 raw pixel: only depth edges and grazing ground differ much
    assert np.median(relative) < 0.02 and np.mean(relative < 0.1) > 0.9, np.median(relative)
    lens = ~np.isnan(depth)
    assert np.mean(semantic[lens] == exact_semantic[lens]) > 0.9
    assert np.array_equal(np.isinf(depth[lens]), semantic[lens] == SKY)  # sky: inf depth and the sky label
    if cam < 2:
        assert lens.all()


# ---------------------------------------------------------------------------------------------- depth job


def test_simulated_depth_files_and_error_levels(prepared, depth_run):
    _, _, frames, views = prepared
    root, stats = depth_run
    assert (stats.images, stats.written, stats.skipped) == (2 * len(frames), 2 * len(frames), 0)
    unscaled, scaled = [], []
    for view in _views(frames):
        prior = np.load(depth_prior_path(root, view))
        assert prior.shape == SIZE and prior.dtype == np.float32
        assert prior.min() >= 0.5 and prior.max() <= 80.0
        raw = views.oracle.depth(SEQ, view.cam, view.frame)
        exact = cv2.resize(raw, SIZE[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
        gt = np.where(np.isfinite(exact) & (exact <= 80), exact, 0.0)
        unscaled.append(_abs_rel(gt, prior, median=False))
        scaled.append(_abs_rel(gt, prior, median=True))
    # the real prior: 0.586 unscaled, 0.142 median-scaled (authors, KITTI-360)
    assert 0.25 < np.mean(unscaled) < 0.8, np.mean(unscaled)
    assert 0.06 < np.mean(scaled) < 0.25, np.mean(scaled)
    assert np.mean(np.array(scaled) < np.array(unscaled)) > 0.9
    assert sorted(stats.outputs) == sorted(depth_prior_path(root, v) for v in _views(frames))


def test_depth_job_is_order_and_subset_independent(prepared, depth_run, tmp_path):
    _, derived, frames, views = prepared
    root, _ = depth_run
    subset = [frames[7], frames[2], frames[-1]]
    other = _linked_copy(derived, tmp_path)
    depth_prior_sequence(other, SEQ, subset, ("image_01", "image_00"), FOLDERS, SIZE,
                         SimulatedDepthBackend(views, seed=3), progress=False)
    for view in _views(subset):
        assert np.array_equal(np.load(depth_prior_path(other, view)), np.load(depth_prior_path(root, view)))
    depth_prior_sequence(other, SEQ, subset[:1], ("image_00",), FOLDERS, SIZE, SimulatedDepthBackend(views, seed=4),
                         overwrite=True, progress=False)
    view = _views(subset[:1], ("image_00",))[0]
    assert not np.array_equal(np.load(depth_prior_path(other, view)), np.load(depth_prior_path(root, view)))


def test_depth_job_resumes(prepared, tmp_path):
    _, derived, frames, views = prepared
    root = tmp_path / "derived"
    shutil.copytree(derived / "data_2d_raw" / SEQ / "image_00", root / "data_2d_raw" / SEQ / "image_00")
    backend = SimulatedDepthBackend(views)
    run = lambda **kw: depth_prior_sequence(root, SEQ, frames[:5], ("image_00",), FOLDERS, SIZE, backend,  # noqa: E731
                                            progress=False, **kw)
    assert run().written == 5
    again = run()
    assert (again.written, again.skipped) == (0, 5) and again.images_per_second is None
    image = View(SEQ, "image_00", FOLDERS[0], frames[1]).image_path(root)
    later = depth_prior_path(root, View(SEQ, "image_00", FOLDERS[0], frames[1])).stat().st_mtime + 5
    os.utime(image, (later, later))  # a re-made image is newer than its prior: only that prior is redone
    assert run().written == 1
    assert run(overwrite=True).written == 5


def test_missing_and_wrongly_sized_images_are_named(prepared, tmp_path):
    _, derived, frames, views = prepared
    backend = SimulatedDepthBackend(views)
    with pytest.raises(FileNotFoundError, match=r"data_64x192/\d{10}\.png"):
        depth_prior_sequence(tmp_path, SEQ, frames[:1], ("image_00",), FOLDERS, SIZE, backend, progress=False)
    root = _linked_copy(derived, tmp_path / "other")
    with pytest.raises(ValueError, match=r"expected 200x64"):  # a backend that reads images checks their size
        stage._read_batch(root, _views(frames[:1], ("image_00",)), (64, 200))
    assert not (root / "depth").exists()


# ------------------------------------------------------------------------------------------ instances


@pytest.fixture(scope="module")
def instance_run(prepared, tmp_path_factory):
    _, derived, frames, views = prepared
    root = _linked_copy(derived, tmp_path_factory.mktemp("instance_run"))
    backend = SimulatedInstanceBackend(views, seed=1, drop_prob=0.0, box_jitter_px=0.0, min_car_pixels=5)
    stats = instance_prior_sequence(root, SEQ, frames, CAMERAS, FOLDERS, SIZE, backend, progress=False)
    return root, stats


def test_simulated_instances_follow_the_oracle(prepared, instance_run):
    _, _, frames, views = prepared
    root, stats = instance_run
    assert stats.written == 2 * len(frames) and stats.extra["detections_per_label"]["car"] > 0
    for view in _views(frames):
        detections = json.loads(detections_path(root, view).read_text())
        mask = np.load(instance_mask_path(root, view))
        assert mask.shape == SIZE and mask.dtype == np.uint8 and mask.max() <= len(detections)
        oracle_ids = views.instance(view)
        for number, item in enumerate(detections, start=1):
            assert set(item) == {"label", "logit", "box", "pixel_num"}
            pixels = mask == number
            if item["label"] != "car":
                continue
            ids = np.unique(oracle_ids[pixels])
            assert len(ids) == 1 and ids[0] > 0  # one detection per oracle car, on its pixels only
            rows, cols = np.nonzero(oracle_ids == ids[0])
            assert item["box"] == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]  # no jitter: exact
            assert item["pixel_num"] == len(rows) >= 5
        detected = {np.unique(oracle_ids[mask == n])[0] for n, d in enumerate(detections, 1) if d["label"] == "car"}
        ids, counts = np.unique(oracle_ids[oracle_ids > 0], return_counts=True)
        assert detected == set(ids[counts >= 5].tolist())  # drop_prob 0: every car of >= 5 px is found


def test_snog_anchors_for_every_view(prepared, instance_run, tmp_path):
    _, _, frames, _ = prepared
    root = tmp_path / "anchors"
    shutil.copytree(instance_run[0] / "samples", root / "samples")
    empty = View(SEQ, "image_01", FOLDERS[0], frames[4])
    detections_path(root, empty).write_text("[]\n")  # a frame where nothing was detected
    settings = SnogSettings(patch_size=8, num_patches=16, n_sets=5, seed=2)
    stats = snog_anchor_sequence(root, SEQ, frames, CAMERAS, FOLDERS, SIZE, settings, progress=False)
    assert stats.written == 2 * len(frames) and stats.extra["uniform_only_images"] >= 1
    for view in _views(frames):
        anchors = np.load(snog_anchor_path(root, view))
        assert anchors.shape == (5, 16, 2) and anchors.dtype == np.uint16
        x, y = anchors[..., 0].astype(int), anchors[..., 1].astype(int)
        assert (x > 4).all() and (x < SIZE[1] - 4).all() and (y > 4).all() and (y < SIZE[0] - 4).all()
        for draw in anchors.astype(float):  # Chebyshev distance >= patch size: 8x8 patches never overlap
            assert pdist(draw, "chebyshev").min() >= 8
    # order / subset independence, and the resume skip keyed on the detections file
    again = snog_anchor_sequence(root, SEQ, frames, CAMERAS, FOLDERS, SIZE, settings, progress=False)
    assert again.written == 0 and again.skipped == 2 * len(frames)
    view = _views(frames[3:4])[0]
    first = np.load(snog_anchor_path(root, view))
    snog_anchor_path(root, view).unlink()
    snog_anchor_sequence(root, SEQ, frames[3:4], CAMERAS[:1], FOLDERS, SIZE, settings, progress=False)
    assert np.array_equal(np.load(snog_anchor_path(root, view)), first)


def test_snog_needs_the_detections(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"0000000001\.json"):
        snog_anchor_sequence(tmp_path, SEQ, [1], CAMERAS[:1], FOLDERS, SIZE, progress=False)
    path = detections_path(tmp_path, View(SEQ, "image_00", FOLDERS[0], 1))
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"0000000001\.json: not valid JSON"):
        snog_anchor_sequence(tmp_path, SEQ, [1], CAMERAS[:1], FOLDERS, SIZE, progress=False)


def test_fisheye_views_get_depth_in_their_own_folder(prepared, depth_run):
    _, _, frames, views = prepared
    root, _ = depth_run
    stats = depth_prior_sequence(root, SEQ, frames[:2], ("image_02", "image_03"), FOLDERS, SIZE,
                                 SimulatedDepthBackend(views), progress=False)
    assert stats.written == 4
    for view in _views(frames[:2], ("image_02", "image_03")):
        path = depth_prior_path(root, view)
        assert path.parent.name == "data_64x192_0x-15"
        prior = np.load(path)
        assert prior.shape == SIZE and np.isfinite(prior).all() and prior.min() >= 0.5 and prior.max() <= 80


def test_reduced_precision_is_ignored_on_cpu(tmp_path, caplog):
    backend = stage.DepthAnythingBackend(tmp_path, device="cpu", dtype="bf16")
    assert backend.dtype is None and "ignored" in caplog.text
    with pytest.raises(FileNotFoundError, match="priors.instances.dino_path"):
        stage.GroundedSamBackend(tmp_path / "missing", tmp_path, device="cpu")


def test_figure_with_lidar_like_ground_truth(prepared, depth_run, tmp_path):
    from vipocc.data.depth_gt import depth_gt_path
    from vipocc.priors.figures import depth_prior_figure, pick_frames

    _, _, frames, views = prepared
    root, _ = depth_run
    assert pick_frames([1, 2, 3, 4, 5, 6, 7], 3) == [1, 4, 7] and pick_frames([9], 3) == [9]
    shown = pick_frames(frames, 2)
    with pytest.raises(FileNotFoundError, match="depth_gt"):
        depth_prior_figure(root, SEQ, frames, FOLDERS, tmp_path / "figure.png", rows=2)
    for frame in shown:  # sparse "scan": every 7th pixel of the oracle depth
        dense = views.depth(View(SEQ, "image_00", FOLDERS[0], frame))
        sparse = np.zeros(SIZE, np.float32)
        sparse.flat[::7] = np.where(np.isfinite(dense.flat[::7]), dense.flat[::7], 0)
        path = depth_gt_path(root, SEQ, "image_00", frame)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, sparse)
    out = depth_prior_figure(root, SEQ, frames, FOLDERS, tmp_path / "figures" / "figure.png", rows=2)
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 2 * SIZE[0]
    with pytest.raises(FileNotFoundError, match="image_01"):
        depth_prior_figure(tmp_path, SEQ, frames, FOLDERS, tmp_path / "none.png", camera="image_01")
