"""The `vipocc` command line: one subcommand per pipeline stage. Snakemake rules call these with a resolved config."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from vipocc.config import ConfigError, load_config

# Models are only ever loaded from local folders: fail fast instead of retrying a hub that is not reachable.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

log = logging.getLogger("vipocc")


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", type=Path, default=None,
                       help="workflow config YAML (default: ./config.yaml)")
    group.add_argument("--config-json", default=None, help="the config as a JSON string (what the rules pass)")


def _config_from(args: argparse.Namespace) -> dict:
    if args.config_json is not None:
        return load_config(json_text=args.config_json)
    return load_config(path=args.config or Path("config.yaml"))


def _cmd_config(args: argparse.Namespace) -> int:
    config = _config_from(args)
    print(json.dumps(config, indent=2, sort_keys=True))
    return 0


def _cmd_synthesize(args: argparse.Namespace) -> int:
    from vipocc.config import resolve_world_config
    from vipocc.synthetic.world import synthesize_world

    config = _config_from(args)
    if config["dataset"]["kind"] != "synthetic":
        raise ConfigError("vipocc synthesize needs dataset.kind: synthetic")
    world = resolve_world_config(config)
    manifest = synthesize_world(world, args.out, workers=args.workers, overwrite=args.overwrite)
    timing = manifest["timing"]
    log.info("world written to %s: %d frames, %.1f s, %.2f M rays/s, %.3f s per frame", args.out,
             manifest["n_frames"], timing["seconds"], timing["rays_per_second"] / 1e6, timing["seconds_per_frame"])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vipocc", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    config_cmd = sub.add_parser("config", help="print the validated config with all defaults filled in")
    _add_config_arguments(config_cmd)
    config_cmd.set_defaults(func=_cmd_config)

    synth = sub.add_parser("synthesize", help="generate the built-in synthetic world (KITTI-360 + KITTI Raw layout)")
    _add_config_arguments(synth)
    synth.add_argument("--out", type=Path, required=True, help="output folder (gets kitti360/, kitti_raw/, "
                       "oracle/, splits/ and world.json)")
    synth.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel render processes")
    synth.add_argument("--overwrite", action="store_true", help="replace an existing world in --out")
    synth.set_defaults(func=_cmd_synthesize)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Snakemake and schedulers stop jobs with SIGTERM: turn it into SystemExit so staged output is cleaned up.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"vipocc {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
