"""Result files of every evaluator: one tidy per-frame CSV and one summary JSON with provenance.

Layout (issue 6): ``results/eval/<model>/<evaluator>[_<protocol>]/{per_frame.csv, summary.json}``.

* ``per_frame.csv``: one row per evaluated frame, columns in first-seen key order over all rows (a key missing
  from a row is an empty cell); floats written with ``repr`` (shortest round-trip form, so re-reading gives the
  same float64 bit for bit), NaN as ``nan``, booleans as ``True`` / ``False``.
* ``summary.json``: the evaluator's summary dict (e.g. ``{"evaluator", "protocol", "frames", "metrics"}``) with
  the key ``provenance`` added. NaN / inf become JSON ``null`` (strict JSON), keys keep their order.

Both files are written atomically (:mod:`vipocc.io`), so an interrupted evaluation never leaves half a file.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vipocc.io import write_text

__all__ = ["PER_FRAME_CSV", "SUMMARY_JSON", "write_results", "read_per_frame", "evaluation_provenance",
           "result_dir", "device_name"]

PER_FRAME_CSV = "per_frame.csv"
SUMMARY_JSON = "summary.json"


def result_dir(results_root: str | os.PathLike, model: str, evaluator: str, protocol: str | None = None) -> Path:
    """``<results_root>/<model>/<evaluator>[_<protocol>]`` (results_root is usually results/eval)."""
    for name, value in (("model", model), ("evaluator", evaluator), ("protocol", protocol)):
        if value is not None and (not value or "/" in value or "\\" in value):
            raise ValueError(f"{name}: expected a non-empty name without path separators, got {value!r}")
    return Path(results_root) / model / (evaluator if protocol is None else f"{evaluator}_{protocol}")


def _plain(value: Any) -> Any:
    """numpy / torch scalars and arrays -> Python values; non-finite floats -> None (JSON null)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.ndim else _plain(value.item())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form; 'nan' / 'inf' for non-finite
    return str(value)


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def write_results(out_dir: str | os.PathLike, rows: list[dict], summary: dict, provenance: dict) -> dict[str, Path]:
    """Write ``per_frame.csv`` (rows) and ``summary.json`` (summary + provenance) into ``out_dir`` (created).

    Args:
        out_dir: the result folder, e.g. :func:`result_dir` (results/eval/<model>/<evaluator>[_<protocol>]).
        rows: per-frame dicts of scalars (str / int / float / bool / numpy scalars / 0-d tensors).
        summary: JSON-able summary; must not hold the key ``provenance``.
        provenance: e.g. :func:`evaluation_provenance`.

    Returns:
        ``{"per_frame": path, "summary": path}``.
    """
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise ValueError("rows: expected a list of dicts (one per frame)")
    if not isinstance(summary, Mapping) or "provenance" in summary:
        raise ValueError("summary: expected a dict without the key 'provenance' (it is added here)")
    if not isinstance(provenance, Mapping):
        raise ValueError("provenance: expected a dict")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"per_frame": out / PER_FRAME_CSV, "summary": out / SUMMARY_JSON}
    write_text(paths["per_frame"], _csv_text(rows))
    document = _plain({**summary, "provenance": provenance})
    write_text(paths["summary"], json.dumps(document, indent=2, allow_nan=False) + "\n")
    return paths


def read_per_frame(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a ``per_frame.csv`` as dicts of strings (for reports and tests)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"per-frame CSV not found: {path}")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def device_name(device: Any) -> str:
    """'cpu' or 'cuda:<i> (<GPU name>)' for a torch device (or its string)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


def evaluation_provenance(*, config_hash: str | None = None, checkpoint: str | os.PathLike | None = None,
                          protocol: Mapping[str, Any] | None = None, dataset: Mapping[str, Any] | None = None,
                          priors: Mapping[str, Any] | None = None, device: Any = None) -> dict[str, Any]:
    """Provenance block of a summary: git commit, config hash, library versions, platform (from
    :func:`vipocc.provenance.provenance`), plus the checkpoint path and sha256, the protocol settings, the dataset
    kind, the prior backends (copied from the prior manifests by the caller: simulated or not) and the device."""
    from vipocc.provenance import provenance as base_provenance
    from vipocc.provenance import sha256_file

    record = base_provenance(config_hash)
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        record["checkpoint"] = {"path": str(path), "sha256": sha256_file(path)}
    record["protocol"] = dict(protocol or {})
    record["dataset"] = dict(dataset or {})
    record["priors"] = dict(priors or {})
    record["device"] = None if device is None else device_name(device)
    return record
