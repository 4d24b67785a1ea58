"""Pseudo-depth sanity figure of one sequence: image | pseudo depth | reference depth, a few frames as rows.

The reference is the synthetic world's exact depth of the view (dense, from :class:`vipocc.priors.stage.OracleViews`)
or, on real data, the LiDAR depth GT of the preprocessing stage (sparse, ``depth_gt/<seq>/<camera>/<frame>.npy``,
drawn as points). Depths are shown as inverse depth (1/m) with one colour scale per row, so a global scale error of
the prior is visible as a colour shift; each row's title gives AbsRel unscaled and with per-image median scaling
(the numbers the authors report for Depth Anything V2 on KITTI-360: 0.586 and 0.142).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["depth_prior_figure", "pick_frames", "reference_gt"]


def pick_frames(frames: Sequence[int], rows: int) -> list[int]:
    """Up to ``rows`` frames spread evenly over ``frames`` (first and last included), in order."""
    if rows < 1:
        raise ValueError(f"rows: expected >= 1, got {rows}")
    frames = list(frames)
    if not frames:
        return []
    index = np.unique(np.round(np.linspace(0, len(frames) - 1, min(rows, len(frames)))).astype(int))
    return [frames[i] for i in index]


def reference_gt(depth: np.ndarray, max_depth: float) -> np.ndarray:
    """Dense oracle z-depth -> GT as the evaluation sees it: 0 for sky, outside the lens and beyond max_depth."""
    depth = np.asarray(depth, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth > 0) & (depth <= max_depth)
    return np.where(valid, depth, 0.0)


def _inverse(depth: np.ndarray) -> np.ndarray:
    """1 / depth for display: inf (sky) -> 0, 0 / NaN (no value) -> NaN (drawn blank)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(depth > 0, 1.0 / depth, np.nan)


def depth_prior_figure(derived_root: str | os.PathLike, seq: str, frames: Sequence[int], folders: tuple[str, str],
                       out_path: str | os.PathLike, oracle: Any | None = None, rows: int = 3,
                       camera: str = "image_00", max_depth: float = 80.0) -> Path:
    """Draw the figure for ``rows`` frames of ``frames`` that have a pseudo depth file and save it as PNG.

    Args:
        derived_root: holds data_2d_raw/, depth/ and (real data) depth_gt/.
        frames: candidate frame numbers; folders: (perspective, fisheye) preprocessed folder names.
        out_path: PNG to write (atomically; parent folders are created).
        oracle: an OracleViews (synthetic world) for dense reference depth; None = LiDAR GT files.
        camera: the view shown (image_00 by default).
        max_depth: GT beyond this is ignored in the metrics (the prior's range, 80 m).

    FileNotFoundError naming the depth folder when no frame has a pseudo depth file, or a missing GT file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vipocc.data.depth_gt import depth_gt_path
    from vipocc.data.images import read_image
    from vipocc.evaluation.metrics import depth_metrics
    from vipocc.io import atomic_path
    from vipocc.priors.stage import View, depth_prior_path, view_folder

    derived_root = Path(derived_root)
    views = [View(seq, camera, view_folder(camera, folders), int(frame)) for frame in frames]
    ready = [view for view in views if depth_prior_path(derived_root, view).is_file()]
    if not ready:
        folder = derived_root / "depth" / seq / camera / view_folder(camera, folders)
        raise FileNotFoundError(f"{folder}: no pseudo depth file for any of the {len(views)} frames of {seq}")
    picked = pick_frames(ready, rows)

    height, width = read_image(picked[0].image_path(derived_root)).shape[:2]
    panel_height = 4.6 * height / width + 0.35  # 4.6 in wide panels plus their title
    fig, axes = plt.subplots(len(picked), 3, figsize=(15, panel_height * len(picked) + 0.2), squeeze=False,
                             layout="constrained")
    kind = "oracle depth" if oracle is not None else "LiDAR GT"
    for row, view in zip(axes, picked):
        image = read_image(view.image_path(derived_root))
        prior = np.load(depth_prior_path(derived_root, view))
        if oracle is not None:
            dense = oracle.depth(view)
            gt = reference_gt(dense, max_depth)
        else:
            path = depth_gt_path(derived_root, seq, camera, view.frame)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: LiDAR depth GT missing (run `vipocc depth-gt` first)")
            gt = np.load(path).astype(np.float64)
        scores = (depth_metrics(gt, prior)["abs_rel"], depth_metrics(gt, prior, "median")["abs_rel"]) \
            if (gt > 0).any() else (np.nan, np.nan)
        valid_inverse = _inverse(gt[gt > 0]) if (gt > 0).any() else _inverse(prior)
        vmin, vmax = 1.0 / max_depth, float(np.nanpercentile(valid_inverse, 98))
        row[0].imshow(image)
        row[0].set_title(f"{seq} {camera} {view.frame:010d}", fontsize=8)
        shown = row[1].imshow(_inverse(prior), cmap="magma", vmin=vmin, vmax=vmax)
        row[1].set_title(f"pseudo depth: AbsRel {scores[0]:.3f} unscaled, {scores[1]:.3f} median-scaled", fontsize=8)
        if oracle is not None:
            row[2].imshow(_inverse(dense), cmap="magma", vmin=vmin, vmax=vmax)  # sky: 1/inf = 0
        else:
            v, u = np.nonzero(gt > 0)
            row[2].imshow(image.mean(axis=2), cmap="gray", vmin=0, vmax=700)  # dimmed image under the points
            row[2].scatter(u, v, c=_inverse(gt[v, u]), cmap="magma", vmin=vmin, vmax=vmax, s=3, linewidths=0)
        row[2].set_title(kind, fontsize=8)
        for axis in row:
            axis.set_axis_off()
        fig.colorbar(shown, ax=list(row), fraction=0.015, pad=0.01, label="1 / depth (1/m)")
    out_path = Path(out_path)
    with atomic_path(out_path) as temporary:
        fig.savefig(temporary, format="png", dpi=100)
    plt.close(fig)
    return out_path
