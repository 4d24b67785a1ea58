"""Depth and occupancy metrics of the ViPOcc / BTS / KYN evaluation protocol.

Everything here is a pure function of numpy arrays (torch tensors are accepted and
moved to CPU numpy). Arithmetic is numpy float64; the reference code computes in
torch float32, so metric values can differ from it by float32 rounding (the
least-squares fit most). Index selections (nearest resize, lower median, far cut,
object rectangles) reproduce the reference bit for bit.

Depth (protocol section 4.2 / 5), one image:
    nearest resize of the prediction to the GT size -> optional scaling (``"median"``,
    ``"lsq"``) -> clamp to [1e-3, 80] m -> metrics over pixels with GT != 0.
    KITTI-360 uses no crop and no GT depth cap; KITTI Raw Eigen adds the Garg crop and
    1e-3 < GT < 80 (``KITTI_RAW_EIGEN`` holds those keyword arguments).

Occupancy (protocol section 4.1 / 5), one frame on the bird's-eye slice
``[rows, cols]``: row 0 is the FAR end (z_max), the last row is z = 4 m; columns are
x from -4 m to +4 m; 10 cells per metre by default. ``occ &= ~vis`` first, object
scores on the full map inside the expanded instance rectangles, scene scores after
the far cut of the invisible area.

Per-frame values are averaged over frames with ``mean_metrics`` (NaN skipped per
metric, as the reference ``MeanMetric``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "DEPTH_METRIC_KEYS",
    "GARG_CROP_FRACTIONS",
    "KITTI_RAW_EIGEN",
    "OCCUPANCY_KEYS",
    "OCCUPANCY_EXTRA_KEYS",
    "PRED_DEPTH_RANGE",
    "depth_metrics",
    "far_cut",
    "garg_crop",
    "lower_median",
    "mean_metrics",
    "nearest_resize",
    "object_region_mask",
    "occupancy_extra_scores",
    "occupancy_scores",
    "scene_and_object_scores",
]

DEPTH_METRIC_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
OCCUPANCY_KEYS = ("o_acc", "ie_acc", "ie_rec")
OCCUPANCY_EXTRA_KEYS = ("o_prec", "o_rec", "ie_prec")

# Predictions are clamped to this range (metres) before every depth metric.
PRED_DEPTH_RANGE = (1e-3, 80.0)
# Garg/Eigen crop as fractions of (H, H, W, W): rows [top, bottom), cols [left, right).
GARG_CROP_FRACTIONS = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
# Keyword arguments of ``depth_metrics`` for the KITTI Raw Eigen protocol.
KITTI_RAW_EIGEN: dict[str, Any] = {"crop": True, "min_depth": 1e-3, "max_depth": 80.0}

# Object_Label values that are not instances: 0 = free, 255 = occupied non-object.
_FREE_LABEL = 0
_NON_OBJECT_LABEL = 255
# Accepted ``scaling`` values of ``depth_metrics``; "l2" is the reference's name for "lsq".
_SCALINGS = (None, "median", "lsq", "l2")


# --------------------------------------------------------------------------- helpers


def _to_numpy(value: Any, name: str) -> np.ndarray:
    """Return ``value`` as a numpy array; torch tensors are detached and moved to CPU."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot convert {type(value).__name__} to an array") from exc


def _squeeze_to_2d(array: np.ndarray, name: str) -> np.ndarray:
    """Drop leading size-1 axes (e.g. [1, 1, H, W] -> [H, W]); the result must be 2-D."""
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(
            f"{name}: expected a 2-D map [H, W] (leading size-1 axes allowed), got shape {array.shape}"
        )
    return array


def _as_bool(value: Any, name: str) -> np.ndarray:
    """Boolean view of ``value``; integer/float inputs must hold only 0 and 1."""
    array = _to_numpy(value, name)
    if array.dtype == bool:
        return array
    if array.size and not np.isin(array, (0, 1)).all():
        raise ValueError(
            f"{name}: expected a boolean map (or only 0/1 values), got dtype {array.dtype} with other values"
        )
    return array.astype(bool)


def _mean_or_nan(values: np.ndarray) -> float:
    """Mean of a boolean/float vector as a Python float; NaN for an empty vector (no warning)."""
    return float(values.mean()) if values.size else math.nan


# ----------------------------------------------------------------------------- depth


def nearest_resize(image: Any, out_shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize with the index rule of torch ``F.interpolate(mode="nearest")``.

    Source index per axis: ``min(floor(dst * (in / out)), in - 1)`` with the ratio and the
    product evaluated in float32, which is what torch computes for float32 (and uint8)
    tensors, the reference's dtype (not the half-pixel ``"nearest-exact"`` rule). torch's
    float64 kernel rounds a few exact-integer products differently; the index rule here
    does not depend on the dtype of ``image``.

    Args:
        image: [h, w] map (leading size-1 axes allowed), any dtype.
        out_shape: (H, W) target size, both >= 1.

    Returns:
        [H, W] array of the same dtype as ``image``.
    """
    array = _squeeze_to_2d(_to_numpy(image, "image"), "image")
    out_h, out_w = (int(s) for s in out_shape)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"out_shape: sizes must be >= 1, got {out_shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"image: empty map of shape {array.shape} cannot be resized")
    rows = _nearest_source_index(array.shape[0], out_h)
    cols = _nearest_source_index(array.shape[1], out_w)
    return array[np.ix_(rows, cols)]


def _nearest_source_index(in_size: int, out_size: int) -> np.ndarray:
    """[out_size] int64 source indices of torch's "nearest" rule (float32 arithmetic)."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(src, in_size - 1)


def lower_median(values: Any) -> float:
    """Median with ``torch.median`` semantics: the LOWER middle value for even counts.

    Args:
        values: any array, flattened; must be non-empty and free of NaN.

    Returns:
        ``sorted(values)[(n - 1) // 2]`` as a float.
    """
    flat = _to_numpy(values, "values").ravel()
    if flat.size == 0:
        raise ValueError("values: the median of an empty array is undefined")
    if np.isnan(flat).any():
        raise ValueError("values: contains NaN")
    k = (flat.size - 1) // 2
    return float(np.partition(flat, k)[k])


def garg_crop(shape: tuple[int, int]) -> np.ndarray:
    """Garg/Eigen crop mask for KITTI Raw GT of size (H, W).

    True on rows [int(0.40810811 H), int(0.99189189 H)) and columns
    [int(0.03594771 W), int(0.96405229 W)) (truncation to int, as the Eigen evaluation code).

    Returns:
        [H, W] bool mask.
    """
    height, width = (int(s) for s in shape)
    if height < 1 or width < 1:
        raise ValueError(f"shape: expected (H, W) >= 1, got {shape}")
    top, bottom, left, right = (
        int(frac * size) for frac, size in zip(GARG_CROP_FRACTIONS, (height, height, width, width))
    )
    mask = np.zeros((height, width), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def _valid_depth_mask(
    gt: np.ndarray, crop: bool | Any, min_depth: float | None, max_depth: float | None
) -> np.ndarray:
    """GT != 0, optionally restricted to a crop and to min_depth < gt < max_depth (strict)."""
    valid = gt != 0
    if isinstance(crop, (bool, np.bool_)):
        if crop:
            valid &= garg_crop(gt.shape)
    elif crop is not None:
        crop_mask = _squeeze_to_2d(_as_bool(crop, "crop"), "crop")
        if crop_mask.shape != gt.shape:
            raise ValueError(f"crop: mask shape {crop_mask.shape} differs from gt shape {gt.shape}")
        valid &= crop_mask
    if min_depth is not None:
        valid &= gt > min_depth
    if max_depth is not None:
        valid &= gt < max_depth
    return valid


def _scale_prediction(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, scaling: str | None) -> np.ndarray:
    """Apply the per-image ``scaling`` fitted on the valid pixels (before the clamp)."""
    if scaling not in _SCALINGS:
        raise ValueError(f"scaling: expected one of {_SCALINGS}, got {scaling!r}")
    if scaling is None or not valid.any():  # no valid pixel: nothing to fit, metrics are NaN
        return pred
    if scaling == "median":
        pred_median = lower_median(pred[valid])
        if not pred_median > 0:
            raise ValueError(f"pred: median scaling needs a positive median prediction, got {pred_median}")
        return pred * (lower_median(gt[valid]) / pred_median)
    # "lsq" / "l2": gt ~ slope * pred + offset in the least-squares sense
    design = np.stack([pred[valid], np.ones(int(valid.sum()))], axis=-1)
    (slope, offset), *_ = np.linalg.lstsq(design, gt[valid], rcond=None)
    return pred * slope + offset


def depth_metrics(
    gt: Any,
    pred: Any,
    scaling: str | None = None,
    *,
    crop: bool | Any = False,
    min_depth: float | None = None,
    max_depth: float | None = None,
    pred_range: tuple[float, float] = PRED_DEPTH_RANGE,
) -> dict[str, float]:
    """Depth metrics of one image (protocol section 5), in metres.

    Order (as the reference ``compute_depth_metrics``): nearest resize of ``pred`` to the
    GT size (``nearest_resize``), optional scaling fitted over the valid pixels, clamp
    to ``pred_range``, metrics over the valid pixels.

    Args:
        gt: [H, W] GT depth in metres, 0 = no measurement; finite and >= 0.
        pred: [h, w] predicted depth in metres (any size; leading size-1 axes allowed).
            NaN is rejected; +-inf is clamped.
        scaling: None (metric, the ViPOcc/BTS setting), ``"median"`` (s = median(gt) /
            median(pred), both ``lower_median`` = torch.median) or ``"lsq"`` (a*pred + b
            least squares; ``"l2"``, the reference's name, is accepted as an alias).
        crop: False (KITTI-360), True (Garg crop for GT of this size) or an [H, W] bool mask.
        min_depth, max_depth: keep only min_depth < gt < max_depth (None = no bound).
            KITTI-360 uses none; KITTI Raw Eigen uses 1e-3 and 80 (``KITTI_RAW_EIGEN``).
        pred_range: clamp of the prediction, (1e-3, 80) in the reference.

    Valid pixels = gt != 0 within crop and depth bounds; scaling is fitted over the same
    pixels (the reference fits over gt > 0 of GT that already carries the crop/bounds).

    Returns:
        dict with the float keys ``DEPTH_METRIC_KEYS``: abs_rel = mean |g-p|/g,
        sq_rel = mean (g-p)^2/g, rmse = sqrt(mean (g-p)^2), rmse_log =
        sqrt(mean (ln g - ln p)^2), a_k = mean[max(g/p, p/g) < 1.25^k]. All NaN when no
        pixel is valid.
    """
    gt_map = _squeeze_to_2d(_to_numpy(gt, "gt"), "gt").astype(np.float64)
    pred_map = _squeeze_to_2d(_to_numpy(pred, "pred"), "pred").astype(np.float64)
    if not np.isfinite(gt_map).all() or (gt_map < 0).any():
        raise ValueError("gt: depth must be finite and >= 0 (0 marks missing GT)")
    if np.isnan(pred_map).any():
        raise ValueError("pred: contains NaN")
    low, high = pred_range
    if not 0 < low < high:
        raise ValueError(f"pred_range: expected 0 < low < high, got {pred_range}")

    pred_map = nearest_resize(pred_map, gt_map.shape)
    valid = _valid_depth_mask(gt_map, crop, min_depth, max_depth)
    pred_map = np.clip(_scale_prediction(pred_map, gt_map, valid, scaling), low, high)
    return _depth_errors(gt_map[valid], pred_map[valid])


def _depth_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The seven metrics on matched 1-D vectors of positive depths; NaN when empty."""
    if gt.size == 0:
        return {key: math.nan for key in DEPTH_METRIC_KEYS}
    ratio = np.maximum(gt / pred, pred / gt)
    diff = gt - pred
    return {
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff**2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        "a1": float(np.mean(ratio < 1.25)),
        "a2": float(np.mean(ratio < 1.25**2)),
        "a3": float(np.mean(ratio < 1.25**3)),
    }


def mean_metrics(per_frame: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Average per-frame metric dicts, skipping NaN per metric (the reference ``MeanMetric``).

    Each metric has its own denominator: the number of frames where it is not NaN (a key
    missing from a frame, or a None value, counts as NaN). A metric NaN in every frame
    averages to NaN. Keys keep their first-seen order; an empty input gives ``{}``.
    Values may be Python/numpy scalars or 0-d/1-element tensors.
    """
    frames = list(per_frame)
    keys = list(dict.fromkeys(key for frame in frames for key in frame))
    result: dict[str, float] = {}
    for key in keys:
        values = np.array(
            [math.nan if frame.get(key) is None else _scalar(frame[key], key) for frame in frames],
            dtype=np.float64,
        )
        kept = values[~np.isnan(values)]
        result[key] = float(kept.mean()) if kept.size else math.nan
    return result


def _scalar(value: Any, key: str) -> float:
    """One metric value as float (accepts 0-d / 1-element arrays and tensors)."""
    array = _to_numpy(value, key)
    if array.size != 1:
        raise ValueError(f"per_frame[{key!r}]: expected a scalar, got shape {array.shape}")
    return float(array.reshape(()))


# ------------------------------------------------------------------------- occupancy


def _occupancy_inputs(occupied_gt: Any, occupied_pred: Any, visible_gt: Any) -> tuple[np.ndarray, ...]:
    """Boolean arrays of one shape, in the order (occupied_gt, occupied_pred, visible_gt)."""
    occ = _as_bool(occupied_gt, "occupied_gt")
    pred = _as_bool(occupied_pred, "occupied_pred")
    vis = _as_bool(visible_gt, "visible_gt")
    if not occ.shape == pred.shape == vis.shape:
        raise ValueError(
            "occupied_gt, occupied_pred, visible_gt: shapes differ "
            f"({occ.shape}, {pred.shape}, {vis.shape})"
        )
    return occ, pred, vis


def occupancy_scores(occupied_gt: Any, occupied_pred: Any, visible_gt: Any) -> dict[str, float]:
    """O_acc, IE_acc, IE_rec of one frame (protocol section 5).

    Args:
        occupied_gt: bool map, any shape, GT occupancy with visible cells already removed
            (``occ & ~vis``, as the protocol does before scoring; not re-applied here).
        occupied_pred: bool map of the same shape, predicted occupancy (density > 0.5).
        visible_gt: bool map of the same shape, GT (LiDAR) visibility.

    Returns:
        ``o_acc`` = mean[pred == gt] over all cells; ``ie_acc`` = the same over invisible
        cells; ``ie_rec`` = mean[~pred] over invisible-and-empty cells. A score whose cell
        set is empty is NaN (e.g. an empty map after a far cut with nothing visible).
    """
    occ, pred, vis = _occupancy_inputs(occupied_gt, occupied_pred, visible_gt)
    correct = pred == occ
    invisible = ~vis
    return {
        "o_acc": _mean_or_nan(correct),
        "ie_acc": _mean_or_nan(correct[invisible]),
        "ie_rec": _mean_or_nan(~pred[invisible & ~occ]),
    }


def occupancy_extra_scores(occupied_gt: Any, occupied_pred: Any, visible_gt: Any) -> dict[str, float]:
    """BTS's extra scores of one frame: O_prec, O_rec, IE_prec (same inputs as ``occupancy_scores``).

    ``o_prec`` = mean gt over predicted-occupied cells; ``o_rec`` = mean pred over
    GT-occupied cells; ``ie_prec`` = mean[~gt] over cells predicted empty and invisible.
    NaN when the cell set is empty.
    """
    occ, pred, vis = _occupancy_inputs(occupied_gt, occupied_pred, visible_gt)
    return {
        "o_prec": _mean_or_nan(occ[pred]),
        "o_rec": _mean_or_nan(pred[occ]),
        "ie_prec": _mean_or_nan(~occ[~pred & ~vis]),
    }


def _margin_rows(ppm: float, margin_m: float) -> int:
    """Far-cut margin in rows; rounded so that e.g. 0.7 m * 10 gives 7, not 6."""
    if ppm <= 0 or margin_m < 0:
        raise ValueError(f"ppm, margin_m: expected ppm > 0 and margin_m >= 0, got {ppm}, {margin_m}")
    return int(round(margin_m * ppm))


def far_cut(visible: Any, ppm: float = 10, margin_m: float = 2.0) -> slice:
    """Rows kept by the reference's ``cut_far_invisible_area`` rule.

    Row 0 is the far end of the map. Find the farthest (smallest-index) row holding any
    visible cell, move ``round(margin_m * ppm)`` rows farther (20 rows = 2 m by default),
    clamped at row 0, and drop every row beyond.

    Args:
        visible: [rows, cols] bool GT visibility.
        ppm: cells per metre along z.
        margin_m: margin beyond the farthest visible row, metres.

    Returns:
        ``slice(start, None)`` over rows. With no visible cell it is the empty
        ``slice(0, 0)``: every score on the cut map is then NaN, and the reference skips
        the frame altogether (``scene_and_object_scores`` also sets the object scores NaN).
    """
    vis = _as_bool(visible, "visible")
    if vis.ndim != 2:
        raise ValueError(f"visible: expected a [rows, cols] map, got shape {vis.shape}")
    margin = _margin_rows(ppm, margin_m)
    visible_rows = np.flatnonzero(vis.any(axis=1))
    if visible_rows.size == 0:
        return slice(0, 0)
    return slice(max(int(visible_rows[0]) - margin, 0), None)


def object_region_mask(
    object_labels: Any,
    z_expand_cells: int = 20,
    x_expand_cells: int = 5,
    *,
    reference_quirk: bool = False,
) -> np.ndarray:
    """Union of the expanded bounding rectangles of the object instances of one map.

    Args:
        object_labels: [rows, cols] integer map (KYN ``Object_Label``, uint8): 0 = free,
            255 = occupied non-object, any other value = one object instance.
        z_expand_cells: rows added on both sides of each rectangle (2 m * 10 = 20).
        x_expand_cells: columns added on both sides (0.5 m * 10 = 5).
        reference_quirk: if True, take the instance ids as the reference does, i.e. all
            distinct values but the smallest and the largest (``unique()[1:-1]``), which is
            right only when both 0 and 255 occur; on a map without 255 the highest
            instance is dropped, on a map without 0 the lowest. Default False: every
            value other than 0 and 255 is an instance.

    Rectangle of an instance with cells in rows [r0, r1] and columns [c0, c1] (inclusive):
    rows [max(r0 - z, 0), min(r1 + z, rows)) and columns [max(c0 - x, 0), min(c1 + x, cols)),
    half-open as in the reference, so the far side extends z rows and the near side z - 1
    rows past the object (likewise x / x - 1 columns); clipped at the borders.

    Returns:
        [rows, cols] bool mask; all False when there is no instance.
    """
    labels = _squeeze_to_2d(_to_numpy(object_labels, "object_labels"), "object_labels")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"object_labels: expected an integer label map, got dtype {labels.dtype}")
    if z_expand_cells < 0 or x_expand_cells < 0:
        raise ValueError(
            f"z_expand_cells, x_expand_cells: must be >= 0, got {z_expand_cells}, {x_expand_cells}"
        )
    ids = _instance_ids(labels, reference_quirk)
    mask = np.zeros(labels.shape, dtype=bool)
    if ids.size == 0:
        return mask
    first_row, last_row, first_col, last_col = _instance_bounds(labels, ids)
    rows, cols = labels.shape
    return _union_of_rectangles(
        mask.shape,
        np.maximum(first_row - z_expand_cells, 0),
        np.minimum(last_row + z_expand_cells, rows),
        np.maximum(first_col - x_expand_cells, 0),
        np.minimum(last_col + x_expand_cells, cols),
    )


def _instance_ids(labels: np.ndarray, reference_quirk: bool) -> np.ndarray:
    """Sorted instance ids present in ``labels``."""
    values = np.unique(labels)
    if reference_quirk:
        return values[1:-1]
    return values[(values != _FREE_LABEL) & (values != _NON_OBJECT_LABEL)]


def _instance_bounds(labels: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, ...]:
    """Inclusive (first_row, last_row, first_col, last_col) per id, each [len(ids)] int64."""
    rows, cols = np.nonzero(np.isin(labels, ids))
    which = np.searchsorted(ids, labels[rows, cols])
    big = np.iinfo(np.int64).max
    first_row = np.full(ids.size, big, dtype=np.int64)
    first_col = np.full(ids.size, big, dtype=np.int64)
    last_row = np.full(ids.size, -1, dtype=np.int64)
    last_col = np.full(ids.size, -1, dtype=np.int64)
    np.minimum.at(first_row, which, rows)
    np.maximum.at(last_row, which, rows)
    np.minimum.at(first_col, which, cols)
    np.maximum.at(last_col, which, cols)
    return first_row, last_row, first_col, last_col


def _union_of_rectangles(
    shape: tuple[int, int], row0: np.ndarray, row1: np.ndarray, col0: np.ndarray, col1: np.ndarray
) -> np.ndarray:
    """Union of half-open rectangles [row0, row1) x [col0, col1) via a 2-D difference array."""
    counts = np.zeros((shape[0] + 1, shape[1] + 1), dtype=np.int64)
    np.add.at(counts, (row0, col0), 1)
    np.add.at(counts, (row0, col1), -1)
    np.add.at(counts, (row1, col0), -1)
    np.add.at(counts, (row1, col1), 1)
    return counts.cumsum(axis=0).cumsum(axis=1)[: shape[0], : shape[1]] > 0


def scene_and_object_scores(
    occupied_gt: Any,
    visible_gt: Any,
    occupied_pred: Any,
    object_labels: Any = None,
    far_cut: bool = True,
    *,
    ppm: float = 10,
    far_margin_m: float = 2.0,
    z_expand_cells: int = 20,
    x_expand_cells: int = 5,
    reference_quirk: bool = False,
    extras: bool = False,
) -> dict[str, float]:
    """Scene and object scores of one frame in the reference's order.

    1. ``occ = occupied_gt & ~visible_gt`` (visible cells are free).
    2. Object scores on the full map, inside ``object_region_mask(object_labels, ...)``.
    3. If ``far_cut``: keep the rows of ``far_cut(visible_gt, ppm, far_margin_m)``.
    4. Scene scores on the (cut) map.

    Args:
        occupied_gt: [rows, cols] bool GT occupancy (visible cells need not be removed yet).
        visible_gt: [rows, cols] bool GT visibility.
        occupied_pred: [rows, cols] bool predicted occupancy.
        object_labels: optional [rows, cols] integer ``Object_Label`` map on the same grid.
        far_cut: apply the far cut of the invisible area (ViPOcc/KYN: True; BTS: False).
        ppm, far_margin_m: grid resolution (cells per metre) and far-cut margin (metres).
        z_expand_cells, x_expand_cells, reference_quirk: see ``object_region_mask``.
        extras: also return ``scene_o_prec``, ``scene_o_rec``, ``scene_ie_prec``.

    Returns:
        ``scene_o_acc, scene_ie_acc, scene_ie_rec, object_o_acc, object_ie_acc,
        object_ie_rec`` (+ extras). Object scores are NaN without ``object_labels`` or
        without instances. With ``far_cut`` and no visible cell every value is NaN, as in
        the reference (which skips such a frame entirely).
    """
    occ, pred, vis = _occupancy_inputs(occupied_gt, occupied_pred, visible_gt)
    if occ.ndim != 2:
        raise ValueError(f"occupied_gt: expected a [rows, cols] map, got shape {occ.shape}")
    occ = occ & ~vis

    object_scores = {f"object_{key}": math.nan for key in OCCUPANCY_KEYS}
    if object_labels is not None:
        region = object_region_mask(
            object_labels, z_expand_cells, x_expand_cells, reference_quirk=reference_quirk
        )
        if region.shape != occ.shape:
            raise ValueError(
                f"object_labels: shape {region.shape} differs from occupied_gt shape {occ.shape}"
            )
        scores = occupancy_scores(occ[region], pred[region], vis[region])
        object_scores = {f"object_{key}": value for key, value in scores.items()}

    rows = _FAR_CUT(vis, ppm, far_margin_m) if far_cut else slice(None)
    scene = occupancy_scores(occ[rows], pred[rows], vis[rows])
    if extras:
        scene |= occupancy_extra_scores(occ[rows], pred[rows], vis[rows])
    out = {f"scene_{key}": value for key, value in scene.items()} | object_scores
    if far_cut and not vis.any():  # nothing visible: the reference drops the whole frame
        out = {key: math.nan for key in out}
    return out


# ``scene_and_object_scores`` has a boolean parameter named ``far_cut``.
_FAR_CUT = far_cut
