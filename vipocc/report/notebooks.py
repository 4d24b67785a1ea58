"""Execute a report notebook with papermill and render it to self-contained HTML.

The report rules call ``vipocc report notebook``: the notebook in ``notebooks/`` is executed with the injected
parameters on the ``python3`` kernel, the executed copy is kept (``results/report/<name>.ipynb``) and converted to
one HTML file whose figures are embedded (nbconvert stores image outputs inline), so it can be mailed or archived.

Both files appear only when the notebook ran through: a failing cell leaves ``<name>.failed.ipynb`` (the executed
notebook up to the error, with the traceback) for debugging and no ``.ipynb`` / ``.html`` output, so Snakemake
never mistakes a half-rendered report for a finished one.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vipocc.io import write_text

__all__ = ["KERNEL", "execute_notebook", "render_html"]

KERNEL = "python3"


def _failed_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.failed.ipynb")


def execute_notebook(notebook: str | os.PathLike, out: str | os.PathLike, parameters: Mapping[str, Any],
                     *, cwd: str | os.PathLike | None = None, kernel: str = KERNEL) -> Path:
    """Run ``notebook`` with ``parameters`` injected (papermill) and write the executed copy to ``out``.

    Relative paths inside the notebook resolve against ``cwd`` (default: the current folder, i.e. the workflow
    folder when Snakemake runs it). Raises ValueError naming the notebook and the failing cell's error.
    """
    import papermill

    notebook, out = Path(notebook), Path(out)
    if not notebook.is_file():
        raise FileNotFoundError(f"report notebook not found: {notebook}")
    out.parent.mkdir(parents=True, exist_ok=True)
    failed, running = _failed_path(out), out.with_name(f".{out.stem}.running.ipynb")
    failed.unlink(missing_ok=True)
    try:
        papermill.execute_notebook(str(notebook), str(running), parameters=dict(parameters), kernel_name=kernel,
                                   cwd=str(cwd) if cwd is not None else None, progress_bar=False)
    except papermill.PapermillExecutionError as err:
        if running.exists():
            os.replace(running, failed)
        raise ValueError(f"notebook {notebook} failed in cell {err.exec_count}: {err.ename}: {err.evalue} "
                         f"(the executed notebook up to the error is in {failed})") from None
    except BaseException:
        running.unlink(missing_ok=True)
        raise
    os.replace(running, out)
    return out


def render_html(executed: str | os.PathLike, html: str | os.PathLike) -> Path:
    """Convert an executed notebook to one self-contained HTML file (images inline, no input prompts hidden)."""
    import nbformat
    from nbconvert import HTMLExporter

    executed, html = Path(executed), Path(html)
    node = nbformat.read(executed, as_version=4)
    exporter = HTMLExporter(embed_images=True)
    body, _ = exporter.from_notebook_node(node)
    write_text(html, body)
    return html
