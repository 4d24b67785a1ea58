"""notebooks/figures.ipynb executed with papermill (kernel python3) on the fake result tree of test_figures.py:
every figure with inputs is written (PNG + PDF) and listed in figures.json, a model without saved grids is
listed as skipped (no exception), and the executed notebook shows the saved pictures."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "figures.ipynb"


def _fake_builder():
    spec = importlib.util.spec_from_file_location("figure_fakes", Path(__file__).with_name("test_figures.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_fake_results


def test_notebook_has_a_tagged_parameters_cell():
    import nbformat

    node = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in node.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and node.cells.index(tagged[0]) == 1
    for name in ("eval_root", "train_root", "derived_root", "gt_vs_truth_csv", "out_dir", "models", "experiments",
                 "snog_frame"):
        assert f"\n{name} = " in "\n" + tagged[0].source, name
    assert all(not c.outputs for c in node.cells if c.cell_type == "code")  # stored without outputs


def test_notebook_writes_every_figure_and_skips_absent_inputs(tmp_path):
    import nbformat
    import papermill

    parameters = _fake_builder()(tmp_path / "fake")
    out_dir = tmp_path / "figures"
    parameters |= {"out_dir": str(out_dir), "models": ["bts", "vipocc"], "experiments": ["bts", "vipocc"],
                   "snog_frame": None, "error_map_frames": 2}
    executed = tmp_path / "figures.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(executed), parameters=parameters, kernel_name="python3",
                               progress_bar=False, cwd=str(tmp_path))
    manifest = json.loads((out_dir / "figures.json").read_text())
    written = ["qualitative", "occupancy_errors_vipocc", "training_curves", "gt_vs_truth", "snog_vs_random"]
    assert list(manifest["figures"]) == written
    for name in written:
        for fmt in ("png", "pdf"):
            assert manifest["figures"][name][fmt] == f"{name}.{fmt}"
            assert (out_dir / f"{name}.{fmt}").stat().st_size > 1000
    assert list(manifest["skipped"]) == ["occupancy_errors_bts"]  # bts was evaluated without grids.npz
    assert "grids.npz" in manifest["skipped"]["occupancy_errors_bts"]

    node = nbformat.read(executed, as_version=4)
    outputs = [o for c in node.cells if c.cell_type == "code" for o in c.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == len(written)
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "skipped figure occupancy_errors_bts" in text and "5 figures written, 1 skipped" in text
