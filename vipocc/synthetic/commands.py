"""`vipocc synthesize`: generate the built-in synthetic world."""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from vipocc.commandline import add_config_arguments, config_from
from vipocc.config import ConfigError

log = logging.getLogger("vipocc")


def synthesize(args: argparse.Namespace) -> int:
    from vipocc.config import resolve_world_config
    from vipocc.synthetic.world import synthesize_world

    config = config_from(args)
    if config["dataset"]["kind"] != "synthetic":
        raise ConfigError("vipocc synthesize needs dataset.kind: synthetic")
    manifest = synthesize_world(resolve_world_config(config), args.out, workers=args.workers,
                                overwrite=args.overwrite)
    timing = manifest["timing"]
    log.info("world written to %s: %d frames, %.1f s, %.2f M rays/s, %.3f s per frame", args.out,
             manifest["n_frames"], timing["seconds"], timing["rays_per_second"] / 1e6, timing["seconds_per_frame"])
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("synthesize", help="generate the built-in synthetic world (KITTI-360 + KITTI Raw layout)")
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (gets kitti360/, kitti_raw/, oracle/, splits/ and world.json)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel render processes")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing world in --out")
    parser.set_defaults(func=synthesize)
