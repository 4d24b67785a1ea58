"""`vipocc occupancy-gt`, `vipocc voxel-gt`, `vipocc occupancy-gt-report`: the ground-truth stage, one sequence
per job (see vipocc.data.occupancy_stage and vipocc.data.voxel_gt for what is written).

Each sequence job ends by writing a done-manifest JSON (the Snakemake rule's output) listing every file of the
sequence, the frames, the scans aggregated per frame, the hash of the config blocks used, timing and provenance:

    <derived>/manifests/occupancy_gt/<seq>.json
    <derived>/manifests/voxel_gt/<seq>.json

With ``source: path`` the job generates nothing: it checks that the user's files exist for every evaluated frame
(an error lists the missing ones) and records them in the manifest; readers read the user's folder
(:func:`vipocc.data.occupancy_stage.occupancy_gt_root`, :func:`vipocc.data.voxel_gt.voxel_gt_root`).

Synthetic world only: ``occupancy-gt`` also writes the exact occupancy and the lidar-GT-vs-truth report of the
sequence (``<derived>/occupancy_gt_vs_truth/<seq>.{json,csv}``); ``occupancy-gt-report`` merges those into
``<derived>/occupancy_gt_vs_truth.{json,csv}``.

Paths: the KITTI-360 root and split folder are ``results/world/kitti360`` and ``results/world/splits/kitti360``
(synthetic, relative to the working directory) or ``dataset.root`` and ``--split-dir`` (real data); the world
folder with the oracle is the parent of the synthetic root. ``--raw-root``, ``--split-dir``, ``--world`` override.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vipocc.commandline import add_sequence_job_arguments, config_from
from vipocc.commandline import begin_sequence_job, finish_sequence_job
from vipocc.config import ConfigError, config_hash
from vipocc.data.commands import SYNTHETIC_RAW_ROOT, SYNTHETIC_SPLIT_DIR, dataset_root
from vipocc.io import write_text

log = logging.getLogger("vipocc")

REPORT_DIR = "occupancy_gt_vs_truth"
REPORT_NAME = "occupancy_gt_vs_truth"

__all__ = ["register", "occupancy_gt", "voxel_gt", "occupancy_gt_report", "manifest_path", "report_paths",
           "SYNTHETIC_RAW_ROOT", "SYNTHETIC_SPLIT_DIR"]


# --------------------------------------------------------------------------------------------------- helpers


def manifest_path(derived_root: str | Path, stage: str, seq: str) -> Path:
    """``<derived>/manifests/<stage>/<seq>.json``."""
    return Path(derived_root) / "manifests" / stage / f"{seq}.json"


def report_paths(derived_root: str | Path, seq: str | None = None) -> tuple[Path, Path]:
    """(JSON, CSV) of the lidar-GT-vs-truth report of `seq` (``<derived>/occupancy_gt_vs_truth/<seq>.*``) or, for
    seq None, of all sequences (``<derived>/occupancy_gt_vs_truth.*``)."""
    stem = Path(derived_root) / (f"{REPORT_DIR}/{seq}" if seq is not None else REPORT_NAME)
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".csv")


def _write_json(path: Path, payload: dict) -> None:
    write_text(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")


def _paths(config: dict, args: argparse.Namespace) -> tuple[Path, Path | None]:
    """(KITTI-360 raw root, split folder or None) from the config and the command-line overrides."""
    kind = config["dataset"]["kind"]
    if kind == "kitti_raw":
        raise ConfigError("the occupancy/voxel GT stage needs dataset.kind synthetic or kitti360, not kitti_raw")
    split_dir = args.split_dir if args.split_dir is not None else (SYNTHETIC_SPLIT_DIR if kind == "synthetic"
                                                                   else None)
    return dataset_root(config, args.raw_root), split_dir


def _frames(args: argparse.Namespace, split_dir: Path | None, which: str) -> list[int]:
    """--frames, or the frames of args.seq in the splits: which = "test", "all" (every split) or a split name."""
    from vipocc.data.occupancy_stage import evaluated_frames
    from vipocc.data.splits import read_split, split_file

    if args.frames is not None:
        try:
            return sorted({int(tok) for tok in args.frames.replace(",", " ").split()})
        except ValueError:
            raise ValueError(f"--frames: expected comma-separated frame numbers, got {args.frames!r}") from None
    if split_dir is None:
        raise ConfigError("no split folder: pass --split-dir (the folder of <split>_files.txt) for real data")
    if which in ("test", "all"):
        return evaluated_frames(split_dir, args.seq, which)
    return sorted({entry.frame for entry in read_split(split_file(split_dir, which)) if entry.seq == args.seq})


def _start(manifest: Path, digest: str, overwrite: bool, what: str, seq: str) -> bool:
    """Whether every frame must be redone (forced, or the files belong to other settings)."""
    redo = begin_sequence_job(manifest, digest, overwrite)
    if redo and not overwrite:
        log.info("%s: %s config changed since the files were made: recomputing every frame", seq, what)
    return redo


def _finish(manifest: Path, payload: dict) -> None:
    from vipocc.provenance import provenance

    payload["provenance"] = provenance(payload["config_hash"])
    _write_json(manifest, payload)
    finish_sequence_job(manifest, payload["config_hash"])


def _relative(paths: Sequence[Path], root: Path) -> list[str]:
    out = []
    for path in paths:
        try:
            out.append(Path(path).relative_to(root).as_posix())
        except ValueError:
            out.append(str(path))
    return sorted(out)


def _oracle_scene(raw_root: Path, world: Path | None, seq: str) -> tuple[Any, Path]:
    """(Scene, scene file) of `seq` from the synthetic world folder (parent of the raw root unless --world)."""
    from vipocc.synthetic.oracle import WorldOracle

    oracle = WorldOracle(world if world is not None else raw_root.parent)
    return oracle.scene(seq), oracle.root / "oracle" / seq / "scene.npz"


# --------------------------------------------------------------------------------------------------- commands


def occupancy_gt(args: argparse.Namespace) -> int:
    from vipocc.data import occupancy_stage as stage

    config = config_from(args)
    block = config["occupancy_gt"]
    raw_root, split_dir = _paths(config, args)
    frames = _frames(args, split_dir, block["frames"])
    stage_config = {"dataset": config["dataset"], "occupancy_gt": block}
    digest = config_hash(stage_config)
    manifest = args.manifest or manifest_path(args.out, "occupancy_gt", args.seq)
    payload: dict[str, Any] = {"stage": "occupancy_gt", "seq": args.seq, "config_hash": digest,
                               "config": stage_config, "frame_numbers": frames}
    if block["source"] == "path":
        gt_root = stage.occupancy_gt_root(config, args.out)
        files = stage.check_gt_files(gt_root, args.seq, frames)
        payload.update(source=str(gt_root), files=[str(p) for p in files])
        _write_json(manifest, payload)
        log.info("%s: all %d KYN GT files of %d frames found in %s", args.seq, len(files), len(frames), gt_root)
        return 0

    synthetic = config["dataset"]["kind"] == "synthetic"
    scene, scene_path = _oracle_scene(raw_root, args.world, args.seq) if synthetic else (None, None)
    overwrite = _start(manifest, digest, args.overwrite, "occupancy GT", args.seq)
    settings = stage.OccupancyGtSettings.from_config(block)
    start = time.perf_counter()
    stats = stage.occupancy_gt_sequence(raw_root, args.out, args.seq, frames, settings, scene=scene,
                                        scene_path=scene_path, overwrite=overwrite, progress=not args.no_progress,
                                        workers=args.workers)
    files = list(stats.outputs)
    if synthetic:
        counts = [stage.load_frame_truth_counts(args.out, args.seq, f, settings) for f in frames]
        report = stage.truth_report(counts, {"sequences": [args.seq], "frames": len(frames),
                                             "scans_used": {str(f): n for f, n in stats.scans_used.items()}})
        json_path, csv_path = report_paths(args.out, args.seq)
        _write_json(json_path, report)
        write_text(csv_path, stage.report_csv(report))
        files += [json_path, csv_path]
    payload.update(stats.as_dict(), files=_relative(files, Path(args.out)),
                   seconds=round(time.perf_counter() - start, 3))
    _finish(manifest, payload)
    log.info("%s: %d frames computed, %d up to date, scans per frame %s -> %s", args.seq,
             len(frames) - stats.skipped, stats.skipped, sorted(set(stats.scans_used.values())), manifest)
    return 0


def voxel_gt(args: argparse.Namespace) -> int:
    from vipocc.data import voxel_gt as vg

    config = config_from(args)
    raw_root, split_dir = _paths(config, args)
    frames = _frames(args, split_dir, config["datasets"]["eval_voxel"]["split"])
    stage_config = {"dataset": config["dataset"], "voxel_gt": config["voxel_gt"]}
    digest = config_hash(stage_config)
    manifest = args.manifest or manifest_path(args.out, "voxel_gt", args.seq)
    payload: dict[str, Any] = {"stage": "voxel_gt", "seq": args.seq, "config_hash": digest, "config": stage_config,
                               "frame_numbers": frames}
    root, layout = vg.voxel_gt_root(config, args.out)
    if config["voxel_gt"]["source"] == "path":
        files = vg.check_voxel_gt_files(root, args.seq, frames, layout)
        payload.update(source=str(root), layout=layout, files=[str(p) for p in files])
        _write_json(manifest, payload)
        log.info("%s: all %d SSCBench label files of %d frames found in %s", args.seq, len(files), len(frames), root)
        return 0
    if config["dataset"]["kind"] != "synthetic":
        raise ConfigError("voxel_gt.source 'generate' needs the exact oracle of the synthetic world; for real "
                          "KITTI-360 set voxel_gt.source: path and voxel_gt.path to the SSCBench-KITTI-360 folder")
    scene, scene_path = _oracle_scene(raw_root, args.world, args.seq)
    overwrite = _start(manifest, digest, args.overwrite, "voxel GT", args.seq)
    start = time.perf_counter()
    stats = vg.voxel_gt_sequence(raw_root, args.out, args.seq, frames, scene, scene_path=scene_path,
                                 overwrite=overwrite, progress=not args.no_progress)
    payload.update(stats.as_dict(), layout=layout, files=_relative(stats.outputs, Path(args.out)),
                   seconds=round(time.perf_counter() - start, 3))
    _finish(manifest, payload)
    log.info("%s: %d voxel frames computed, %d up to date -> %s", args.seq, len(frames) - stats.skipped,
             stats.skipped, manifest)
    return 0


def occupancy_gt_report(args: argparse.Namespace) -> int:
    from vipocc.data import occupancy_stage as stage

    reports = []
    for path in args.inputs:
        if not Path(path).is_file():
            raise FileNotFoundError(f"per-sequence report not found: {path}")
        try:
            reports.append(json.loads(Path(path).read_text()))
        except ValueError as error:
            raise ValueError(f"{path}: not a JSON report ({error})") from None
    scope = {"sequences": sorted(seq for r in reports for seq in r["sequences"]),
             "frames": sum(int(r["frames"]) for r in reports)}
    report = stage.truth_report([stage.counts_from_report(r) for r in reports], scope)
    if (args.json is None) != (args.csv is None):
        raise ValueError("--json and --csv go together")
    json_path, csv_path = (args.json, args.csv) if args.json is not None else report_paths(args.out)
    _write_json(Path(json_path), report)
    write_text(Path(csv_path), stage.report_csv(report))
    log.info("lidar GT vs exact truth over %d frames of %s -> %s", scope["frames"], scope["sequences"], json_path)
    return 0


# --------------------------------------------------------------------------------------------------- parsers


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("occupancy-gt", help="KYN occupancy GT, object labels (and exact truth + report on the "
                                                 "synthetic world) of one KITTI-360 sequence")
    add_sequence_job_arguments(parser, "occupancy_gt", split_dir=True, world=True,
                               frames_help="comma-separated frame numbers (default: from the splits)")
    parser.add_argument("--workers", type=int, default=2, help="threads of the lidar occupancy (default 2)")
    parser.set_defaults(func=occupancy_gt)

    parser = sub.add_parser("voxel-gt", help="SSCBench-style voxel GT of one sequence (synthetic world) or a check "
                                             "of the user's SSCBench files")
    add_sequence_job_arguments(parser, "voxel_gt", split_dir=True, world=True,
                               frames_help="comma-separated frame numbers (default: from the splits)")
    parser.set_defaults(func=voxel_gt)

    parser = sub.add_parser("occupancy-gt-report", help="merge the per-sequence lidar-GT-vs-truth reports")
    parser.add_argument("inputs", nargs="+", type=Path, help="per-sequence report JSON files")
    parser.add_argument("--out", type=Path, default=Path("results/data/kitti360"),
                        help="derived root: writes <out>/occupancy_gt_vs_truth.{json,csv}")
    parser.add_argument("--json", type=Path, default=None, help="JSON path (overrides --out; needs --csv)")
    parser.add_argument("--csv", type=Path, default=None, help="CSV path (with --json)")
    parser.set_defaults(func=occupancy_gt_report)
