"""notebooks/tables.ipynb executes with papermill on a fake results folder and writes every declared file."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat

from vipocc.report.expected import load_expected
from vipocc.report.notebooks import execute_notebook
from vipocc.report.tables import TABLE_NAMES, caption, collect_results, occupancy_table

_spec = importlib.util.spec_from_file_location("fake_eval_results", Path(__file__).with_name("fake_eval_results.py"))
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "tables.ipynb"


def test_parameters_cell_holds_the_defaults():
    node = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(node)
    tagged = [c for c in node.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is [c for c in node.cells if c.cell_type == "code"][0]
    namespace: dict = {}
    exec(tagged[0].source, namespace)  # noqa: S102 - our own notebook's literal assignments
    assert {k: namespace[k] for k in ("eval_root", "expected", "out_dir", "aggregate_scans")} == {
        "eval_root": "results/eval", "expected": "expected_results.yaml", "out_dir": "results/report/tables",
        "aggregate_scans": 300}


def test_notebook_writes_every_table(tmp_path):
    eval_root = fake.build(tmp_path / "eval", kind="synthetic", ablation=False)
    out_dir = tmp_path / "tables"
    parameters = {"eval_root": str(eval_root), "expected": str(REPO / "expected_results.yaml"),
                  "out_dir": str(out_dir)}
    executed = execute_notebook(NOTEBOOK, tmp_path / "run" / "tables.ipynb", parameters, cwd=tmp_path)

    expected_files = {f"{name}.{ext}" for name in TABLE_NAMES for ext in ("csv", "tex")} | {"tables.json"}
    assert {p.name for p in out_dir.iterdir()} == expected_files
    index = json.loads((out_dir / "tables.json").read_text())
    assert [t["name"] for t in index["tables"]] == list(TABLE_NAMES)
    by_name = {t["name"]: t for t in index["tables"]}
    assert by_name["ablations"]["empty"] and "No ablation was run" in by_name["ablations"]["caption"]
    assert by_name["occupancy_4-20"]["models"] == ["vipocc_official", "vipocc"]
    assert by_name["occupancy_4-50"]["models"] == ["bts"] and by_name["pseudo_depth"]["models"] == ["depth_prior"]
    # the notebook's table and caption are those of the library on the same folder
    table = occupancy_table(collect_results(eval_root), load_expected(REPO / "expected_results.yaml"), "4-20")
    assert (out_dir / "occupancy_4-20.csv").read_text() == table.reset_index().to_csv(index=False,
                                                                                      lineterminator="\n")
    assert by_name["occupancy_4-20"]["caption"] == caption(table, {"scans": 300})
    assert "SYNTHETIC" in by_name["depth_kitti360"]["caption"]
    # every table is displayed with its caption in the executed notebook
    node = nbformat.read(executed, as_version=4)
    html = "".join(o.get("data", {}).get("text/html", "") for c in node.cells for o in c.get("outputs", []))
    assert html.count("<caption") == len(TABLE_NAMES)
