"""`vipocc fetch-splits`: the official KITTI-360 split files, downloaded (or copied from a local folder) and checked
against their pinned sha256 digests (see vipocc.data.official_splits). Rule fetch_splits calls it."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from vipocc.data.official_splits import OFFICIAL_SPLIT_DIR, OFFICIAL_SPLIT_FILES, fetch_splits

log = logging.getLogger("vipocc")

__all__ = ["register", "run_fetch_splits"]


def run_fetch_splits(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise ValueError(f"--timeout: expected a positive number of seconds, got {args.timeout}")
    status = fetch_splits(args.out, OFFICIAL_SPLIT_FILES, source_dir=args.source_dir, timeout=args.timeout)
    for name, outcome in status.items():
        origin = args.source_dir / name if args.source_dir is not None else OFFICIAL_SPLIT_FILES[name].url
        log.info("%s: %s (%s)", args.out / name, outcome, "sha256 already right" if outcome == "present" else origin)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("fetch-splits", help="download the official KITTI-360 split files (sha256-checked)")
    parser.add_argument("--out", type=Path, default=Path(OFFICIAL_SPLIT_DIR),
                        help=f"folder to write {{train,val,test}}_files.txt into (default: {OFFICIAL_SPLIT_DIR})")
    parser.add_argument("--from", dest="source_dir", type=Path, default=None,
                        help="copy the files from this local folder instead of downloading them (offline machines)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per download (default: 60)")
    parser.set_defaults(func=run_fetch_splits)
