"""KITTI-360 writers, read back with the official devkit (kitti360scripts, via tests/kitti360_devkit.py),
OpenCV and plain parsing. The devkit projections are the oracle for our camera models on the written files."""

import datetime as dt

import cv2
import numpy as np
import pytest

from vipocc.geometry.cameras import MEIParams, project_mei, project_pinhole
from vipocc.geometry.transforms import apply_transform, invert_rigid, make_transform, rot_x, rot_z
from vipocc.synthetic import kitti360_export as ke
from vipocc.synthetic.rig import kitti360_rig

SEQ = "2013_05_28_drive_0000_sync"
FRAMES = [3, 4, 9]  # KITTI-360 poses are sparse: gaps are allowed


def _trajectory() -> np.ndarray:
    """IMU -> world for FRAMES: the pose frame has z down, so it is turned 180 deg about x w.r.t. world."""
    return np.stack([make_transform(rot_z(0.05 * k) @ rot_x(np.pi + 0.01 * k), [2.0 * k, 0.3 * k, 1.7])
                     for k in range(len(FRAMES))])


@pytest.fixture(scope="module", params=[1.0, 0.5])
def tree(request, tmp_path_factory):
    rig = kitti360_rig(request.param)
    root = tmp_path_factory.mktemp(f"k360_{request.param}")
    files = ke.write_calibration(root, rig)
    ke.write_poses(root, SEQ, FRAMES, _trajectory(), rig)
    return root, rig, files


def test_calibration_files_parse_with_devkit_to_the_exact_rig(tree):
    import kitti360_devkit as dk

    root, rig, files = tree
    calib = root / "calibration"
    assert set(files) == {"perspective.txt", "calib_cam_to_pose.txt", "calib_cam_to_velo.txt",
                          "image_02.yaml", "image_03.yaml"}
    cam_to_pose = dk.loadCalibrationCameraToPose(str(calib / "calib_cam_to_pose.txt"))
    for cam in range(4):
        np.testing.assert_array_equal(cam_to_pose[f"image_{cam:02d}"], rig.T_cam_to_pose[cam])
    np.testing.assert_array_equal(dk.loadCalibrationRigid(str(calib / "calib_cam_to_velo.txt")), rig.T_cam0_to_velo)
    persp = dk.loadPerspectiveIntrinsic(str(calib / "perspective.txt"))
    np.testing.assert_array_equal(persp["P_rect_00"][:3], rig.P_rect_00)
    np.testing.assert_array_equal(persp["P_rect_01"][:3], rig.P_rect_01)
    np.testing.assert_array_equal(persp["R_rect_00"], rig.R_rect_00)
    np.testing.assert_array_equal(persp["R_rect_01"], rig.R_rect_01)
    lines = (calib / "perspective.txt").read_text().splitlines()
    assert lines[0].startswith("calib_time: ")
    keys = {line.split(":")[0] for line in lines}
    assert {f"{k}_0{c}" for k in ("S", "K", "D", "R", "T", "S_rect", "R_rect", "P_rect") for c in (0, 1)} <= keys
    size = next(line for line in lines if line.startswith("S_rect_00:")).split()[1:]
    assert [int(float(v)) for v in size] == list(rig.perspective_size)


@pytest.mark.parametrize("cam", [2, 3])
def test_fisheye_yaml_reads_back_with_devkit_and_opencv(tree, cam):
    import kitti360_devkit as dk

    root, rig, _ = tree
    path = root / "calibration" / f"image_{cam:02d}.yaml"
    assert path.read_text().splitlines()[0] == "%YAML:1.0"
    fi = dk.readYAMLFile(str(path))
    assert fi["model_type"] == "MEI" and fi["camera_name"] == f"image_{cam:02d}"
    parsed = MEIParams(xi=fi["mirror_parameters"]["xi"], **fi["distortion_parameters"],
                       **fi["projection_parameters"], width=fi["image_width"], height=fi["image_height"])
    assert parsed == rig.mei[cam]
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    try:
        assert fs.getNode("projection_parameters").getNode("gamma1").real() == rig.mei[cam].gamma1
        assert int(fs.getNode("image_width").real()) == rig.mei[cam].width
    finally:
        fs.release()


def _world_points(rng: np.random.Generator, pose: np.ndarray, n: int) -> np.ndarray:
    """Random world points around the car (pose frame: x fwd, y right, z down)."""
    local = np.column_stack([rng.uniform(-30, 30, n), rng.uniform(-30, 30, n), rng.uniform(-3, 1, n)])
    return apply_transform(pose, local)


@pytest.mark.parametrize("cam", [2, 3])
def test_project_mei_equals_devkit_fisheye(tree, cam):
    import kitti360_devkit as dk

    root, rig, _ = tree
    camera = dk.CameraFisheye(str(root), SEQ, cam)
    rng = np.random.default_rng(cam)
    pts = rng.normal(size=(300, 3)) * 5
    x, y, _ = camera.cam2image(pts.T.copy())
    uv, _ = project_mei(pts, rig.mei[cam])
    np.testing.assert_allclose(uv, np.column_stack([x, y]), rtol=0, atol=1e-9)
    # world -> image through poses.txt and calib_cam_to_pose.txt (devkit) vs our rig
    poses = _trajectory()
    for k, frame in enumerate(FRAMES):
        np.testing.assert_allclose(camera.cam2world[frame], poses[k] @ rig.camera_to_pose(cam), atol=1e-12)
        world = _world_points(rng, poses[k], 200)
        (u, v), depth = camera.project_vertices(world, frame)
        ours, _ = project_mei(apply_transform(invert_rigid(poses[k] @ rig.camera_to_pose(cam)), world), rig.mei[cam])
        np.testing.assert_allclose(ours, np.column_stack([u, v]), atol=1e-8)


@pytest.mark.parametrize("cam", [0, 1])
def test_project_pinhole_equals_devkit_perspective(tree, cam):
    import kitti360_devkit as dk

    root, rig, _ = tree
    camera = dk.CameraPerspective(str(root), SEQ, cam)
    assert (camera.width, camera.height) == rig.perspective_size
    poses = _trajectory()
    rng = np.random.default_rng(10 + cam)
    for k, frame in enumerate(FRAMES):
        # devkit: pose @ calib_cam_to_pose @ inv(R_rect); ours: the rectified camera of the rig
        np.testing.assert_allclose(camera.cam2world[frame], poses[k] @ rig.camera_to_pose(cam), atol=1e-12)
        world = _world_points(rng, poses[k], 300)
        (u, v), depth = camera.project_vertices(world, frame)
        pts_cam = apply_transform(invert_rigid(poses[k] @ rig.camera_to_pose(cam)), world)
        uv, z = project_pinhole(pts_cam, rig.K_rect[cam])
        front = z > 0.5
        assert front.sum() > 50
        np.testing.assert_allclose(depth[front], z[front], atol=1e-9)
        # the devkit rounds pixel coordinates to integers
        np.testing.assert_array_equal(u[front], np.round(uv[front, 0]))
        np.testing.assert_array_equal(v[front], np.round(uv[front, 1]))


def test_poses_and_cam0_to_world_files(tree):
    root, rig, _ = tree
    poses = _trajectory()
    data = np.loadtxt(root / "data_poses" / SEQ / "poses.txt")
    assert data.shape == (3, 13)
    np.testing.assert_array_equal(data[:, 0], FRAMES)
    np.testing.assert_array_equal(data[:, 1:].reshape(-1, 3, 4), poses[:, :3])
    cams = np.loadtxt(root / "data_poses" / SEQ / "cam0_to_world.txt")
    assert cams.shape == (3, 17)
    np.testing.assert_allclose(cams[:, 1:].reshape(-1, 4, 4), poses @ rig.T_rect_to_pose[0], atol=0)
    with pytest.raises(ValueError, match="frame_ids"):
        ke.write_poses(root, SEQ, [3, 3, 4], poses, rig)
    with pytest.raises(ValueError, match="imu_to_world"):
        ke.write_poses(root, SEQ, FRAMES, poses * 2.0, rig)


def test_image_paths_and_png_round_trip(tmp_path):
    assert ke.image_path(tmp_path, SEQ, 0, 12) == tmp_path / "data_2d_raw" / SEQ / "image_00/data_rect/0000000012.png"
    assert ke.image_path(tmp_path, SEQ, 1, 7).parts[-3:] == ("image_01", "data_rect", "0000000007.png")
    assert ke.image_path(tmp_path, SEQ, 2, 7).parts[-3:] == ("image_02", "data_rgb", "0000000007.png")
    assert ke.image_path(tmp_path, SEQ, 3, 7).parts[-3:] == ("image_03", "data_rgb", "0000000007.png")
    rgb = np.random.default_rng(0).integers(0, 256, size=(47, 176, 3), dtype=np.uint8)
    path = ke.write_image(ke.image_path(tmp_path, SEQ, 0, 12), rgb)
    np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1], rgb)  # BGR on disk
    with pytest.raises(ValueError, match="uint8"):
        ke.write_image(path, rgb.astype(np.float32))
    with pytest.raises(ValueError, match="cam"):
        ke.image_path(tmp_path, SEQ, 4, 0)


def test_velodyne_bin_round_trip(tmp_path):
    pts = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    path = ke.write_velodyne(tmp_path, SEQ, 5, pts)
    assert path == tmp_path / "data_3d_raw" / SEQ / "velodyne_points" / "data" / "0000000005.bin"
    assert path.stat().st_size == 100 * 4 * 4
    np.testing.assert_array_equal(np.fromfile(path, dtype="<f4").reshape(-1, 4), pts)
    with pytest.raises(ValueError, match="N,4"):
        ke.write_velodyne(tmp_path, SEQ, 5, pts[:, :3])


def test_timestamps_files(tmp_path):
    start = dt.datetime(2013, 5, 28, 8, 46, 2)
    paths = ke.write_timestamps(tmp_path, SEQ, [3, 4, 9], period_s=0.1034, start=start)
    assert len(paths) == 5 and paths[-1].parts[-3:] == (SEQ, "velodyne_points", "timestamps.txt")
    assert paths[2].parts[-3:] == (SEQ, "image_02", "timestamps.txt")
    lines = paths[0].read_text().splitlines()
    assert len(lines) == 10  # every frame 0..9, line k = frame k, posed or not
    assert lines[1] == "2013-05-28 08:46:02.103400000"
    assert lines[9] == "2013-05-28 08:46:02.930600000"
    for k, line in enumerate(lines):  # pykitti-style parse: drop the last 3 digits (ns -> us)
        parsed = dt.datetime.strptime(line[:-3], "%Y-%m-%d %H:%M:%S.%f")
        assert abs((parsed - start).total_seconds() - 0.1034 * k) < 1e-6
    assert ke.format_timestamps([61.5], start) == ["2013-05-28 08:47:03.500000000"]
    with pytest.raises(ValueError, match="frame_ids"):
        ke.write_timestamps(tmp_path, SEQ, [4, 3])
    with pytest.raises(ValueError, match="times_s"):
        ke.format_timestamps([0.2, 0.1], start)


def test_bboxes_xml_parses_with_devkit_annotation3d(tmp_path):
    import kitti360_devkit as dk

    boxes = [ke.Box3D(1, (10.0, -3.0, 0.75), (4.2, 1.8, 1.5), 0.4, 0, 120),
             (7, [25.0, 4.0, 0.8], [3.9, 1.7, 1.6], -2.0, 30, 90)]  # plain tuples are accepted
    ke.write_bboxes_xml(tmp_path, SEQ, boxes)
    ann = dk.Annotation3D(str(tmp_path / "data_3d_bboxes"), SEQ)
    assert ann.num_bbox == 2
    for box in map(lambda b: ke.Box3D(*b), boxes):
        obj = ann(dk.kittiId2label[13].id, box.instance_id)  # static object -> timestamp -1
        assert obj is not None and obj.name == "car" and dk.id2label[obj.semanticId].name == "car"
        assert (obj.start_frame, obj.end_frame, obj.timestamp) == (box.start_frame, box.end_frame, -1)
        # hand-built corners: centre + R_z(yaw) (sx l/2, sy w/2, sz h/2) in KITTI-360's vertex order
        signs = np.array([(1, 1, 1), (1, 1, -1), (1, -1, 1), (1, -1, -1), (-1, 1, -1), (-1, 1, 1),
                          (-1, -1, -1), (-1, -1, 1)], dtype=float)
        c, s = np.cos(box.yaw), np.sin(box.yaw)
        R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        expected = (signs * np.asarray(box.size) / 2) @ R.T + np.asarray(box.center)
        np.testing.assert_allclose(obj.vertices, expected, atol=1e-12)
        np.testing.assert_allclose(obj.T, box.center, atol=0)
        assert obj.faces.shape == (12, 3)


class _CarTable:
    """A struct of arrays like the scene's car table (instance_id, center, size, yaw)."""

    def __init__(self):
        self.instance_id = np.array([3, 4], dtype=np.int32)
        self.center = np.array([[5.0, 1.0, 0.7], [-8.0, 2.0, 0.8]])
        self.size = np.array([[4.0, 1.8, 1.4], [4.5, 1.9, 1.6]])
        self.yaw = np.array([0.0, np.pi / 2])


def test_bboxes_from_struct_of_arrays_with_one_frame_window(tmp_path):
    import kitti360_devkit as dk

    ke.write_bboxes_xml(tmp_path, SEQ, _CarTable(), 3, 9)
    ann = dk.Annotation3D(str(tmp_path / "data_3d_bboxes"), SEQ)
    assert ann.num_bbox == 2
    obj = ann(dk.kittiId2label[13].id, 4)
    assert (obj.start_frame, obj.end_frame) == (3, 9)
    # yaw 90 deg: the length (4.5 m) runs along world y, the width (1.9 m) along world x
    np.testing.assert_allclose(obj.vertices.max(axis=0) - obj.vertices.min(axis=0), [1.9, 4.5, 1.6], atol=1e-12)
    np.testing.assert_allclose(obj.vertices.mean(axis=0), [-8.0, 2.0, 0.8], atol=1e-12)
    with pytest.raises(ValueError, match="start_frame and end_frame"):
        ke.write_bboxes_xml(tmp_path, SEQ, _CarTable())


def test_box_faces_are_outward_and_cover_the_box():
    V, faces = ke.BOX_UNIT_VERTICES, ke.BOX_FACES
    a, b, c = V[faces[:, 0]], V[faces[:, 1]], V[faces[:, 2]]
    normals = np.cross(b - a, c - a)
    centroids = (a + b + c) / 3
    assert np.all(np.einsum("ij,ij->i", normals, centroids) > 0)  # outward (centre at the origin)
    assert np.linalg.norm(normals, axis=1).sum() / 2 == pytest.approx(6.0)  # total area of the unit cube
    # the two vertices joined by local x (length) edges differ only in x, as the fork's convert_vertices assumes
    for i, j in [(0, 5), (1, 4), (3, 6), (2, 7)]:
        np.testing.assert_array_equal(np.nonzero(V[i] != V[j])[0], [0])


def test_bboxes_reject_bad_input(tmp_path):
    good = ke.Box3D(1, (0.0, 0.0, 0.0), (4.0, 2.0, 1.5), 0.0, 0, 10)
    with pytest.raises(ValueError, match="duplicate"):
        ke.write_bboxes_xml(tmp_path, SEQ, [good, good])
    with pytest.raises(ValueError, match="size"):
        ke.write_bboxes_xml(tmp_path, SEQ, [good._replace(size=(4.0, 0.0, 1.0))])
    with pytest.raises(ValueError, match="start_frame"):
        ke.write_bboxes_xml(tmp_path, SEQ, [good._replace(start_frame=11)])


def test_split_file(tmp_path):
    path = ke.write_split(tmp_path / "splits" / "test_files.txt", [(SEQ, 42, "l"), (SEQ, 1234567, "r")])
    assert path.read_text() == f"{SEQ} 0000000042 l\n{SEQ} 0001234567 r\n"
    with pytest.raises(ValueError, match="side"):
        ke.write_split(path, [(SEQ, 1, "left")])
