"""The expected-results registry (``expected_results.yaml``): the numbers the authors report, per paper row.

Each entry names a paper row (``method``, ``benchmark``, ``evaluator``, ``protocol``), the models of this workflow
that reproduce it (``models``: a trained experiment and the official checkpoint, e.g. ``[vipocc_official,
vipocc]``), the reported value and an absolute tolerance per metric, the source (repository, file, commit) and a
note. Our result folder of a (model, entry) pair is ``results/eval/<model>/<evaluator>_<protocol>``; metric keys
are those of its ``summary.json`` (``scene_o_acc`` ..., ``abs_rel`` ...).

The file is validated against ``schemas/expected_results.schema.yaml`` (JSON Schema 2020-12) and then
cross-checked: tolerance keys equal metric keys, ids are unique, and no model is claimed by two entries of the
same (benchmark, evaluator, protocol). Every error is an :class:`ExpectedResultsError` naming the file and the key.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema
import yaml

__all__ = ["DEFAULT_SCHEMA", "Expected", "ExpectedResultsError", "Source", "find_expected", "load_expected",
           "method_of", "parse_expected"]

SCHEMA_RESOURCE = "expected_results.schema.yaml"
DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / SCHEMA_RESOURCE
# Deltas are differences of 3-decimal numbers: allow float rounding when comparing them with the tolerance.
_ROUNDING_SLACK = 1e-9


class ExpectedResultsError(ValueError):
    """The registry is invalid; the message names the file and the offending key."""


@dataclass(frozen=True)
class Source:
    """Where the reported numbers were read: GitHub ``repository`` (owner/name), ``file`` in it, full ``commit``."""

    repository: str
    file: str
    commit: str
    reference: str = ""

    def __str__(self) -> str:
        return f"{self.repository} {self.file} @ {self.commit[:7]}"


@dataclass(frozen=True)
class Expected:
    """One paper row and the models that reproduce it.

    ``metrics`` / ``tolerance``: reported value and absolute tolerance per metric key (read-only mappings, metric
    units: metres for rmse, unitless otherwise). ``frames``: number of test images of the reported numbers.
    """

    id: str
    method: str
    benchmark: str
    evaluator: str
    protocol: str
    models: tuple[str, ...]
    dataset: str
    frames: int
    metrics: Mapping[str, float]
    tolerance: Mapping[str, float]
    source: Source
    note: str

    @property
    def folder(self) -> str:
        """Our result folder name below ``results/eval/<model>/``."""
        return f"{self.evaluator}_{self.protocol}"

    def delta(self, metric: str, value: float) -> float:
        """``value - reported`` (NaN when ``value`` is NaN); KeyError names an unknown metric."""
        if metric not in self.metrics:
            raise KeyError(f"{self.id}: no reported value for metric {metric!r}")
        return float(value) - self.metrics[metric]

    def within_tolerance(self, metric: str, value: float) -> bool:
        """``|value - reported| <= tolerance`` (False for NaN: a missing number is not a match)."""
        delta = self.delta(metric, value)
        return (not math.isnan(delta)) and abs(delta) <= self.tolerance[metric] + _ROUNDING_SLACK


def _default_schema() -> Path:
    """A copy shipped in vipocc/configs (as config.schema.yaml is) when installed, else this checkout's schemas/."""
    packaged = Path(str(resources.files("vipocc.configs").joinpath(SCHEMA_RESOURCE)))
    return packaged if packaged.is_file() else DEFAULT_SCHEMA


def _load_schema(schema: str | os.PathLike | None) -> dict:
    path = Path(schema) if schema is not None else _default_schema()
    if not path.is_file():
        raise FileNotFoundError(f"expected-results schema not found: {path}")
    return yaml.safe_load(path.read_text())


def _key_path(document: Any, path: Sequence[Any]) -> str:
    """``entries[2] (id x).metrics.rmse`` for the jsonschema path ``entries/2/metrics/rmse``."""
    parts: list[str] = []
    node = document
    for key in path:
        if isinstance(key, int):
            parts[-1] += f"[{key}]"
            node = node[key] if isinstance(node, list) and key < len(node) else None
            if isinstance(node, Mapping) and "id" in node:
                parts[-1] += f" (id {node['id']})"
        else:
            parts.append(str(key))
            node = node.get(key) if isinstance(node, Mapping) else None
    return ".".join(parts) or "<top level>"


def _schema_errors(document: Any, schema: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    lines = []
    for error in errors:
        lines.append(f"{_key_path(document, list(error.absolute_path))}: {error.message}")
    return lines


def _cross_errors(document: Mapping[str, Any]) -> list[str]:
    """Rules a schema cannot state: tolerance keys = metric keys, unique ids, one entry per model and folder."""
    lines: list[str] = []
    seen_ids: dict[str, int] = {}
    claimed: dict[tuple[str, str, str, str], str] = {}
    for index, entry in enumerate(document["entries"]):
        where = f"entries[{index}] (id {entry['id']})"
        missing = sorted(set(entry["metrics"]) - set(entry["tolerance"]))
        extra = sorted(set(entry["tolerance"]) - set(entry["metrics"]))
        if missing:
            lines.append(f"{where}.tolerance: no tolerance for metric(s) {missing}")
        if extra:
            lines.append(f"{where}.tolerance: tolerance for metric(s) {extra} that have no reported value")
        if entry["id"] in seen_ids:
            lines.append(f"{where}.id: duplicate of entries[{seen_ids[entry['id']]}]")
        seen_ids.setdefault(entry["id"], index)
        for model in entry["models"]:
            key = (model, entry["benchmark"], entry["evaluator"], entry["protocol"])
            if key in claimed:
                lines.append(f"{where}.models: {model!r} already reproduces entry {claimed[key]!r} "
                             f"({entry['evaluator']}_{entry['protocol']})")
            claimed.setdefault(key, entry["id"])
    return lines


def _entry(raw: Mapping[str, Any]) -> Expected:
    return Expected(
        id=raw["id"], method=raw["method"], benchmark=raw["benchmark"], evaluator=raw["evaluator"],
        protocol=str(raw["protocol"]), models=tuple(raw["models"]), dataset=raw["dataset"], frames=int(raw["frames"]),
        metrics=MappingProxyType({k: float(v) for k, v in raw["metrics"].items()}),
        tolerance=MappingProxyType({k: float(v) for k, v in raw["tolerance"].items()}),
        source=Source(**raw["source"]), note=" ".join(str(raw["note"]).split()))


def parse_expected(document: Any, source: str = "<expected results>",
                   schema: str | os.PathLike | None = None) -> list[Expected]:
    """Validate a loaded registry document (schema, then cross-checks) and return its entries in file order.

    Raises:
        ExpectedResultsError: every violation, one line each, prefixed with ``source`` and the key path.
    """
    errors = _schema_errors(document, _load_schema(schema))
    if not errors:
        errors = _cross_errors(document)
    if errors:
        raise ExpectedResultsError(f"invalid expected results in {source}:\n" +
                                   "\n".join(f"  - {line}" for line in errors))
    return [_entry(raw) for raw in document["entries"]]


def load_expected(path: str | os.PathLike, schema: str | os.PathLike | None = None) -> list[Expected]:
    """Read ``expected_results.yaml`` (``path``) and return its entries, validated against ``schema`` (default
    ``vipocc/configs/expected_results.schema.yaml`` when shipped, else ``schemas/`` of this checkout).

    Raises:
        FileNotFoundError: ``path`` or the schema does not exist.
        ExpectedResultsError: not YAML, or a violation (the message names ``path`` and the key).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected-results file not found: {path}")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ExpectedResultsError(f"{path}: not valid YAML: {err}") from None
    return parse_expected(document, str(path), schema)


def find_expected(entries: Iterable[Expected], model: str, evaluator: str, protocol: str,
                  benchmark: str = "kitti360") -> Expected | None:
    """The entry that ``model``'s ``<evaluator>_<protocol>`` result reproduces, or None (no reported numbers)."""
    for entry in entries:
        if (entry.evaluator, entry.protocol, entry.benchmark) == (evaluator, protocol, benchmark) \
                and model in entry.models:
            return entry
    return None


def method_of(entries: Iterable[Expected], model: str, evaluator: str) -> str | None:
    """The paper method a model stands for in an evaluator's tables (any protocol), e.g. ``vipocc`` -> ViPOcc."""
    for entry in entries:
        if entry.evaluator == evaluator and model in entry.models:
            return entry.method
    return None
