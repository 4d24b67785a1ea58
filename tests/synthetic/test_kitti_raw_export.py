"""KITTI Raw export read back with pykitti (third-party oracle) and the BTS pose-file convention."""

import datetime as dt

import numpy as np
import pykitti
import pytest

from vipocc.geometry.transforms import invert_rigid, make_transform, rot_x, rot_y, rot_z
from vipocc.synthetic import kitti_raw_export as kr
from vipocc.synthetic.rig import kitti360_rig

DATE, DRIVE = "2013_05_28", 3
N_FRAMES = 6


def _trajectory() -> np.ndarray:
    """KITTI-360 IMU (pose frame: x fwd, y right, z down) -> world (ENU) over a short curved 10 m track."""
    poses = []
    for k in range(N_FRAMES):
        heading = 0.6 + 0.04 * k
        R = rot_z(heading) @ rot_y(0.01 * k) @ rot_x(0.005 * k) @ rot_x(np.pi)  # last factor: z down -> up
        poses.append(make_transform(R, [100.0 + 2.0 * k * np.cos(heading), -50.0 + 2.0 * k * np.sin(heading),
                                        115.0 + 0.02 * k]))
    return np.stack(poses)


def _frames(rig, rng):
    W, H = rig.perspective_size
    for k, pose in enumerate(_trajectory()):
        yield kr.RawFrame(imu_to_world=pose,
                          image_left=rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8),
                          image_right=rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8),
                          velodyne=rng.normal(size=(50 + k, 4)).astype(np.float32),
                          time_s=0.1 * k)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    rig = kitti360_rig(0.125)
    root = tmp_path_factory.mktemp("kitti_raw")
    frames = list(_frames(rig, np.random.default_rng(0)))
    n = kr.export_kitti_raw(root / "raw", root / "poses", DATE, DRIVE, rig, iter(frames))
    assert n == N_FRAMES
    data = pykitti.raw(str(root / "raw"), DATE, f"{DRIVE:04d}")
    return root, rig, frames, data


def test_layout_and_frame_count(export):
    root, _, _, data = export
    drive = root / "raw" / DATE / f"{DATE}_drive_{DRIVE:04d}_sync"
    assert kr.drive_name(DATE, DRIVE) == drive.name == kr.drive_name(DATE, drive.name) == kr.drive_name(DATE, "0003")
    assert len(data) == N_FRAMES and len(data.cam2_files) == N_FRAMES and len(data.velo_files) == N_FRAMES
    assert data.cam2_files[2].endswith("image_02/data/0000000002.png")
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt"):
        assert (root / "raw" / DATE / name).is_file()
    for sub in ("image_02", "image_03", "velodyne_points", "oxts"):
        assert len((drive / sub / "timestamps.txt").read_text().splitlines()) == N_FRAMES
    assert data.timestamps[1] - data.timestamps[0] == dt.timedelta(milliseconds=100)


def test_pykitti_calibration_matches_rig(export):
    _, rig, _, data = export
    calib = data.calib
    np.testing.assert_array_equal(calib.P_rect_20, rig.P_rect_00)  # image_02 = rectified cam 0, no offset
    np.testing.assert_array_equal(calib.P_rect_30, rig.P_rect_01)
    T_velo_to_rect0 = invert_rigid(rig.T_rect_to_pose[0]) @ rig.T_velo_to_pose
    T_velo_to_rect1 = invert_rigid(rig.T_rect_to_pose[1]) @ rig.T_velo_to_pose
    np.testing.assert_allclose(calib.T_cam2_velo, T_velo_to_rect0, atol=1e-12)
    np.testing.assert_allclose(calib.T_cam3_velo, T_velo_to_rect1, atol=1e-12)
    assert calib.b_rgb == pytest.approx(rig.baseline, abs=1e-12)
    np.testing.assert_allclose(calib.K_cam2, rig.K_rect[0], atol=0)


def test_pykitti_reads_images_and_scans(export):
    _, _, frames, data = export
    for k in (0, N_FRAMES - 1):
        np.testing.assert_array_equal(np.asarray(data.get_cam2(k)), frames[k].image_left)
        np.testing.assert_array_equal(np.asarray(data.get_cam3(k)), frames[k].image_right)
        np.testing.assert_array_equal(data.get_velo(k), frames[k].velodyne)


def test_oxts_poses_reproduce_our_relative_motion(export):
    _, rig, _, data = export
    ours = _trajectory()
    T_w_imu = np.stack([packet.T_w_imu for packet in data.oxts])
    raw_imu = ours @ kr.T_RAW_IMU_TO_POSE  # KITTI Raw IMU frame: x fwd, y left, z up
    for k in range(N_FRAMES):
        expected = invert_rigid(raw_imu[0]) @ raw_imu[k]
        got = invert_rigid(T_w_imu[0]) @ T_w_imu[k]
        assert np.abs(got[:3, 3] - expected[:3, 3]).max() < 1e-6  # metres (far below the 1 cm requirement)
        np.testing.assert_allclose(got[:3, :3], expected[:3, :3], atol=1e-9)
    # the KITTI Raw IMU is upright (z up) in the ENU world, so the OXTS angles are the ones _trajectory used
    assert np.all(T_w_imu[:, 2, 2] > 0.99)
    angles = np.array([(p.packet.roll, p.packet.pitch, p.packet.yaw) for p in data.oxts])
    k = np.arange(N_FRAMES)
    np.testing.assert_allclose(angles, np.column_stack([0.005 * k, 0.01 * k, 0.6 + 0.04 * k]), atol=1e-12)
    # rectified left camera trajectory through pykitti's chain equals ours (relative to frame 0)
    cam_w = T_w_imu @ invert_rigid(data.calib.T_cam2_imu)
    ours_cam = ours @ rig.T_rect_to_pose[0]
    for k in range(N_FRAMES):
        np.testing.assert_allclose(invert_rigid(cam_w[0]) @ cam_w[k], invert_rigid(ours_cam[0]) @ ours_cam[k],
                                   atol=1e-6)


def test_bts_pose_file_holds_rectified_cam0_to_world(export):
    root, rig, _, _ = export
    path = root / "poses" / DATE / f"{DATE}_drive_{DRIVE:04d}_sync.txt"
    poses = np.loadtxt(path).reshape(-1, 3, 4)
    assert poses.shape[0] == N_FRAMES
    np.testing.assert_array_equal(poses, (_trajectory() @ rig.T_rect_to_pose[0])[:, :3])
    # BTS: right camera = T_w_cam0 @ inv(T_r) with T_r from P_rect_03[0,3] / fx
    T_r = np.eye(4)
    T_r[0, 3] = rig.P_rect_01[0, 3] / rig.P_rect_01[0, 0]
    np.testing.assert_allclose(np.concatenate([poses[0], [[0, 0, 0, 1]]]) @ invert_rigid(T_r),
                               _trajectory()[0] @ rig.T_rect_to_pose[1], atol=1e-12)


def test_geodetic_inverse_of_pykitti_mercator():
    rng = np.random.default_rng(1)
    xyz = rng.uniform(-500, 500, size=(20, 3))
    geo = kr.geodetic_from_world(xyz, xyz[0])
    lat0 = geo[0, 0]
    scale = np.cos(np.radians(lat0))
    er = 6378137.0  # pykitti's Mercator: tx = s lon pi er / 180, ty = s er log tan((90 + lat) pi / 360)
    tx = scale * geo[:, 1] * np.pi * er / 180.0
    ty = scale * er * np.log(np.tan((90.0 + geo[:, 0]) * np.pi / 360.0))
    np.testing.assert_allclose(np.column_stack([tx - tx[0], ty - ty[0], geo[:, 2] - geo[0, 2]]), xyz - xyz[0],
                               atol=1e-6)


def test_oxts_velocity_is_the_pose_derivative(export):
    _, _, _, data = export
    # central differences of positions 0.1 s apart; ENU: vn = d(north)/dt, ve = d(east)/dt
    pos = _trajectory()[:, :3, 3]
    v = (pos[2] - pos[0]) / 0.2
    packet = data.oxts[1].packet
    assert (packet.ve, packet.vn, packet.vu) == pytest.approx(tuple(v), abs=1e-9)
    assert np.hypot(packet.vf, packet.vl) == pytest.approx(np.hypot(v[0], v[1]), abs=1e-2)


def test_frames_are_stateless_and_metadata_defaults(tmp_path):
    rig = kitti360_rig(0.125)
    frames = list(_frames(rig, np.random.default_rng(1)))[:3]
    kr.write_calibration(tmp_path, DATE, rig)
    for k in (2, 0, 1):  # any order, as parallel workers would write them
        kr.write_frame(tmp_path, DATE, DRIVE, k, frames[k].image_left, frames[k].image_right, frames[k].velodyne)
    out = kr.write_drive_metadata(tmp_path, DATE, kr.drive_name(DATE, DRIVE), rig,
                                  np.stack([f.imu_to_world for f in frames]))
    assert out["poses"] == tmp_path / "poses" / DATE / f"{DATE}_drive_{DRIVE:04d}_sync.txt"
    data = pykitti.raw(str(tmp_path), DATE, f"{DRIVE:04d}")
    assert len(data) == 3
    np.testing.assert_array_equal(np.asarray(data.get_cam3(2)), frames[2].image_right)


def test_raw_split_file(tmp_path):
    drive = f"{DATE}/{kr.drive_name(DATE, 1)}"
    path = kr.write_split(tmp_path / "test_files.txt", [(drive, 0, "l"), (drive, 473, "r")])
    assert path.read_text() == f"{drive} 0 l\n{drive} 473 r\n"
    with pytest.raises(ValueError, match="side"):
        kr.write_split(path, [(drive, 1, "x")])
    with pytest.raises(ValueError, match="date"):
        kr.write_split(path, [("drive_0001", 1, "l")])


def test_bad_input_is_rejected(tmp_path):
    rig = kitti360_rig(0.125)
    frame = next(_frames(rig, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="image_left/image_right"):
        kr.write_frame(tmp_path, DATE, DRIVE, 0, frame.image_left[:10], frame.image_right, frame.velodyne)
    with pytest.raises(ValueError, match="index"):
        kr.write_frame(tmp_path, DATE, DRIVE, -1, frame.image_left, frame.image_right, frame.velodyne)
    with pytest.raises(ValueError, match="times_s"):
        kr.write_drive_metadata(tmp_path, DATE, DRIVE, rig, _trajectory(), times_s=np.zeros(2))
    with pytest.raises(ValueError, match="times_s"):
        kr.write_drive_metadata(tmp_path, DATE, DRIVE, rig, _trajectory(), times_s=-np.arange(N_FRAMES, dtype=float))
    with pytest.raises(ValueError, match="date"):
        kr.drive_name("2013-05-28", 1)
    with pytest.raises(ValueError, match="drive"):
        kr.drive_name(DATE, 10000)
    with pytest.raises(ValueError, match="missing keys"):
        kr.export_kitti_raw(tmp_path, tmp_path, DATE, DRIVE, rig, [{"imu_to_world": np.eye(4)}])
