"""Pieces shared by the stage subcommands of the `vipocc` CLI."""
from __future__ import annotations

import argparse
from pathlib import Path

from vipocc.config import load_config


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", type=Path, default=None, help="workflow config YAML (default: ./config.yaml)")
    group.add_argument("--config-json", default=None, help="the config as a JSON string (what the rules pass)")


def config_from(args: argparse.Namespace) -> dict:
    """The validated config (defaults filled) named by --config / --config-json."""
    if args.config_json is not None:
        return load_config(json_text=args.config_json)
    return load_config(path=args.config or Path("config.yaml"))
