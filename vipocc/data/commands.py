"""`vipocc preprocess`, `vipocc depth-gt`, `vipocc verify-checksums`: the KITTI-360 preprocessing stage.

Each of the first two processes one sequence and ends by writing a done-manifest JSON (the rule's output) that lists
every output file of the sequence (relative to the derived root), the hash of the config blocks used, counts,
timing and provenance:

    <derived>/manifests/preprocess/<seq>.json
    <derived>/manifests/depth_gt/<seq>.json

The dataset root and the split folder come from the config: for ``dataset.kind: synthetic`` they are
``results/world/kitti360`` and ``results/world/splits/kitti360`` (relative to the working directory, as the
workflow runs); for ``kitti360`` the root is ``dataset.root``. ``--raw-root`` / ``--split-dir`` override both.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from vipocc.commandline import add_config_arguments, add_sequence_job_arguments, config_from, limit_threads
from vipocc.commandline import begin_sequence_job, finish_sequence_job
from vipocc.config import ConfigError, config_hash

log = logging.getLogger("vipocc")

SYNTHETIC_RAW_ROOT = Path("results/world/kitti360")
SYNTHETIC_SPLIT_DIR = Path("results/world/splits/kitti360")


# --------------------------------------------------------------------------------------------------- helpers


def dataset_root(config: dict, raw_root: Path | None = None) -> Path:
    """The raw dataset root: `raw_root` if given, results/world/kitti360 (synthetic) or dataset.root. Must exist."""
    kind = config["dataset"]["kind"]
    if raw_root is None:
        if kind != "synthetic" and config["dataset"]["root"] is None:
            raise ConfigError(f"dataset.root must be set for dataset.kind {kind}")
        raw_root = SYNTHETIC_RAW_ROOT if kind == "synthetic" else Path(config["dataset"]["root"]).expanduser()
    if not Path(raw_root).is_dir():
        raise FileNotFoundError(f"dataset root {raw_root} is not a folder (dataset.kind: {kind})")
    return Path(raw_root)


def dataset_paths(config: dict, raw_root: Path | None = None, split_dir: Path | None = None
                  ) -> tuple[Path, Path | None]:
    """(KITTI-360 raw root, split folder or None) for the config, with the command-line overrides applied."""
    kind = config["dataset"]["kind"]
    if kind == "kitti_raw":
        raise ConfigError("the KITTI-360 preprocessing stage needs dataset.kind synthetic or kitti360, not kitti_raw")
    if split_dir is None and kind == "synthetic":
        split_dir = SYNTHETIC_SPLIT_DIR
    return dataset_root(config, raw_root), (None if split_dir is None else Path(split_dir))


def manifest_path(derived_root: Path, stage: str, seq: str) -> Path:
    """``<derived>/manifests/<stage>/<seq>.json``."""
    return Path(derived_root) / "manifests" / stage / f"{seq}.json"


def write_json_atomic(path: Path, payload: dict) -> None:
    from vipocc.io import write_text

    write_text(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")


def _done_manifest(stage: str, seq: str, derived_root: Path, stage_config: dict, stats, seconds: float) -> dict:
    from vipocc.provenance import provenance

    digest = config_hash(stage_config)
    files = sorted(Path(p).relative_to(derived_root).as_posix() for p in stats.outputs)
    return {"stage": stage, "seq": seq, "config_hash": digest, "config": stage_config, **stats.as_dict(),
            "files": files, "seconds": round(seconds, 3), "provenance": provenance(digest)}


def _parse_frames(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(tok) for tok in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"--frames: expected comma-separated frame numbers, got {text!r}") from None


# --------------------------------------------------------------------------------------------------- commands


def preprocess(args: argparse.Namespace) -> int:
    from vipocc.data.calibration import load_calibration
    from vipocc.data.poses import load_poses
    from vipocc.data.preprocess import check_split_frames, preprocess_sequence

    config = config_from(args)
    limit_threads(args.threads)
    raw_root, split_dir = dataset_paths(config, args.raw_root, args.split_dir)
    block = config["preprocess"]
    stage_config = {"dataset": config["dataset"], "preprocess": block}
    if split_dir is not None:
        n_split = check_split_frames(split_dir, args.seq, load_poses(raw_root, args.seq).frames)
        log.info("%s: %d frames named in the splits of %s, all posed", args.seq, n_split, split_dir)
    start = time.perf_counter()
    calibration = load_calibration(raw_root, block["fisheye_rotation"])
    stats = preprocess_sequence(raw_root, args.out, args.seq, frames=_parse_frames(args.frames),
                                image_size=block["image_size"], fisheye_rotation=block["fisheye_rotation"],
                                calibration=calibration, overwrite=args.overwrite, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    out = args.manifest or manifest_path(args.out, "preprocess", args.seq)
    write_json_atomic(out, _done_manifest("preprocess", args.seq, args.out, stage_config, stats, seconds))
    log.info("%s: %d images written, %d up to date, %.1f frames/s -> %s", args.seq, len(stats.written),
             stats.skipped, stats.frames / max(seconds, 1e-9), out)
    return 0


def depth_gt(args: argparse.Namespace) -> int:
    from vipocc.data.depth_gt import depth_gt_sequence

    config = config_from(args)
    limit_threads(args.threads)
    raw_root, _ = dataset_paths(config, args.raw_root, args.split_dir)
    block = config["depth_gt"]
    image_size = config["preprocess"]["image_size"]
    stage_config = {"dataset": config["dataset"], "depth_gt": block, "image_size": image_size}
    out = args.manifest or manifest_path(args.out, "depth_gt", args.seq)
    # image_size and filter_behind_camera are not in the file names: files of another config must be redone.
    digest = config_hash(stage_config)
    overwrite = begin_sequence_job(out, digest, args.overwrite)
    if overwrite and not args.overwrite:
        log.info("%s: depth GT config changed since the files were made: recomputing every frame", args.seq)
    start = time.perf_counter()
    stats = depth_gt_sequence(raw_root, args.out, args.seq, frames=_parse_frames(args.frames), image_size=image_size,
                              cameras=block["cameras"], filter_behind_camera=block["filter_behind_camera"],
                              overwrite=overwrite, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    write_json_atomic(out, _done_manifest("depth_gt", args.seq, args.out, stage_config, stats, seconds))
    finish_sequence_job(out, digest)
    log.info("%s: %d depth maps written, %d up to date, %.1f frames/s -> %s", args.seq, len(stats.written),
             stats.skipped, stats.frames / max(seconds, 1e-9), out)
    return 0


def verify_checksums(args: argparse.Namespace) -> int:
    from vipocc.data.checksums import verify_manifest

    config = config_from(args)
    manifest = args.manifest or config["checksums"]["manifest"]
    if manifest is None:
        raise ConfigError("no checksum manifest: set checksums.manifest in the config or pass --manifest")
    root = dataset_root(config, args.raw_root)
    report = verify_manifest(root, Path(manifest).expanduser(), progress=not args.no_progress)
    if args.report is not None:
        write_json_atomic(args.report, report.as_dict())
    log.info("%s: all %d files match", manifest, len(report.ok))
    return 0


# --------------------------------------------------------------------------------------------------- parsers


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("preprocess", help="resize perspective images and make virtual pinhole fisheye views "
                                               "of one KITTI-360 sequence")
    add_sequence_job_arguments(parser, "preprocess", split_dir=True, threads=True)
    parser.set_defaults(func=preprocess)

    parser = sub.add_parser("depth-gt", help="LiDAR depth ground truth of one KITTI-360 sequence")
    add_sequence_job_arguments(parser, "depth_gt", split_dir=True, threads=True)
    parser.set_defaults(func=depth_gt)

    parser = sub.add_parser("verify-checksums", help="check the dataset against a sha256 manifest")
    add_config_arguments(parser)
    parser.add_argument("--raw-root", type=Path, default=None, help="data root (default: from the config)")
    parser.add_argument("--manifest", type=Path, default=None, help="manifest (default: checksums.manifest)")
    parser.add_argument("--report", type=Path, default=None, help="write a JSON report here when all files match")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=verify_checksums)
