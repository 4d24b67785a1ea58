"""Pieces shared by the stage subcommands of the `vipocc` CLI."""
from __future__ import annotations

import argparse
import json
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


def add_sequence_job_arguments(parser: argparse.ArgumentParser, stage: str | None, *, split_dir: bool = False,
                               world: bool = False, threads: bool = False,
                               frames_help: str = "comma-separated frame numbers (default: every posed frame)") -> None:
    """Arguments shared by the per-sequence stage jobs (one job = one sequence of the derived data root).

    `stage` names the done-manifest folder; None for commands that write no manifest (they get no
    --manifest / --overwrite / --threads / --no-progress)."""
    add_config_arguments(parser)
    parser.add_argument("--seq", required=True, help="sequence folder name, e.g. 2013_05_28_drive_0000_sync")
    parser.add_argument("--out", type=Path, required=True, help="derived data root (e.g. results/data/kitti360)")
    parser.add_argument("--raw-root", type=Path, default=None, help="KITTI-360 root (default: from the config)")
    if split_dir:
        parser.add_argument("--split-dir", type=Path, default=None,
                            help="folder of <split>_files.txt (default: from the config, or the synthetic world's)")
    if world:
        parser.add_argument("--world", type=Path, default=None,
                            help="synthetic world folder with world.json and oracle/ (default: parent of the raw root)")
    parser.add_argument("--frames", default=None, help=frames_help)
    if stage is None:
        return
    parser.add_argument("--manifest", type=Path, default=None,
                        help=f"done-manifest path (default: <out>/manifests/{stage}/<seq>.json)")
    parser.add_argument("--overwrite", action="store_true", help="redo files that are up to date")
    if threads:
        parser.add_argument("--threads", type=int, default=None, help="CPU threads of torch / OpenCV (default: theirs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def settings_stamp(manifest: Path) -> Path:
    """``<manifest>.settings``: the settings the files of a per-sequence job were made with. It is deliberately not a
    Snakemake output: Snakemake deletes a job's outputs (the done-manifest) before rerunning it, and the stamp is what
    tells the rerun that the existing files belong to other settings."""
    return manifest.with_name(manifest.name + ".settings")


def _read_stamp(manifest: Path) -> dict | None:
    for path, mixed in ((settings_stamp(manifest), None), (manifest, False)):
        try:
            record = json.loads(path.read_text())
            return {"config_hash": record["config_hash"], "mixed": bool(record.get("mixed", mixed))}
        except (FileNotFoundError, KeyError, ValueError, TypeError):
            continue
    return None


def begin_sequence_job(manifest: Path, digest: str, force: bool = False) -> bool:
    """Whether a per-sequence job must redo every frame (True) or may skip the frames already written (False).

    Every frame is redone when forced, when the existing files were made with other settings (``digest`` differs
    from the stamp), or when an earlier run that was already redoing them was interrupted (the folder may still hold
    files of the old settings). A run of unchanged settings resumes. The stamp is updated before any file is written.
    """
    record = _read_stamp(manifest)
    redo = force or (record is not None and (record["config_hash"] != digest or record["mixed"]))
    from vipocc.io import write_text

    write_text(settings_stamp(manifest), json.dumps({"config_hash": digest, "mixed": redo}) + "\n")
    return redo


def finish_sequence_job(manifest: Path, digest: str) -> None:
    """Record that every file of the sequence now belongs to ``digest`` (call after writing the done-manifest)."""
    from vipocc.io import write_text

    write_text(settings_stamp(manifest), json.dumps({"config_hash": digest, "mixed": False}) + "\n")


def limit_threads(threads: int | None) -> None:
    """Keep one job within the cores the scheduler gave it (several sequences run side by side)."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads: expected a positive integer, got {threads}")
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
