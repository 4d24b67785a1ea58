"""Rolling training checkpoints for exact resume, best-model files, and the final model + JSON card.

Work folder (``results/train/<experiment>/work/``; not a Snakemake output, so a failed job keeps it)::

    checkpoint_<step:08d>.pt     rolling: model, optimizer, scheduler, grad scaler, RNG states, step, best metric, ...
    best_model_<step:08d>.pt     weights of the best validated step (kept while a state refers to it)

Final outputs (``results/train/<experiment>/``)::

    model.pt      weights only (a plain ``state_dict`` of :class:`vipocc.models.network.ViPOccNetwork`)
    model.json    card: config, experiment, steps, wall time, device, library versions, sha256 of model.pt, best metric

Every file is written atomically (temp file + rename), so a killed job never leaves a half-written checkpoint; a
checkpoint that cannot be read anyway (disk trouble) is skipped with a warning and the previous one is used.
Everything is loaded with ``torch.load(weights_only=True)``: RNG states are stored as tensors and plain lists.
"""
from __future__ import annotations

import io
import json
import logging
import random
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vipocc.io import write_bytes, write_text
from vipocc.provenance import sha256_file

__all__ = [
    "checkpoint_path",
    "best_model_path",
    "list_checkpoints",
    "save_checkpoint",
    "load_latest_checkpoint",
    "prune_best_models",
    "capture_rng_state",
    "restore_rng_state",
    "save_weights",
    "load_weights",
    "write_model_card",
]

log = logging.getLogger("vipocc")

_CHECKPOINT = re.compile(r"^checkpoint_(\d{8})\.pt$")
_BEST = re.compile(r"^best_model_(\d{8})\.pt$")


def checkpoint_path(work_dir: str | Path, step: int) -> Path:
    return Path(work_dir) / f"checkpoint_{int(step):08d}.pt"


def best_model_path(work_dir: str | Path, step: int) -> Path:
    return Path(work_dir) / f"best_model_{int(step):08d}.pt"


def _steps(work_dir: Path, pattern: re.Pattern) -> list[tuple[int, Path]]:
    if not work_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in work_dir.iterdir() if (m := pattern.match(p.name))]
    return sorted(found)


def list_checkpoints(work_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints in ``work_dir``, oldest first."""
    return _steps(Path(work_dir), _CHECKPOINT)


def _save(path: Path, payload: Any) -> None:
    # Serialise to memory first: torch.save names the archive after the file it writes, so saving straight to the
    # random temporary name would make equal weights give different bytes (and sha256) on every run.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes(path, buffer.getvalue())


def save_checkpoint(work_dir: str | Path, step: int, state: Mapping[str, Any], keep: int) -> Path:
    """Write ``state`` as the checkpoint of ``step`` and delete all but the newest ``keep`` checkpoints."""
    if keep < 1:
        raise ValueError(f"keep={keep!r}: at least one checkpoint must be kept")
    path = checkpoint_path(work_dir, step)
    _save(path, dict(state))
    for _, old in list_checkpoints(work_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_latest_checkpoint(work_dir: str | Path, map_location: str | torch.device = "cpu",
                           ) -> dict[str, Any] | None:
    """The newest readable checkpoint of ``work_dir`` (None if there is none)."""
    for step, path in reversed(list_checkpoints(work_dir)):
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file: fall back to the previous checkpoint
            log.warning("checkpoint %s is unreadable (%s); trying the previous one", path, err)
            continue
        if not isinstance(state, dict) or state.get("step") != step:
            log.warning("checkpoint %s does not hold the state of step %d; trying the previous one", path, step)
            continue
        return state
    return None


def prune_best_models(work_dir: str | Path, referenced_steps: Iterable[int | None]) -> None:
    """Delete best-model files that no kept checkpoint and no live state refers to."""
    keep = {int(s) for s in referenced_steps if s is not None}
    for step, path in _steps(Path(work_dir), _BEST):
        if step not in keep:
            path.unlink(missing_ok=True)


def capture_rng_state() -> dict[str, Any]:
    """Global RNG states of python, numpy and torch (CPU and every CUDA device). The trainer draws its own
    randomness from generators seeded per step, so these only matter to third-party code; they are restored
    anyway so that a resumed process is in the same state as an uninterrupted one."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["key"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_weights(path: str | Path, state_dict: Mapping[str, torch.Tensor]) -> Path:
    """Write a plain ``state_dict`` (tensors moved to CPU) atomically."""
    path = Path(path)
    _save(path, {k: v.detach().cpu() for k, v in state_dict.items()})
    return path


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a weights file written by :func:`save_weights`; FileNotFoundError / ValueError name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a plain state_dict (name -> tensor)")
    return state


def write_model_card(card_path: str | Path, model_path: str | Path, card: Mapping[str, Any]) -> dict[str, Any]:
    """Write the JSON card of ``model_path``: ``card`` plus ``model_file``, ``model_sha256`` and ``model_bytes``.
    Returns the written dict."""
    model_path = Path(model_path)
    full = {**card, "model_file": model_path.name, "model_sha256": sha256_file(model_path),
            "model_bytes": model_path.stat().st_size}
    write_text(card_path, json.dumps(full, indent=1, sort_keys=True, default=str) + "\n")
    return full
