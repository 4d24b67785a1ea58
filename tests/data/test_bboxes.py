"""3D boxes: world vertices equal the official devkit's; the boxes in view match the oracle's car table (sizes,
centres, orientations, and an independent frustum test on the oracle's own corners)."""

import textwrap

import numpy as np
import pytest

from vipocc.data.bboxes import boxes_in_view, convert_vertices, load_bboxes, stack_boxes
from vipocc.data.calibration import load_calibration
from vipocc.data.poses import load_poses
from vipocc.synthetic.oracle import WorldOracle

SEQ = "2013_05_28_drive_0000_sync"


@pytest.fixture(scope="module")
def boxes(smoke_world):
    return load_bboxes(smoke_world / "kitti360", SEQ)


@pytest.fixture(scope="module")
def cars(smoke_world):
    return WorldOracle(smoke_world).scene(SEQ).cars


def test_world_vertices_equal_the_devkit(boxes, smoke_world, devkit):
    annotation = devkit.Annotation3D(str(smoke_world / "kitti360" / "data_3d_bboxes"), SEQ)
    assert len(boxes) == annotation.num_bbox > 0
    for box in boxes:  # a few dozen objects
        semantic_id = devkit.kittiId2label[box.kitti_id].id
        obj = annotation(semantic_id, box.instance_id)
        assert obj is not None and obj.name == box.label == "car" and box.semantic_id == semantic_id
        np.testing.assert_allclose(box.vertices_world, obj.vertices, rtol=0, atol=1e-12)
        assert (box.timestamp, box.start_frame, box.end_frame) == (obj.timestamp, obj.start_frame, obj.end_frame)


def test_boxes_equal_the_oracle_cars(boxes, cars):
    table = stack_boxes(boxes)
    order = np.argsort(table.instance_id)
    np.testing.assert_array_equal(table.instance_id[order], np.sort(cars.instance_id))
    geometry = convert_vertices(table.vertices_world[order])
    by_id = np.argsort(cars.instance_id)
    size = cars.size[by_id]  # (length, width, height)
    np.testing.assert_allclose(geometry["whl"], size[:, [1, 2, 0]], atol=1e-9)
    np.testing.assert_allclose(geometry["center"], cars.center[by_id], atol=1e-9)
    # rotation columns (-e_w, -e_h, e_l): length axis = the car's yaw direction, height axis = world up
    yaw = cars.yaw[by_id]
    np.testing.assert_allclose(geometry["rotation"][:, :, 2], np.stack([np.cos(yaw), np.sin(yaw), 0 * yaw], 1),
                               atol=1e-9)
    np.testing.assert_allclose(geometry["rotation"][:, :, 1], np.tile([0, 0, -1.0], (len(yaw), 1)), atol=1e-9)


def _frustum_truth(corners_cam, K, all_vertices):
    """Independent per-corner test written out on the oracle corners (any vertex order)."""
    u = (corners_cam @ K.T)
    x, y, z = u[..., 0] / u[..., 2], u[..., 1] / u[..., 2], corners_cam[..., 2]
    ok = (np.abs(x) <= 1) & (np.abs(y) <= 1) & (z > 3) & (z <= 80)
    return ok.all(1) if all_vertices else ok.any(1)


@pytest.mark.parametrize("all_vertices", [True, False])
def test_boxes_in_view_select_the_cars_in_the_frustum(boxes, cars, smoke_world, all_vertices):
    root = smoke_world / "kitti360"
    calib = load_calibration(root)
    poses = load_poses(root, SEQ)
    for index in (0, 12):
        cam_to_world = poses.imu_to_world[index] @ calib.T_rect_to_pose[0]
        world_to_cam = np.linalg.inv(cam_to_world)
        found = boxes_in_view(boxes, int(poses.frames[index]), world_to_cam, calib.K_perspective,
                              all_vertices=all_vertices)
        corners_cam = cars.corners() @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
        expected = np.sort(cars.instance_id[_frustum_truth(corners_cam, calib.K_perspective, all_vertices)])
        assert len(expected) > 0
        np.testing.assert_array_equal(np.sort(found["instance_id"]), expected)
        n = len(expected)
        assert found["vertices"].shape == found["vertices_world"].shape == (n, 8, 3)
        rows = np.searchsorted(cars.instance_id, found["instance_id"])
        np.testing.assert_allclose(found["whl"], cars.size[rows][:, [1, 2, 0]], atol=1e-9)
        np.testing.assert_allclose(found["center"], cars.center[rows] @ world_to_cam[:3, :3].T + world_to_cam[:3, 3],
                                   atol=1e-9)
        R = found["rotation"]
        np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
        np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
        assert np.all(found["kitti_id"] == 13) and np.all(found["semantic_id"] == 26)


def test_label_filter(boxes, smoke_world):
    calib = load_calibration(smoke_world / "kitti360")
    world_to_cam = np.linalg.inv(load_poses(smoke_world / "kitti360", SEQ).imu_to_world[0] @ calib.T_rect_to_pose[0])
    cars_only = boxes_in_view(boxes, 2, world_to_cam, calib.K_perspective, labels=["car"])
    assert len(cars_only["instance_id"]) > 0
    everything = boxes_in_view(boxes, 2, world_to_cam, calib.K_perspective, labels=None)
    np.testing.assert_array_equal(everything["instance_id"], cars_only["instance_id"])
    none = boxes_in_view(boxes, 2, world_to_cam, calib.K_perspective, labels=["person"])
    assert none["vertices"].shape == (0, 8, 3) and none["rotation"].shape == (0, 3, 3)


def _matrix(tag, rows, cols, values):
    data = " ".join(str(v) for v in np.ravel(values))
    return (f"<{tag} type_id=\"opencv-matrix\"><rows>{rows}</rows><cols>{cols}</cols><dt>d</dt>"
            f"<data>{data}</data></{tag}>")


UNIT = [[0.5, 0.5, 0.5], [0.5, 0.5, -0.5], [0.5, -0.5, 0.5], [0.5, -0.5, -0.5],
        [-0.5, 0.5, -0.5], [-0.5, 0.5, 0.5], [-0.5, -0.5, -0.5], [-0.5, -0.5, 0.5]]


def _object(name, fields, transform):
    body = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return f"<{name}>{body}{_matrix('transform', 4, 4, transform)}{_matrix('vertices', 8, 3, UNIT)}</{name}>"


@pytest.fixture()
def handmade(tmp_path):
    """A static car in front of the camera, a dynamic person stamped at frame 5, and a stuff 'driveway' box."""
    car = np.array([[4.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 1.5, 10.0], [0, 0, 0, 1]])  # length 4 along x, at z 10
    person = np.array([[0.5, 0, 0, 0.5], [0, 0.5, 0, 0], [0, 0, 1.8, 8.0], [0, 0, 0, 1]])
    fields = {"semanticId": 13, "instanceId": 3, "timestamp": -1, "start_frame": 0, "end_frame": 9, "index": 0}
    objects = [_object("object1", fields, car),
               _object("object2", dict(fields, semanticId=19, instanceId=4, timestamp=5, index=1), person),
               _object("object3", {"label": "driveway", "start_frame": 0, "end_frame": 9, "index": 2}, car),
               "<object4><label>no transform: skipped</label></object4>"]
    path = tmp_path / "data_3d_bboxes" / "train" / "s.xml"
    path.parent.mkdir(parents=True)
    path.write_text(f"<?xml version=\"1.0\"?><opencv_storage>{''.join(objects)}</opencv_storage>")
    return tmp_path


def test_handmade_boxes(handmade):
    boxes = load_bboxes(handmade, "s")
    assert [(b.label, b.kitti_id, b.semantic_id, b.instance_id, b.timestamp) for b in boxes] == [
        ("car", 13, 26, 3, -1), ("person", 19, 24, 4, 5), ("parking", 2, 9, 0, -1)]
    np.testing.assert_allclose(boxes[0].vertices_world[0], [2.0, 1.0, 10.75])
    K = np.array([[0.5, 0, 0], [0, 0.5, 0], [0, 0, 1.0]])  # 127 deg field of view: every box is inside
    at_5 = boxes_in_view(boxes, 5, np.eye(4), K, labels=None)
    at_6 = boxes_in_view(boxes, 6, np.eye(4), K, labels=None)
    assert at_5["instance_id"].tolist() == [3, 0, 4]  # static boxes first, then the frame's dynamic ones
    assert at_6["instance_id"].tolist() == [3, 0]
    # the car: axes of the transform -> whl (2, 1.5, 4) and rotation columns (-y, -z, x)
    np.testing.assert_allclose(at_6["whl"][0], [2.0, 1.5, 4.0])
    np.testing.assert_allclose(at_6["rotation"][0], [[0, 0, 1], [-1, 0, 0], [0, -1, 0]])
    np.testing.assert_allclose(at_6["center"][0], [0, 0, 10.0])
    # the car spans z 9.25..10.75; 7 m closer some vertices are nearer than z = 3: out with all, in with any
    closer = np.eye(4)
    closer[2, 3] = -7.0
    assert boxes_in_view(boxes, 6, closer, K, labels=["car"])["instance_id"].tolist() == []
    assert boxes_in_view(boxes, 6, closer, K, labels=["car"], all_vertices=False)["instance_id"].tolist() == [3]


def test_bbox_file_errors(tmp_path, handmade):
    with pytest.raises(FileNotFoundError, match=r"data_3d_bboxes/train/missing.xml"):
        load_bboxes(tmp_path, "missing")
    path = handmade / "data_3d_bboxes" / "train" / "s.xml"
    path.write_text(path.read_text()[:-40])
    with pytest.raises(ValueError, match=r"s.xml: malformed XML"):
        load_bboxes(handmade, "s")
    path.write_text(textwrap.dedent(f"""\
        <opencv_storage><object1><semanticId>99</semanticId>{_matrix('transform', 4, 4, np.eye(4))}
        {_matrix('vertices', 8, 3, UNIT)}</object1></opencv_storage>"""))
    with pytest.raises(ValueError, match=r"s.xml: malformed object <object1>: unknown KITTI-360 semanticId 99"):
        load_bboxes(handmade, "s")
