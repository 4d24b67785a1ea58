"""Paper tables from the evaluation results, next to the numbers the authors report.

Input: ``results/eval/<model>/<evaluator>[_<protocol>]/summary.json`` (:mod:`vipocc.evaluation.records`) and the
registry ``expected_results.yaml`` (:mod:`vipocc.report.expected`). Nothing here computes a metric: the tables
only place the summary means next to the reported values.

* :func:`collect_results`: one tidy row per (model, evaluator, protocol, metric) with the provenance of its
  summary (dataset kind, split, frames, prior backend, scaling, range, git commit, ...).
* :func:`occupancy_table`, :func:`depth_table`, :func:`pseudo_depth_table`, :func:`ablation_table`: the paper's
  layouts. Rows are indexed by (method, model, setting, quantity); quantity is ``reproduced`` (our mean),
  ``reproduced_exact`` (occupancy on the synthetic world: the same prediction scored against the exact oracle
  occupancy instead of the lidar GT), ``reported`` (registry), ``delta`` (reproduced - reported), and
  ``within_tolerance`` (True / False per metric); the ablation table has ``delta_vs_<reference>`` instead.
  Columns are the metrics in the paper's order plus ``Frames``. A model without results makes no row.
  The returned DataFrame carries what its caption needs in ``table.attrs["info"]``.
* :func:`caption`: range, GT scans, split and frames, prior backend, synthetic-world warning, scaling, commit.
* :func:`write_table` (CSV with raw values + LaTeX with rounded ones, both atomic), :func:`styled` (display),
  :func:`publish_table` (caption + write + display in one call) and :func:`write_index` (``tables.json``).
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vipocc.evaluation.records import SUMMARY_JSON
from vipocc.io import write_text
from vipocc.report.expected import Expected, find_expected, method_of

__all__ = ["ABLATION_COLUMNS", "DEPTH_COLUMNS", "INDEX_LEVELS", "OCCUPANCY_COLUMNS", "RESULT_COLUMNS",
           "TABLE_NAMES", "PublishedTable", "ablation_table", "caption", "collect_results", "depth_table",
           "format_cells", "occupancy_table", "overview", "pseudo_depth_table", "publish_table", "styled",
           "write_index", "write_table"]

# Columns of collect_results, in order.
RESULT_COLUMNS = ("model", "evaluator", "protocol", "metric", "value", "frames", "dataset_kind", "split",
                  "split_file", "benchmark", "range", "scaling", "prior_backend", "prior_simulated", "model_source",
                  "experiment", "git_commit", "config_hash", "checkpoint_sha256", "device", "summary_path")
INDEX_LEVELS = ("method", "model", "setting", "quantity")
# Metric key -> column label, in the paper's order.
OCCUPANCY_COLUMNS = {"scene_o_acc": "Scene O_acc", "scene_ie_acc": "Scene IE_acc", "scene_ie_rec": "Scene IE_rec",
                     "object_o_acc": "Object O_acc", "object_ie_acc": "Object IE_acc",
                     "object_ie_rec": "Object IE_rec"}
DEPTH_COLUMNS = {"abs_rel": "Abs Rel", "sq_rel": "Sq Rel", "rmse": "RMSE", "rmse_log": "RMSE log", "a1": "d1",
                 "a2": "d2", "a3": "d3"}
# Ablation columns: (evaluator folder kind, metric) -> label; occupancy at the table's range, depth of both sources.
ABLATION_COLUMNS = {("occupancy", key): label for key, label in OCCUPANCY_COLUMNS.items()} | {
    ("rendered", "abs_rel"): "Abs Rel (rendered)", ("rendered", "rmse"): "RMSE (rendered)",
    ("rendered", "a1"): "d1 (rendered)", ("predicted", "abs_rel"): "Abs Rel (predicted)",
    ("predicted", "rmse"): "RMSE (predicted)", ("predicted", "a1"): "d1 (predicted)"}
FRAMES_COLUMN = "Frames"
# The fixed file names the report rule declares (tables.json lists them).
TABLE_NAMES = ("occupancy_4-20", "occupancy_4-50", "depth_kitti360", "pseudo_depth", "ablations")
# Trained experiments that are the paper's main rows, not ablations.
MAIN_EXPERIMENTS = ("bts", "vipocc")
EXACT_PREFIX = "exact_"


# ------------------------------------------------------------------------------------------- collect results
def _read_summary(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(document).__name__}")
    for key, kind in (("evaluator", str), ("metrics", dict)):
        if not isinstance(document.get(key), kind):
            raise ValueError(f"{path}: key {key!r} missing or not a {kind.__name__}")
    for key in ("protocol", "provenance"):
        if not isinstance(document.get(key, {}), dict):
            raise ValueError(f"{path}: key {key!r} is not an object")
    for metric, value in document["metrics"].items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{path}: metrics.{metric} is not a number ({value!r})")
    return document


def _split_folder(path: Path, evaluator: str) -> str:
    """Protocol part of ``<evaluator>[_<protocol>]``; the folder must start with the summary's evaluator."""
    folder = path.parent.name
    if folder == evaluator:
        return ""
    if folder.startswith(evaluator + "_") and len(folder) > len(evaluator) + 1:
        return folder[len(evaluator) + 1:]
    raise ValueError(f"{path}: folder {folder!r} does not match the summary's evaluator {evaluator!r} "
                     "(expected <evaluator>[_<protocol>])")


def _range_text(protocol: Mapping[str, Any]) -> str | None:
    z_range = protocol.get("z_range")
    if isinstance(z_range, (list, tuple)) and len(z_range) == 2:
        far, near = (float(v) for v in z_range)
        return f"{near:g}-{far:g} m"
    return None


def _prior(provenance: Mapping[str, Any]) -> tuple[str | None, Any]:
    depth = (provenance.get("priors") or {}).get("depth") or {}
    backends = depth.get("backends")
    backend = ", ".join(str(b) for b in backends) if isinstance(backends, list) and backends else None
    return backend, depth.get("simulated")


def _summary_record(path: Path, model: str) -> dict[str, Any]:
    """Provenance columns of one summary.json (the same for all its metrics)."""
    document = _read_summary(path)
    evaluator = document["evaluator"]
    protocol = document.get("protocol") or {}
    provenance = document.get("provenance") or {}
    dataset = provenance.get("dataset") or {}
    model_block = provenance.get("model") or {}
    backend, simulated = _prior(provenance)
    scaling = protocol.get("scaling", "none") if evaluator in ("depth", "pseudo_depth") else None
    benchmark = protocol.get("protocol") if evaluator in ("depth", "pseudo_depth") else "kitti360"
    return {"model": model, "evaluator": evaluator, "protocol": _split_folder(path, evaluator),
            "frames": document.get("frames"), "dataset_kind": dataset.get("kind"), "split": dataset.get("split"),
            "split_file": dataset.get("split_file"), "benchmark": benchmark, "range": _range_text(protocol),
            "scaling": "none" if scaling is None and evaluator in ("depth", "pseudo_depth") else scaling,
            "prior_backend": backend, "prior_simulated": simulated, "model_source": model_block.get("source"),
            "experiment": model_block.get("experiment"), "git_commit": provenance.get("git_commit"),
            "config_hash": provenance.get("config_hash"),
            "checkpoint_sha256": (provenance.get("checkpoint") or {}).get("sha256"),
            "device": provenance.get("device"), "summary_path": str(path), "_metrics": document["metrics"]}


def collect_results(eval_root: str | os.PathLike) -> pd.DataFrame:
    """Every ``<eval_root>/<model>/<folder>/summary.json`` as tidy rows (columns :data:`RESULT_COLUMNS`).

    One row per metric of a summary's ``metrics`` (JSON null -> NaN); a folder without summary.json (evaluation
    not run or not finished) gives no row; summaries without metrics (demo) give none either. Rows are sorted by
    model, evaluator, protocol, metric.

    Raises:
        FileNotFoundError: ``eval_root`` is not a folder.
        ValueError: a malformed summary.json (not JSON, no evaluator / metrics, a non-numeric metric, a folder
            name that does not match its evaluator); the message names the file.
    """
    root = Path(eval_root)
    if not root.is_dir():
        raise FileNotFoundError(f"evaluation results folder not found: {root}")
    rows = []
    for path in sorted(root.glob(f"*/*/{SUMMARY_JSON}")):  # a few dozen summaries
        record = _summary_record(path, path.parent.parent.name)
        metrics = record.pop("_metrics")
        rows += [record | {"metric": name, "value": math.nan if value is None else float(value)}
                 for name, value in metrics.items()]
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    frame["value"] = frame["value"].astype(float)
    return frame.sort_values(["model", "evaluator", "protocol", "metric"], kind="stable", ignore_index=True)


# --------------------------------------------------------------------------------------------- table building
def _values(results: pd.DataFrame, model: str, evaluator: str, protocol: str) -> dict[str, float]:
    """metric -> value of one result folder (empty when it was not evaluated)."""
    rows = results[(results["model"] == model) & (results["evaluator"] == evaluator)
                   & (results["protocol"] == protocol)]
    return dict(zip(rows["metric"], rows["value"]))


def _frames(results: pd.DataFrame, model: str, evaluator: str, protocol: str) -> int | None:
    rows = results[(results["model"] == model) & (results["evaluator"] == evaluator)
                   & (results["protocol"] == protocol)]
    frames = rows["frames"].dropna()
    return int(frames.iloc[0]) if len(frames) else None


def _row(values: Mapping[str, Any], columns: Mapping[str, str], frames: Any) -> dict[str, Any]:
    return {label: values.get(key, math.nan) for key, label in columns.items()} | {FRAMES_COLUMN: frames}


def _comparison_rows(key: tuple[str, str, str], reproduced: Mapping[str, float], frames: int | None,
                     entry: Expected | None, columns: Mapping[str, str]) -> list[tuple[tuple, dict[str, Any]]]:
    """reproduced [, reproduced_exact] [, reported, delta, within_tolerance] rows of one (method, model, setting)."""
    rows = [((*key, "reproduced"), _row(reproduced, columns, frames))]
    exact = {name[len(EXACT_PREFIX):]: value for name, value in reproduced.items() if name.startswith(EXACT_PREFIX)}
    if any(name in exact for name in columns):
        rows.append(((*key, "reproduced_exact"), _row(exact, columns, frames)))
    if entry is not None:
        listed = [name for name in columns if name in entry.metrics]
        rows.append(((*key, "reported"), _row(dict(entry.metrics), columns, entry.frames)))
        rows.append(((*key, "delta"), _row({m: entry.delta(m, reproduced.get(m, math.nan)) for m in listed},
                                           columns, None)))
        rows.append(((*key, "within_tolerance"),
                     _row({m: entry.within_tolerance(m, reproduced.get(m, math.nan)) for m in listed}, columns,
                          None) | {label: None for name, label in columns.items() if name not in listed}))
    return rows


def _frame(rows: list[tuple[tuple, dict[str, Any]]], columns: Sequence[str]) -> pd.DataFrame:
    index = pd.MultiIndex.from_tuples([key for key, _ in rows], names=list(INDEX_LEVELS)) if rows else \
        pd.MultiIndex.from_tuples([], names=list(INDEX_LEVELS))
    return pd.DataFrame([values for _, values in rows], index=index, columns=list(columns), dtype=object)


def _main_rows(results: pd.DataFrame, registry: Sequence[Expected], evaluator: str, protocols: Sequence[str] | None,
               benchmark: str, columns: Mapping[str, str]) -> tuple[list, list[tuple[str, str]]]:
    """Rows of the models the registry names for ``evaluator`` (registry order, then any further protocol they
    have results for), restricted to ``protocols`` when given. Returns (rows, [(model, protocol) used])."""
    selected = results[(results["evaluator"] == evaluator) & (results["benchmark"] == benchmark)]
    models = list(dict.fromkeys(m for e in registry if e.evaluator == evaluator for m in e.models))
    keys = [(m, e.protocol) for e in registry if e.evaluator == evaluator and e.benchmark == benchmark
            for m in e.models]
    present = selected[["model", "protocol"]].drop_duplicates().itertuples(index=False, name=None)
    keys += sorted(k for k in present if k[0] in models and k not in keys)
    keys = [k for k in dict.fromkeys(keys) if protocols is None or k[1] in protocols]
    rows, used = [], []
    for model, protocol in keys:
        reproduced = _values(selected, model, evaluator, protocol)
        if not reproduced:
            continue  # not evaluated: no row
        entry = find_expected(registry, model, evaluator, protocol, benchmark)
        method = method_of(registry, model, evaluator) or model
        if evaluator == "pseudo_depth" and _simulated(selected, model, evaluator, protocol):
            method += " (simulated prior)"
        rows += _comparison_rows((method, model, protocol), reproduced, _frames(selected, model, evaluator, protocol),
                                 entry, columns)
        used.append((model, protocol))
    return rows, used


def _simulated(results: pd.DataFrame, model: str, evaluator: str, protocol: str) -> bool:
    rows = results[(results["model"] == model) & (results["evaluator"] == evaluator)
                   & (results["protocol"] == protocol)]
    return any(flag is True or flag == "mixed" for flag in rows["prior_simulated"])


# ------------------------------------------------------------------------------------------------ table info
def _unique(values: Iterable[Any]) -> list[Any]:
    clean = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return list(dict.fromkeys(clean))


def _prior_info(rows: pd.DataFrame) -> dict[str, Any]:
    recorded = rows[rows["prior_simulated"].notna() | rows["prior_backend"].notna()]
    flags = _unique(recorded["prior_simulated"])
    simulated = None if not flags else flags[0] if len(flags) == 1 else "mixed"
    return {"backends": sorted(_unique(recorded["prior_backend"])), "simulated": simulated}


def _info(results: pd.DataFrame, used: Sequence[tuple[str, str, str]], registry_entries: Sequence[Expected],
          **extra: Any) -> dict[str, Any]:
    """What the caption states, gathered from the summaries behind the table (``used``: model, evaluator,
    protocol). The prior comes from those summaries, or from every summary when they record none (occupancy runs
    do not load the prior; the prior of the run is the one the depth evaluations recorded)."""
    mask = pd.Series(False, index=results.index)
    for model, evaluator, protocol in used:
        mask |= (results["model"] == model) & (results["evaluator"] == evaluator) & (results["protocol"] == protocol)
    rows = results[mask]
    prior = _prior_info(rows)
    if not prior["backends"] and prior["simulated"] is None:
        prior = _prior_info(results) | {"from_other_evaluations": True}
    return {"models": _unique(m for m, _, _ in used), "empty": not used,
            "frames": sorted(int(f) for f in _unique(rows.drop_duplicates("summary_path")["frames"])),
            "splits": _unique(rows["split"]), "split_files": _unique(rows["split_file"]),
            "dataset_kinds": _unique(rows["dataset_kind"]), "ranges": _unique(rows["range"]),
            "scalings": _unique(rows["scaling"]), "git_commits": _unique(rows["git_commit"]),
            "prior": prior, "reported_frames": _unique(e.frames for e in registry_entries),
            "sources": _unique(str(e.source) for e in registry_entries)} | extra


def _entries_used(registry: Sequence[Expected], evaluator: str, used: Sequence[tuple[str, str]],
                  benchmark: str) -> list[Expected]:
    found = (find_expected(registry, m, evaluator, p, benchmark) for m, p in used)
    return list({e.id: e for e in found if e is not None}.values())


# ------------------------------------------------------------------------------------------------- the tables
def occupancy_table(results: pd.DataFrame, registry: Sequence[Expected], protocol: str = "4-20") -> pd.DataFrame:
    """Bird's-eye occupancy at one range (``protocol`` "4-20" or "4-50"): Scene O_acc IE_acc IE_rec | Object
    O_acc IE_acc IE_rec, for every model the registry names for the occupancy evaluator that has results."""
    rows, used = _main_rows(results, registry, "occupancy", [protocol], "kitti360", OCCUPANCY_COLUMNS)
    table = _frame(rows, [*OCCUPANCY_COLUMNS.values(), FRAMES_COLUMN])
    table.attrs["info"] = _info(results, [(m, "occupancy", p) for m, p in used],
                                _entries_used(registry, "occupancy", used, "kitti360"), kind="occupancy",
                                title=f"3D occupancy on KITTI-360, {protocol} m", protocol=protocol)
    return table


def _depth_metrics_table(results: pd.DataFrame, registry: Sequence[Expected], evaluator: str, title: str,
                         benchmark: str) -> pd.DataFrame:
    """Rows of the registry's models for a depth-metric evaluator (depth or pseudo_depth), in the depth columns."""
    rows, used = _main_rows(results, registry, evaluator, None, benchmark, DEPTH_COLUMNS)
    table = _frame(rows, [*DEPTH_COLUMNS.values(), FRAMES_COLUMN])
    table.attrs["info"] = _info(results, [(m, evaluator, p) for m, p in used],
                                _entries_used(registry, evaluator, used, benchmark), kind=evaluator,
                                title=f"{title} on {_BENCHMARK_NAMES.get(benchmark, benchmark)}", benchmark=benchmark)
    return table


def depth_table(results: pd.DataFrame, registry: Sequence[Expected], benchmark: str = "kitti360") -> pd.DataFrame:
    """Depth (rendered and predicted) of the registry's depth models: Abs Rel, Sq Rel, RMSE, RMSE log, d1-d3."""
    return _depth_metrics_table(results, registry, "depth", "Depth estimation", benchmark)


def pseudo_depth_table(results: pd.DataFrame, registry: Sequence[Expected],
                       benchmark: str = "kitti360") -> pd.DataFrame:
    """The depth prior against lidar GT, one row group per scaling (median, none): the depth metrics."""
    return _depth_metrics_table(results, registry, "pseudo_depth", "Pseudo-depth prior", benchmark)


def _trained_experiments(results: pd.DataFrame) -> list[str]:
    """Models whose summaries say they were trained by this workflow (provenance model.source == 'model')."""
    return sorted(_unique(results.loc[results["model_source"] == "model", "model"]))


def ablation_table(results: pd.DataFrame, protocol: str = "4-20", experiments: Sequence[str] | None = None,
                   reference: str = "vipocc") -> pd.DataFrame:
    """Ablations: every trained experiment besides bts / vipocc (``experiments`` overrides the list, default: the
    models whose provenance says trained here), with occupancy at ``protocol`` and rendered / predicted depth.

    When at least one ablation has results, the ``reference`` experiment (the full model) comes first and each
    ablation gets a ``delta_vs_<reference>`` row (ablation - reference). No paper numbers exist for ablations
    (their tables were not read), so there is no reported row. Without ablations the table is empty.
    """
    names = [m for m in (experiments if experiments is not None else _trained_experiments(results))
             if m not in MAIN_EXPERIMENTS]
    sources = {"occupancy": ("occupancy", protocol), "rendered": ("depth", "rendered"),
               "predicted": ("depth", "predicted")}

    def values_of(model: str) -> tuple[dict[str, float], list[tuple[str, str, str]]]:
        values, used = {}, []
        for kind, (evaluator, setting) in sources.items():
            found = _values(results, model, evaluator, setting)
            values |= {f"{kind}/{k}": v for k, v in found.items()}
            used += [(model, evaluator, setting)] if found else []
        return values, used

    columns = {f"{kind}/{metric}": label for (kind, metric), label in ABLATION_COLUMNS.items()}
    rows, used = [], []
    ablations = [(name, *values_of(name)) for name in names]
    ablations = [item for item in ablations if item[2]]
    base, base_used = values_of(reference)
    if ablations and base_used:
        rows.append(((f"{reference} (full model)", reference, protocol, "reproduced"),
                     _row(base, columns, _frames(results, reference, "occupancy", protocol))))
        used += base_used
    for name, values, name_used in ablations:
        rows.append(((name, name, protocol, "reproduced"),
                     _row(values, columns, _frames(results, name, "occupancy", protocol))))
        if base_used:
            delta = {k: values.get(k, math.nan) - base[k] for k in columns if k in base}
            rows.append(((name, name, protocol, f"delta_vs_{reference}"), _row(delta, columns, None)))
        used += name_used
    table = _frame(rows, [*columns.values(), FRAMES_COLUMN])
    table.attrs["info"] = _info(results, used, [], kind="ablation", title=f"Ablations (occupancy {protocol} m, "
                                "KITTI-360 depth)", protocol=protocol, reference=reference,
                                ablations=[name for name, _, _ in ablations])
    return table


# -------------------------------------------------------------------------------------------------- captions
_BENCHMARK_NAMES = {"kitti360": "KITTI-360", "kitti_raw_eigen": "KITTI Raw (Eigen split)"}
_SCALING_TEXT = {"none": "metric depth, no scaling", "median": "per-image median scaling",
                 "lsq": "per-image least-squares scale and shift"}


def _list(values: Sequence[Any], missing: str = "not recorded") -> str:
    return ", ".join(str(v) for v in values) if values else missing


def _prior_text(prior: Mapping[str, Any]) -> str:
    backends = _list(prior.get("backends", []), "backend not recorded")
    flag = prior.get("simulated")
    if flag is True:
        kind = "SIMULATED stand-in (not Depth Anything)"
    elif flag is False:
        kind = "real model"
    elif flag == "mixed":
        kind = "MIXED simulated and real"
    else:
        return "Depth prior: not recorded by these evaluations."
    where = " (as recorded by the depth evaluations)" if prior.get("from_other_evaluations") else ""
    return f"Depth prior: {kind}, backend {backends}{where}."


def _gt_text(info: Mapping[str, Any]) -> str:
    if info.get("kind") in ("depth", "pseudo_depth"):
        return ("GT: one lidar scan projected into the left image (no crop, no GT depth cap), predictions clamped "
                "to [0.001, 80] m; d_k = fraction with max ratio < 1.25^k.")
    scans = info.get("scans")
    count = f"{scans} aggregated lidar scans" if scans else "aggregated lidar scans (count not recorded; KYN uses 300)"
    return f"GT: {count} per frame, x -4..4 m, 0.1 m cells, far cut of the invisible area."


def caption(table: pd.DataFrame, info: Mapping[str, Any] | None = None) -> str:
    """The caption of a table: what it shows, range, GT scans, split and frame count (ours vs reported), prior
    backend (simulated or real), whether it ran on the synthetic world (then the numbers are not comparable to the
    paper), scaling, git commit and the source of the reported numbers.

    Args:
        table: a table of this module (its ``attrs["info"]`` is read).
        info: entries added to / overriding ``attrs["info"]``, e.g. ``{"scans": 300}`` (the occupancy GT's
            ``occupancy_gt.aggregate_scans``, which the summaries do not record).
    """
    info = {**table.attrs.get("info", {}), **(info or {})}
    parts = [f"{info.get('title', 'Table')}."]
    if info.get("kind") == "ablation" and not info.get("ablations"):
        return " ".join(parts + ["No ablation was run: no trained experiment besides bts and vipocc has "
                                 "evaluation results."])
    if info.get("empty"):
        return " ".join(parts + ["No evaluation results for this table."])
    if info.get("ranges"):
        parts.append(f"Range z = {_list(info['ranges'])}.")
    parts.append(_gt_text(info))
    reported = info.get("reported_frames") or []
    parts.append(f"Split: {_list(info.get('splits', []))} ({_list(info.get('split_files', []))}), "
                 f"{_list(info.get('frames', []))} frames evaluated"
                 + (f" (reported: {_list(reported)})." if reported else "."))
    if info.get("kind") in ("depth", "pseudo_depth", "ablation"):
        parts.append("Scaling: " + _list([_SCALING_TEXT.get(s, s) for s in info.get("scalings", [])]) + ".")
    else:
        parts.append("Scaling: not applicable (density > 0.5 is occupied).")
    parts.append(_prior_text(info.get("prior", {})))
    kinds = info.get("dataset_kinds", [])
    if "synthetic" in kinds:
        parts.append("Ran on the SYNTHETIC world: the numbers test the pipeline and are NOT comparable to the "
                     "paper's; deltas and tolerance flags are shown for form only.")
        if "reproduced_exact" in table.index.get_level_values("quantity"):
            parts.append("reproduced_exact: the same prediction scored against the world's exact occupancy "
                         "instead of the lidar GT.")
    else:
        parts.append(f"Dataset: {_list(kinds)}.")
    if info.get("sources"):
        parts.append(f"Reported: {_list(info['sources'])}; delta = reproduced - reported; within_tolerance uses "
                     "the registry's absolute tolerance.")
    if info.get("kind") == "ablation":
        parts.append(f"delta_vs_{info.get('reference')} = ablation - full model; no reported ablation numbers.")
    parts.append(f"Git commit: {_list(info.get('git_commits', []))}.")
    return " ".join(parts)


def overview(results: pd.DataFrame) -> pd.DataFrame:
    """One row per result folder found: model, evaluator, protocol, frames, dataset kind, prior, git commit."""
    columns = ["model", "evaluator", "protocol", "frames", "dataset_kind", "prior_backend", "prior_simulated",
               "model_source", "git_commit"]
    return results.drop_duplicates("summary_path")[columns].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------- writers
def _cell_text(value: Any, quantity: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{value:+.3f}" if quantity.startswith("delta") else f"{value:.3f}"


def format_cells(table: pd.DataFrame) -> pd.DataFrame:
    """The table as text, rounded as the paper (3 decimals; deltas signed; flags yes / no; missing '-'), with the
    index as leading columns and repeated method / model labels blanked."""
    rows = []
    previous: tuple[str, str] | None = None
    for key, values in zip(table.index, table.itertuples(index=False, name=None)):
        method, model, setting, quantity = key
        label = (method, model) if (method, model) != previous else ("", "")
        previous = (method, model)
        rows.append([*label, setting, quantity] + [_cell_text(v, quantity) for v in values])
    return pd.DataFrame(rows, columns=[*INDEX_LEVELS, *table.columns], dtype=object)


def styled(table: pd.DataFrame, text: str) -> "pd.io.formats.style.Styler":
    """A Styler of the formatted table with ``text`` as caption (for display in the notebook)."""
    return format_cells(table).style.hide(axis="index").set_caption(text)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return re.sub(r"[\\&%$#_{}~^]", lambda match: _LATEX_SPECIAL[match.group()], text)


def _latex(table: pd.DataFrame, text: str, name: str) -> str:
    cells = format_cells(table).map(_latex_escape)
    cells.columns = [_latex_escape(str(c)) for c in cells.columns]
    column_format = "llll" + "r" * (len(cells.columns) - len(INDEX_LEVELS))
    return cells.style.hide(axis="index").to_latex(caption=_latex_escape(text), label=f"tab:{name}",
                                                   hrules=True, column_format=column_format,
                                                   position_float="centering")


def write_table(table: pd.DataFrame, text: str, out_dir: str | os.PathLike, name: str) -> dict[str, Path]:
    """Write ``<out_dir>/<name>.csv`` (index levels as columns, raw values: full-precision floats, True / False,
    empty for missing) and ``<out_dir>/<name>.tex`` (a LaTeX table with ``text`` as caption), each atomically.

    Returns ``{"csv": path, "tex": path}``.
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"name: expected a file stem without path separators, got {name!r}")
    out = Path(out_dir)
    paths = {"csv": out / f"{name}.csv", "tex": out / f"{name}.tex"}
    write_text(paths["csv"], table.reset_index().to_csv(index=False, lineterminator="\n"))
    write_text(paths["tex"], _latex(table, text, name))
    return paths


@dataclass
class PublishedTable:
    """A table written by :func:`publish_table`: its name, data, caption, files and display Styler."""

    name: str
    table: pd.DataFrame
    caption: str
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def styler(self):
        return styled(self.table, self.caption)

    def record(self, out_dir: Path) -> dict[str, Any]:
        reproduced = [key for key in self.table.index if key[3] == "reproduced"]
        return {"name": self.name, "csv": self.paths["csv"].relative_to(out_dir).as_posix(),
                "tex": self.paths["tex"].relative_to(out_dir).as_posix(), "caption": self.caption,
                "rows": len(self.table), "models": list(dict.fromkeys(key[1] for key in reproduced)),
                "empty": self.table.empty}


def publish_table(table: pd.DataFrame, out_dir: str | os.PathLike, name: str,
                  info: Mapping[str, Any] | None = None) -> PublishedTable:
    """Caption ``table`` (:func:`caption` with ``info``), write it (:func:`write_table`) and return the record;
    the notebook displays ``.styler``."""
    text = caption(table, info)
    return PublishedTable(name, table, text, write_table(table, text, out_dir, name))


def write_index(out_dir: str | os.PathLike, published: Sequence[PublishedTable], **extra: Any) -> Path:
    """``<out_dir>/tables.json``: ``{"tables": [{name, csv, tex, caption, rows, models, empty}, ...], **extra}``
    (file names relative to out_dir), written atomically."""
    out = Path(out_dir)
    names = [p.name for p in published]
    if len(set(names)) != len(names):
        raise ValueError(f"published: duplicate table names {names}")
    document = {"tables": [p.record(out) for p in published], **extra}
    path = out / "tables.json"
    write_text(path, json.dumps(document, indent=2, default=str) + "\n")
    return path
