"""vipocc.report.notebooks / `vipocc report notebook`: papermill execution with injected parameters, HTML
rendering, and no output left behind by a failing notebook."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from vipocc.cli import main
from vipocc.report.notebooks import execute_notebook, render_html


def _notebook(path: Path, body: str) -> Path:
    parameters = nbformat.v4.new_code_cell('out_file = "default.txt"\nvalue = 1')
    parameters.metadata["tags"] = ["parameters"]
    node = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(body)])
    node.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(node, path)
    return path


def test_parameters_are_injected_and_html_is_self_contained(tmp_path):
    notebook = _notebook(tmp_path / "nb.ipynb", "from pathlib import Path\nPath(out_file).write_text(str(value * 7))\n"
                                                 "print('seven times', value)")
    out_file = tmp_path / "written.txt"
    executed = execute_notebook(notebook, tmp_path / "run" / "nb.ipynb", {"out_file": str(out_file), "value": 6})
    assert out_file.read_text() == "42"
    node = nbformat.read(executed, as_version=4)
    assert any("seven times 6" in "".join(o.get("text", "")) for c in node.cells for o in c.get("outputs", []))
    html = render_html(executed, tmp_path / "run" / "nb.html")
    text = html.read_text()
    assert "<html" in text and "seven times 6" in text


def test_failing_notebook_leaves_only_the_failed_copy(tmp_path):
    notebook = _notebook(tmp_path / "bad.ipynb", "raise RuntimeError('no results to show')")
    out = tmp_path / "run" / "bad.ipynb"
    with pytest.raises(ValueError, match="no results to show"):
        execute_notebook(notebook, out, {})
    assert not out.exists()
    assert (tmp_path / "run" / "bad.failed.ipynb").is_file()
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["bad.failed.ipynb"]


def test_cli_runs_notebook_and_rejects_bad_parameters(tmp_path, capsys):
    notebook = _notebook(tmp_path / "nb.ipynb", "from pathlib import Path\nPath(out_file).write_text('ok')")
    out_file = tmp_path / "cli.txt"
    args = ["report", "notebook", "--notebook", str(notebook), "--out", str(tmp_path / "x.ipynb"),
            "--html", str(tmp_path / "x.html"), "--parameters-json", json.dumps({"out_file": str(out_file)})]
    assert main(args) == 0
    assert out_file.read_text() == "ok" and (tmp_path / "x.html").is_file()
    assert main(args[:-1] + ["[1, 2]"]) == 2
    assert "expected a JSON object" in capsys.readouterr().err
    assert main(["report", "notebook", "--notebook", str(tmp_path / "missing.ipynb"), "--out",
                 str(tmp_path / "y.ipynb")]) == 2
    assert "missing.ipynb" in capsys.readouterr().err
