"""The expected-results registry: values equal the reference notes' tables R1 / R2 (typed here by hand), the schema
and the cross-checks reject bad entries with a message naming the file and the key."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from vipocc.report.expected import (ExpectedResultsError, find_expected, load_expected, method_of,
                                    parse_expected)

REGISTRY = Path(__file__).resolve().parents[2] / "expected_results.yaml"
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "expected_results.schema.yaml"

# protocol.md section 1.1, typed by hand: R1 (scene O_acc IE_acc IE_rec, object O_acc IE_acc IE_rec) and
# R2 (Abs Rel, Sq Rel, RMSE, RMSE log, d1, d2, d3).
R1 = {"ViPOcc": (0.927, 0.713, 0.686, 0.790, 0.685, 0.643),
      "BTS": (0.923, 0.690, 0.644, 0.791, 0.689, 0.601)}
R2 = {("depth", "rendered", "ViPOcc"): (0.097, 0.446, 3.383, 0.188, 0.886, 0.956, 0.980),
      ("depth", "predicted", "ViPOcc"): (0.097, 0.441, 3.427, 0.188, 0.883, 0.957, 0.980),
      ("depth", "rendered", "BTS"): (0.103, 0.492, 3.007, 0.194, 0.891, 0.958, 0.978),
      ("pseudo_depth", "median", "Depth Anything V2"): (0.142, 0.533, 3.297, 0.209, 0.832, 0.952, 0.981),
      ("pseudo_depth", "none", "Depth Anything V2"): (0.586, 3.743, 6.653, 0.477, 0.071, 0.598, 0.889)}
OCC_KEYS = ("scene_o_acc", "scene_ie_acc", "scene_ie_rec", "object_o_acc", "object_ie_acc", "object_ie_rec")
DEPTH_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


def test_registry_holds_the_reported_numbers():
    entries = load_expected(REGISTRY)
    assert len(entries) == 7
    occupancy = {e.method: e for e in entries if e.evaluator == "occupancy"}
    assert set(occupancy) == {"ViPOcc", "BTS"}
    for method, values in R1.items():
        entry = occupancy[method]
        assert entry.protocol == "4-20" and entry.folder == "occupancy_4-20"
        assert dict(entry.metrics) == dict(zip(OCC_KEYS, values))
    depth = {(e.evaluator, e.protocol, e.method): e for e in entries if e.evaluator != "occupancy"}
    assert set(depth) == set(R2)
    for key, values in R2.items():
        assert dict(depth[key].metrics) == dict(zip(DEPTH_KEYS, values))
    for entry in entries:
        assert entry.frames == 446 and entry.benchmark == "kitti360"
        assert (entry.source.repository, entry.source.file) == ("fengyi233/ViPOcc", "scripts/eval.sh")
        assert entry.source.commit.startswith("de0ff2c") and len(entry.source.commit) == 40
        assert entry.note


def test_models_and_tolerances():
    entries = load_expected(REGISTRY)
    assert find_expected(entries, "vipocc", "occupancy", "4-20").method == "ViPOcc"
    assert find_expected(entries, "vipocc_official", "depth", "predicted").id == "depth_predicted_vipocc"
    assert find_expected(entries, "bts_official", "depth", "rendered").method == "BTS"
    assert find_expected(entries, "bts", "depth", "predicted") is None  # BTS has no depth branch
    assert find_expected(entries, "vipocc", "occupancy", "4-50") is None  # 4-50 m numbers were not read
    assert find_expected(entries, "depth_prior", "pseudo_depth", "none").metrics["abs_rel"] == 0.586
    assert method_of(entries, "bts_official", "occupancy") == "BTS"
    for entry in entries:
        # reported numbers have 3 decimals: a tolerance below half a unit could never be met by a rounded match
        assert all(0.0005 <= entry.tolerance[m] <= 0.1 for m in entry.metrics)
        if entry.evaluator == "occupancy":
            assert set(entry.tolerance.values()) == {0.01}
        if "a1" in entry.metrics:
            assert [entry.tolerance[k] for k in ("a1", "a2", "a3")] == [0.01] * 3


def test_delta_and_tolerance_flag():
    entry = find_expected(load_expected(REGISTRY), "vipocc", "occupancy", "4-20")
    assert entry.delta("scene_o_acc", 0.900) == pytest.approx(-0.027)
    assert entry.delta("object_ie_rec", 0.650) == pytest.approx(0.007)
    assert entry.within_tolerance("scene_o_acc", 0.937)  # exactly at the tolerance (float rounding allowed)
    assert entry.within_tolerance("scene_o_acc", 0.917)
    assert not entry.within_tolerance("scene_o_acc", 0.938)
    assert not entry.within_tolerance("scene_o_acc", math.nan)
    with pytest.raises(KeyError, match="rmse"):
        entry.delta("rmse", 1.0)


def _document() -> dict:
    """A minimal valid registry, written here (independent of the real file's YAML anchors)."""
    source = {"repository": "fengyi233/ViPOcc", "file": "scripts/eval.sh",
              "commit": "de0ff2cf0d65a66ab94a6d3eaa30222d137179bc"}
    return {"version": 1, "entries": [
        {"id": "occ", "method": "ViPOcc", "benchmark": "kitti360", "evaluator": "occupancy", "protocol": "4-20",
         "models": ["vipocc"], "dataset": "test", "frames": 446, "metrics": {"scene_o_acc": 0.9},
         "tolerance": {"scene_o_acc": 0.01}, "source": dict(source), "note": "n"},
        {"id": "dep", "method": "ViPOcc", "benchmark": "kitti360", "evaluator": "depth", "protocol": "rendered",
         "models": ["vipocc"], "dataset": "test", "frames": 446, "metrics": {"rmse": 3.0},
         "tolerance": {"rmse": 0.1}, "source": dict(source), "note": "n"}]}


def _set(document: dict, path: tuple, value) -> dict:
    node = document
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


_DELETE = object()


@pytest.mark.parametrize("path, value, expected", [
    (("entries", 1, "metrics", "rmsee"), 1.0, r"entries\[1\] \(id dep\)\.metrics: 'rmsee' is not one of"),
    (("entries", 0, "tolerance", "scene_o_acc"), -0.1, r"entries\[0\] \(id occ\)\.tolerance\.scene_o_acc: -0\.1"),
    (("entries", 0, "note"), _DELETE, r"entries\[0\] \(id occ\): 'note' is a required property"),
    (("entries", 1, "source", "commit"), "de0ff2c", r"entries\[1\] \(id dep\)\.source\.commit: 'de0ff2c'"),
    (("entries", 0, "protocol"), "rendered", r"entries\[0\] \(id occ\)\.protocol: 'rendered' does not match"),
    (("entries", 1, "protocol"), "4-20", r"entries\[1\] \(id dep\)\.protocol: '4-20' is not one of"),
    (("entries", 0, "evaluator"), "voxels", r"entries\[0\] \(id occ\)\.evaluator: 'voxels' is not one of"),
    (("entries", 0, "frames"), 0, r"entries\[0\] \(id occ\)\.frames: 0 is less than the minimum"),
    (("entries", 0, "models"), [], r"entries\[0\] \(id occ\)\.models: \[\] should be non-empty"),
    (("extra",), 1, r"<top level>: 'extra' does not match any of the regexes"),
    (("entries", 1, "tolerance"), {"rmse": 0.1, "a1": 0.01}, r"entries\[1\] \(id dep\)\.tolerance: tolerance for "
                                                             r"metric\(s\) \['a1'\] that have no reported value"),
    (("entries", 1, "metrics", "a1"), 0.9, r"entries\[1\] \(id dep\)\.tolerance: no tolerance for metric\(s\) "
                                          r"\['a1'\]"),
    (("entries", 1, "id"), "occ", r"entries\[1\] \(id occ\)\.id: duplicate of entries\[0\]"),
])
def test_bad_entries_are_rejected_naming_file_and_key(tmp_path, path, value, expected):
    target = tmp_path / "expected.yaml"
    target.write_text(yaml.safe_dump(_set(_document(), path, value)))
    with pytest.raises(ExpectedResultsError, match=expected) as info:
        load_expected(target, SCHEMA)
    assert str(target) in str(info.value)


def test_a_model_reproduces_one_entry_per_folder():
    document = _document()
    document["entries"].append(copy.deepcopy(document["entries"][0]) | {"id": "occ2", "method": "Other"})
    with pytest.raises(ExpectedResultsError, match=r"entries\[2\] \(id occ2\)\.models: 'vipocc' already reproduces "
                                                   r"entry 'occ' \(occupancy_4-20\)"):
        parse_expected(document, "doc.yaml", SCHEMA)
    document["entries"][2]["protocol"] = "4-50"  # another folder: fine
    assert [e.id for e in parse_expected(document, "doc.yaml", SCHEMA)] == ["occ", "dep", "occ2"]


def test_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_expected(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("entries: [unclosed")
    with pytest.raises(ExpectedResultsError, match="bad.yaml: not valid YAML"):
        load_expected(bad)
    with pytest.raises(FileNotFoundError, match="nope.schema.yaml"):
        load_expected(REGISTRY, tmp_path / "nope.schema.yaml")
    anchors_only = tmp_path / "anchors.yaml"
    anchors_only.write_text(yaml.safe_dump(_document() | {"x-anchors": {"a": 1}}))
    assert len(load_expected(anchors_only)) == 2  # x- keys hold YAML anchors and are ignored
