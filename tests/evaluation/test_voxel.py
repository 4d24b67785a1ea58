"""The voxel evaluator (the fork's eval_voxel): perfect / empty predictions with hand-counted scores, the
under-ground relabelling, the frustum, the object mask of 1.5x-scaled boxes, and the grid box mask (tests only the
voxels near each box) against the plain test of every centre."""
import math

import numpy as np
import pytest
import torch

from vipocc.data.voxel_gt import VOXEL_ORIGIN, VOXEL_SHAPE, VOXEL_SIZE, voxel_centers
from vipocc.evaluation.voxel import (VoxelSettings, evaluate_voxel, fix_under_ground, in_frustum,
                                     points_in_boxes, voxels_in_boxes)

# velodyne (x forward, y left, z up) -> camera (x right, y down, z forward)
VELO_TO_CAM = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float32)
K = np.array([[0.5, 0, 0], [0, 0.5, 0], [0, 0, 1]], dtype=np.float32)  # |x/z| < 2 and |y/z| < 2 in view


def _centre(i, j, k):
    return np.asarray(VOXEL_ORIGIN) + (np.array([i, j, k]) + 0.5) * VOXEL_SIZE


class LabelField(torch.nn.Module):
    """Stub field: sigma = 1 inside the voxels whose (independently computed) index is marked, else 0."""

    def __init__(self, occupied: np.ndarray) -> None:
        super().__init__()
        self.occupied = occupied

    def encode(self, image, K, w2c, flip=False):
        pass

    def density(self, points):
        cam = points[0].double().numpy()
        velo = np.stack([cam[:, 2], -cam[:, 0], -cam[:, 1]], axis=1)  # inverse of VELO_TO_CAM
        index = np.floor((velo - np.asarray(VOXEL_ORIGIN)) / VOXEL_SIZE).astype(int)
        sigma = self.occupied[index[:, 0], index[:, 1], index[:, 2]].astype(np.float32)
        return torch.from_numpy(sigma)[None], torch.zeros(1, len(sigma), dtype=torch.bool)


def _world():
    """Labels: ground k = 5 everywhere (label 7), a 'car' block i 50..59, j 120..135, k 6..12 (label 26); the
    voxels below the ground stay 0 (relabelled unknown); j < 8 unknown. Visible: the free voxels with i < 40."""
    labels = np.zeros(VOXEL_SHAPE, np.uint8)
    labels[:, :, 5] = 7
    labels[50:60, 120:136, 6:13] = 26
    labels[:, :8] = 255
    visible = np.zeros(VOXEL_SHAPE, bool)
    visible[:40, :, 6:] = True
    return labels, visible


def _sample(labels, visible, boxes=None):
    return {"imgs": [torch.zeros(3, 8, 8)], "projs": [torch.from_numpy(K)], "seq": "s", "img_id": 0,
            "voxel": labels.astype(np.int32), "voxel_visible": visible, "voxellidar2c": VELO_TO_CAM,
            "3d_bboxes": boxes or {}}


def _hand_valid():
    """Valid voxels, counted independently: in the frustum (velo |y| < 2x, |z| < 2x), not unknown."""
    i, j, k = np.indices(VOXEL_SHAPE)
    x, y, z = (np.asarray(VOXEL_ORIGIN)[:, None, None, None] + (np.stack([i, j, k]) + 0.5) * VOXEL_SIZE)
    labels, _ = _world()
    fixed = labels.copy()
    fixed[:, :, :5][fixed[:, :, :5] == 0] = 255
    return (np.abs(y) < 2 * x) & (np.abs(z) < 2 * x) & (fixed != 255), fixed


def test_fix_under_ground_marks_only_empty_voxels_below_the_lowest_label():
    column = np.zeros((1, 1, 8), np.uint8)
    column[0, 0, [3, 6]] = [7, 26]
    np.testing.assert_array_equal(fix_under_ground(column)[0, 0], [255, 255, 255, 7, 0, 0, 26, 0])
    empty = np.zeros((1, 1, 4), np.uint8)
    np.testing.assert_array_equal(fix_under_ground(empty)[0, 0], [255] * 4)  # the fork: surface index = Z


def test_in_frustum_is_strict_and_needs_positive_depth():
    points = np.array([[0, 0, 1], [0.999, 0, 0.5], [1, 0, 0.5], [0, 0, -1], [0, 0, 5e-5]], np.float32)
    np.testing.assert_array_equal(in_frustum(points, K), [True, True, False, False, False])


def test_points_in_scaled_rotated_box():
    R = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], float)  # box width axis along +y
    center, whl = np.array([[10.0, 0, 0]]), np.array([[2.0, 1.0, 4.0]])
    # columns: width along +y (half 1), height along -x (half 0.5), length along +z (half 2)
    points = np.array([[10, 0.99, 0], [10, 1.01, 0], [10, 1.4, 0], [10, 1.6, 0], [10, 0, 1.9], [10, 0, 2.1],
                       [10.6, 0, 0]])
    np.testing.assert_array_equal(points_in_boxes(points, center, whl, R[None]), [1, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(points_in_boxes(points, center, whl, R[None], 1.5), [1, 1, 1, 0, 1, 1, 1])


def test_grid_box_mask_equals_testing_every_centre():
    # a tilted velodyne -> camera transform and rotated boxes: near the camera, straddling the grid's edges, far off
    yaw, pitch = 0.3, 0.05
    tilt = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]]) @ np.array(
        [[np.cos(pitch), 0, np.sin(pitch)], [0, 1, 0], [-np.sin(pitch), 0, np.cos(pitch)]])
    velo_to_cam = VELO_TO_CAM.astype(np.float64) @ np.block([[tilt, np.array([[0.3], [-0.2], [1.1]])],
                                                             [np.zeros((1, 3)), np.ones((1, 1))]])
    centers = np.concatenate([voxel_centers(), np.ones((len(voxel_centers()), 1))], axis=1).astype(np.float32)
    points = (centers @ velo_to_cam.astype(np.float32).T)[:, :3]
    angles = np.array([0.0, 0.7, -1.2, 2.0, 0.4])
    rotation = np.stack([[[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]] for a in angles])
    boxes = {"center": np.array([[0.0, 1.0, 6.0], [-24.0, 0.5, 20.0], [3.0, 3.5, 52.0], [0.0, 0.0, 400.0],
                                 [5.0, 1.2, 15.0]]),
             "whl": np.array([[1.8, 1.5, 4.2], [2.0, 3.0, 6.0], [1.8, 1.5, 4.2], [2.0, 2.0, 2.0], [0.4, 0.4, 0.4]]),
             "rotation": rotation}
    expected = points_in_boxes(points, boxes["center"], boxes["whl"], boxes["rotation"], 1.5)
    np.testing.assert_array_equal(voxels_in_boxes(points, velo_to_cam, boxes, 1.5).reshape(-1), expected)
    assert expected.sum() > 1000
    flat = {key: value[:1] for key, value in boxes.items()} | {"rotation": np.zeros((1, 3, 3))}
    np.testing.assert_array_equal(voxels_in_boxes(points, velo_to_cam, flat).reshape(-1),  # singular: plain test
                                  points_in_boxes(points, flat["center"], flat["whl"], flat["rotation"]))


def test_perfect_and_empty_predictions():
    labels, visible = _world()
    valid, fixed = _hand_valid()
    occupied = (fixed != 0) & (fixed != 255)
    settings = VoxelSettings(device="cpu")
    rows, summary = evaluate_voxel(LabelField(occupied), [_sample(labels, visible)], settings, progress=False)
    m = summary["metrics"]
    assert m["scene_o_acc"] == m["scene_ie_acc"] == m["scene_ie_rec"] == 1.0
    assert math.isnan(m["object_o_acc"])  # no boxes
    n_occ = int((occupied & valid).sum())
    assert rows[0]["tp"] == n_occ and rows[0]["fp"] == rows[0]["fn"] == 0 and m["total_iou"] == 1.0

    rows, summary = evaluate_voxel(LabelField(np.zeros(VOXEL_SHAPE, bool)), [_sample(labels, visible)], settings,
                                   progress=False)
    m = summary["metrics"]
    invisible = valid & ~visible
    assert m["scene_o_acc"] == pytest.approx(1 - n_occ / valid.sum(), rel=1e-12)
    assert m["scene_ie_acc"] == pytest.approx(1 - (occupied & invisible).sum() / invisible.sum(), rel=1e-12)
    assert m["scene_ie_rec"] == 1.0
    assert rows[0]["fn"] == n_occ and m["total_recall"] == 0.0 and math.isnan(m["total_precision"])


def test_object_mask_comes_from_boxes_scaled_by_the_margin_ratio():
    labels, visible = _world()
    valid, fixed = _hand_valid()
    occupied = (fixed != 0) & (fixed != 255)
    # a box around the car block in the camera frame: velo x 11.0..13.0 (i 50..59), y -1.6..1.6 (j 120..135)
    lo, hi = _centre(50, 120, 6) - VOXEL_SIZE / 2, _centre(59, 135, 12) + VOXEL_SIZE / 2
    centre_velo = (lo + hi) / 2
    centre_cam = VELO_TO_CAM[:3, :3] @ centre_velo
    size_velo = hi - lo  # along velo x (length), y (width), z (height)
    R = np.stack([[-1, 0, 0], [0, -1, 0], [0, 0, 1]], axis=1).astype(float)  # columns: -x_cam, -y_cam, z_cam
    whl = np.array([[size_velo[1], size_velo[2], size_velo[0]]])
    boxes = {"center": torch.tensor(centre_cam[None]), "whl": torch.tensor(whl), "rotation": torch.tensor(R[None])}
    empty = LabelField(np.zeros(VOXEL_SHAPE, bool))
    for ratio in (1.0, 1.5):
        rows, _ = evaluate_voxel(empty, [_sample(labels, visible, boxes)], VoxelSettings(bbox_margin_ratio=ratio,
                                 device="cpu"), progress=False)
        # independent box mask in voxel indices: centres strictly inside the scaled extent
        i, j, k = np.indices(VOXEL_SHAPE)
        c = np.asarray(VOXEL_ORIGIN)[:, None, None, None] + (np.stack([i, j, k]) + 0.5) * VOXEL_SIZE
        half = size_velo * ratio / 2
        inside = np.all(np.abs(c - centre_velo[:, None, None, None]) < half[:, None, None, None], axis=0)
        region = inside & valid
        assert rows[0]["object_o_acc"] == pytest.approx(1 - (occupied & region).sum() / region.sum(), abs=1e-12)
        if ratio == 1.0:
            assert rows[0]["object_o_acc"] < 0.5  # the box holds mostly the car
        else:
            assert rows[0]["object_o_acc"] > 0.5  # the margin adds free voxels around it


def test_missing_voxel_keys_are_errors():
    labels, visible = _world()
    sample = _sample(labels, visible)
    del sample["voxel_visible"]
    with pytest.raises(ValueError, match="voxel_visible"):
        evaluate_voxel(LabelField(np.zeros(VOXEL_SHAPE, bool)), [sample], VoxelSettings(device="cpu"),
                       progress=False)
