"""The KITTI-360 sample on the smoke world: slot order and the left/right swap (images checked against raw files
processed independently), camera-to-world poses checked with lidar points and the oracle depth, pose-index
semantics across the frame gap and at the end of a sequence, derived maps, preprocessed = raw, randomness."""

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vipocc.config import validate_config
from vipocc.data.images import preprocessed_folders, resample_fisheye, resize_perspective
from vipocc.data.kitti360 import Kitti360Dataset, collate
from vipocc.geometry.cameras import project_mei
from vipocc.geometry.transforms import make_transform, rot_x
from vipocc.synthetic.oracle import WorldOracle
from vipocc.synthetic.rig import kitti360_rig

SEQ = "2013_05_28_drive_0000_sync"  # posed frames 2..11, 15..32 (ids 0..27)
SIZE = (32, 96)
ROTATION = (0, -15)
LEFT_KEY_CAMS = [0, 0, 1, 1, 2, 2, 3, 3]
RIGHT_KEY_CAMS = [1, 1, 0, 0, 3, 3, 2, 2]


def options(use="train", **overrides):
    defaults = validate_config({"dataset": {"kind": "synthetic"}})["datasets"][use]
    return {**defaults, "is_preprocessed": False, "return_gt_depth": False, "return_pseudo_depth": False,
            **overrides}


def make(world, use="train", derived=None, split_dir=None, kwargs=None, **overrides):
    return Kitti360Dataset(world / "kitti360", derived, split_dir or world / "splits" / "kitti360",
                           options(use, **overrides), SIZE, ROTATION, **(kwargs or {}))


@pytest.fixture(scope="module")
def train(smoke_world):
    return make(smoke_world)


@pytest.fixture(scope="module")
def rig():
    return kitti360_rig(0.125)


def view_to_pose(rig, cam):
    """Independent of vipocc.data.calibration: the rig's transforms and a -15 deg pitch written out."""
    if cam < 2:
        return rig.T_rect_to_pose[cam]
    return rig.T_cam_to_pose[cam] @ make_transform(rot_x(np.radians(-15)), np.zeros(3))


def raw_view(world, cam, frame, calib_grid):
    """The reference's processing of one raw view, written out with cv2 / torch: float image in [-1, 1]."""
    folder = "data_rect" if cam < 2 else "data_rgb"
    bgr = cv2.imread(str(world / "kitti360" / "data_2d_raw" / SEQ / f"image_{cam:02d}" / folder / f"{frame:010d}.png"))
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    if cam < 2:
        return torch.tensor(cv2.resize(image, SIZE[::-1], interpolation=cv2.INTER_LINEAR)).permute(2, 0, 1) * 2 - 1
    sampled = F.grid_sample(torch.tensor(image).permute(2, 0, 1)[None], calib_grid(cam)[None], align_corners=True)
    return sampled[0] * 2 - 1


@pytest.mark.parametrize("index, cams", [(0, LEFT_KEY_CAMS), (1, RIGHT_KEY_CAMS)])
def test_slot_order_and_left_right_swap(smoke_world, train, rig, index, cams):
    sample = train[index]
    poses = train.poses(SEQ)
    assert (sample["seq"], sample["img_id"], sample["is_right"]) == (SEQ, 2, index == 1)
    # ids are pose indices; the fisheye offset of 10 posed frames jumps over the missing frames 12-14
    np.testing.assert_array_equal(sample["ts"], [0, 1, 0, 1, 10, 11, 10, 11])
    frames = [2, 3, 2, 3, 15, 16, 15, 16]
    assert len(sample["imgs"]) == len(sample["projs"]) == len(sample["poses"]) == 8
    (fx, _, cx), (_, fy, cy) = rig.K_rect[0][:2]
    K = torch.tensor([[2 * fx / 176, 0, 2 * cx / 176 - 1], [0, 2 * fy / 47, 2 * cy / 47 - 1], [0, 0, 1]],
                     dtype=torch.float32)
    for slot, (cam, frame) in enumerate(zip(cams, frames)):
        image = sample["imgs"][slot]
        assert image.shape == (3, *SIZE) and image.dtype == torch.float32
        torch.testing.assert_close(image, raw_view(smoke_world, cam, frame, train.grid), atol=1e-6, rtol=0)
        torch.testing.assert_close(sample["projs"][slot], K)
        expected_pose = poses.imu_to_world[sample["ts"][slot]] @ view_to_pose(rig, cam)
        np.testing.assert_allclose(sample["poses"][slot].numpy(), expected_pose, atol=2e-4)
    assert sample["depths"] == [] and sample["pseudo_depth"] == [] and sample["samples"] == []


def _key_frame_lidar(world, sample, scene):
    """World points [N,3] of the key frame's scan (posed IMU @ the rig's velodyne extrinsics) and the oracle car
    instance id of each (0 = not a car), read 2 cm beyond the return along its ray."""
    rig = kitti360_rig(0.125)
    velo_to_world = sample["_imu_to_world_key"] @ rig.T_velo_to_pose
    scan = np.fromfile(world / "kitti360" / "data_3d_raw" / SEQ / "velodyne_points" / "data"
                       / f"{sample['img_id']:010d}.bin", np.float32).reshape(-1, 4)[:, :3].astype(np.float64)
    points = scan @ velo_to_world[:3, :3].T + velo_to_world[:3, 3]
    rays = points - velo_to_world[:3, 3]
    instance = scene.instance_at(points + 0.02 * rays / np.linalg.norm(rays, axis=1, keepdims=True))
    return points, instance


def _agreement(points_world, instance, pose, K, cam, frame, rig, oracle):
    """For the lidar points seen by a view posed at ``pose`` (camera-to-world): median relative error and fraction
    within 5 % of the oracle depth (z for perspective, range for fisheye) at the nearest pixel, and the fraction of
    car points that land on a pixel of the same car."""
    world_to_view = np.linalg.inv(pose)
    points = points_world @ world_to_view[:3, :3].T + world_to_view[:3, 3]
    depth, instance_map = oracle.depth(SEQ, cam, frame), oracle.instance(SEQ, cam, frame)
    height, width = depth.shape
    if cam < 2:
        front = points[:, 2] > 0.5
        projected = points @ K.T
        with np.errstate(divide="ignore", invalid="ignore"):
            # normalised x -> raw pixel (centre convention of the synthetic K): u = (x + 1) W / 2
            u = np.round((projected[:, 0] / projected[:, 2] + 1) * width / 2)
            v = np.round((projected[:, 1] / projected[:, 2] + 1) * height / 2)
        seen = front & (u >= 0) & (u < width) & (v >= 0) & (v < height)
        truth = points[:, 2]
    else:
        uv, seen = project_mei(points @ rot_x(np.radians(-15)).T, rig.mei[cam])
        u, v = np.round(np.nan_to_num(uv)).T
        truth = np.linalg.norm(points, axis=1)
    u, v = u[seen].astype(int), v[seen].astype(int)
    rel = np.abs(depth[v, u] - truth[seen]) / truth[seen]
    car = instance[seen] > 0
    assert len(rel) > 1000 and car.sum() > 50
    return np.nanmedian(rel), np.mean(rel < 0.05), np.mean(instance_map[v, u][car] == instance[seen][car])


@pytest.mark.parametrize("index, cams", [(0, LEFT_KEY_CAMS), (1, RIGHT_KEY_CAMS)])
def test_poses_are_camera_to_world_for_lidar_points(smoke_world, train, rig, index, cams):
    """Lidar points of the key frame land, in every view (perspective t, t+1; fisheye t+10, t+11), on pixels whose
    oracle depth is the points' depth and whose oracle car instance is the points' car."""
    oracle = WorldOracle(smoke_world)
    sample = dict(train[index])
    poses = train.poses(SEQ)
    sample["_imu_to_world_key"] = poses.imu_to_world[sample["ts"][0]]
    points, instance = _key_frame_lidar(smoke_world, sample, oracle.scene(SEQ))
    for slot, cam in enumerate(cams):
        frame = int(poses.frames[sample["ts"][slot]])
        median, within, same_car = _agreement(points, instance, sample["poses"][slot].double().numpy(),
                                              sample["projs"][slot].double().numpy(), cam, frame, rig, oracle)
        limits = (0.02, 0.8) if cam < 2 else (0.05, 0.6)  # fisheye pixels are coarse (175 px smoke images)
        assert median < limits[0] and within > limits[1] and same_car > 0.7, (slot, median, within, same_car)
    # control: a fisheye view posed at the key frame instead of t + 10 puts the cars on the wrong pixels
    wrong_pose = poses.imu_to_world[sample["ts"][0]] @ view_to_pose(rig, cams[4])
    _, _, same_car = _agreement(points, instance, wrong_pose, None, cams[4], int(poses.frames[10]), rig, oracle)
    assert same_car < 0.3


def _split(tmp_path, lines):
    (tmp_path / "train_files.txt").write_text("".join(f"{SEQ} {frame:010d} {side}\n" for frame, side in lines))
    return tmp_path


def test_ids_are_clamped_at_the_end_of_the_sequence(smoke_world, tmp_path):
    dataset = make(smoke_world, split_dir=_split(tmp_path, [(32, "l"), (25, "l"), (21, "r")]))
    assert [d[1] for d in dataset.datapoints] == [27, 20, 16]
    expected = [[27, 27, 27, 27, 27, 27, 27, 27],   # last posed frame: t+1 and the fisheye ids clamp to N-1 = 27
                [20, 21, 20, 21, 27, 27, 27, 27],   # fisheye 30, 31 -> 27
                [16, 17, 16, 17, 26, 27, 26, 27]]
    for index, ts in enumerate(expected):
        assert dataset.view_table(index) == list(zip(RIGHT_KEY_CAMS if index == 2 else LEFT_KEY_CAMS, ts))
    sample = dataset[0]
    np.testing.assert_array_equal(sample["ts"], expected[0])
    torch.testing.assert_close(sample["imgs"][0], sample["imgs"][1])
    torch.testing.assert_close(sample["imgs"][4], sample["imgs"][5])


def test_unposed_split_frame_names_split_and_poses(smoke_world, tmp_path):
    with pytest.raises(ValueError, match=r"train_files.txt: .*poses.txt: frame\(s\) \[13\] have no pose"):
        make(smoke_world, split_dir=_split(tmp_path, [(2, "l"), (13, "l")]))


def _fake_derived(root, kind, cam, frame, value, shape):
    folder = root / kind / SEQ / f"image_{cam:02d}"
    if kind != "depth_gt":
        folder = folder / preprocessed_folders(SIZE, ROTATION)[0]
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{frame:010d}.npy", np.full(shape, value, np.float32 if kind != "samples" else np.uint16))


def _code(kind, cam, frame):
    return {"depth_gt": 1000, "depth": 2000, "samples": 3000}[kind] + 100 * cam + frame


@pytest.fixture()
def derived(tmp_path):
    """Depth GT, pseudo depth and anchors whose values encode (kind, camera, frame)."""
    for cam in (0, 1):
        for frame in (2, 3, 4, 5, 6):
            for kind, shape in (("depth_gt", SIZE), ("depth", SIZE), ("samples", (5, 8, 2))):
                _fake_derived(tmp_path, kind, cam, frame, _code(kind, cam, frame), shape)
    return tmp_path


def test_derived_maps_follow_the_key_camera(smoke_world, derived):
    dataset = make(smoke_world, derived=derived, return_gt_depth=True, return_pseudo_depth=True,
                   return_samples=True, kwargs={"gt_depth_camera": "key"})
    for index, key, other in ((0, 0, 1), (1, 1, 0)):
        sample = dataset[index]
        assert [float(d[0, 0, 0]) for d in sample["depths"]] == [_code("depth_gt", key, f) for f in (2, 3)]
        assert [d.shape for d in sample["pseudo_depth"]] == [(1, *SIZE)] * 2
        assert [float(d[0, 5, 7]) for d in sample["pseudo_depth"]] == [_code("depth", key, f) for f in (2, 3)]
        anchors = sample["samples"]
        assert anchors.shape == (4, 5, 8, 2) and anchors.dtype == torch.int32
        assert anchors[:, 0, 0, 0].tolist() == [_code("samples", c, f) for c, f in ((key, 2), (key, 3), (other, 2),
                                                                                     (other, 3))]
    reference = make(smoke_world, derived=derived, return_gt_depth=True)  # default: image_00's GT, as the reference
    assert [float(d[0, 0, 0]) for d in reference[1]["depths"]] == [_code("depth_gt", 0, f) for f in (2, 3)]


def test_evaluation_samples_have_one_frame(smoke_world, derived, tmp_path):
    split_dir = tmp_path / "split"
    split_dir.mkdir()
    (split_dir / "test_files.txt").write_text(f"{SEQ} 0000000004 l\n")
    depth = make(smoke_world, use="eval_depth", derived=derived, split_dir=split_dir, return_gt_depth=True,
                 return_pseudo_depth=True)
    sample = depth[0]
    assert len(sample["imgs"]) == 2 and sample["ts"].tolist() == [2, 2]  # key and stereo views of frame t
    assert [float(d[0, 0, 0]) for d in sample["depths"]] == [_code("depth_gt", 0, 4)]
    assert [float(d[0, 0, 0]) for d in sample["pseudo_depth"]] == [_code("depth", 0, 4)]
    occupancy = make(smoke_world, use="eval_occupancy", split_dir=split_dir)
    sample = occupancy[0]
    assert len(sample["imgs"]) == 1 and sample["ts"].tolist() == [2] and sample["img_id"] == 4
    assert set(sample["3d_bboxes"]) >= {"vertices", "center", "whl", "rotation", "instance_id"}


def _write_preprocessed(world, dataset, derived, index):
    """Preprocess the raw images of every view of a sample with the public image functions."""
    seq = dataset.datapoints[index][0]
    for cam, pose_id in dataset.view_table(index):
        frame = int(dataset.poses(seq).frames[pose_id])
        raw = cv2.imread(str(dataset.image_path(seq, cam, frame)))[..., ::-1]
        out = resize_perspective(raw, SIZE) if cam < 2 else resample_fisheye(raw, dataset.grid(cam).numpy())
        folder = preprocessed_folders(SIZE, ROTATION)[0 if cam < 2 else 1]
        path = derived / "data_2d_raw" / seq / f"image_{cam:02d}" / folder / f"{frame:010d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.ascontiguousarray(out[..., ::-1]))


def test_preprocessed_folders_give_the_same_sample(smoke_world, train, tmp_path):
    preprocessed = make(smoke_world, derived=tmp_path, is_preprocessed=True)
    for index in (0, 1):
        _write_preprocessed(smoke_world, train, tmp_path, index)
        raw, pre = train[index], preprocessed[index]
        for a, b in zip(raw["imgs"], pre["imgs"]):
            assert (a - b).abs().max() <= 1 / 255 + 1e-6  # 8-bit quantisation of the saved views
        for key in ("projs", "poses"):
            for a, b in zip(raw[key], pre[key]):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
        np.testing.assert_array_equal(raw["ts"], pre["ts"])
        for k in raw["3d_bboxes"]:
            torch.testing.assert_close(raw["3d_bboxes"][k], pre["3d_bboxes"][k], rtol=0, atol=0)
    stale = tmp_path / "data_2d_raw" / SEQ / "image_00" / "data_32x96" / "0000000002.png"
    cv2.imwrite(str(stale), np.zeros((30, 96, 3), np.uint8))
    with pytest.raises(ValueError, match=r"0000000002.png: preprocessed image is 30x96, expected 32x96"):
        preprocessed[0]
    stale.unlink()
    with pytest.raises(FileNotFoundError, match=r"image_00/data_32x96/0000000002.png"):
        preprocessed[0]


def test_randomness_is_seeded(smoke_world):
    jittered = make(smoke_world, color_aug=True, variant_fisheye_offset=True, low_fisheye_offset=3,
                    up_fisheye_offset=6, return_3d_bboxes=False)
    first, again = jittered[4], jittered[4]
    for a, b in zip(first["imgs"], again["imgs"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert first["ts"].tolist() == [pose_id for _, pose_id in jittered.view_table(4)]
    offsets = {jittered.view_table(i)[4][1] - jittered.view_table(i)[0][1] for i in range(0, 16, 2)}
    assert offsets <= {3, 4, 5, 6} and len(offsets) > 1
    plain = make(smoke_world, return_3d_bboxes=False)
    assert not torch.equal(first["imgs"][0], plain[4]["imgs"][0])  # jitter applied
    jittered.set_epoch(1)
    assert not torch.equal(jittered[4]["imgs"][0], first["imgs"][0])


def test_voxel_loader_and_option_errors(smoke_world):
    calls = []

    def loader(seq, frame, cam_to_world):
        calls.append((seq, frame, cam_to_world))
        return {"voxel": torch.zeros(2, 2, 2), "voxel_file_path": "x"}

    dataset = make(smoke_world, return_voxel=True, return_3d_bboxes=False, kwargs={"voxel_loader": loader})
    sample = dataset[1]
    assert sample["voxel"].shape == (2, 2, 2) and calls[0][:2] == (SEQ, 2)
    np.testing.assert_allclose(calls[0][2], sample["poses"][0].double().numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="voxel_loader"):
        make(smoke_world, return_voxel=True)
    with pytest.raises(ValueError, match="segmentation"):
        make(smoke_world, return_segmentation=True)
    with pytest.raises(ValueError, match=r"missing keys \['dilation'\]"):
        Kitti360Dataset(smoke_world / "kitti360", None, smoke_world / "splits" / "kitti360",
                        {k: v for k, v in options().items() if k != "dilation"}, SIZE, ROTATION)
    with pytest.raises(ValueError, match="derived_root"):
        make(smoke_world, return_gt_depth=True)


def test_collate_and_boxes_of_the_key_view(smoke_world, train, rig):
    batch = collate([train[0], train[1]])
    assert len(batch["imgs"]) == 8 and batch["imgs"][0].shape == (2, 3, *SIZE)
    assert batch["poses"][0].shape == (2, 4, 4) and batch["ts"].shape == (2, 8)
    assert batch["seq"] == [SEQ, SEQ] and batch["is_right"].tolist() == [False, True]
    assert batch["depths"] == [] and len(batch["3d_bboxes"]) == 2
    left, right = batch["3d_bboxes"]
    common, in_left, in_right = np.intersect1d(left["instance_id"], right["instance_id"], return_indices=True)
    assert len(common) > 3
    # the right rectified camera is the left one moved by the baseline along x: same boxes, shifted by -b in x
    shift = (left["center"][in_left] - right["center"][in_right]).numpy()
    np.testing.assert_allclose(shift, np.tile([rig.baseline, 0, 0], (len(common), 1)), atol=1e-3)
    torch.testing.assert_close(left["whl"][in_left], right["whl"][in_right])
