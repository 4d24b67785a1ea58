"""The Depth Anything pseudo-depth prior against LiDAR GT (reference ``evaluator_pseudo_depth.py``, digest 4.3).

The prior of view 0 (``<derived>/depth/<seq>/image_0X/<folder>/<frame>.npy``, metric z-depth in m, loaded by the
dataset as ``pseudo_depth``) is scored with the depth protocol of :mod:`vipocc.evaluation.depth`, with per-image
median scaling (the paper's "DA-V2 median" row) or none ("raw"). No network and no checkpoint are involved (the
reference still needed a checkpoint file to exist).

The backend that produced the prior (real Depth Anything or the synthetic world's *simulated* prior) is read from
the priors stage's done-manifests ``<derived>/manifests/depth_prior/<seq>.json`` (key ``prior``) and recorded in
every row and in the summary, so a number from a simulated prior cannot be mistaken for a Depth Anything number.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vipocc.evaluation.depth import DEPTH_PROTOCOLS, DepthFrame, progress_bar, protocol_settings
from vipocc.evaluation.metrics import depth_metrics

__all__ = ["evaluate_pseudo_depth", "prior_backends", "prior_manifest_path", "summarize_prior_backends"]


def prior_manifest_path(derived_root: str | os.PathLike, seq: str, stage: str = "depth_prior") -> Path:
    """``<derived>/manifests/<stage>/<seq>.json`` (written by ``vipocc depth-prior``)."""
    return Path(derived_root) / "manifests" / stage / f"{seq}.json"


def prior_backends(derived_root: str | os.PathLike, sequences: Iterable[str],
                   stage: str = "depth_prior") -> dict[str, dict[str, Any]]:
    """The ``prior`` entry (backend, simulated, note, weights, ...) of each sequence's done-manifest.

    FileNotFoundError names a missing manifest; ValueError one that is unreadable or lacks ``prior.simulated``.
    """
    backends = {}
    for seq in sorted(set(sequences)):  # a handful of sequences
        path = prior_manifest_path(derived_root, seq, stage)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: prior manifest not found (run the {stage} stage for {seq})")
        try:
            prior = json.loads(path.read_text())["prior"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a prior manifest (no 'prior' entry: {err})") from None
        if not isinstance(prior, dict) or "simulated" not in prior:
            raise ValueError(f"{path}: the 'prior' entry lacks 'simulated'")
        backends[seq] = prior
    return backends


def summarize_prior_backends(backends: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Summary entry: ``simulated`` (True / False / "mixed" / None without sequences), the backend names and the
    per-sequence entries."""
    flags = {bool(entry["simulated"]) for entry in backends.values()}
    simulated: bool | str | None = None if not flags else flags.pop() if len(flags) == 1 else "mixed"
    return {"simulated": simulated, "backends": sorted({str(e.get("backend")) for e in backends.values()}),
            "per_sequence": {seq: dict(entry) for seq, entry in backends.items()}}


def evaluate_pseudo_depth(frames: Iterable[DepthFrame], scaling: str | None, *, protocol: str = "kitti360",
                          backends: Mapping[str, Mapping[str, Any]] | None = None, progress: bool = False,
                          total: int | None = None) -> list[dict[str, Any]]:
    """Per-frame metrics of the prior of view 0 (``frame.prior`` ``[1,1,H,W]`` m) against ``frame.gt``.

    Args:
        frames: :class:`~vipocc.evaluation.depth.DepthFrame` items with a prior (ValueError names the frame
            without one).
        scaling: None (raw metric prior), ``median`` or ``lsq``.
        protocol: ``kitti360`` or ``kitti_raw_eigen``.
        backends: :func:`prior_backends` of the sequences; adds ``prior_backend`` / ``prior_simulated`` columns
            (a sequence missing from it is a ValueError).

    Returns:
        one dict per frame: seq, frame, is_right, scaling, [prior_backend, prior_simulated], the depth metrics.
    """
    kwargs = DEPTH_PROTOCOLS[protocol_settings(protocol, scaling)["protocol"]]
    rows = []
    for frame in progress_bar(frames, progress, total, f"pseudo depth {scaling or 'raw'}"):
        if frame.prior is None:
            raise ValueError(f"{frame.seq} {frame.frame}: no pseudo depth (dataset option return_pseudo_depth)")
        row: dict[str, Any] = {"seq": frame.seq, "frame": frame.frame, "is_right": frame.is_right,
                               "scaling": scaling or "none"}
        if backends is not None:
            if frame.seq not in backends:
                raise ValueError(f"backends: no prior manifest entry for sequence {frame.seq}")
            row |= {"prior_backend": backends[frame.seq].get("backend"),
                    "prior_simulated": bool(backends[frame.seq]["simulated"])}
        rows.append(row | depth_metrics(frame.gt, frame.prior, scaling, **kwargs))
    return rows
