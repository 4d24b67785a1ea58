"""KITTI Raw loader on the smoke world's KITTI Raw export, checked against independent truth: the rig that generated
the world, KITTI-360's poses.txt of the same frames, pykitti's image decoding, the oracle depth, and a literal
point-by-point implementation of monodepth2's depth map."""
import shutil

import cv2
import numpy as np
import pykitti
import pytest

from vipocc.data import kitti_raw as kr
from vipocc.data.eigen_splits import RawSplitEntry, check_no_leak, read_raw_split
from vipocc.geometry.transforms import invert_rigid
from vipocc.synthetic.oracle import WorldOracle
from vipocc.synthetic.rig import kitti360_rig

DATE = "2011_09_26"


# ------------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def world(smoke_world):
    oracle = WorldOracle(smoke_world)
    rig = kitti360_rig(oracle.manifest["world"]["resolution_scale"])
    return smoke_world, oracle, rig


@pytest.fixture(scope="module")
def raw_root(world):
    return world[0] / "kitti_raw"


@pytest.fixture(scope="module")
def calibration(raw_root):
    return kr.load_raw_calibration(raw_root, DATE)


def _drive_of(oracle, seq):
    return f"{DATE}/{oracle.manifest['sequences'][seq]['kitti_raw_drive']}"


def _kitti360_poses(world_root, seq):
    """poses.txt rows -> (frame numbers [N], imu_to_world [N,4,4]) read directly from the text file."""
    values = np.loadtxt(world_root / "kitti360" / "data_poses" / seq / "poses.txt")
    poses = np.tile(np.eye(4), (len(values), 1, 1))
    poses[:, :3, :] = values[:, 1:].reshape(-1, 3, 4)
    return values[:, 0].astype(int), poses


@pytest.fixture
def raw_copy(raw_root, tmp_path):
    """A writable copy of the export (a few hundred small files) for the error tests."""
    return shutil.copytree(raw_root, tmp_path / "kitti_raw")


# --------------------------------------------------------------------------------------------------- calibration
def test_calibration_equals_the_rig(world, calibration):
    _, _, rig = world
    assert calibration.raw_size == rig.image_size(0)
    np.testing.assert_allclose(calibration.K, rig.K_rect[0], rtol=1e-12)
    np.testing.assert_allclose(calibration.P_rect[3], rig.P_rect_01, rtol=1e-12, atol=1e-12)
    assert calibration.baseline == pytest.approx(rig.baseline, abs=1e-9)
    # image_02 is rectified cam 0 itself, image_03 sits one baseline to its right
    np.testing.assert_allclose(calibration.cam_to_cam0(2), np.eye(4), atol=1e-12)
    np.testing.assert_allclose(calibration.cam_to_cam0(3)[:3, 3], [rig.baseline, 0, 0], atol=1e-9)
    T_velo_to_rect0 = invert_rigid(rig.T_rect_to_pose[0]) @ rig.T_velo_to_pose
    T_velo_to_rect1 = invert_rigid(rig.T_rect_to_pose[1]) @ rig.T_velo_to_pose
    np.testing.assert_allclose(calibration.T_velo_to_cam[2], T_velo_to_rect0, atol=1e-9)
    np.testing.assert_allclose(calibration.velo_to_image(2), rig.K_rect[0] @ T_velo_to_rect0[:3], atol=1e-8)
    np.testing.assert_allclose(calibration.velo_to_image(3), rig.K_rect[1] @ T_velo_to_rect1[:3], atol=1e-8)


def test_normalized_intrinsics_by_hand():
    K = np.array([[720.0, 0, 610.0], [0, 715.0, 180.0], [0, 0, 1]])
    K_norm, crop = kr.normalized_intrinsics(K, (375, 1242), (192, 640))
    assert crop is None
    np.testing.assert_allclose(K_norm, [[1440 / 1242, 0, 1220 / 1242 - 1], [0, 1430 / 375, 360 / 375 - 1], [0, 0, 1]],
                               rtol=1e-6)
    # keep aspect: 375/1242 > 192/640 = 0.3 -> crop height round(1242 * 0.3) = 373 rows from row (375 - 373) // 2 = 1
    K_norm, crop = kr.normalized_intrinsics(K, (375, 1242), (192, 640), keep_aspect_ratio=True)
    assert crop == (1, 0, 373, 1242)
    np.testing.assert_allclose(K_norm[1], [0, 1430 / 373, 2 * 179 / 373 - 1], rtol=1e-6)
    # wider target: crop columns, width round(375 / 0.5) = 750 from column (1242 - 750) // 2 = 246
    K_norm, crop = kr.normalized_intrinsics(K, (375, 1242), (100, 200), keep_aspect_ratio=True)
    assert crop == (0, 246, 375, 750)
    np.testing.assert_allclose(K_norm[0], [1440 / 750, 0, 2 * (610 - 246) / 750 - 1], rtol=1e-6)


# --------------------------------------------------------------------------------------------------------- sample
def test_sample_shapes_and_slot_order(world, raw_root):
    world_root, _, rig = world
    entries = read_raw_split(world_root / "splits" / "kitti_raw" / "train_files.txt")
    ds = kr.KittiRawDataset(raw_root, raw_root / "poses", entries, image_size=(32, 96), return_gt_depth=True)
    assert len(ds) == len(entries)
    right = next(i for i, e in enumerate(entries) if e.side == "r")
    sample = ds[right]
    assert len(sample["imgs"]) == len(sample["projs"]) == len(sample["poses"]) == 4
    assert all(tuple(img.shape) == (3, 32, 96) for img in sample["imgs"])
    assert all(float(img.min()) >= -1.0 and float(img.max()) <= 1.0 for img in sample["imgs"])
    assert tuple(sample["depths"][0].shape) == (1, *rig.image_size(0))  # GT stays at the original resolution
    t = entries[right].frame
    assert sample["ts"].tolist() == [t, t + 1, t, t + 1] and sample["is_right"] and sample["img_id"] == t
    # an 'r' key: slots 0-1 are image_03 (one baseline right of image_02, slots 2-3)
    offset = invert_rigid(sample["poses"][2].double().numpy()) @ sample["poses"][0].double().numpy()
    np.testing.assert_allclose(offset[:3, 3], [rig.baseline, 0, 0], atol=1e-4)


def test_images_equal_pykitti_decoding(world, raw_root):
    """At the raw size the resize is the identity, so slot images must equal pykitti's decoded images exactly."""
    world_root, oracle, rig = world
    drive = _drive_of(oracle, oracle.sequences[2])
    entry = RawSplitEntry(drive, 3, "r")
    ds = kr.KittiRawDataset(raw_root, raw_root / "poses", [entry], image_size=rig.image_size(0))
    sample = ds[0]
    data = pykitti.raw(str(raw_root), DATE, drive.split("_drive_")[1][:4])
    for slot, (get, frame) in enumerate([(data.get_cam3, 3), (data.get_cam3, 4), (data.get_cam2, 3),
                                         (data.get_cam2, 4)]):
        expected = np.asarray(get(frame)).astype(np.float32).transpose(2, 0, 1) / 255 * 2 - 1
        np.testing.assert_allclose(sample["imgs"][slot].numpy(), expected, atol=1e-6)
    assert not np.allclose(sample["imgs"][0].numpy(), sample["imgs"][2].numpy())


def test_keep_aspect_ratio_crops_the_centre(world, raw_root):
    _, oracle, rig = world
    H, W = rig.image_size(0)  # 47 x 176: a 47 x 141 target keeps the height and crops (176 - 141) // 2 columns
    drive = _drive_of(oracle, oracle.sequences[0])
    ds = kr.KittiRawDataset(raw_root, raw_root / "poses", [(drive, 2, "l")], image_size=(47, 141), frame_count=1,
                            return_stereo=False, keep_aspect_ratio=True)
    sample = ds[0]
    left = (W - 141) // 2
    image = kr.read_rgb(kr.frame_image_path(raw_root, drive, 2, 2)).astype(np.float32) / 255 * 2 - 1
    np.testing.assert_allclose(sample["imgs"][0].numpy(), image[:, left:left + 141].transpose(2, 0, 1), atol=1e-6)
    # the same 3D point lands at the same normalised position in the crop
    K = rig.K_rect[0]
    point = np.array([1.3, -0.4, 9.0])
    u_crop = (K[0, 0] * point[0] / point[2] + K[0, 2] - left) / 141 * 2 - 1
    K_norm = sample["projs"][0].double().numpy()
    assert (K_norm @ point)[0] / point[2] == pytest.approx(u_crop, abs=1e-6)


def test_window_is_clamped_and_eval_samples(world, raw_root):
    _, oracle, _ = world
    drive = _drive_of(oracle, oracle.sequences[1])
    n = len(oracle.frames(oracle.sequences[1]))
    ds = kr.KittiRawDataset(raw_root, raw_root / "poses", [(drive, n - 1, "l"), (drive, 4, "l")], image_size=(16, 48))
    assert ds[0]["ts"].tolist() == [n - 1, n - 1, n - 1, n - 1]  # t+1 clamped to the last frame, as BTS
    eval_ds = kr.KittiRawDataset(raw_root, raw_root / "poses", [(drive, 4, "l")], image_size=(16, 48),
                                 frame_count=1, return_stereo=False)
    assert len(eval_ds[0]["imgs"]) == 1 and eval_ds[0]["ts"].tolist() == [4]
    wide = kr.KittiRawDataset(raw_root, raw_root / "poses", [(drive, 4, "l")], image_size=(16, 48), frame_count=3,
                              dilation=2)
    assert wide.frame_ids(wide.entries[0]) == [4, 2, 6]  # left_offset = ((3 - 1) // 2) * 2 = 2, key frame first


# ---------------------------------------------------------------------------------------------------------- poses
def _kitti360_cam_to_world(world_root, rig, seq, source):
    """Frame numbers [N] and {cam 0/1: [N,4,4] rectified camera -> world} of the KITTI-360 export, from poses.txt
    text and the generating rig, or from the KITTI-360 loaders (vipocc.data.poses / calibration)."""
    if source == "text":
        frames, imu_to_world = _kitti360_poses(world_root, seq)
        rect_to_pose = rig.T_rect_to_pose
    else:
        from vipocc.data.calibration import load_calibration
        from vipocc.data.poses import load_poses

        poses = load_poses(world_root / "kitti360", seq)
        frames, imu_to_world = poses.frames, poses.imu_to_world
        rect_to_pose = load_calibration(world_root / "kitti360").T_rect_to_pose
    return frames, {cam: imu_to_world @ rect_to_pose[cam] for cam in (0, 1)}


@pytest.mark.parametrize("source", ["text", "loader"])
def test_poses_agree_with_kitti360_view_of_the_same_frame(world, raw_root, source):
    """Camera-to-world of image_02/03 = KITTI-360 rectified cam 0/1 -> world of the same frame (up to one fixed
    world change, here the identity), across the KITTI-360 frame-number gap."""
    world_root, oracle, rig = world
    for seq in oracle.sequences:
        drive = _drive_of(oracle, seq)
        frames360, cam_to_world = _kitti360_cam_to_world(world_root, rig, seq, source)
        np.testing.assert_array_equal(frames360, oracle.frames(seq))  # raw index k <-> k-th posed frame
        indices = [0, len(frames360) // 2, len(frames360) - 2]
        entries = [(drive, k, side) for k in indices for side in ("l", "r")]
        ds = kr.KittiRawDataset(raw_root, raw_root / "poses", entries, image_size=(16, 48))
        world_change = None
        for i, (_, k, side) in enumerate(entries):
            sample = ds[i]
            key, other = (1, 0) if side == "r" else (0, 1)
            for slot, (cam, frame) in enumerate([(key, k), (key, k + 1), (other, k), (other, k + 1)]):
                expected = cam_to_world[cam][frame]
                got = sample["poses"][slot].double().numpy()
                if world_change is None:
                    world_change = got @ invert_rigid(expected)
                np.testing.assert_allclose(got, world_change @ expected, atol=2e-4)  # float32 poses, ~100 m
        np.testing.assert_allclose(world_change, np.eye(4), atol=2e-4)


# ------------------------------------------------------------------------------------------------------ GT depth
def _literal_depth_map(points, P, size, matlab_offset=True, reference_duplicates=True):
    """monodepth2's depth map written point by point (independent slow implementation)."""
    H, W = size
    hits = []  # (u, v, z) of in-bounds points, in point order
    for x, y, z_velo in points[:, :3].astype(np.float64):
        if x < 0:
            continue
        p = P @ np.array([x, y, z_velo, 1.0])
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.round(p[0] / p[2]) - matlab_offset
            v = np.round(p[1] / p[2]) - matlab_offset
        if 0 <= u < W and 0 <= v < H:
            hits.append((int(u), int(v), p[2]))
    depth = np.zeros((H, W))
    for u, v, z in hits:
        depth[v, u] = z
    groups = {}
    for i, (u, v, _) in enumerate(hits):
        groups.setdefault(v * (W - 1) + u - 1 if reference_duplicates else (v, u), []).append(i)
    for members in groups.values():
        if len(members) > 1:
            u, v, _ = hits[members[0]]
            depth[v, u] = min(hits[j][2] for j in members)
    depth[depth < 0] = 0
    return depth


def test_depth_map_reference_quirks_by_hand():
    """P = [I | 0]: a point (u z, v z, z) lands on pixel (round(u) - 1, round(v) - 1) with depth z."""
    P = np.hstack([np.eye(3), np.zeros((3, 1))])
    W, H = 5, 3

    def at(col, row, z):
        return [(col + 1) * z, (row + 1) * z, z]

    points = np.array([at(4, 0, 5.0), at(0, 1, 3.0),  # (row 0, col W-1) and (row 1, col 0) share a sub2ind key
                       at(2, 2, 7.0), at(2, 2, 4.0),  # a true duplicate
                       [-1.0, 2.0, 3.0]])  # x < 0: dropped
    depth = kr.velodyne_depth_map(points, P, (H, W))
    expected = np.zeros((H, W))
    expected[0, 4] = 3.0  # the key's minimum goes to its first point's pixel
    expected[1, 0] = 3.0
    expected[2, 2] = 4.0
    np.testing.assert_array_equal(depth, expected)
    exact = kr.velodyne_depth_map(points, P, (H, W), reference_duplicates=False)
    expected[0, 4] = 5.0
    np.testing.assert_array_equal(exact, expected)
    reordered = kr.velodyne_depth_map(points[[1, 0, 2, 3]], P, (H, W))
    assert reordered[0, 4] == 5.0 and reordered[1, 0] == 3.0  # first point now at (1, 0): (0, 4) keeps its own
    no_offset = kr.velodyne_depth_map(np.array([at(1, 1, 2.0)]), P, (H, W), matlab_offset=False)
    assert no_offset[2, 2] == 2.0 and np.count_nonzero(no_offset) == 1


@pytest.mark.parametrize("reference_duplicates", [True, False])
def test_depth_map_equals_literal_implementation(calibration, reference_duplicates):
    rng = np.random.default_rng(7)
    # crowd the scan so that many points share pixels and some sit between the Velodyne and the camera (z < 0)
    points = np.concatenate([rng.uniform([-5, -20, -3, 0], [60, 20, 3, 1], size=(3000, 4)),
                             rng.uniform([0, -2, -2, 0], [1.0, 2, 2, 1], size=(500, 4))]).astype(np.float32)
    P = calibration.velo_to_image(2)
    got = kr.velodyne_depth_map(points, P, calibration.raw_size, reference_duplicates=reference_duplicates)
    expected = _literal_depth_map(points, P, calibration.raw_size, reference_duplicates=reference_duplicates)
    np.testing.assert_array_equal(got, expected.astype(np.float32))
    assert np.count_nonzero(got) > 500


def test_gt_depth_agrees_with_oracle_depth(world, raw_root, calibration):
    """Where a LiDAR return and the oracle both have depth, they agree (to the rounding of the pixel position at
    this 47x176 resolution); the MATLAB -1 puts each return one pixel up-left of where it projects."""
    world_root, oracle, _ = world
    seq = oracle.sequences[2]
    for k in (0, 13):  # 13: after the KITTI-360 frame-number gap
        frame = int(oracle.frames(seq)[k])
        for camera, oracle_cam in ((2, 0), (3, 1)):
            truth = oracle.depth(seq, oracle_cam, frame)
            errors = {}
            for offset in (False, True):
                gt = kr.load_gt_depth(raw_root, _drive_of(oracle, seq), k, calibration, camera, matlab_offset=offset)
                v, u = np.nonzero(gt[:-1, :-1] > 0)
                for shift in (0, 1):
                    reference = truth[v + shift, u + shift]
                    ok = np.isfinite(reference)
                    errors[offset, shift] = np.median(np.abs(gt[v, u][ok] / reference[ok] - 1))
                assert len(v) > 1000
            assert errors[False, 0] < 0.012 and errors[True, 1] < 0.012
            assert errors[False, 1] > 0.025 and errors[True, 0] > 0.025


def test_gt_depth_values_are_rig_z_depths(world, raw_root, calibration):
    """Each GT pixel holds the smallest rectified-camera z of the scan points that round to it (exact rig math)."""
    _, oracle, rig = world
    seq = oracle.sequences[0]
    gt = kr.load_gt_depth(raw_root, _drive_of(oracle, seq), 5, calibration, 2, reference_duplicates=False)
    points = kr.read_velodyne(raw_root / _drive_of(oracle, seq) / "velodyne_points" / "data" / "0000000005.bin")
    points = points[points[:, 0] >= 0, :3].astype(np.float64)
    cam = points @ (invert_rigid(rig.T_rect_to_pose[0]) @ rig.T_velo_to_pose)[:3, :3].T \
        + (invert_rigid(rig.T_rect_to_pose[0]) @ rig.T_velo_to_pose)[:3, 3]
    pix = cam @ rig.K_rect[0].T
    u = np.round(pix[:, 0] / pix[:, 2]).astype(int) - 1
    v = np.round(pix[:, 1] / pix[:, 2]).astype(int) - 1
    H, W = rig.image_size(0)
    keep = (u >= 0) & (v >= 0) & (u < W) & (v < H) & (cam[:, 2] > 0)
    best = np.full((H, W), np.inf)
    np.minimum.at(best, (v[keep], u[keep]), cam[keep, 2])
    hit = np.isfinite(best)
    assert hit.sum() > 1000
    np.testing.assert_allclose(gt[hit], best[hit], rtol=1e-6)
    assert np.count_nonzero(gt[~hit]) == 0  # (points with z < 0 would appear as 0, not elsewhere)


def test_eigen_crop_by_hand():
    depth = np.full((100, 200), 50.0, dtype=np.float32)
    depth[60, 100], depth[61, 100], depth[62, 100] = 0.0005, 80.0, 79.5
    out = kr.eigen_crop_depth(depth)
    # Garg crop rows [int(40.81), int(99.19)) = [40, 99), cols [int(7.19), int(192.81)) = [7, 192)
    expected = np.zeros_like(depth)
    expected[40:99, 7:192] = 50.0
    expected[60, 100], expected[61, 100], expected[62, 100] = 0.0, 0.0, 79.5
    np.testing.assert_array_equal(out, expected)


def test_dataset_depth_uses_key_camera_and_eigen_crop(world, raw_root, calibration):
    _, oracle, _ = world
    drive = _drive_of(oracle, oracle.sequences[0])
    ds = kr.KittiRawDataset(raw_root, raw_root / "poses", [(drive, 6, "r")], image_size=(16, 48),
                            return_gt_depth=True, eigen_crop=True)
    got = ds[0]["depths"][0][0].numpy()
    full = kr.load_gt_depth(raw_root, drive, 6, calibration, 3)
    np.testing.assert_array_equal(got, kr.eigen_crop_depth(full))
    assert np.count_nonzero(got) < np.count_nonzero(full)


# ----------------------------------------------------------------------------------------- files, jpg and errors
def test_jpg_images_are_accepted(world, raw_copy):
    _, oracle, _ = world
    drive = _drive_of(oracle, oracle.sequences[0])
    for path in (raw_copy / drive / "image_02" / "data").glob("000000000[45].png"):
        cv2.imwrite(str(path.with_suffix(".jpg")), cv2.imread(str(path)), [cv2.IMWRITE_JPEG_QUALITY, 100])
        path.unlink()
    assert kr.frame_image_path(raw_copy, drive, 2, 4).suffix == ".jpg"
    ds = kr.KittiRawDataset(raw_copy, raw_copy / "poses", [(drive, 4, "l")], image_size=(47, 176))
    png = kr.read_rgb(kr.frame_image_path(world[0] / "kitti_raw", drive, 2, 4)).astype(np.float32) / 255 * 2 - 1
    assert np.abs(ds[0]["imgs"][0].numpy() - png.transpose(2, 0, 1)).mean() < 0.02  # jpeg loss only


def test_pseudo_depth_is_read_for_the_key_camera(world, raw_root, tmp_path):
    _, oracle, _ = world
    drive = _drive_of(oracle, oracle.sequences[0])
    folder = tmp_path / drive.split("/")[1] / "image_03" / "data"
    folder.mkdir(parents=True)
    for k in (2, 3):
        np.save(folder / f"{k:010d}.npy", np.full((4, 8), float(k), dtype=np.float32))
    ds = kr.KittiRawDataset(raw_root, raw_root / "poses", [(drive, 2, "r")], image_size=(16, 48),
                            pseudo_depth_root=tmp_path)
    assert [float(d[0, 0, 0]) for d in ds[0]["pseudo_depth"]] == [2.0, 3.0]


def test_missing_and_malformed_inputs_name_the_file(world, raw_copy):
    _, oracle, _ = world
    drive = _drive_of(oracle, oracle.sequences[0])
    poses = raw_copy / "poses"
    n = len(oracle.frames(oracle.sequences[0]))
    with pytest.raises(ValueError, match=r"drive_0000_sync\.txt: .*no pose for split frame"):
        kr.KittiRawDataset(raw_copy, poses, [(drive, n + 3, "l")])
    (raw_copy / drive / "image_03" / "data" / "0000000002.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"image_03/data/0000000002\.png"):
        kr.KittiRawDataset(raw_copy, poses, [(drive, 2, "l")])
    kr.KittiRawDataset(raw_copy, poses, [(drive, 2, "l")], return_stereo=False)  # image_03 not needed
    velo = raw_copy / drive / "velodyne_points" / "data" / "0000000001.bin"
    velo.write_bytes(velo.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"0000000001\.bin: truncated"):
        kr.read_velodyne(velo)
    (raw_copy / "poses" / f"{drive}.txt").write_text("1 2 3\n")
    with pytest.raises(ValueError, match=r"drive_0000_sync\.txt: expected lines of 12"):
        kr.load_bts_poses(poses, drive)
    with pytest.raises(FileNotFoundError, match=r"poses/2011_09_26/nothing\.txt"):
        kr.load_bts_poses(poses, f"{DATE}/nothing")
    calib = raw_copy / DATE / "calib_cam_to_cam.txt"
    original = calib.read_text()
    calib.write_text(original.replace("P_rect_02:", "P_rect_02 "))
    with pytest.raises(ValueError, match=r"calib_cam_to_cam\.txt: malformed calibration line"):
        kr.load_raw_calibration(raw_copy, DATE)
    calib.write_text("\n".join(line for line in calib.read_text().splitlines() if not line.startswith("P_rect_02")))
    with pytest.raises(ValueError, match=r"calib_cam_to_cam\.txt: key 'P_rect_02' missing"):
        kr.load_raw_calibration(raw_copy, DATE)
    calib.write_text(original)
    (raw_copy / DATE / "calib_velo_to_cam.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"calib_velo_to_cam\.txt"):
        kr.KittiRawDataset(raw_copy, poses, [(drive, 2, "l")])


def test_bad_arguments(raw_root):
    entry = [(f"{DATE}/{DATE}_drive_0000_sync", 0, "l")]
    with pytest.raises(ValueError, match="image_size"):
        kr.KittiRawDataset(raw_root, raw_root / "poses", entry, image_size=(0, 10))
    with pytest.raises(ValueError, match="frame_count"):
        kr.KittiRawDataset(raw_root, raw_root / "poses", entry, frame_count=0)
    with pytest.raises(ValueError, match="side"):
        kr.KittiRawDataset(raw_root, raw_root / "poses", [(entry[0][0], 0, "x")])
    with pytest.raises(ValueError, match="camera"):
        kr.frame_image_path(raw_root, entry[0][0], 1, 0)
    with pytest.raises(FileNotFoundError, match="root"):
        kr.KittiRawDataset(raw_root / "absent", raw_root / "poses", entry)


def test_smoke_world_raw_splits_are_leak_free(world):
    splits = world[0] / "splits" / "kitti_raw"
    lists = [read_raw_split(splits / f"{name}_files.txt") for name in ("train", "val", "test")]
    check_no_leak(*lists, by="drive")
