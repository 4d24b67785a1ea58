"""Object labels: the 3-D box test against hand geometry, the documented id order / overlap / 255 rules, the PNG
format, and on the smoke world an independent check against the oracle's car solids and its own car table."""

import numpy as np
import pytest

from vipocc.data import occupancy_gt as og
from vipocc.data.bboxes import BoxArrays
from vipocc.data.occupancy_labels import (FREE, OCCUPIED_NON_OBJECT, frame_box_indices, load_object_labels,
                                          object_label_map, object_label_path, points_in_boxes, save_object_labels)
from vipocc.data.occupancy_stage import OccupancyGtSettings, occupancy_gt_sequence, world_to_reference
from vipocc.synthetic.kitti360_export import BOX_UNIT_VERTICES
from vipocc.synthetic.oracle import WorldOracle

SEQ = "2013_05_28_drive_0004_sync"  # the smoke world's test sequence


def box_vertices(center, size, yaw):
    """[8, 3] KITTI-360-ordered vertices of a box (length along yaw about +z), made like the XML exporter does."""
    c, s = np.cos(yaw), np.sin(yaw)
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return (BOX_UNIT_VERTICES * np.asarray(size)) @ rotation.T + np.asarray(center)


def test_points_in_a_rotated_box_match_hand_geometry():
    yaw = np.radians(30)
    length_axis, width_axis = np.array([np.cos(yaw), np.sin(yaw), 0]), np.array([-np.sin(yaw), np.cos(yaw), 0])
    center = np.array([5.0, -2.0, 1.0])
    vertices = box_vertices(center, (4.0, 2.0, 1.0), yaw)[None]
    offsets = {  # (along length, along width, along height) -> inside?
        (1.9, 0, 0): True, (2.1, 0, 0): False, (-1.9, 0.9, 0.49): True, (0, 1.1, 0): False, (0, 0, 0.51): False,
        (0, -0.99, -0.49): True, (2.0, 0, 0): True,  # on the face: the test is closed
        (1.9, 0.9, 0): True, (1.0, 1.0 + 1e-6, 0): False,
    }
    points = np.array([center + a * length_axis + b * width_axis + np.array([0, 0, h]) for a, b, h in offsets])
    np.testing.assert_array_equal(points_in_boxes(points, vertices)[0], list(offsets.values()))


def test_far_boxes_are_pruned_without_changing_the_answer():
    rng = np.random.default_rng(0)
    points = rng.uniform(-3, 3, size=(500, 3))
    boxes = np.stack([box_vertices(rng.uniform(-60, 60, 3), rng.uniform(0.5, 4, 3), rng.uniform(-3, 3))
                      for _ in range(40)] + [box_vertices((0.5, 0, 0), (3, 2, 2), 0.3)])
    inside = points_in_boxes(points, boxes)
    # brute force: the same test one box at a time (no pruning happens with a single box)
    single = np.stack([points_in_boxes(points, boxes[k:k + 1])[0] for k in range(len(boxes))])
    np.testing.assert_array_equal(inside, single)
    assert inside[-1].any()


def test_label_map_ids_follow_the_given_order_overlaps_take_the_smaller_id_and_others_are_0_or_255():
    grid = og.query_grid((10.0, 4.0), (-4.0, 4.0), 0.375, 10)  # [60, 80, 3]
    occupied = np.zeros(grid.shape[:2], dtype=bool)
    occupied[:5] = True  # far rows occupied, outside every box
    boxes = np.stack([  # (length, width, height) along (x, y, z) of this frame
        box_vertices((0.0, 0.375, 6.0), (1.0, 1.0, 2.0), 0.0),   # contains cells
        box_vertices((0.0, 3.0, 6.0), (1.0, 1.0, 2.0), 0.0),     # below the slice height: no cell
        box_vertices((0.4, 0.375, 6.0), (1.0, 1.0, 2.0), 0.0),   # overlaps the first
    ])
    labels, labelled = object_label_map(grid, occupied, boxes)
    np.testing.assert_array_equal(labelled, [0, 2])
    assert labels.dtype == np.uint8 and labels.shape == (60, 80)
    x, z = grid[..., 0], grid[..., 2]
    in_first = (np.abs(x) <= 0.5) & (np.abs(z - 6.0) <= 1.0)
    in_third = (np.abs(x - 0.4) <= 0.5) & (np.abs(z - 6.0) <= 1.0)
    np.testing.assert_array_equal(labels == 1, in_first)
    np.testing.assert_array_equal(labels == 2, in_third & ~in_first)
    np.testing.assert_array_equal(labels == OCCUPIED_NON_OBJECT, occupied & ~in_first & ~in_third)
    np.testing.assert_array_equal(labels == FREE, ~occupied & ~in_first & ~in_third)


def test_more_than_254_objects_is_an_error():
    grid = og.query_grid((10.0, 4.0), (-4.0, 4.0), 0.375, 10)  # 4800 cells
    centers = grid.reshape(-1, 3)[::18][:255]
    boxes = np.stack([box_vertices(c, (0.05, 0.05, 0.05), 0.0) for c in centers])
    with pytest.raises(ValueError, match="at most 254"):
        object_label_map(grid, np.zeros(grid.shape[:2], bool), boxes)
    labels, labelled = object_label_map(grid, np.zeros(grid.shape[:2], bool), boxes[:254])
    assert len(labelled) == 254 and labels.max() == 254 and np.count_nonzero(labels) == 254


def test_frame_boxes_are_static_plus_this_frames_dynamic_of_the_label_in_instance_order():
    n = 6
    table = BoxArrays(vertices_world=np.zeros((n, 8, 3)), timestamp=np.array([-1, 7, -1, 8, -1, 7]),
                      instance_id=np.array([30, 5, 12, 1, 12, 2]), kitti_id=np.full(n, 13),
                      semantic_id=np.full(n, 26), label=np.array(["car", "car", "car", "car", "building", "truck"],
                                                                 dtype=object))
    np.testing.assert_array_equal(frame_box_indices(table, 7), [1, 2, 0])
    np.testing.assert_array_equal(frame_box_indices(table, 7, ("car", "truck")), [5, 1, 2, 0])
    np.testing.assert_array_equal(frame_box_indices(table, 8, None), [3, 2, 4, 0])  # tie 12: file order


def test_png_round_trip_and_errors(tmp_path):
    labels = np.random.default_rng(1).integers(0, 256, size=(460, 80), dtype=np.uint8)
    path = save_object_labels(tmp_path, "seq", 42, labels)
    assert path == tmp_path / "seq_0000000042_occgt_anno.png" == object_label_path(tmp_path, "seq", 42)
    np.testing.assert_array_equal(load_object_labels(tmp_path, "seq", 42), labels)
    assert not list(tmp_path.glob(".*"))  # atomic writer left no temporary file
    with pytest.raises(FileNotFoundError, match="seq_0000000043_occgt_anno.png"):
        load_object_labels(tmp_path, "seq", 43)
    with pytest.raises(ValueError, match="uint8"):
        save_object_labels(tmp_path, "seq", 1, labels.astype(np.uint16))


# ------------------------------------------------------------------------------------------------ smoke world


@pytest.fixture(scope="module")
def smoke_labels(smoke_world, tmp_path_factory):
    """Labels, final GT and cell points in world coordinates of the smoke world's test frames (12 scans each)."""
    from vipocc.data.calibration import load_calibration
    from vipocc.data.poses import load_poses

    raw, out = smoke_world / "kitti360", tmp_path_factory.mktemp("labels")
    frames = [0, 4]
    settings = OccupancyGtSettings(aggregate_scans=12)
    occupancy_gt_sequence(raw, out, SEQ, frames, settings, progress=False)
    calibration, poses = load_calibration(raw), load_poses(raw, SEQ)
    grid = settings.grid().reshape(-1, 3).astype(np.float64)
    result = []
    for frame in frames:
        ref_to_world = np.linalg.inv(world_to_reference(poses.imu_to_world[poses.index_of(frame)], calibration))
        occupied, visible = og.load_occupancy_gt(out / "GT_Occ", SEQ, frame, settings.z_range)
        labels = load_object_labels(out / "Object_Label", SEQ, frame).ravel()
        result.append((labels, (occupied & ~visible).ravel(), grid @ ref_to_world[:3, :3].T + ref_to_world[:3, 3]))
    return result


def test_smoke_labels_are_the_oracle_cars_in_instance_order_and_255_cells_are_occupied(smoke_world, smoke_labels):
    scene = WorldOracle(smoke_world).scene(SEQ)
    cars = scene.cars
    for labels, final, world in smoke_labels:
        ids = np.unique(labels[(labels != FREE) & (labels != OCCUPIED_NON_OBJECT)])
        assert len(ids) >= 3 and np.array_equal(ids, np.arange(1, len(ids) + 1))  # several cars, ids 1..K
        assert FREE in labels and OCCUPIED_NON_OBJECT in labels  # the evaluator drops unique()[0] and [-1]
        np.testing.assert_array_equal(final[labels == OCCUPIED_NON_OBJECT], True)
        assert not final[labels == FREE].any()
        instance = scene.instance_at(world)  # independent truth: the car solid containing each cell point
        local = np.einsum("cpk,ckj->cpj", world[None] - cars.center[:, None], cars.rotations())  # [C, P, 3]
        in_car_box = np.all(np.abs(local) <= cars.size[:, None] / 2 + 1e-6, axis=2)  # oracle table, closed
        owners = []
        for k in ids:
            cells = labels == k
            containing = np.flatnonzero(in_car_box[:, cells].all(axis=1))
            assert len(containing) == 1, f"label {k}: {len(containing)} oracle car boxes hold all its cells"
            owner = int(cars.instance_id[containing[0]])
            owners.append(owner)
            assert set(np.unique(instance[cells])) <= {0, owner}  # car solids under label k belong to its car
            assert np.array_equal(cells, in_car_box[containing[0]])  # and every cell of that box has label k
        assert owners == sorted(owners)  # ids follow ascending instance id
        in_car = instance > 0  # a cell inside a car solid carries that car's label
        mapping = dict(zip(owners, ids))
        np.testing.assert_array_equal(labels[in_car], [mapping[i] for i in instance[in_car]])
