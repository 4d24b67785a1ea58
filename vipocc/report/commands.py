"""`vipocc report notebook`: execute one report notebook (papermill, kernel python3) and render it to HTML.

Called by the report rules::

    vipocc report notebook --notebook notebooks/tables.ipynb --out results/report/tables.ipynb \\
        --html results/report/tables.html --parameters-json '{"eval_root": "results/eval", ...}'

The parameters are the notebook's (its cell tagged ``parameters`` holds the defaults); the notebook only reads
result files and writes its tables / figures where its ``out_dir`` parameter says.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

log = logging.getLogger("vipocc")


def _parameters(text: str) -> dict:
    try:
        parameters = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--parameters-json: not valid JSON ({err})") from None
    if not isinstance(parameters, dict):
        raise ValueError("--parameters-json: expected a JSON object of notebook parameters")
    return parameters


def run_notebook(args: argparse.Namespace) -> int:
    from vipocc.report.notebooks import execute_notebook, render_html

    parameters = _parameters(args.parameters_json)
    start = time.perf_counter()
    executed = execute_notebook(args.notebook, args.out, parameters, cwd=args.cwd)
    if args.html is not None:
        render_html(executed, args.html)
    log.info("executed %s -> %s in %.1f s", args.notebook, executed, time.perf_counter() - start)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="render the report notebooks (tables, figures)")
    commands = report.add_subparsers(dest="report_command", required=True)
    notebook = commands.add_parser("notebook", help="execute a notebook with papermill and render it to HTML")
    notebook.add_argument("--notebook", type=Path, required=True, help="the notebook to execute (notebooks/*.ipynb)")
    notebook.add_argument("--out", type=Path, required=True, help="the executed notebook (.ipynb)")
    notebook.add_argument("--html", type=Path, default=None, help="also write a self-contained HTML rendering here")
    notebook.add_argument("--parameters-json", default="{}", help="notebook parameters as a JSON object")
    notebook.add_argument("--cwd", type=Path, default=None, help="folder the notebook runs in (default: here)")
    notebook.set_defaults(func=run_notebook)
