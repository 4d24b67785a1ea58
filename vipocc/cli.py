"""The `vipocc` command line: one subcommand per pipeline stage. Snakemake rules call these with a resolved config.

Each stage package registers its own subcommands (a `register(subparsers)` function in its `commands` module), so
stages can be developed and tested independently.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys

from vipocc.commandline import add_config_arguments, config_from
from vipocc.config import ConfigError

# Models are only ever loaded from local folders: fail fast instead of retrying a hub that is not reachable.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

COMMAND_MODULES = ("vipocc.synthetic.commands", "vipocc.data.commands", "vipocc.data.gt_commands",
                   "vipocc.priors.commands", "vipocc.training.commands", "vipocc.evaluation.commands",
                   "vipocc.report.commands", "vipocc.data.split_commands")


def _print_config(args: argparse.Namespace) -> int:
    print(json.dumps(config_from(args), indent=2, sort_keys=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vipocc", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    config_cmd = sub.add_parser("config", help="print the validated config with all defaults filled in")
    add_config_arguments(config_cmd)
    config_cmd.set_defaults(func=_print_config)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Snakemake and schedulers stop jobs with SIGTERM: turn it into SystemExit so staged output is cleaned up.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"vipocc {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
