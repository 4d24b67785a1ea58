"""The generated world end to end, checked against code we did not write: the KITTI-360 devkit (kitti360scripts)
reads our files and its projections agree with our renders; pykitti reads the KITTI Raw export; generation is
bit-identical for a seed whatever the number of workers."""
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pykitti
import pytest

from vipocc.synthetic.oracle import WorldOracle
from vipocc.synthetic.rig import kitti360_rig
from vipocc.synthetic.world import synthesize_world
from world_fixtures import smoke_world_config

SEQ = "2013_05_28_drive_0000_sync"


def frames_of(world: Path, seq: str = SEQ) -> list[int]:
    return json.loads((world / "world.json").read_text())["sequences"][seq]["frames"]


def lidar_in_world(devkit, kitti360: Path, seq: str, frame: int) -> np.ndarray:
    """Velodyne returns of a frame in world coordinates, using only the devkit's calibration and pose parsing."""
    scan = np.fromfile(kitti360 / "data_3d_raw" / seq / "velodyne_points" / "data" / f"{frame:010d}.bin",
                       dtype=np.float32).reshape(-1, 4)
    cam0_to_velo = devkit.loadCalibrationRigid(str(kitti360 / "calibration" / "calib_cam_to_velo.txt"))
    camera = devkit.CameraPerspective(str(kitti360), seq, 0)
    points = np.column_stack([scan[:, :3].astype(np.float64), np.ones(len(scan))])
    rect = camera.R_rect @ np.linalg.inv(cam0_to_velo) @ points.T
    return (camera.cam2world[frame] @ rect)[:3].T


def world_to_camera(camera, frame: int, points: np.ndarray) -> np.ndarray:
    pose = camera.cam2world[frame]
    return (points - pose[:3, 3]) @ pose[:3, :3]


def sample_bilinear(image: np.ndarray, u: np.ndarray, v: np.ndarray):
    """Bilinear value and the max/min ratio of the 4 neighbours (1 on a smooth patch) at sub-pixel (u, v)."""
    u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
    du, dv = u - u0, v - v0
    corners = np.stack([image[v0, u0], image[v0, u0 + 1], image[v0 + 1, u0], image[v0 + 1, u0 + 1]])
    weights = np.stack([(1 - du) * (1 - dv), du * (1 - dv), (1 - du) * dv, du * dv])
    with np.errstate(invalid="ignore"):
        spread = corners.max(0) / corners.min(0)
    return (weights * corners).sum(0), spread


def test_layout_and_formats(smoke_world):
    kitti360 = smoke_world / "kitti360"
    rig = kitti360_rig(0.125)
    for name in ("perspective.txt", "calib_cam_to_pose.txt", "calib_cam_to_velo.txt", "image_02.yaml",
                 "image_03.yaml"):
        assert (kitti360 / "calibration" / name).is_file()
    manifest = json.loads((smoke_world / "world.json").read_text())
    for seq, info in manifest["sequences"].items():
        poses = np.loadtxt(kitti360 / "data_poses" / seq / "poses.txt")
        assert poses.shape == (len(info["frames"]), 13)
        assert poses[:, 0].astype(int).tolist() == info["frames"]
        assert np.any(np.diff(info["frames"]) > 1), "frame numbers must not be contiguous (pose-index semantics)"
        assert (kitti360 / "data_3d_bboxes" / "train" / f"{seq}.xml").is_file()
        frame = info["frames"][-1]
        for cam, folder in ((0, "data_rect"), (1, "data_rect"), (2, "data_rgb"), (3, "data_rgb")):
            image = cv2.imread(str(kitti360 / "data_2d_raw" / seq / f"image_{cam:02d}" / folder / f"{frame:010d}.png"))
            assert image.shape[:2] == rig.image_size(cam)
            assert image.std() > 20, "images have texture"
        scan = np.fromfile(kitti360 / "data_3d_raw" / seq / "velodyne_points" / "data" / f"{frame:010d}.bin",
                           dtype=np.float32)
        assert scan.size % 4 == 0 and scan.size // 4 > 1000
    assert manifest["timing"]["rays_per_second"] > 0 and manifest["provenance"]["git_commit"]


def test_splits_reference_posed_frames_with_room_for_the_views(smoke_world):
    world = smoke_world_config()
    manifest = json.loads((smoke_world / "world.json").read_text())
    for split in ("train", "val", "test"):
        lines = (smoke_world / "splits" / "kitti360" / f"{split}_files.txt").read_text().split("\n")
        entries = [line.split() for line in lines if line]
        assert entries, split
        for seq, frame, side in entries:
            frames = manifest["sequences"][seq]["frames"]
            assert manifest["sequences"][seq]["split"] == split
            assert int(frame) in frames and len(frame) == 10 and side in ("l", "r")
            assert frames.index(int(frame)) + world["split_margin"] <= len(frames)
        assert {side for _, _, side in entries} == ({"l", "r"} if split == "train" else {"l"})


def test_cam0_to_world_is_consistent_with_poses_and_calibration(smoke_world, devkit):
    kitti360 = smoke_world / "kitti360"
    camera = devkit.CameraPerspective(str(kitti360), SEQ, 0)
    cam0_to_world = np.loadtxt(kitti360 / "data_poses" / SEQ / "cam0_to_world.txt")
    assert cam0_to_world[:, 0].astype(int).tolist() == frames_of(smoke_world)
    for row in cam0_to_world:
        np.testing.assert_allclose(row[1:].reshape(4, 4), camera.cam2world[row[0]], atol=1e-9)


@pytest.mark.parametrize("cam", [0, 1, 2, 3])
def test_oracle_depth_reprojects_through_the_devkit_cameras(smoke_world, devkit, cam):
    """Every rendered pixel's exact depth, lifted with our rig and projected by the devkit, lands on that pixel."""
    kitti360, rig = smoke_world / "kitti360", kitti360_rig(0.125)
    frame = frames_of(smoke_world)[7]
    depth = WorldOracle(smoke_world).depth(SEQ, cam, frame).reshape(-1)
    dirs, valid = rig.camera_rays(cam)
    ok = valid & np.isfinite(depth)
    height, width = rig.image_size(cam)
    v, u = np.divmod(np.flatnonzero(ok), width)
    if cam < 2:
        camera = devkit.CameraPerspective(str(kitti360), SEQ, cam)
        points_cam = dirs[ok] * (depth[ok] / dirs[ok, 2])[:, None]
        points_world = points_cam @ camera.cam2world[frame][:3, :3].T + camera.cam2world[frame][:3, 3]
        local = world_to_camera(camera, frame, points_world)
        projected = local @ camera.K[:3, :3].T
        pu, pv, pdepth = projected[:, 0] / projected[:, 2], projected[:, 1] / projected[:, 2], projected[:, 2]
    else:
        camera = devkit.CameraFisheye(str(kitti360), SEQ, cam)
        points_world = (dirs[ok] * depth[ok, None]) @ camera.cam2world[frame][:3, :3].T + camera.cam2world[frame][:3, 3]
        pu, pv, pdepth = camera.cam2image(world_to_camera(camera, frame, points_world).T)
        front = pdepth > 0  # the devkit's signed range is negative behind the fisheye's image plane
        pdepth = np.where(front, pdepth, -pdepth)
    assert ok.sum() > 0.5 * ok.size
    np.testing.assert_allclose(pu, u, atol=1e-5)
    np.testing.assert_allclose(pv, v, atol=1e-5)
    np.testing.assert_allclose(pdepth, depth[ok], rtol=1e-5)


@pytest.mark.parametrize("cam", [0, 2])
def test_lidar_returns_land_on_pixels_with_the_same_exact_depth(smoke_world, devkit, cam):
    kitti360 = smoke_world / "kitti360"
    oracle = WorldOracle(smoke_world)
    errors = []
    for frame in frames_of(smoke_world)[5:20:5]:
        world = lidar_in_world(devkit, kitti360, SEQ, frame)
        image = oracle.depth(SEQ, cam, frame).astype(np.float64)
        if cam == 0:
            camera = devkit.CameraPerspective(str(kitti360), SEQ, 0)
            local = world_to_camera(camera, frame, world)
            local = local[local[:, 2] > 0.5]
            projected = local @ camera.K[:3, :3].T
            u, v, depth = projected[:, 0] / projected[:, 2], projected[:, 1] / projected[:, 2], local[:, 2]
        else:
            camera = devkit.CameraFisheye(str(kitti360), SEQ, cam)
            local = world_to_camera(camera, frame, world)
            # The MEI model is one-to-one only where unit z > -1/xi: keep returns inside the lens domain.
            unit_z = local[:, 2] / np.linalg.norm(local, axis=1)
            local = local[unit_z > -1.0 / camera.fi["mirror_parameters"]["xi"] + 0.01]
            u, v, depth = camera.cam2image(local.T)
            depth = np.abs(depth)
        height, width = image.shape
        inside = (u >= 0) & (u < width - 1) & (v >= 0) & (v < height - 1)
        value, spread = sample_bilinear(image, u[inside], v[inside])
        smooth = np.isfinite(value) & (spread < 1.01)  # skip depth edges: camera and lidar see them differently
        errors.append((value[smooth] - depth[inside][smooth]) / depth[inside][smooth])
    errors = np.concatenate(errors)
    assert len(errors) > 300
    # The lidar sees from another viewpoint, so the camera may see something in front of a return (occlusion,
    # negative error), but never behind it: that would mean the renders and the scans disagree on the geometry.
    assert errors.max() < 0.01
    assert np.median(np.abs(errors)) < 1e-4
    assert (np.abs(errors) < 0.01).mean() > 0.85


def test_bbox_corners_bound_the_rendered_cars(smoke_world, devkit):
    kitti360 = smoke_world / "kitti360"
    oracle = WorldOracle(smoke_world)
    annotation = devkit.Annotation3D(str(kitti360 / "data_3d_bboxes"), SEQ)
    boxes = {obj.instanceId: obj for objects in annotation.objects.values() for obj in objects.values()}
    assert boxes and all(devkit.id2label[obj.semanticId].name == "car" for obj in boxes.values())
    camera = devkit.CameraPerspective(str(kitti360), SEQ, 0)
    checked = 0
    for frame in frames_of(smoke_world)[::6]:
        instance, depth = oracle.instance(SEQ, 0, frame), oracle.depth(SEQ, 0, frame)
        for inst in np.unique(instance[instance > 0]):
            assert inst in boxes, f"rendered car {inst} has no box in the XML"
            corners = world_to_camera(camera, frame, boxes[inst].vertices)
            rows, cols = np.nonzero(instance == inst)
            if (corners[:, 2] < 0.5).any() or len(rows) < 10:
                continue
            projected = corners @ camera.K[:3, :3].T
            cu, cv = projected[:, 0] / projected[:, 2], projected[:, 1] / projected[:, 2]
            assert cols.min() >= cu.min() - 1 and cols.max() <= cu.max() + 1
            assert rows.min() >= cv.min() - 1 and rows.max() <= cv.max() + 1
            car_depth = depth[rows, cols]
            assert car_depth.min() >= corners[:, 2].min() * 0.99 and car_depth.max() <= corners[:, 2].max() * 1.01
            checked += 1
    assert checked >= 5


def test_kitti_raw_export_holds_the_same_data(smoke_world):
    manifest = json.loads((smoke_world / "world.json").read_text())
    drive = manifest["sequences"][SEQ]["kitti_raw_drive"]
    date = manifest["world"]["kitti_raw_date"]
    raw = pykitti.raw(str(smoke_world / "kitti_raw"), date, drive.split("_drive_")[1].split("_")[0])
    index = 4
    frame = frames_of(smoke_world)[index]
    ours = cv2.imread(str(smoke_world / "kitti360" / "data_2d_raw" / SEQ / "image_00" / "data_rect" /
                          f"{frame:010d}.png"))[:, :, ::-1]
    np.testing.assert_array_equal(np.asarray(raw.get_cam2(index)), ours)
    scan = np.fromfile(smoke_world / "kitti360" / "data_3d_raw" / SEQ / "velodyne_points" / "data" /
                       f"{frame:010d}.bin", dtype=np.float32).reshape(-1, 4)
    np.testing.assert_array_equal(raw.get_velo(index), scan)
    poses = np.loadtxt(smoke_world / "kitti_raw" / "poses" / date / f"{drive}.txt")
    assert poses.shape == (len(frames_of(smoke_world)), 12)


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "world.json"}


def test_generation_is_bit_identical_for_a_seed_whatever_the_workers(smoke_world, tmp_path):
    again = tmp_path / "again"
    synthesize_world(smoke_world_config(), again, workers=1)
    assert tree_digest(again) == tree_digest(smoke_world)
    other = tmp_path / "other"
    synthesize_world(smoke_world_config(seed=1, frames_per_sequence=24), other, workers=2)
    differing = tree_digest(other)
    assert differing["kitti360/data_poses/2013_05_28_drive_0000_sync/poses.txt"] != \
        tree_digest(smoke_world)["kitti360/data_poses/2013_05_28_drive_0000_sync/poses.txt"]


def test_failed_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    import vipocc.synthetic.world as world_module

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(world_module.kitti360_export, "write_bboxes_xml", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        synthesize_world(smoke_world_config(), tmp_path / "w", workers=1)
    assert list((tmp_path / "w").iterdir()) == []


def test_existing_world_is_not_overwritten_silently(smoke_world):
    with pytest.raises(FileExistsError, match="--overwrite"):
        synthesize_world(smoke_world_config(), smoke_world, workers=1)



def test_render_workers_die_on_sigterm_even_under_the_cli_handler(smoke_world):
    """The CLI maps SIGTERM to SystemExit; forked render workers inherited it, and Pool.terminate() then hung in
    Python exit code. The worker initialiser restores the default action, so a terminated worker just dies."""
    import signal

    from vipocc.synthetic.world import _init_worker
    from world_fixtures import smoke_world_config

    def cli_handler(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, cli_handler)
    try:
        scene = next((smoke_world / "oracle").glob("*/scene.npz"))
        _init_worker(str(scene), smoke_world_config(), str(smoke_world))
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
