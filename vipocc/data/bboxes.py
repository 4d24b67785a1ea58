"""KITTI-360 3D bounding boxes (``data_3d_bboxes/train/<seq>.xml``) and the boxes seen by one camera.

Not part of official ViPOcc: this follows the fork ``zz-f-g/ViPOcc`` (reference-implementation.md 1.9, 5.3).

* Each child of the XML root that has a ``<transform>`` is one box: ``transform`` (OpenCV matrix, 4x4 local ->
  world), ``vertices`` (8x3 local), and either ``semanticId`` (a KITTI-360 *kittiId*) with ``instanceId``,
  ``start_frame``, ``end_frame``, ``timestamp``, or a "stuff" ``label`` (instance 0, static). World vertices are
  ``R @ v + t`` with ``[R | t]`` the top rows of the transform (R may include the box scale).
* ``timestamp = -1`` marks a static box; a dynamic box carries the frame number it belongs to.
* :func:`boxes_in_view` keeps the static boxes plus those of the frame, whose label is in ``labels``, and whose
  vertices (all, or any) project inside [-1, 1]^2 with 3 < z <= 80 m (normalised intrinsics).
* :func:`convert_vertices` gives centre, (width, height, length) and rotation with the fork's edge convention.
"""

from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["Box3D", "BoxArrays", "load_bboxes", "bboxes_path", "stack_boxes", "boxes_in_view", "convert_vertices",
           "KITTI_ID_TO_LABEL", "LABEL_NAME_TO_KITTI_ID", "Z_NEAR", "Z_FAR"]

Z_NEAR = 3.0   # m, exclusive (the fork; BTS uses 0)
Z_FAR = 80.0   # m, inclusive

# KITTI-360 label table (kitti360scripts helpers/labels.py): kittiId -> (name, label id). The label id is what the
# devkit and the fork call ``semanticId`` after parsing.
KITTI_ID_TO_LABEL: dict[int, tuple[str, int]] = {
    1: ("road", 7), 2: ("parking", 9), 3: ("sidewalk", 8), 4: ("terrain", 22), 5: ("vegetation", 21),
    6: ("gate", 35), 7: ("wall", 12), 8: ("fence", 13), 9: ("sky", 23), 10: ("rail track", 10),
    11: ("building", 11), 12: ("garage", 34), 13: ("car", 26), 14: ("truck", 27), 15: ("trailer", 30),
    16: ("caravan", 29), 17: ("motorcycle", 32), 18: ("bicycle", 33), 19: ("person", 24), 20: ("rider", 25),
    21: ("pole", 17), 22: ("smallpole", 37), 23: ("traffic light", 19), 24: ("traffic sign", 20),
    25: ("lamp", 38), 26: ("trash bin", 39), 27: ("vending machine", 40), 28: ("box", 41), 29: ("stop", 36),
    30: ("guard rail", 14), 31: ("bridge", 15), 32: ("tunnel", 16), 33: ("train", 31), 34: ("bus", 28),
    35: ("unknown construction", 42), 36: ("unknown vehicle", 43), 37: ("unknown object", 44),
}
LABEL_NAME_TO_KITTI_ID: dict[str, int] = {name: kid for kid, (name, _) in KITTI_ID_TO_LABEL.items()}
# Label ids (no kittiId, kittiId -1) that stuff annotations may still use.
_STUFF_ONLY_LABEL_IDS = {"ground": 6, "static": 4, "dynamic": 5, "unlabeled": 0}
# Stuff class names the devkit remaps before the label lookup.
_STUFF_REMAP = {"driveway": "parking", "ground": "terrain", "unknownGround": "ground", "railtrack": "rail track"}

# Vertex pairs whose differences, averaged, give the box edges (fork ``process_bbox3d.EDGES``).
_EDGE_PAIRS = {
    "length": ((0, 5), (1, 4), (3, 6), (2, 7)),
    "width": ((0, 2), (1, 3), (4, 6), (5, 7)),
    "height": ((0, 1), (2, 3), (7, 6), (5, 4)),
}


@dataclasses.dataclass(frozen=True, eq=False)
class Box3D:
    """One annotated box. ``transform`` [4,4] local -> world; ``vertices_world`` [8,3] m (KITTI-360 world frame,
    KITTI-360 vertex order); ``kitti_id`` the file's semanticId (-1 for stuff without a kittiId); ``semantic_id`` the
    KITTI-360 label id; ``label`` the class name; ``timestamp`` -1 for static boxes, else the frame number."""

    instance_id: int
    label: str
    kitti_id: int
    semantic_id: int
    transform: np.ndarray
    vertices_world: np.ndarray
    start_frame: int
    end_frame: int
    timestamp: int


@dataclasses.dataclass(frozen=True, eq=False)
class BoxArrays:
    """All boxes of a sequence as arrays (M boxes), for vectorized per-frame selection.

    vertices_world float64 [M,8,3]; timestamp, instance_id, kitti_id, semantic_id int64 [M]; label str [M].
    """

    vertices_world: np.ndarray
    timestamp: np.ndarray
    instance_id: np.ndarray
    kitti_id: np.ndarray
    semantic_id: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamp.shape[0])


def bboxes_path(root: str | os.PathLike, seq: str) -> Path:
    """``<root>/data_3d_bboxes/train/<seq>.xml`` (the fork's location; BTS reads ``train_full``)."""
    return Path(root) / "data_3d_bboxes" / "train" / f"{seq}.xml"


def load_bboxes(root: str | os.PathLike, seq: str) -> list[Box3D]:
    """All boxes of sequence ``seq`` in file order (root = KITTI-360 dataset root).

    Raises FileNotFoundError naming a missing XML and ValueError naming the file and object for malformed content.
    """
    path = bboxes_path(root, seq)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: 3D bounding box file not found")
    try:
        tree = ET.parse(path)
    except ET.ParseError as err:
        raise ValueError(f"{path}: malformed XML ({err})") from None
    boxes = []
    for child in tree.getroot():  # one XML element per annotated object
        if child.find("transform") is None:
            continue
        try:
            boxes.append(_parse_box(child))
        except (AttributeError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: malformed object <{child.tag}>: {err}") from None
    return boxes


def stack_boxes(boxes: Sequence[Box3D]) -> BoxArrays:
    """Stack a list of boxes into :class:`BoxArrays` (do it once per sequence, select per frame)."""
    ints = lambda name: np.array([getattr(b, name) for b in boxes], dtype=np.int64)  # noqa: E731
    vertices = np.stack([b.vertices_world for b in boxes]) if boxes else np.zeros((0, 8, 3))
    return BoxArrays(vertices, ints("timestamp"), ints("instance_id"), ints("kitti_id"), ints("semantic_id"),
                     np.array([b.label for b in boxes], dtype=object))


def boxes_in_view(boxes: Sequence[Box3D] | BoxArrays, frame: int, world_to_cam: np.ndarray, K_norm: np.ndarray,
                  labels: Sequence[str] | None = ("car",), all_vertices: bool = True) -> dict[str, np.ndarray]:
    """The boxes a camera sees at image number ``frame`` (the fork's ``get_3d_bboxes`` + ``convert_vertices``).

    Candidates: static boxes (timestamp -1) then the boxes stamped ``frame``, in file order; kept if the label is in
    ``labels`` (an empty/None ``labels`` keeps every label) and if all (``all_vertices``) or any vertex satisfies
    ``-1 <= x/z <= 1``, ``-1 <= y/z <= 1`` (after ``K_norm``) and ``3 < z <= 80`` in the camera frame.
    ``world_to_cam`` [4,4] maps KITTI-360 world points to the camera frame (x right, y down, z forward).

    Returns numpy arrays for the N kept boxes: ``vertices`` [N,8,3] camera frame (m), ``vertices_world`` [N,8,3],
    ``center`` [N,3], ``whl`` [N,3] (width, height, length, m) and ``rotation`` [N,3,3] (camera frame, columns
    [-e_w, -e_h, e_l], see :func:`convert_vertices`), ``instance_id``, ``kitti_id``, ``semantic_id`` [N] int64.
    """
    table = boxes if isinstance(boxes, BoxArrays) else stack_boxes(boxes)
    world_to_cam = np.asarray(world_to_cam, dtype=np.float64)
    K_norm = np.asarray(K_norm, dtype=np.float64)
    if world_to_cam.shape != (4, 4) or K_norm.shape != (3, 3):
        raise ValueError(f"world_to_cam / K_norm: expected [4,4] and [3,3], got {world_to_cam.shape}, {K_norm.shape}")
    order = np.concatenate([np.flatnonzero(table.timestamp == -1), np.flatnonzero(table.timestamp == int(frame))])
    if labels:
        order = order[np.isin(table.label[order], list(labels))]
    vertices_world = table.vertices_world[order]
    vertices = vertices_world @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    keep = _in_frustum(vertices, K_norm, all_vertices)
    order, vertices, vertices_world = order[keep], vertices[keep], vertices_world[keep]
    out = {"vertices": vertices, "vertices_world": vertices_world}
    out.update(convert_vertices(vertices))
    out.update(instance_id=table.instance_id[order], kitti_id=table.kitti_id[order],
               semantic_id=table.semantic_id[order])
    return out


def convert_vertices(vertices: np.ndarray) -> dict[str, np.ndarray]:
    """Centre, size and orientation of boxes from their 8 vertices [N,8,3] (KITTI-360 vertex order).

    Each edge vector is the mean of four parallel vertex differences (length: (0,5),(1,4),(3,6),(2,7); width:
    (0,2),(1,3),(4,6),(5,7); height: (0,1),(2,3),(7,6),(5,4)); its norm is the size and its direction e. Returns
    ``center`` [N,3] (vertex mean), ``whl`` [N,3] = (width, height, length) and ``rotation`` [N,3,3] with columns
    (-e_w, -e_h, e_l): a right-handed box frame with x right, y down, z along the length, like a camera.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 3 or vertices.shape[1:] != (8, 3):
        raise ValueError(f"vertices: expected [N,8,3], got {vertices.shape}")
    sizes, axes = {}, {}
    for name, pairs in _EDGE_PAIRS.items():  # three edge directions
        first, second = (np.array(side) for side in zip(*pairs))
        edge = (vertices[:, first] - vertices[:, second]).mean(axis=1)
        sizes[name] = np.linalg.norm(edge, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            axes[name] = edge / sizes[name][:, None]
    return {"center": vertices.mean(axis=1),
            "whl": np.stack([sizes["width"], sizes["height"], sizes["length"]], axis=1),
            "rotation": np.stack([-axes["width"], -axes["height"], axes["length"]], axis=2)}


# ---------------------------------------------------------------------------------------------------- helpers


def _in_frustum(vertices_cam: np.ndarray, K_norm: np.ndarray, all_vertices: bool) -> np.ndarray:
    """bool [N]: the frustum test of the fork on vertices [N,8,3] in the camera frame."""
    projected = vertices_cam @ K_norm.T
    z = projected[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = projected[..., 0] / z, projected[..., 1] / z
    depth = vertices_cam[..., 2]
    valid = (x >= -1) & (x <= 1) & (y >= -1) & (y <= 1) & (depth > Z_NEAR) & (depth <= Z_FAR)
    return valid.all(axis=1) if all_vertices else valid.any(axis=1)


def _opencv_matrix(node: ET.Element | None, name: str) -> np.ndarray:
    if node is None:
        raise ValueError(f"missing <{name}>")
    rows, cols = int(node.findtext("rows")), int(node.findtext("cols"))
    values = np.array(node.findtext("data").split(), dtype=np.float64)
    if values.size != rows * cols:
        raise ValueError(f"<{name}> has {values.size} values, expected {rows}x{cols}")
    return values.reshape(rows, cols)


def _int_field(child: ET.Element, tag: str, default: int | None = None) -> int:
    text = child.findtext(tag)
    if text is None:
        if default is None:
            raise ValueError(f"missing <{tag}>")
        return default
    return int(text.strip())


def _parse_box(child: ET.Element) -> Box3D:
    transform = _opencv_matrix(child.find("transform"), "transform")
    local = _opencv_matrix(child.find("vertices"), "vertices")
    if transform.shape != (4, 4) or local.shape != (8, 3):
        raise ValueError(f"transform {transform.shape} / vertices {local.shape}: expected 4x4 and 8x3")
    vertices_world = local @ transform[:3, :3].T + transform[:3, 3]
    if child.find("semanticId") is not None:
        kitti_id = _int_field(child, "semanticId")
        if kitti_id not in KITTI_ID_TO_LABEL:
            raise ValueError(f"unknown KITTI-360 semanticId {kitti_id}")
        label, semantic_id = KITTI_ID_TO_LABEL[kitti_id]
        instance_id, timestamp = _int_field(child, "instanceId"), _int_field(child, "timestamp")
    else:  # "stuff": a class name, no instance, always static (devkit parseStuff)
        label = child.findtext("label", "").strip()
        label = _STUFF_REMAP.get(label, label)
        kitti_id = LABEL_NAME_TO_KITTI_ID.get(label, -1)
        semantic_id = KITTI_ID_TO_LABEL[kitti_id][1] if kitti_id > 0 else _STUFF_ONLY_LABEL_IDS.get(label)
        if semantic_id is None:
            raise ValueError(f"unknown stuff label {label!r}")
        instance_id, timestamp = 0, -1
    transform.flags.writeable = False
    vertices_world.flags.writeable = False
    return Box3D(instance_id=instance_id, label=label, kitti_id=kitti_id, semantic_id=int(semantic_id),
                 transform=transform, vertices_world=vertices_world, start_frame=_int_field(child, "start_frame"),
                 end_frame=_int_field(child, "end_frame"), timestamp=timestamp)
