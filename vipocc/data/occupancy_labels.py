"""Object labels of the occupancy slices: ``Object_Label/<seq>_<frame:010d>_occgt_anno.png``.

KYN ships these maps with its GT download but not the program that made them (reference-implementation.md 1.8), so
the rule below is ours. The map is uint8 ``[rows, cols]`` on exactly the grid of the ``GT_Occ`` files (row 0 = the
far end, see :func:`vipocc.data.occupancy_gt.query_grid`):

* ``1..K`` (K <= 254): the cell's query point (the 3-D point at the slice height y, in the inclination-corrected
  cam0 frame) lies inside 3-D box k. The box test is 3-D, not a footprint in the ground plane: a box that does not
  reach the slice height labels nothing. The test is closed (points on a face are inside) and uses the box's own
  edge vectors (:func:`vipocc.data.bboxes.convert_vertices`), so sheared or scaled boxes are handled exactly.
* ``255``: not inside any box, and occupied in the evaluated GT (``occupied & ~visible``, what the evaluator scores).
* ``0``: not inside any box and free in the evaluated GT.

A box cell keeps its id whatever the lidar GT says there (the evaluator only uses the ids' bounding rectangles).

Which boxes, and their ids: the candidate boxes are the static boxes (timestamp -1) plus the boxes stamped with the
evaluated frame, whose label is in ``labels`` (default ``("car",)``), from ``data_3d_bboxes/train/<seq>.xml`` - with
no frustum test, because every grid cell (x in [-4, 4] m, z >= 4 m) lies inside the camera's horizontal field of
view anyway. Boxes that contain no cell are dropped; the others get ids 1, 2, ... in ascending KITTI-360
``instanceId`` order (file order on ties). A cell inside several boxes takes the smallest id. More than 254
labelled boxes in one map raise ValueError (uint8 has no room; it cannot happen in an 8 m wide strip of real data).

Evaluator caveat (reference quirk, kept): it drops ``unique()[0]`` and ``unique()[-1]`` assuming both 0 and 255
occur; a map without a free or without an occupied non-object cell loses a real id there.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from vipocc.data.bboxes import BoxArrays, convert_vertices
from vipocc.io import write_png

__all__ = ["FREE", "OCCUPIED_NON_OBJECT", "MAX_OBJECTS", "DEFAULT_OBJECT_LABELS", "points_in_boxes",
           "frame_box_indices", "object_label_map", "object_label_path", "save_object_labels",
           "load_object_labels"]

FREE = 0
OCCUPIED_NON_OBJECT = 255
MAX_OBJECTS = 254
DEFAULT_OBJECT_LABELS = ("car",)
_INSIDE_TOL = 1e-9  # in units of the box size: closed test robust to the rounding of the edge-vector solve


def points_in_boxes(points: np.ndarray, box_vertices: np.ndarray) -> np.ndarray:
    """bool [K, P]: point p lies inside (or on) box k.

    points: [P, 3] metres; box_vertices: [K, 8, 3] metres in the same frame, KITTI-360 vertex order. Each box is
    the parallelepiped spanned by its mean width, height and length edge vectors around the vertex mean.
    """
    points = np.asarray(points, dtype=np.float64)
    vertices = np.asarray(box_vertices, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points: expected [P, 3], got {points.shape}")
    if vertices.ndim != 3 or vertices.shape[1:] != (8, 3):
        raise ValueError(f"box_vertices: expected [K, 8, 3], got {vertices.shape}")
    inside = np.zeros((len(vertices), len(points)), dtype=bool)
    if len(vertices) == 0 or len(points) == 0:
        return inside
    geometry = convert_vertices(vertices)
    # Columns of `edges` are the full width, height and length edge vectors of each box: [K, 3, 3].
    edges = geometry["rotation"] * geometry["whl"][:, None, :] * np.array([-1.0, -1.0, 1.0])
    if not np.all(np.abs(np.linalg.det(edges)) > 1e-12):
        raise ValueError("box_vertices: a box is degenerate (its edges do not span a volume)")
    # A sequence holds thousands of static boxes: only those whose bounds meet the points' bounds are solved.
    margin = 1e-6 * (1.0 + np.abs(vertices).max())
    near = np.flatnonzero(np.all((vertices.min(axis=1) <= points.max(axis=0) + margin)
                                 & (vertices.max(axis=1) >= points.min(axis=0) - margin), axis=1))
    offsets = points[None, :, :] - geometry["center"][near, None, :]  # [k, P, 3]
    local = np.linalg.solve(edges[near], offsets.transpose(0, 2, 1))  # [k, 3, P], box coordinates in [-0.5, 0.5]
    inside[near] = np.all(np.abs(local) <= 0.5 + _INSIDE_TOL, axis=1)
    return inside


def frame_box_indices(boxes: BoxArrays, frame: int, labels: Sequence[str] | None = DEFAULT_OBJECT_LABELS
                      ) -> np.ndarray:
    """Indices int64 [N] into `boxes` of the candidate boxes of image `frame`, in id order.

    Candidates: static (timestamp -1) or stamped `frame`, label in `labels` (None/empty = every label). Order:
    ascending instance_id, file order on ties (the id order of :func:`object_label_map`).
    """
    candidate = (boxes.timestamp == -1) | (boxes.timestamp == int(frame))
    if labels:
        candidate &= np.isin(boxes.label.astype(str), list(labels))
    indices = np.flatnonzero(candidate)
    return indices[np.argsort(boxes.instance_id[indices], kind="stable")]


def object_label_map(query_points: np.ndarray, occupied: np.ndarray, box_vertices: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The object label map of one slice and which boxes got an id.

    query_points: [rows, cols, 3] cell points (metres, inclination-corrected cam0 frame); occupied: bool
    [rows, cols], the evaluated GT (``occupied & ~visible``); box_vertices: [N, 8, 3] candidate boxes in the same
    frame, already in id order (:func:`frame_box_indices`).

    Returns (labels uint8 [rows, cols], labelled int64 [K]): ``labelled[k - 1]`` is the index into box_vertices of
    the box with id k. ValueError when more than 254 boxes contain a cell.
    """
    query_points = np.asarray(query_points)
    occupied = np.asarray(occupied)
    if query_points.ndim != 3 or query_points.shape[2] != 3:
        raise ValueError(f"query_points: expected [rows, cols, 3], got {query_points.shape}")
    if occupied.dtype != np.bool_ or occupied.shape != query_points.shape[:2]:
        raise ValueError(f"occupied: expected bool {query_points.shape[:2]}, got {occupied.dtype} {occupied.shape}")
    inside = points_in_boxes(query_points.reshape(-1, 3), box_vertices)  # [N, P]
    labelled = np.flatnonzero(inside.any(axis=1))
    if len(labelled) > MAX_OBJECTS:
        raise ValueError(f"{len(labelled)} boxes contain slice cells; an object label map holds at most "
                         f"{MAX_OBJECTS}")
    labels = np.where(occupied.ravel(), OCCUPIED_NON_OBJECT, FREE).astype(np.uint8)
    if len(labelled):
        hits = inside[labelled]
        in_any = hits.any(axis=0)
        labels[in_any] = (np.argmax(hits[:, in_any], axis=0) + 1).astype(np.uint8)  # first box = smallest id
    return labels.reshape(occupied.shape), labelled


def object_label_path(directory: str | os.PathLike, seq: str, frame: int) -> Path:
    """``<directory>/<seq>_<frame:010d>_occgt_anno.png`` (directory = the Object_Label folder)."""
    return Path(directory) / f"{seq}_{int(frame):010d}_occgt_anno.png"


def save_object_labels(directory: str | os.PathLike, seq: str, frame: int, labels: np.ndarray) -> Path:
    """Write a uint8 [rows, cols] label map as a single-channel 8-bit PNG (atomic). Returns the path."""
    labels = np.asarray(labels)
    if labels.dtype != np.uint8 or labels.ndim != 2:
        raise ValueError(f"labels: expected a uint8 [rows, cols] map, got {labels.dtype} {labels.shape}")
    path = object_label_path(directory, seq, frame)
    write_png(path, np.ascontiguousarray(labels))
    return path


def load_object_labels(directory: str | os.PathLike, seq: str, frame: int) -> np.ndarray:
    """uint8 [rows, cols] label map; FileNotFoundError / ValueError naming the file when missing or unreadable."""
    path = object_label_path(directory, seq, frame)
    if not path.is_file():
        raise FileNotFoundError(f"object label map not found: {path}")
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"{path}: not a single-channel 8-bit PNG")
    return labels
