#!/usr/bin/env bash
# Snakemake runs this inside the freshly created conda env: install the workflow's own package without touching
# the pinned dependencies.
set -euo pipefail
pip install --no-deps -e .
