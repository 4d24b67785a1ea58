"""SSCBench-style 3-D voxel occupancy evaluator: the fork ``zz-f-g/ViPOcc``'s ``eval_voxel`` (legacy benchmark).

Per test frame (batch 1):

1. Encode view 0 (its own world frame, pose identity), as the occupancy evaluator.
2. Voxel centres of the SSCBench grid (256 x 256 x 32, 0.2 m, origin (1, -25.6, -2.5) m in the voxel frame's
   velodyne frame; :func:`vipocc.data.voxel_gt.voxel_centers`) go to the camera by the sample's ``voxellidar2c``
   [4, 4] (float32, as the fork). ``occupied_pred = density > occ_threshold`` (0.5) at the centres.
3. GT (the sample's ``voxel`` labels [256,256,32], 0 = empty, 255 = unknown, else occupied, and its
   ``voxel_visible`` camera-visibility mask): optionally (``fix_under_ground``, the fork's default) empty voxels
   below the lowest labelled voxel of their (i, j) column (all of them in a column without one) become unknown
   (the fork's work-around for SSCBench issue 4). ``occupied = label not in {0, 255}``;
   ``valid = label != 255 and in_frustum and in_range``;
   ``in_frustum``: projection strictly inside (-1, 1)^2 and camera z > 1e-4 m. The fork's last version uses an
   ``in_range`` it never defines; here ``depth_range`` = (min, max) camera z in metres, default None = no limit.
4. Scores (the fork's ``compute_occ_scores``; unlike the 2-D protocol, visible cells are NOT removed from
   occupied): O_acc = mean[pred == occ] over valid; IE_acc = the same over valid and invisible; IE_rec =
   mean[~pred] over valid, invisible and empty. Object versions restrict ``valid`` to voxels inside any 3-D car box
   of the sample (``3d_bboxes``: centre, whl, rotation in the camera frame) scaled by ``bbox_margin_ratio`` (1.5):
   normalised box coordinates ``R^T (p - c) / (ratio * whl / 2)`` strictly inside (-1, 1) on all three axes.
   A frame without boxes has NaN object scores. Counts tp / fp / fn over valid voxels.
5. Summary: frame means (NaN skipped per metric) and precision = TP / (TP + FP), recall = TP / (TP + FN),
   IoU = TP / (TP + FP + FN) from the counts summed over frames (the fork averages tp/fp/fn per frame, which gives
   the same ratios).

Only valid voxels are sent through the network (predictions elsewhere never enter a score), so a frame costs
|valid| / 50,000 network calls.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from vipocc.data.voxel_gt import EMPTY, UNKNOWN, VOXEL_ORIGIN, VOXEL_SHAPE, VOXEL_SIZE, voxel_centers
from vipocc.evaluation.metrics import occupancy_scores
from vipocc.evaluation.occupancy import encode_view0, field_of, query_density, resolve_device, summarize

__all__ = ["VoxelSettings", "evaluate_voxel", "score_voxels", "fix_under_ground", "in_frustum", "points_in_boxes",
           "voxels_in_boxes", "VOXEL_COUNT_KEYS"]

FRUSTUM_EPS = 1e-4  # m, the fork's minimum camera depth
VOXEL_COUNT_KEYS = ("tp", "fp", "fn")


@dataclasses.dataclass(frozen=True)
class VoxelSettings:
    """occ_threshold: occupied if density > this; batch_points: points per network call; bbox_margin_ratio: box
    scale of the object metrics; fix_under_ground: the fork's under-ground relabelling; depth_range: optional
    (min, max) camera z (m) of valid voxels; device: "auto", "cpu" or "cuda"."""

    occ_threshold: float = 0.5
    batch_points: int = 50_000
    bbox_margin_ratio: float = 1.5
    fix_under_ground: bool = True
    depth_range: tuple[float, float] | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.batch_points < 1:
            raise ValueError(f"batch_points: must be >= 1, got {self.batch_points}")
        if not self.bbox_margin_ratio > 0:
            raise ValueError(f"bbox_margin_ratio: must be > 0, got {self.bbox_margin_ratio}")
        if self.depth_range is not None:
            low, high = (float(v) for v in self.depth_range)
            if not low < high:
                raise ValueError(f"depth_range: expected (min, max) with min < max, got {self.depth_range}")
            object.__setattr__(self, "depth_range", (low, high))

    @classmethod
    def from_config(cls, evaluation: Mapping[str, Any], **overrides: Any) -> "VoxelSettings":
        """From the ``evaluation`` config block (``voxel.bbox_margin_ratio``, ``occupancy.occ_threshold`` /
        ``batch_points``, ``device``)."""
        occupancy = evaluation.get("occupancy", {})
        values = {"occ_threshold": float(occupancy.get("occ_threshold", 0.5)),
                  "batch_points": int(occupancy.get("batch_points", 50_000)),
                  "bbox_margin_ratio": float(evaluation["voxel"]["bbox_margin_ratio"]),
                  "device": str(evaluation.get("device", "auto"))}
        return cls(**{**values, **overrides})


def fix_under_ground(labels: np.ndarray) -> np.ndarray:
    """Labels [X, Y, Z] (k = up): empty voxels below the lowest labelled (occupied) voxel of their column become
    UNKNOWN; in a column without any labelled voxel every empty voxel becomes UNKNOWN (the fork's rule: its
    surface index is then Z). Returns a new array."""
    labels = np.asarray(labels)
    labelled = (labels != EMPTY) & (labels != UNKNOWN)
    depth = labels.shape[-1]
    surface = np.where(labelled.any(axis=-1), labelled.argmax(axis=-1), depth)  # lowest labelled k per column
    below = np.arange(depth) < surface[..., None]
    return np.where((labels == EMPTY) & below, UNKNOWN, labels).astype(labels.dtype)


def in_frustum(points_cam: np.ndarray, K_norm: np.ndarray) -> np.ndarray:
    """bool [P]: camera points [P, 3] project strictly inside (-1, 1)^2 with z > 1e-4 m (the fork's test)."""
    projected = points_cam @ np.asarray(K_norm, dtype=points_cam.dtype).T
    z = projected[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = projected[:, :2] / z[:, None]
    return (z > FRUSTUM_EPS) & np.all(np.abs(uv) < 1, axis=1)


def points_in_boxes(points: np.ndarray, center: np.ndarray, whl: np.ndarray, rotation: np.ndarray,
                    scale: float = 1.0) -> np.ndarray:
    """bool [P]: the point lies strictly inside at least one box scaled by ``scale``.

    points [P, 3]; center [N, 3]; whl [N, 3] full sizes along the rotation's columns; rotation [N, 3, 3] (box ->
    frame of the points). Loops over the N boxes (a handful per frame).
    """
    points = np.asarray(points, dtype=np.float64)
    center, whl = np.asarray(center, np.float64), np.asarray(whl, np.float64)
    rotation = np.asarray(rotation, np.float64)
    n = center.shape[0]
    if center.shape != (n, 3) or whl.shape != (n, 3) or rotation.shape != (n, 3, 3):
        raise ValueError(f"boxes: expected center [N,3], whl [N,3], rotation [N,3,3], got {center.shape}, "
                         f"{whl.shape}, {rotation.shape}")
    inside = np.zeros(points.shape[0], dtype=bool)
    for c, size, R in zip(center, whl, rotation):
        local = (points - c) @ R  # R^T (p - c) as row vectors
        inside |= np.all(np.abs(local) < size * scale / 2, axis=1)
    return inside


def voxels_in_boxes(points: np.ndarray, velo_to_cam: np.ndarray, boxes: Mapping[str, np.ndarray],
                    scale: float = 1.0) -> np.ndarray:
    """bool [256, 256, 32]: :func:`points_in_boxes` of the voxel centres, testing only the voxels near a box.

    points [V, 3]: the centres of the SSCBench grid in the box frame (``voxellidar2c`` applied, row-major over
    [i, j, k]); velo_to_cam [4, 4]: that transform; boxes: ``center`` [N, 3], ``whl`` [N, 3], ``rotation``
    [N, 3, 3] as points_in_boxes. Each scaled box's corners are mapped back to voxel indices; only the voxels of
    that index block (grown by a voxel, far more than the float32 rounding of `points`) are tested, with the very
    same points_in_boxes arithmetic, so the result equals points_in_boxes on all centres.
    """
    center, whl = np.asarray(boxes["center"], np.float64), np.asarray(boxes["whl"], np.float64)
    rotation = np.asarray(boxes["rotation"], np.float64)
    signs = np.indices((2, 2, 2)).reshape(3, -1).T * 2.0 - 1.0  # [8, 3] corners of the unit cube
    try:  # points_in_boxes keeps |R^T (p - c)| < s / 2, i.e. p = c + R^-T u with |u| < s / 2
        to_frame = np.linalg.inv(rotation).transpose(0, 2, 1)
        cam_to_velo = np.linalg.inv(np.asarray(velo_to_cam, np.float64))
    except np.linalg.LinAlgError:  # degenerate box or transform: test every voxel
        return points_in_boxes(points, center, whl, rotation, scale).reshape(VOXEL_SHAPE)
    corners = center[:, None] + np.einsum("nij,nkj->nki", to_frame, signs[None] * whl[:, None] * scale / 2)
    velo = corners @ cam_to_velo[:3, :3].T + cam_to_velo[:3, 3]
    index = (velo - np.asarray(VOXEL_ORIGIN)) / VOXEL_SIZE - 0.5  # continuous voxel index of each corner
    if not np.isfinite(index).all():  # a box with non-finite numbers: test every voxel
        return points_in_boxes(points, center, whl, rotation, scale).reshape(VOXEL_SHAPE)
    low = np.clip(np.floor(index.min(axis=1)) - 1, 0, np.asarray(VOXEL_SHAPE)).astype(np.int64)
    high = np.clip(np.ceil(index.max(axis=1)) + 2, 0, np.asarray(VOXEL_SHAPE)).astype(np.int64)  # exclusive
    near = np.zeros(VOXEL_SHAPE, bool)
    for (i0, j0, k0), (i1, j1, k1) in zip(low, high):  # one block per box (a handful per frame)
        near[i0:i1, j0:j1, k0:k1] = True
    chosen = np.flatnonzero(near)
    inside = np.zeros(near.size, bool)
    inside[chosen] = points_in_boxes(points[chosen], center, whl, rotation, scale)
    return inside.reshape(VOXEL_SHAPE)


def score_voxels(occupied_pred: np.ndarray, labels: np.ndarray, visible: np.ndarray, valid_view: np.ndarray,
                 in_boxes: np.ndarray | None) -> dict[str, float]:
    """Scene / object scores and counts of one frame; all arguments bool [X, Y, Z] except ``labels`` (uint8/int,
    already under-ground-fixed if wanted). valid_view = in frustum and in range; in_boxes None = no boxes."""
    occupied = (labels != EMPTY) & (labels != UNKNOWN)
    valid = (labels != UNKNOWN) & valid_view
    scene = occupancy_scores(occupied[valid], occupied_pred[valid], visible[valid])
    row = {f"scene_{key}": value for key, value in scene.items()}
    if in_boxes is None:
        row |= {f"object_{key}": math.nan for key in scene}
    else:
        region = valid & in_boxes
        row |= {f"object_{key}": value for key, value in
                occupancy_scores(occupied[region], occupied_pred[region], visible[region]).items()}
    tp = int(np.count_nonzero(occupied_pred & occupied & valid))
    fp = int(np.count_nonzero(occupied_pred & ~occupied & valid))
    fn = int(np.count_nonzero(~occupied_pred & occupied & valid))
    return row | {"tp": tp, "fp": fp, "fn": fn} | _ratios(tp, fp, fn)


def _ratios(tp: float, fp: float, fn: float) -> dict[str, float]:
    def ratio(num: float, den: float) -> float:
        return num / den if den else math.nan

    return {"precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn), "iou": ratio(tp, tp + fp + fn)}


def _sample_boxes(sample: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    boxes = sample.get("3d_bboxes")
    if not boxes or len(boxes.get("center", ())) == 0:
        return None
    return {key: np.asarray(boxes[key].cpu() if hasattr(boxes[key], "cpu") else boxes[key])
            for key in ("center", "whl", "rotation")}


def _voxel_inputs(sample: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    for key in ("voxel", "voxellidar2c", "voxel_visible"):
        if key not in sample:
            raise ValueError(f"sample of {sample.get('seq')} frame {sample.get('img_id')}: no '{key}' (voxel GT "
                             f"with a visible mask is needed; dataset use eval_voxel)")
    labels = np.asarray(sample["voxel"])
    visible = np.asarray(sample["voxel_visible"], dtype=bool)
    velo_to_cam = np.asarray(sample["voxellidar2c"], dtype=np.float32)
    if labels.shape != VOXEL_SHAPE or visible.shape != VOXEL_SHAPE or velo_to_cam.shape != (4, 4):
        raise ValueError(f"sample: voxel {labels.shape} / voxel_visible {visible.shape} must be {VOXEL_SHAPE} and "
                         f"voxellidar2c {velo_to_cam.shape} must be (4, 4)")
    return labels, visible, velo_to_cam


def evaluate_voxel(network: Any, dataset: Sequence[Mapping[str, Any]], settings: VoxelSettings = VoxelSettings(),
                   *, progress: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Evaluate a density field on the voxel GT of every sample (dataset use ``eval_voxel``: samples carry
    ``voxel``, ``voxellidar2c``, ``voxel_visible`` and ``3d_bboxes``). ``network`` as in
    :func:`vipocc.evaluation.occupancy.evaluate_occupancy`.

    Returns:
        (rows, summary): rows = seq, frame, is_right, scene_/object_ o_acc, ie_acc, ie_rec, tp, fp, fn, precision,
        recall, iou per frame; summary metrics = frame means plus ``total_precision``, ``total_recall``,
        ``total_iou`` from the summed counts.
    """
    from tqdm.auto import tqdm

    device = resolve_device(settings.device)
    field = field_of(network)
    if isinstance(network, torch.nn.Module):
        network.to(device).eval()
    centers_h = np.concatenate([voxel_centers().astype(np.float32), np.ones((math.prod(VOXEL_SHAPE), 1),
                                                                             np.float32)], axis=1)
    rows: list[dict[str, Any]] = []
    for index in tqdm(range(len(dataset)), desc="voxel", unit="frame", disable=not progress):
        sample = dataset[index]
        labels, visible, velo_to_cam = _voxel_inputs(sample)
        if settings.fix_under_ground:
            labels = fix_under_ground(labels)
        points = (centers_h @ velo_to_cam.T)[:, :3]  # float32, as the fork
        valid_view = in_frustum(points, np.asarray(sample["projs"][0], dtype=np.float32))
        if settings.depth_range is not None:
            valid_view &= (points[:, 2] >= settings.depth_range[0]) & (points[:, 2] <= settings.depth_range[1])
        query = valid_view & (labels.reshape(-1) != UNKNOWN)
        occupied_pred = np.zeros(query.shape, dtype=bool)
        encode_view0(field, sample, device)
        occupied_pred[query] = query_density(field, points[query], settings.batch_points,
                                             device) > settings.occ_threshold
        boxes = _sample_boxes(sample)
        in_boxes = None if boxes is None else voxels_in_boxes(points, velo_to_cam, boxes,
                                                              settings.bbox_margin_ratio)
        row = {"seq": str(sample["seq"]), "frame": int(sample["img_id"]),
               "is_right": bool(sample.get("is_right", False))}
        rows.append(row | score_voxels(occupied_pred.reshape(VOXEL_SHAPE), labels, visible,
                                       valid_view.reshape(VOXEL_SHAPE), in_boxes))
    summary = summarize(rows, "voxel", dataclasses.asdict(settings))
    totals = {key: sum(row[key] for row in rows) for key in VOXEL_COUNT_KEYS}
    summary["metrics"] |= {f"total_{key}": value for key, value in _ratios(*totals.values()).items()}
    summary["totals"] = totals
    return rows, summary
