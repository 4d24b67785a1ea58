"""`vipocc depth-prior`, `vipocc instance-prior`, `vipocc snog-anchors`, `vipocc depth-prior-figure`.

The first three process one sequence (every posed frame, or ``--frames``) and end by writing a done-manifest JSON,
the rule's output::

    <derived>/manifests/depth_prior/<seq>.json
    <derived>/manifests/instance_prior/<seq>.json
    <derived>/manifests/snog_anchors/<seq>.json

Each manifest says which backend made the files (``backend``, ``simulated``, and for simulated priors the
sentence :data:`vipocc.priors.simulated.SIMULATED_BACKEND_NOTE`; for real models the weights path and their
sha256), the counts, seconds and images/s, every output file (relative to the derived root), the hash of the
settings and provenance. Later stages copy the ``prior`` entry into their metrics. The SNOG manifest repeats the
``prior`` entry of the instance manifest it sampled from.

Cameras: ``priors.depth.cameras`` (+ image_02/03 with ``priors.depth.fisheye``) for the pseudo depth,
``priors.snog.cameras`` for the instances and the anchors (SNOG samples from the detections of the same view).
Settings come from the ``priors`` config block (and ``preprocess.image_size`` / ``fisheye_rotation``, which name
the folders). A job whose settings changed since the last run (the manifest or an interrupted run's
``<manifest>.settings`` stamp, which Snakemake does not delete, records the hash) redoes every frame; otherwise finished frames are skipped.
The synthetic world's oracle (for the simulated backends and the figure) is read from the folder holding
world.json: by default the parent of the dataset root (results/world), or ``--world``.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from vipocc.commandline import add_sequence_job_arguments, config_from, limit_threads
from vipocc.commandline import begin_sequence_job, finish_sequence_job
from vipocc.config import ConfigError, config_hash

log = logging.getLogger("vipocc")

STAGES = ("depth_prior", "instance_prior", "snog_anchors")
# Settings that do not change a file's content; leaving them out of the hash avoids needless recomputation.
_UNHASHED = {"depth": ("batch_size", "cameras", "fisheye"), "instances": ("batch_size",), "snog": ("cameras",)}


# --------------------------------------------------------------------------------------------------- helpers


def manifest_path(derived_root: Path, stage: str, seq: str) -> Path:
    """``<derived>/manifests/<stage>/<seq>.json``."""
    return Path(derived_root) / "manifests" / stage / f"{seq}.json"


def _raw_root(config: dict, raw_root: Path | None) -> Path:
    from vipocc.data.commands import dataset_root

    if config["dataset"]["kind"] == "kitti_raw":
        raise ConfigError("the priors stage needs dataset.kind synthetic or kitti360, not kitti_raw")
    return dataset_root(config, raw_root)


def _world_root(config: dict, raw_root: Path, world: Path | None) -> Path:
    """Folder with world.json and oracle/ (synthetic world only)."""
    if config["dataset"]["kind"] != "synthetic":
        raise ConfigError("the oracle exists only for the synthetic world, "
                          f"dataset.kind is {config['dataset']['kind']}")
    root = Path(world) if world is not None else Path(raw_root).parent
    if not (root / "world.json").is_file():
        raise FileNotFoundError(f"{root / 'world.json'} not found: pass --world <folder of the generated world>")
    return root


def _frames(raw_root: Path, seq: str, text: str | None) -> list[int]:
    """Every posed frame of `seq`, or the frames of ``--frames`` (each must be posed)."""
    import numpy as np

    from vipocc.data.poses import load_poses

    poses = load_poses(raw_root, seq)
    if text is None:
        return [int(frame) for frame in poses.frames]
    try:
        frames = [int(token) for token in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"--frames: expected comma-separated frame numbers, got {text!r}") from None
    poses.indices_of(np.asarray(frames, dtype=np.int64))
    return frames


def _folders(config: dict) -> tuple[tuple[str, str], tuple[int, int]]:
    from vipocc.data.images import preprocessed_folders

    block = config["preprocess"]
    size = tuple(int(v) for v in block["image_size"])
    return preprocessed_folders(size, block["fisheye_rotation"]), size


def _stage_config(config: dict, block: str, backend: str | None) -> dict:
    """The settings a stage's files depend on (hashed): dataset, image size, rotation and the priors block."""
    settings = {key: value for key, value in config["priors"][block].items() if key not in _UNHASHED[block]}
    if backend is not None:
        settings["backend"] = backend
    return {"dataset": config["dataset"], "image_size": config["preprocess"]["image_size"],
            "fisheye_rotation": config["preprocess"]["fisheye_rotation"], block: settings}


def _write_json(path: Path, payload: dict) -> None:
    from vipocc.io import write_text

    write_text(path, json.dumps(payload, indent=1, sort_keys=True, default=str) + "\n")


def _run_stage(args: argparse.Namespace, stage: str, stage_config: dict, prior: dict, job) -> int:
    """Hash check, in-progress marker, the job, the done-manifest. `job(overwrite) -> StageStats`."""
    from vipocc.provenance import provenance

    out = args.manifest or manifest_path(args.out, stage, args.seq)
    digest = config_hash(stage_config)
    overwrite = begin_sequence_job(out, digest, args.overwrite)
    if overwrite and not args.overwrite:
        log.info("%s %s: settings changed since the files were made: recomputing every frame", stage, args.seq)
    start = time.perf_counter()
    stats = job(overwrite)
    seconds = time.perf_counter() - start
    files = sorted(Path(p).relative_to(args.out).as_posix() for p in stats.outputs)
    _write_json(out, {"stage": stage, "seq": args.seq, "config_hash": digest, "config": stage_config,
                      "prior": prior, **stats.as_dict(), "seconds": round(seconds, 3), "files": files,
                      "provenance": provenance(digest)})
    finish_sequence_job(out, digest)
    rate = stats.images_per_second
    log.info("%s %s: %d written, %d up to date (%s), %s%s -> %s", stage, args.seq, stats.written, stats.skipped,
             prior["backend"], "SIMULATED prior, " if prior.get("simulated") else "",
             f"{rate:.2f} images/s" if rate else "nothing to do", out)
    return 0


# --------------------------------------------------------------------------------------------------- commands


def _oracle_views(config: dict, args: argparse.Namespace, raw_root: Path):
    from vipocc.data.calibration import load_calibration
    from vipocc.priors.stage import OracleViews

    _, size = _folders(config)
    calibration = load_calibration(raw_root, config["preprocess"]["fisheye_rotation"])
    return OracleViews(_world_root(config, raw_root, args.world), size, calibration)


def depth_prior(args: argparse.Namespace) -> int:
    from vipocc.priors.simulated import DepthPriorParams
    from vipocc.priors.stage import (DepthAnythingBackend, SimulatedDepthBackend, depth_prior_sequence,
                                     resolve_backend)

    config = config_from(args)
    limit_threads(args.threads)
    raw_root = _raw_root(config, args.raw_root)
    block = config["priors"]["depth"]
    backend_name = resolve_backend(block["backend"], config["dataset"]["kind"], "depth")
    if backend_name == "simulated":
        params = DepthPriorParams(max_depth=float(block["max_depth"]))
        backend = SimulatedDepthBackend(_oracle_views(config, args, raw_root), block["seed"], params)
    else:
        if block["model_path"] is None:
            raise ConfigError("priors.depth.model_path must name the Depth Anything V2 weights (HF folder or .pth) "
                              "for the depth_anything backend")
        backend = DepthAnythingBackend(Path(block["model_path"]).expanduser(), args.device, block["dtype"],
                                       block["input_size"], block["batch_size"], block["max_depth"])
    folders, size = _folders(config)
    cameras = list(block["cameras"]) + (["image_02", "image_03"] if block["fisheye"] else [])
    frames = _frames(raw_root, args.seq, args.frames)
    return _run_stage(args, "depth_prior", _stage_config(config, "depth", backend_name), backend.describe(),
                      lambda overwrite: depth_prior_sequence(args.out, args.seq, frames, cameras, folders, size,
                                                             backend, overwrite, not args.no_progress))


def instance_prior(args: argparse.Namespace) -> int:
    from vipocc.priors.stage import (GroundedSamBackend, SimulatedInstanceBackend, instance_prior_sequence,
                                     resolve_backend)

    config = config_from(args)
    limit_threads(args.threads)
    raw_root = _raw_root(config, args.raw_root)
    block = config["priors"]["instances"]
    backend_name = resolve_backend(block["backend"], config["dataset"]["kind"], "instances")
    if backend_name == "simulated":
        backend = SimulatedInstanceBackend(_oracle_views(config, args, raw_root), block["seed"], block["drop_prob"],
                                           block["box_jitter_px"], block["min_car_pixels"])
    else:
        missing = [key for key in ("dino_path", "sam_path") if block[key] is None]
        if missing:
            raise ConfigError(f"priors.instances.{' and '.join(missing)} must name local Hugging Face model folders "
                              "for the grounded_sam backend")
        backend = GroundedSamBackend(Path(block["dino_path"]).expanduser(), Path(block["sam_path"]).expanduser(),
                                     args.device, block["prompt"], block["box_threshold"], block["text_threshold"],
                                     block["batch_size"])
    folders, size = _folders(config)
    cameras = config["priors"]["snog"]["cameras"]
    frames = _frames(raw_root, args.seq, args.frames)
    return _run_stage(args, "instance_prior", _stage_config(config, "instances", backend_name), backend.describe(),
                      lambda overwrite: instance_prior_sequence(args.out, args.seq, frames, cameras, folders, size,
                                                                backend, overwrite, not args.no_progress))


def snog_anchors(args: argparse.Namespace) -> int:
    from vipocc.priors.stage import SnogSettings, snog_anchor_sequence

    config = config_from(args)
    raw_root = _raw_root(config, args.raw_root)
    block = config["priors"]["snog"]
    settings = SnogSettings(patch_size=block["patch_size"], num_patches=block["num_patches"], n_sets=block["n_sets"],
                            background_ratio=block["background_ratio"], phrases=tuple(block["phrases"]),
                            seed=block["seed"])
    folders, size = _folders(config)
    frames = _frames(raw_root, args.seq, args.frames)
    instances = manifest_path(args.out, "instance_prior", args.seq)
    try:
        prior = json.loads(instances.read_text())["prior"]
    except (FileNotFoundError, KeyError, ValueError):
        prior = {"backend": "unknown", "simulated": None,
                 "note": f"no instance manifest {instances}: the detections' backend is not recorded"}
    return _run_stage(args, "snog_anchors", _stage_config(config, "snog", None), prior,
                      lambda overwrite: snog_anchor_sequence(args.out, args.seq, frames, block["cameras"], folders,
                                                             size, settings, overwrite, not args.no_progress))


def depth_prior_figure(args: argparse.Namespace) -> int:
    from vipocc.priors.figures import depth_prior_figure as draw

    config = config_from(args)
    raw_root = _raw_root(config, args.raw_root)
    folders, size = _folders(config)
    oracle = _oracle_views(config, args, raw_root) if config["dataset"]["kind"] == "synthetic" else None
    frames = _frames(raw_root, args.seq, args.frames)
    path = draw(args.out, args.seq, frames, folders, args.figure, oracle=oracle, rows=args.rows,
                max_depth=float(config["priors"]["depth"]["max_depth"]))
    log.info("%s: depth prior figure -> %s", args.seq, path)
    return 0


# --------------------------------------------------------------------------------------------------- parsers


def _add_job_arguments(parser: argparse.ArgumentParser, stage: str | None, device: bool) -> None:
    add_sequence_job_arguments(parser, stage, world=True, threads=True)
    if device:
        parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("depth-prior", help="pseudo depth (Depth Anything V2 or simulated) of one sequence")
    _add_job_arguments(parser, "depth_prior", device=True)
    parser.set_defaults(func=depth_prior)

    parser = sub.add_parser("instance-prior", help="Grounded-SAM (or simulated) detections and instance masks "
                                                   "of one sequence")
    _add_job_arguments(parser, "instance_prior", device=True)
    parser.set_defaults(func=instance_prior)

    parser = sub.add_parser("snog-anchors", help="SNOG patch anchors of one sequence from its detections")
    _add_job_arguments(parser, "snog_anchors", device=False)
    parser.set_defaults(func=snog_anchors)

    parser = sub.add_parser("depth-prior-figure", help="sanity figure: image, pseudo depth, oracle / LiDAR depth")
    _add_job_arguments(parser, None, device=False)
    parser.add_argument("--figure", type=Path, required=True, help="output PNG")
    parser.add_argument("--rows", type=int, default=3, help="frames shown (evenly spaced), default 3")
    parser.set_defaults(func=depth_prior_figure)
