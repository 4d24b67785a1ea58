"""Paper-style figures of the report (issue 7), drawn from result files only (no metric is computed here).

Every figure function returns a :class:`matplotlib.figure.Figure` built without pyplot (Agg canvas, no global
figure registry, so nothing leaks between calls and no display is needed); :func:`save_figure` writes it as PNG
and PDF atomically. A function whose inputs are absent raises :class:`MissingInputs` (a FileNotFoundError);
:class:`FigureSet` turns that into a printed note and a ``skipped`` entry of ``figures.json``.

Figures and the files they read (paths relative to the workflow folder):

* :func:`qualitative_figure`: ``results/eval/<model>/demo/<seq>_<frame:010d>_{rgb,disp_r,disp_p,disp_pseudo,bev}.png``.
* :func:`occupancy_error_maps`: ``results/eval/<model>/occupancy_<protocol>/grids.npz`` (written by the occupancy
  evaluator, :func:`vipocc.evaluation.occupancy.save_occupancy_grids`) and the ``per_frame.csv`` next to it (the
  scores shown in the titles are read, not recomputed).
* :func:`training_curves`: ``results/train/<exp>/work/{losses,validation}.csv`` (or the copies in
  ``results/train/<exp>/`` written when training ends).
* :func:`gt_vs_truth_figure`: ``results/data/kitti360/occupancy_gt_vs_truth.csv``
  (:func:`vipocc.data.occupancy_stage.report_csv`).
* :func:`snog_vs_random_figure`: ``<derived>/samples/<seq>/image_00/<folder>/<frame:010d>.npy`` (SNOG anchors),
  ``<derived>/data_2d_raw/<seq>/image_00/<folder>/<frame:010d>.png`` and, when present, the detections JSON.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "ERROR_COLOURS",
    "FRACTION_LABELS",
    "FigureSet",
    "MissingInputs",
    "demo_frames",
    "error_map_rgb",
    "first_anchor_frame",
    "gt_vs_truth_figure",
    "model_label",
    "occupancy_error_maps",
    "qualitative_figure",
    "qualitative_models",
    "save_figure",
    "snog_and_random_patches",
    "snog_vs_random_figure",
    "training_curves",
]


class MissingInputs(FileNotFoundError):
    """The result files a figure needs are absent (the figure is skipped, not an error of the report)."""


_MODEL_LABELS = {"bts": "BTS", "vipocc": "ViPOcc", "bts_official": "BTS (official)",
                 "vipocc_official": "ViPOcc (official)", "depth_prior": "Depth Anything V2"}


def model_label(name: str) -> str:
    """Display name of a model / experiment folder name (``vipocc`` -> ``ViPOcc``; unknown names unchanged)."""
    return _MODEL_LABELS.get(name, name)


def _short_seq(seq: str) -> str:
    """``2013_05_28_drive_0004_sync`` -> ``0004`` (the drive number; other names unchanged)."""
    match = re.search(r"drive_(\d{4})", seq)
    return match.group(1) if match else seq


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or "/" in value or "\\" in value:
        raise ValueError(f"{what}: expected a non-empty name without path separators, got {value!r}")
    return value


def _evenly(count: int, wanted: int | None) -> list[int]:
    """Up to ``wanted`` indices of ``range(count)`` spread evenly, first and last included (all when None)."""
    if wanted is None or wanted >= count:
        return list(range(count))
    if wanted < 1:
        raise ValueError(f"number of frames: expected >= 1, got {wanted}")
    return np.unique(np.round(np.linspace(0, count - 1, wanted)).astype(int)).tolist()


# --------------------------------------------------------------------------------------------------- saving


def save_figure(fig: Figure, out_dir: str | os.PathLike, name: str, dpi: int = 150) -> dict[str, Path]:
    """Write ``<out_dir>/<name>.png`` and ``<out_dir>/<name>.pdf`` (atomically, folders created).

    The PDF carries no creation date, so re-rendering unchanged inputs gives the same bytes. Returns
    ``{"png": path, "pdf": path}``.
    """
    from vipocc.io import atomic_path

    _check_name(name, "name")
    if not isinstance(fig, Figure):
        raise ValueError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    paths = {fmt: Path(out_dir) / f"{name}.{fmt}" for fmt in ("png", "pdf")}
    metadata = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None}}
    for fmt, path in paths.items():
        with atomic_path(path) as temporary:
            fig.savefig(temporary, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata[fmt])
    return paths


class FigureSet:
    """Makes, saves and lists the figures of a report folder (what the notebook calls).

    ``make(name, function, *args)`` calls ``function(*args)``; a :class:`FileNotFoundError` (absent inputs) is
    printed and recorded as skipped, anything else propagates. ``write_manifest()`` writes ``figures.json``:
    ``{"out_dir", "figures": {name: {"png": file, "pdf": file}}, "skipped": {name: reason}}`` (file names relative
    to out_dir).
    """

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = Path(out_dir)
        self.written: dict[str, dict[str, str]] = {}
        self.skipped: dict[str, str] = {}

    def make(self, name: str, function: Callable[..., Figure], *args: Any, **kwargs: Any) -> Path | None:
        """The PNG written for figure ``name``, or None when its inputs are absent (a note is printed)."""
        _check_name(name, "name")
        try:
            fig = function(*args, **kwargs)
        except FileNotFoundError as error:
            print(f"skipped figure {name}: {error}")
            self.skipped[name] = str(error)
            self.written.pop(name, None)
            return None
        paths = save_figure(fig, self.out_dir, name)
        self.written[name] = {fmt: path.name for fmt, path in paths.items()}
        self.skipped.pop(name, None)
        return paths["png"]

    def show(self, name: str, function: Callable[..., Figure], *args: Any, **kwargs: Any) -> Path | None:
        """:meth:`make`, then display the PNG inline (in a notebook; the saved file, so the HTML shows what was
        written)."""
        png = self.make(name, function, *args, **kwargs)
        if png is not None:
            from IPython.display import Image, display

            display(Image(filename=str(png)))
        return png

    def write_manifest(self) -> Path:
        from vipocc.io import write_text

        path = self.out_dir / "figures.json"
        document = {"out_dir": str(self.out_dir), "figures": self.written, "skipped": self.skipped}
        write_text(path, json.dumps(document, indent=2) + "\n")
        return path


# ------------------------------------------------------------------------------------------- qualitative

_DEMO_RGB = re.compile(r"^(?P<seq>.+)_(?P<frame>\d{10})_rgb\.png$")
_PAPER_MODELS = (("bts", "vipocc"), ("bts_official", "vipocc_official"))


def demo_frames(eval_root: str | os.PathLike, model: str) -> list[tuple[str, int]]:
    """(seq, frame) of every ``<seq>_<frame:010d>_rgb.png`` in ``<eval_root>/<model>/demo``, sorted; [] if none."""
    folder = Path(eval_root) / model / "demo"
    if not folder.is_dir():
        return []
    found = (_DEMO_RGB.match(entry.name) for entry in os.scandir(folder))
    return sorted((m["seq"], int(m["frame"])) for m in found if m)


def qualitative_models(models: Sequence[str], eval_root: str | os.PathLike | None = None) -> list[str]:
    """The models of the paper's qualitative figure among ``models``: trained BTS and ViPOcc when either is listed,
    else the official checkpoints, else every listed model (with demo renders, when ``eval_root`` is given)."""
    def has_demo(model: str) -> bool:
        return eval_root is None or bool(demo_frames(eval_root, model))

    for pair in _PAPER_MODELS:
        chosen = [m for m in pair if m in models and has_demo(m)]
        if chosen:
            return chosen
    return [m for m in models if has_demo(m)]


def _demo_png(eval_root: Path, model: str, seq: str, frame: int, kind: str) -> Path:
    return eval_root / model / "demo" / f"{seq}_{frame:010d}_{kind}.png"


def _qualitative_columns(models: Sequence[str]) -> list[tuple[str, tuple[str, ...], str]]:
    """(title, models tried in order, demo kind) per column: input, rendered/predicted depth per model, pseudo
    depth, BEV per model. Input and pseudo depth come from the first model that has the file."""
    columns = [("Input", tuple(models), "rgb")]
    for model in models:
        columns += [(f"{model_label(model)} rendered depth", (model,), "disp_r"),
                    (f"{model_label(model)} predicted depth", (model,), "disp_p")]
    columns.append(("Pseudo depth prior", tuple(models), "disp_pseudo"))
    columns += [(f"{model_label(model)} BEV", (model,), "bev") for model in models]
    return columns


def qualitative_figure(eval_root: str | os.PathLike, models: Sequence[str],
                       frames: Sequence[tuple[str, int]] | None = None, *, max_frames: int | None = 6,
                       row_height_in: float = 1.3) -> Figure:
    """The paper's qualitative figure from the demo PNGs: one row per frame; columns input, rendered depth of each
    model, predicted depth (models with a depth branch), the pseudo-depth prior, the bird's-eye occupancy of each
    model (columns of a model without demo renders, and columns no frame has a file for, are dropped).

    Args:
        eval_root: results/eval.
        models: model folders in column order, e.g. ["bts", "vipocc"].
        frames: (seq, frame) rows; None = the demo frames every listed model with renders has, at most
            ``max_frames`` of them spread evenly.
        row_height_in: height of a row in inches (column widths follow the pictures' aspect ratios).

    A cell whose PNG is missing is left blank with the word "missing". Axes: rows x columns (one per cell,
    blank ones included). MissingInputs when no listed model has demo renders.
    """
    from vipocc.data.images import read_image

    root = Path(eval_root)
    available = [m for m in models if demo_frames(root, m)]
    if not available:
        raise MissingInputs(f"{root}: no demo renders (<model>/demo/*_rgb.png) for any of {list(models)}")
    if frames is None:
        common = set.intersection(*(set(demo_frames(root, m)) for m in available))
        ordered = sorted(common)
        frames = [ordered[i] for i in _evenly(len(ordered), max_frames)]
    frames = [(str(seq), int(frame)) for seq, frame in frames]
    if not frames:
        raise MissingInputs(f"{root}: the demo folders of {available} share no frame")

    def cell(sources: tuple[str, ...], kind: str, seq: str, frame: int) -> Path | None:
        paths = (_demo_png(root, m, seq, frame, kind) for m in sources)
        return next((p for p in paths if p.is_file()), None)

    grid = []  # [(title, [path or None per frame])] of the kept columns
    for title, sources, kind in _qualitative_columns(available):
        files = [cell(sources, kind, seq, frame) for seq, frame in frames]
        if any(files):
            grid.append((title, files))
    if not grid:
        raise MissingInputs(f"{root}: no demo PNG of the frames {frames} for {available}")
    images = {path: read_image(path) for _, files in grid for path in files if path is not None}
    ratios = [next(images[p].shape[1] / images[p].shape[0] for p in files if p is not None) for _, files in grid]

    fig = Figure(figsize=(row_height_in * sum(ratios) + 0.4, row_height_in * len(frames) + 0.3))
    layout = fig.add_gridspec(len(frames), len(grid), width_ratios=ratios, wspace=0.03, hspace=0.04)
    for col, (title, files) in enumerate(grid):
        for row, ((seq, frame), path) in enumerate(zip(frames, files)):
            ax = fig.add_subplot(layout[row, col])
            ax.set_xticks([])
            ax.set_yticks([])
            if path is None:
                ax.text(0.5, 0.5, "missing", ha="center", va="center", fontsize=7, color="0.4",
                        transform=ax.transAxes)
            else:
                ax.imshow(images[path], interpolation="nearest", aspect="auto")
            if row == 0:
                ax.set_title(title, fontsize=7)
            if col == 0:
                ax.set_ylabel(f"{_short_seq(seq)} / {frame}", fontsize=7)
    return fig


# ---------------------------------------------------------------------------------------- error maps

#: RGB of each cell class of an error map (prediction vs truth); TN is white.
ERROR_COLOURS: dict[str, tuple[float, float, float]] = {
    "TN": (1.0, 1.0, 1.0), "FP": (0.84, 0.15, 0.16), "FN": (0.12, 0.47, 0.71), "TP": (0.17, 0.63, 0.17)}
#: Cells invisible to the lidar (scan 0) are blended with this grey by GREY_WEIGHT.
GREY = (0.5, 0.5, 0.5)
GREY_WEIGHT = 0.45


def error_map_rgb(predicted: np.ndarray, truth: np.ndarray, invisible: np.ndarray,
                  grey_weight: float = GREY_WEIGHT) -> np.ndarray:
    """Colour a bird's-eye error map: float [rows, cols, 3] in [0, 1].

    predicted, truth, invisible: bool [rows, cols]. Each cell gets ``ERROR_COLOURS`` of its class (TP = predicted
    and true, FP = predicted only, FN = true only, TN = neither); invisible cells are greyed:
    ``(1 - grey_weight) * colour + grey_weight * GREY``, so the class stays readable.
    """
    predicted, truth, invisible = (np.asarray(a, dtype=bool) for a in (predicted, truth, invisible))
    if not predicted.shape == truth.shape == invisible.shape or predicted.ndim != 2:
        raise ValueError(f"predicted {predicted.shape}, truth {truth.shape}, invisible {invisible.shape}: expected "
                         "equal [rows, cols] shapes")
    if not 0.0 <= grey_weight <= 1.0:
        raise ValueError(f"grey_weight: expected a value in [0, 1], got {grey_weight}")
    palette = np.array([ERROR_COLOURS[k] for k in ("TN", "FP", "FN", "TP")], dtype=np.float64)
    rgb = palette[2 * truth.astype(np.int64) + predicted]  # class code: TN 0, FP 1, FN 2, TP 3
    greyed = (1.0 - grey_weight) * rgb + grey_weight * np.asarray(GREY)
    return np.where(invisible[..., None], greyed, rgb)


def _per_frame_scores(folder: Path) -> dict[tuple[str, int], dict[str, str]]:
    """Rows of ``per_frame.csv`` keyed by (seq, frame); {} when the file is absent."""
    from vipocc.evaluation.records import PER_FRAME_CSV, read_per_frame

    path = folder / PER_FRAME_CSV
    if not path.is_file():
        return {}
    return {(row["seq"], int(row["frame"])): row for row in read_per_frame(path)}


def _score_text(row: dict[str, str] | None, prefix: str) -> str:
    """'O_acc 0.912  IE_acc 0.701' from a per-frame CSV row (read, not computed); '' when absent."""
    if not row:
        return ""
    values = []
    for key, label in (("scene_o_acc", "O_acc"), ("scene_ie_acc", "IE_acc")):
        text = row.get(prefix + key, "")
        if text not in ("", "nan"):
            values.append(f"{label} {float(text):.3f}")
    return "\n" + "  ".join(values) if values else ""


def occupancy_error_maps(eval_root: str | os.PathLike, model: str, protocol: str = "4-20",
                         n_frames: int | None = 4, *, frames: Sequence[tuple[str, int]] | None = None,
                         panel_width_in: float = 1.6) -> Figure:
    """Bird's-eye error maps of a model's predicted occupancy: one column per frame, one row per truth: the exact
    occupancy of the synthetic world (when the grids hold it) and the lidar GT.

    Both truths are taken as the evaluator scores them (``occupied & ~visible``: lidar-visible cells are free).
    Cells are coloured by :func:`error_map_rgb` (TP green, FP red, FN blue, TN white; cells invisible to the lidar
    greyed); the dashed line is the far cut (rows beyond it are not in the scene scores). Axes: x right (m),
    z forward (m), far end at the top. Titles give the frame's scene O_acc / IE_acc read from per_frame.csv.

    Args:
        eval_root: results/eval; model: its folder; protocol: "4-20" or "4-50" (folder occupancy_<protocol>).
        n_frames: frames spread evenly over the evaluated ones (None = all); frames: explicit (seq, frame) list.

    MissingInputs when ``grids.npz`` is absent (evaluation run without it) or none of ``frames`` is in it.
    """
    from matplotlib.patches import Patch

    from vipocc.evaluation.metrics import far_cut
    from vipocc.evaluation.occupancy import GRIDS_NPZ, load_occupancy_grids

    folder = Path(eval_root) / _check_name(model, "model") / f"occupancy_{_check_name(protocol, 'protocol')}"
    path = folder / GRIDS_NPZ
    if not path.is_file():
        raise MissingInputs(f"{path}: no saved occupancy grids (evaluate with save_grids=True)")
    grids = load_occupancy_grids(path)
    keys = list(zip(grids["seq"].tolist(), grids["frame"].tolist()))
    if frames is None:
        picked = _evenly(len(keys), n_frames)
    else:
        wanted = {(str(s), int(f)) for s, f in frames}
        picked = [i for i, key in enumerate(keys) if key in wanted]
    if not picked:
        raise MissingInputs(f"{path}: holds none of the requested frames ({len(keys)} frames saved)")
    truths = ([("exact", "exact truth", "exact_")] if "exact_occupied" in grids else []) + \
        [("gt", "lidar GT", "")]
    scores = _per_frame_scores(folder)
    z, x = grids["z_m"].astype(np.float64), grids["x_m"].astype(np.float64)
    dz, dx = abs(z[0] - z[-1]) / max(len(z) - 1, 1), abs(x[-1] - x[0]) / max(len(x) - 1, 1)
    extent = (x[0] - dx / 2, x[-1] + dx / 2, z[-1] - dz / 2, z[0] + dz / 2)
    aspect = (extent[3] - extent[2]) / (extent[1] - extent[0])
    fig = Figure(figsize=(panel_width_in * len(picked) + 0.6, panel_width_in * aspect * len(truths) + 1.4),
                 layout="constrained")
    axes = fig.subplots(len(truths), len(picked), squeeze=False, sharex=True, sharey=True)
    for row, (kind, label, prefix) in enumerate(truths):
        for col, index in enumerate(picked):
            ax = axes[row, col]
            seq, frame = keys[index]
            title = f"{_short_seq(seq)} / {frame}\nvs {label}"
            visible = grids["gt_visible"][index]
            if kind == "exact" and not grids["has_exact"][index]:
                ax.text(0.5, 0.5, "no exact map", ha="center", va="center", fontsize=7, transform=ax.transAxes)
                ax.set_title(title, fontsize=7)
                continue
            occupied = grids["exact_occupied" if kind == "exact" else "gt_occupied"][index] & ~visible
            ax.imshow(error_map_rgb(grids["predicted"][index], occupied, ~visible), extent=extent,
                      interpolation="nearest", aspect="equal")
            start = far_cut(visible).start  # drawing position of the evaluator's far cut (no score computed)
            if 0 < start < len(z):
                ax.axhline(z[start] + dz / 2, color="black", linestyle="--", linewidth=0.8)
            ax.set_title(title + _score_text(scores.get((seq, frame)), prefix), fontsize=7)
            ax.tick_params(labelsize=6)
        axes[row, 0].set_ylabel("z (m)", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("x (m)", fontsize=7)
    handles = [Patch(facecolor=ERROR_COLOURS[k], edgecolor="0.3", label=k) for k in ("TP", "FP", "FN", "TN")]
    grey_tn = tuple(float(v) for v in error_map_rgb(np.zeros((1, 1), bool), np.zeros((1, 1), bool),
                                                     np.ones((1, 1), bool))[0, 0])
    handles.append(Patch(facecolor=grey_tn, edgecolor="0.3", label="greyed: invisible to lidar"))
    fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=7, frameon=False)
    fig.suptitle(f"{model_label(model)}: occupancy errors, {protocol} m (dashed: far cut)", fontsize=8)
    return fig


# ------------------------------------------------------------------------------------------ training curves


def _training_log(train_root: Path, experiment: str, name: str) -> Path | None:
    """``<exp>/work/<name>`` (written during training), else the copy ``<exp>/<name>``; None when neither."""
    for path in (train_root / experiment / "work" / name, train_root / experiment / name):
        if path.is_file():
            return path
    return None


def _long_table(train_root: Path, experiments: Sequence[str], name: str, columns: Sequence[str] | None,
                skip: Sequence[str]):
    """(tidy table (experiment, step, quantity, value) of one log CSV over the experiments, finite values only;
    the quantities with a value, in CSV header order)."""
    import pandas as pd

    parts, order = [], {}
    for experiment in experiments:
        path = _training_log(train_root, experiment, name)
        if path is None:
            continue
        table = pd.read_csv(path)
        if "step" not in table.columns:
            raise ValueError(f"{path}: no 'step' column (expected a training log CSV)")
        wanted = [c for c in (columns or table.columns) if c in table.columns and c != "step" and c not in skip]
        order |= dict.fromkeys(wanted)
        long = table.melt(id_vars="step", value_vars=wanted, var_name="quantity", value_name="value")
        long["value"] = pd.to_numeric(long["value"], errors="coerce")
        long["experiment"] = experiment
        parts.append(long[np.isfinite(long["value"])])
    if not parts:
        return pd.DataFrame(columns=["step", "quantity", "value", "experiment"]), []
    table = pd.concat(parts, ignore_index=True)
    present = set(table["quantity"])
    return table, [q for q in order if q in present]


_LOSS_SKIP = ("epoch", "lr", "seconds_per_step")
_VALIDATION_SKIP = ("frames", "seconds")
_HIGHER_IS_BETTER = ("a1", "a2", "a3")


def training_curves(train_root: str | os.PathLike | None, experiments: Sequence[str], *,
                    loss_columns: Sequence[str] | None = None, validation_metrics: Sequence[str] | None = None,
                    panel_columns: int = 4) -> Figure:
    """Loss terms (losses.csv, window means) and validation metrics (validation.csv) vs training step, one panel per
    quantity, one line per experiment.

    Args:
        train_root: results/train (per experiment ``work/losses.csv`` or the final copy ``losses.csv``).
        experiments: experiment folders, in legend order; missing ones are left out.
        loss_columns / validation_metrics: quantities to draw; None = every column with a finite value (step,
            epoch, lr, timing, frame counts excluded).

    Axes: one per quantity that some experiment logged. MissingInputs when no experiment has a log.
    """
    import seaborn as sns

    if train_root is None:
        raise MissingInputs("train_root: not given (no trained experiments)")
    root = Path(train_root)
    losses, loss_names = _long_table(root, experiments, "losses.csv", loss_columns, _LOSS_SKIP)
    validation, metric_names = _long_table(root, experiments, "validation.csv", validation_metrics, _VALIDATION_SKIP)
    if not loss_names and not metric_names:
        raise MissingInputs(f"{root}: no losses.csv / validation.csv for any of {list(experiments)}")
    panels = [("train", q, losses) for q in loss_names] + [("validation", q, validation) for q in metric_names]
    present = [e for e in experiments if e in set(losses["experiment"]) | set(validation["experiment"])]
    palette = dict(zip(present, sns.color_palette("tab10", len(present))))
    ncols = max(1, min(panel_columns, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.5 * nrows + 0.5), layout="constrained")
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        fig.delaxes(ax)
    for ax, (source, quantity, table) in zip(axes, panels):
        data = table[table["quantity"] == quantity]
        for experiment in present:  # a handful of lines
            rows = data[data["experiment"] == experiment].sort_values("step")
            if len(rows):
                ax.plot(rows["step"].to_numpy(), rows["value"].to_numpy(), color=palette[experiment],
                        marker="o" if source == "validation" else None, markersize=3, linewidth=1.2)
        arrow = " (higher better)" if quantity in _HIGHER_IS_BETTER else ""
        ax.set_title(f"{source}: {quantity}{arrow}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("")
        ax.tick_params(labelsize=7)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=palette[e], label=e) for e in present]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(present), 6), fontsize=8, frameon=False)
    return fig


# -------------------------------------------------------------------------------------------- GT vs truth

#: Fraction columns of the GT-vs-truth CSV and their legend labels.
FRACTION_LABELS = {
    "visible_truly_free": "visible cells truly free",
    "invisible_agreement": "invisible cells: lidar GT = truth",
    "lidar_occupied_precision": "lidar-occupied precision",
    "exact_occupied_recall": "truly occupied recall",
    "agreement": "all cells: lidar GT = truth",
}
_COUNT_LABELS = {"exact_occupied": "truly occupied", "lidar_occupied": "lidar occupied",
                 "lidar_and_exact_occupied": "both"}


def _report_scope(json_path: Path) -> str:
    """', 12 frames of 0000, 0003' from the report JSON next to the CSV; '' when absent or without a scope."""
    if not json_path.is_file():
        return ""
    try:
        report = json.loads(json_path.read_text())
        sequences = ", ".join(_short_seq(str(s)) for s in report.get("sequences", []))
        return f", {int(report['frames'])} frames of {sequences}" if "frames" in report else ""
    except (ValueError, TypeError, AttributeError):
        return ""


def gt_vs_truth_figure(csv_path: str | os.PathLike | None) -> Figure:
    """Agreement of the lidar occupancy GT with the exact truth of the synthetic world per distance band.

    Left: the report's fractions (visible cells truly free, invisible agreement, lidar-occupied precision, truly
    occupied recall, overall agreement) per band, "all" last. Right: occupied cell counts per band (truly
    occupied, lidar occupied, both; log scale). Reads the columns of ``occupancy_gt_vs_truth.csv``
    (:func:`vipocc.data.occupancy_stage.report_csv`); an empty field (undefined fraction) is no bar.

    Axes: 2. MissingInputs when ``csv_path`` is None or absent (the report exists on the synthetic world only).
    """
    import pandas as pd
    import seaborn as sns

    if csv_path is None:
        raise MissingInputs("gt_vs_truth_csv: not given (the lidar-GT-vs-truth report needs the synthetic world)")
    path = Path(csv_path)
    if not path.is_file():
        raise MissingInputs(f"{path}: lidar-GT-vs-truth table not found")
    table = pd.read_csv(path, dtype={"band": str})
    fractions = [c for c in FRACTION_LABELS if c in table.columns]
    counts = [c for c in _COUNT_LABELS if c in table.columns]
    if "band" not in table.columns or not fractions or table.empty:
        raise ValueError(f"{path}: expected a 'band' column, rows and some of {list(FRACTION_LABELS)}")
    bands = table["band"].tolist()
    long = table.melt(id_vars="band", value_vars=fractions, var_name="fraction", value_name="value")
    long["fraction"] = long["fraction"].map(FRACTION_LABELS)
    fig = Figure(figsize=(12.5, 3.8), layout="constrained")
    with sns.axes_style("whitegrid"):
        left, right = fig.subplots(1, 2, width_ratios=[1.6, 1])
    sns.barplot(data=long, x="band", y="value", hue="fraction", order=bands, ax=left, errorbar=None,
                palette="deep")
    left.set_ylim(0, 1.05)
    left.set_xlabel("cell distance band z (m)")
    left.set_ylabel("fraction")
    left.set_title("lidar occupancy GT vs exact truth")
    sns.move_legend(left, "upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=7, title=None,
                    frameon=False)
    if counts:
        per_band = table[table["band"] != "all"].melt(id_vars="band", value_vars=counts, var_name="cells",
                                                      value_name="count")
        per_band["cells"] = per_band["cells"].map(_COUNT_LABELS)
        sns.barplot(data=per_band, x="band", y="count", hue="cells", ax=right, errorbar=None, palette="muted")
        right.set_yscale("log")
        sns.move_legend(right, "upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=7, title=None,
                        frameon=False)
    right.set_xlabel("cell distance band z (m)")
    right.set_title("occupied cells per band")
    fig.suptitle(f"GT protocol vs exact truth: {path.name}{_report_scope(path.with_suffix('.json'))}", fontsize=8)
    return fig


# ------------------------------------------------------------------------------------------------- SNOG

_FRAME_NPY = re.compile(r"^\d{10}\.npy$")
_PERSPECTIVE_FOLDER = re.compile(r"^data_\d+x\d+$")


def first_anchor_frame(derived_root: str | os.PathLike, camera: str = "image_00", seq: str | None = None
                       ) -> tuple[str, int, str]:
    """(seq, frame, folder) of the first SNOG anchor file (sequences and frames in sorted order) of ``camera``
    under ``<derived>/samples`` (perspective folders ``data_<H>x<W>`` only); anchors are drawn for the training
    frames, so this is the first training frame with anchors. ``seq`` restricts the search to one sequence.
    MissingInputs when there is none."""
    samples = Path(derived_root) / "samples"
    seqs = [seq] if seq is not None else (sorted(p.name for p in samples.iterdir() if p.is_dir())
                                          if samples.is_dir() else [])
    for name in seqs:
        camera_dir = samples / name / camera
        folders = sorted(p.name for p in camera_dir.iterdir() if p.is_dir() and _PERSPECTIVE_FOLDER.match(p.name)) \
            if camera_dir.is_dir() else []
        for folder in folders:
            files = sorted(e.name for e in os.scandir(camera_dir / folder) if _FRAME_NPY.match(e.name))
            if files:
                return name, int(files[0][:10]), folder
    where = samples / (seq or "*") / camera
    raise MissingInputs(f"{where}: no SNOG anchor file (<folder>/<frame:010d>.npy)")


def snog_and_random_patches(anchors: np.ndarray, image_size: tuple[int, int], patch_size: int = 8,
                            n_patches: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners (x, y) px, int64 [n_patches, 2] each, of the patches the training samplers would draw on one
    perspective loss view: SNOG (:class:`vipocc.models.ray_sampler.SnogSampler`: one stored anchor set, then
    ``n_patches`` of its anchors without replacement) and uniform random
    (:class:`~vipocc.models.ray_sampler.PatchSampler`).

    anchors: [n_sets, A, 2] (x, y) patch centres (an anchor file); image_size (H, W). Each sampler draws from its
    own ``torch.Generator`` seeded with ``seed``.
    """
    import torch

    from vipocc.models.ray_sampler import PatchSampler, SnogSampler

    anchors = np.asarray(anchors)
    if anchors.ndim != 3 or anchors.shape[-1] != 2:
        raise ValueError(f"anchors: expected [n_sets, A, 2], got {anchors.shape}")
    height, width = (int(v) for v in image_size)
    identity = torch.eye(4).expand(1, 1, 4, 4)
    K = torch.eye(3).expand(1, 1, 3, 3)  # rays are not used; any invertible intrinsics
    images = torch.zeros(1, 1, 3, height, width)
    snog = SnogSampler(patch_size, n_patches=n_patches, anchors_per_view=n_patches)
    rays = snog.sample(images, identity, K, [0], {0: torch.from_numpy(anchors.astype(np.int64))[None]},
                       torch.Generator().manual_seed(seed))
    snog_corners = rays.pixels[0, :: patch_size * patch_size].numpy()  # first pixel of a patch = its corner
    _, x0, y0 = PatchSampler(patch_size, n_patches).draw_patches(1, 1, (height, width),
                                                                 torch.Generator().manual_seed(seed),
                                                                 torch.device("cpu"))
    random_corners = torch.stack((x0[0], y0[0]), dim=-1).numpy()
    return snog_corners.astype(np.int64), random_corners.astype(np.int64)


def snog_vs_random_figure(derived_root: str | os.PathLike, seq: str | None = None, frame: int | None = None, *,
                          camera: str = "image_00", folder: str | None = None, patch_size: int = 8,
                          n_patches: int = 16, seed: int = 0) -> Figure:
    """One training image with SNOG patch placements (top) and uniform random ones (bottom).

    Args:
        derived_root: holds samples/ (anchors, detections) and data_2d_raw/ (preprocessed images).
        seq, frame: the image; None = :func:`first_anchor_frame`.
        folder: preprocessed folder (``data_<H>x<W>``); None = the one holding the anchor file.
        patch_size, n_patches: patches drawn by each sampler (16 = SNOG anchors per perspective view in training).
        seed: seed of both samplers' generators.

    Top panel also shows every stored anchor (all sets, small dots) and the detection boxes (dashed) when the
    detections JSON exists. Axes: 2. MissingInputs when the anchor file or the image is absent.
    """
    from matplotlib.patches import Rectangle

    from vipocc.data.images import read_image
    from vipocc.priors.snog import anchor_path, load_anchors
    from vipocc.priors.stage import View, detections_path, read_detections

    root = Path(derived_root)
    if seq is None or frame is None:
        seq, frame, found_folder = first_anchor_frame(root, camera, seq)
        folder = folder or found_folder
    frame = int(frame)
    if folder is None:
        camera_dir = root / "samples" / seq / camera
        candidates = sorted(p.name for p in camera_dir.glob("data_*") if (p / f"{frame:010d}.npy").is_file())
        if not candidates:
            raise MissingInputs(f"{camera_dir}: no anchor file of frame {frame:010d}")
        folder = candidates[0]
    path = anchor_path(root / "samples", seq, camera, folder, frame)
    view = View(seq, camera, folder, frame)
    for needed in (path, view.image_path(root)):
        if not needed.is_file():
            raise MissingInputs(f"{needed}: not found (SNOG figure)")
    anchors = load_anchors(path)
    image = read_image(view.image_path(root))
    snog, uniform = snog_and_random_patches(anchors, image.shape[:2], patch_size, n_patches, seed)
    boxes_file = detections_path(root, view)
    detections = read_detections(boxes_file) if boxes_file.is_file() else []

    height, width = image.shape[:2]
    fig = Figure(figsize=(9.0, 2 * 9.0 * height / width + 0.8), layout="constrained")
    axes = fig.subplots(2, 1)
    panels = ((axes[0], snog, "tab:orange", f"SNOG: {len(snog)} anchors of one of {anchors.shape[0]} sets"),
              (axes[1], uniform, "tab:cyan", f"random: {len(uniform)} uniform patches"))
    for ax, corners, colour, title in panels:
        ax.imshow(image, interpolation="nearest")
        for det in detections:  # a handful of boxes per image
            x1, y1, x2, y2 = (float(v) for v in det["box"])
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="white", linestyle="--",
                                   linewidth=0.7))
        for x0, y0 in corners.tolist():  # n_patches rectangles
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), patch_size, patch_size, fill=False, edgecolor=colour,
                                   linewidth=1.2))
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    axes[0].scatter(anchors[..., 0].ravel(), anchors[..., 1].ravel(), s=1, c="yellow", alpha=0.35, linewidths=0)
    axes[0].set_xlim(-0.5, width - 0.5)
    axes[0].set_ylim(height - 0.5, -0.5)
    labels = sorted({str(det.get("label", "")) for det in detections})
    boxes = f"; dashed: detections ({', '.join(labels)})" if detections else ""
    fig.suptitle(f"{seq} {camera} {frame:010d}: {patch_size}x{patch_size} patches, seed {seed}{boxes}", fontsize=8)
    return fig
