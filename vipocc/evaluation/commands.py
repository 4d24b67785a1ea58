"""`vipocc evaluate <kind>`: occupancy, voxel, depth, pseudo_depth, demo.

    vipocc evaluate depth --config-json '<json>' --model results/train/vipocc/model.pt --source rendered \\
        --out results/eval/vipocc/depth_rendered
    vipocc evaluate occupancy ... --checkpoint checkpoints/BTS-KITTI-360.pt --checkpoint-kind bts --z-range 20 4
    vipocc evaluate pseudo_depth --config-json '<json>' --scaling median --out results/eval/depth_prior/pseudo_depth_median

Every kind writes ``<out>/per_frame.csv`` and ``<out>/summary.json`` (:mod:`vipocc.evaluation.records`); the demo
also writes its pictures and meshes into ``<out>``. The network comes from a trained model (``--model
results/train/<exp>/model.pt``, rebuilt from the card ``model.json`` next to it) or from an official checkpoint
(``--checkpoint <file> --checkpoint-kind bts|vipocc``: the reference's key names are mapped, ``renderer.net.`` ->
``field.`` and ``res_inv_depth.`` -> ``depth_branch.res_inv_depth.``; missing / unexpected keys are recorded).
Data paths default as for training: raw root ``results/world/kitti360`` (synthetic) or ``dataset.root``, derived
root ``results/data/kitti360``, split folder ``dataset.split_dir`` or the dataset's default. Test frames: the
``datasets.eval_depth`` / ``eval_occupancy`` / ``eval_voxel`` blocks.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vipocc.commandline import add_config_arguments, config_from

log = logging.getLogger("vipocc")

__all__ = ["KINDS", "LoadedModel", "load_model", "register", "select_indices"]

KINDS = ("occupancy", "voxel", "depth", "pseudo_depth", "demo")
DERIVED_ROOT = Path("results/data/kitti360")
CHECKPOINT_KINDS = ("bts", "vipocc")
# Official checkpoint key prefixes -> ours (vipocc.models.network docstring).


# --------------------------------------------------------------------------------------------------- models
@dataclass
class LoadedModel:
    """A network ready for evaluation and where it came from (``path``: the weights file, hashed in the summary)."""

    network: Any
    path: Path
    source: str  # "model" (trained by this workflow) or "checkpoint:<kind>"
    pixel_convention: str = "linspace"
    card: dict = field(default_factory=dict)
    load_report: dict = field(default_factory=dict)


def _network_config(values: dict, where: Path):
    from vipocc.models.network import NetworkConfig

    known = set(NetworkConfig.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: network.config has unknown keys {unknown}")
    # ImageNet initialisation files are irrelevant (the weights replace them) and may not exist here.
    return NetworkConfig(**{**values, "encoder_weights": None, "depth_encoder_weights": None})


def _load_trained(model_path: Path) -> LoadedModel:
    import json

    from vipocc.models.network import ViPOccNetwork
    from vipocc.training.checkpoint import load_weights

    card_path = model_path.with_suffix(".json")
    if not card_path.is_file():
        raise FileNotFoundError(f"{card_path}: model card not found (written next to {model_path.name} by "
                                "vipocc train); it holds the network configuration")
    try:
        card = json.loads(card_path.read_text())
        net_config = _network_config(dict(card["network"]["config"]), card_path)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{card_path}: not a model card ({err})") from None
    network = ViPOccNetwork(net_config)
    network.load_state_dict(load_weights(model_path), strict=True)
    pixel_convention = card.get("settings", {}).get("pixel_convention", "linspace")
    return LoadedModel(network, model_path, "model", pixel_convention, card)


def _load_official(path: Path, kind: str) -> LoadedModel:
    """An official BTS / ViPOcc release, loaded strictly through the explicit key map (missing or unexpected keys
    are an error listing them; the reference's strict=False would evaluate random weights silently)."""
    from vipocc.models.network import NetworkConfig, ViPOccNetwork
    from vipocc.models.official_checkpoints import load_official_checkpoint

    if kind not in CHECKPOINT_KINDS:
        raise ValueError(f"--checkpoint-kind: expected one of {CHECKPOINT_KINDS}, got {kind!r}")
    network = ViPOccNetwork(NetworkConfig(use_depth_branch=kind == "vipocc"))
    report = load_official_checkpoint(path, network)
    return LoadedModel(network, path, f"checkpoint:{kind}", "linspace", {}, report)


def load_model(model: str | Path | None = None, checkpoint: str | Path | None = None,
               checkpoint_kind: str | None = None) -> LoadedModel:
    """The network of ``--model`` (a workflow model.pt + model.json) or ``--checkpoint`` (official file, with
    ``checkpoint_kind`` bts / vipocc). Exactly one source must be given."""
    if (model is None) == (checkpoint is None):
        raise ValueError("give exactly one of --model and --checkpoint")
    if checkpoint is not None:
        if checkpoint_kind is None:
            raise ValueError("--checkpoint needs --checkpoint-kind bts or vipocc")
        return _load_official(Path(checkpoint), checkpoint_kind)
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"model not found: {path} (train it first: rule train)")
    return _load_trained(path)


# ----------------------------------------------------------------------------------------------------- data
def _paths(config: dict, args: argparse.Namespace) -> tuple[Path, Path, Path]:
    from vipocc.training.commands import training_paths

    return training_paths(config, args.raw_root, args.derived_root or DERIVED_ROOT, args.split_dir)


def _kitti360(config: dict, use: str, args: argparse.Namespace, **kwargs):
    from vipocc.data.kitti360 import Kitti360Dataset

    raw, derived, splits = _paths(config, args)
    dataset = Kitti360Dataset.from_config(config, use, raw, derived, splits, **kwargs)
    info = {"kind": config["dataset"]["kind"], "use": use, "split": config["datasets"][use]["split"],
            "split_file": str(dataset.split_path), "raw_root": str(raw), "derived_root": str(derived)}
    return dataset, info


def _kitti_raw(config: dict, args: argparse.Namespace):
    from vipocc.data.kitti_raw import KittiRawDataset

    root = Path(config["dataset"]["root"]).expanduser() if args.raw_root is None else args.raw_root
    split_dir = args.split_dir or Path(config["dataset"].get("split_dir") or "splits/kitti_raw")
    split_file = split_dir / "test_files.txt"
    if not split_file.is_file():
        raise FileNotFoundError(f"{split_file}: KITTI Raw Eigen test split not found")
    dataset = KittiRawDataset(root, args.pose_root or root / "poses", split_file,
                              tuple(config["preprocess"]["image_size"]), frame_count=1, return_stereo=False,
                              return_gt_depth=True, eigen_crop=True)
    return dataset, {"kind": "kitti_raw", "split": "eigen test", "split_file": str(split_file),
                     "raw_root": str(root)}


def select_indices(n: int, limit: int | None = None, evenly: int | None = None) -> list[int]:
    """Dataset indices to evaluate: all, the first ``limit``, or ``evenly`` indices spread evenly over [0, n)."""
    import numpy as np

    if evenly is not None:
        if evenly < 0:
            raise ValueError(f"--frames: expected >= 0, got {evenly}")
        return sorted(set(np.linspace(0, n - 1, min(evenly, n)).round().astype(int).tolist())) if n else []
    if limit is not None and limit < 1:
        raise ValueError(f"--limit: expected >= 1, got {limit}")
    return list(range(n if limit is None else min(limit, n)))


def _samples(dataset, indices):
    return (dataset[i] for i in indices)


def _prior_info(config: dict, derived_root: Path, sequences) -> dict[str, Any]:
    from vipocc.evaluation.pseudo_depth import prior_backends, summarize_prior_backends

    return {"depth": summarize_prior_backends(prior_backends(derived_root, sequences))}


# ------------------------------------------------------------------------------------------------- evaluators
def _write(args, config, rows, summary, loaded: LoadedModel | None, protocol, dataset_info, priors, device):
    from vipocc.config import config_hash
    from vipocc.evaluation.records import evaluation_provenance, write_results

    prov = evaluation_provenance(config_hash=config_hash(config), checkpoint=None if loaded is None else loaded.path,
                                 protocol=protocol, dataset=dataset_info, priors=priors, device=device)
    if loaded is not None:
        prov["model"] = {"source": loaded.source, "experiment": loaded.card.get("experiment"),
                         "steps": loaded.card.get("steps"), "load_report": loaded.load_report}
    paths = write_results(args.out, rows, summary, prov)
    log.info("%s: %d frames -> %s", summary.get("evaluator"), summary.get("frames", len(rows)), paths["summary"])
    return paths


def _summary(evaluator: str, model_name: str | None, protocol: dict, rows: list[dict], seconds: float,
             id_keys=("seq", "frame", "is_right")) -> dict[str, Any]:
    from vipocc.evaluation.metrics import mean_metrics

    numeric = [{k: v for k, v in row.items() if k not in id_keys and isinstance(v, (int, float))
                and not isinstance(v, bool)} for row in rows]
    return {"evaluator": evaluator, "model": model_name, "protocol": protocol, "frames": len(rows),
            "seconds": round(seconds, 3), "frames_per_second": round(len(rows) / seconds, 4) if seconds else None,
            "metrics": mean_metrics(numeric)}


def _device(args, config):
    from vipocc.evaluation.depth import resolve_device

    return resolve_device(args.device or config["evaluation"]["device"])


def run_depth(args: argparse.Namespace) -> int:
    from vipocc.evaluation.depth import depth_frames, evaluate_depth, protocol_settings

    config = config_from(args)
    loaded = load_model(args.model, args.checkpoint, args.checkpoint_kind)
    block = config["evaluation"]["depth"]
    if not block[args.source]:
        raise ValueError(f"--source {args.source}: evaluation.depth.{args.source} is false in the config")
    scaling = block["scaling"] if args.scaling is None else _scaling(args.scaling)
    if config["dataset"]["kind"] == "kitti_raw":
        dataset, info, protocol_name, priors = *_kitti_raw(config, args), "kitti_raw_eigen", {}
    else:
        dataset, info = _kitti360(config, "eval_depth", args, gt_depth_camera="left")
        protocol_name = "kitti360"
        priors = (_prior_info(config, Path(info["derived_root"]), {d[0] for d in dataset.datapoints})
                  if args.source == "predicted" else {})
    indices = select_indices(len(dataset), args.limit)
    device = _device(args, config)
    start = time.perf_counter()
    rows = evaluate_depth(loaded.network, depth_frames(_samples(dataset, indices)), args.source,
                          protocol=protocol_name, scaling=scaling, device=device,
                          pixel_convention=loaded.pixel_convention, progress=not args.no_progress,
                          total=len(indices))
    protocol = protocol_settings(protocol_name, scaling) | {"source": args.source,
                                                            "pixel_convention": loaded.pixel_convention,
                                                            "sample_jitter": False}
    summary = _summary("depth", args.name, protocol, rows, time.perf_counter() - start)
    _write(args, config, rows, summary, loaded, protocol, info, priors, device)
    return 0


def _scaling(value: str) -> str | None:
    return None if value == "none" else value


def run_pseudo_depth(args: argparse.Namespace) -> int:
    from vipocc.evaluation.depth import depth_frames, protocol_settings
    from vipocc.evaluation.pseudo_depth import evaluate_pseudo_depth, prior_backends, summarize_prior_backends

    config = config_from(args)
    if config["dataset"]["kind"] == "kitti_raw":
        raise ValueError("vipocc evaluate pseudo_depth: the prior is produced for KITTI-360 (and the synthetic "
                         "world) only; dataset.kind is kitti_raw")
    scaling = _scaling(args.scaling)
    dataset, info = _kitti360(config, "eval_depth", args, gt_depth_camera="left")
    if not dataset.options["return_pseudo_depth"]:
        raise ValueError("datasets.eval_depth.return_pseudo_depth is false: the pseudo depth is not loaded")
    backends = prior_backends(info["derived_root"], {d[0] for d in dataset.datapoints})
    indices = select_indices(len(dataset), args.limit)
    start = time.perf_counter()
    rows = evaluate_pseudo_depth(depth_frames(_samples(dataset, indices)), scaling, backends=backends,
                                 progress=not args.no_progress, total=len(indices))
    protocol = protocol_settings("kitti360", scaling)
    priors = {"depth": summarize_prior_backends(backends)}
    summary = _summary("pseudo_depth", args.name, protocol, rows, time.perf_counter() - start,
                       id_keys=("seq", "frame", "is_right", "prior_simulated"))
    summary["prior_simulated"] = priors["depth"]["simulated"]
    _write(args, config, rows, summary, None, protocol, info, priors, "cpu")
    return 0


def run_occupancy(args: argparse.Namespace) -> int:
    from vipocc.evaluation.occupancy import OccupancySettings, evaluate_occupancy

    config = config_from(args)
    loaded = load_model(args.model, args.checkpoint, args.checkpoint_kind)
    block = config["evaluation"]["occupancy"]
    z_range = args.z_range or block["z_ranges"][0]
    device = _device(args, config)
    settings = OccupancySettings.from_config(block, z_range, device=device.type)
    dataset, info = _kitti360(config, "eval_occupancy", args)
    indices = select_indices(len(dataset), args.limit)
    start = time.perf_counter()
    rows, summary = evaluate_occupancy(loaded.network, [dataset[i] for i in indices] if args.limit else dataset,
                                       info["derived_root"], settings, progress=not args.no_progress,
                                       grids_dir=args.out)
    seconds = time.perf_counter() - start
    summary = {**summary, "model": args.name, "seconds": round(seconds, 3),
               "frames_per_second": round(len(rows) / seconds, 4) if seconds else None}
    _write(args, config, rows, summary, loaded, settings.as_dict(), info, {}, device)
    return 0


def run_voxel(args: argparse.Namespace) -> int:
    from vipocc.data.voxel_gt import VoxelGtReader
    from vipocc.evaluation.voxel import VoxelSettings, evaluate_voxel

    config = config_from(args)
    if not config["evaluation"]["voxel"]["enabled"]:
        raise ValueError("evaluation.voxel.enabled is false in the config")
    loaded = load_model(args.model, args.checkpoint, args.checkpoint_kind)
    device = _device(args, config)
    settings = VoxelSettings.from_config(config["evaluation"], device=device.type)
    raw, derived, _ = _paths(config, args)
    if config["voxel_gt"]["source"] == "path":
        reader = VoxelGtReader(Path(config["voxel_gt"]["path"]).expanduser(), raw, layout="sscbench")
    else:
        reader = VoxelGtReader(derived / "voxel_gt", raw, layout="frames")
    dataset, info = _kitti360(config, "eval_voxel", args, voxel_loader=reader)
    info["voxel_gt"] = {"source": config["voxel_gt"]["source"], "root": str(reader.root), "layout": reader.layout}
    indices = select_indices(len(dataset), args.limit)
    start = time.perf_counter()
    rows, summary = evaluate_voxel(loaded.network, [dataset[i] for i in indices] if args.limit else dataset,
                                   settings, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    summary = {**summary, "model": args.name, "seconds": round(seconds, 3),
               "frames_per_second": round(len(rows) / seconds, 4) if seconds else None}
    protocol = dict(summary.get("protocol") or dataclasses.asdict(settings))
    _write(args, config, rows, summary, loaded, protocol, info, {}, device)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from vipocc.evaluation.demo import render_demo_frame

    config = config_from(args)
    loaded = load_model(args.model, args.checkpoint, args.checkpoint_kind)
    block = config["evaluation"]["demo"]
    dataset, info = _kitti360(config, "eval_depth", args, gt_depth_camera="left")
    count = block["frames"] if args.frames is None else args.frames
    indices = select_indices(len(dataset), evenly=count)
    device = _device(args, config)
    loaded.network.to(device).eval()
    rows = []
    start = time.perf_counter()
    from vipocc.evaluation.depth import progress_bar

    for index in progress_bar(indices, not args.no_progress, len(indices), "demo"):
        sample = dataset[index]
        frame_start = time.perf_counter()
        prior = sample["pseudo_depth"][0][None] if len(sample["pseudo_depth"]) else None
        stem = f"{sample['seq']}_{int(sample['img_id']):010d}"
        files = render_demo_frame(loaded.network, sample["imgs"][0][None], sample["projs"][0][None], prior,
                                  args.out, stem, device, density_threshold=block["density_threshold"],
                                  pixel_convention=loaded.pixel_convention)
        rows.append({"seq": sample["seq"], "frame": int(sample["img_id"]), "is_right": bool(sample["is_right"]),
                     **{f"file_{k}": Path(v).name for k, v in files.items()},
                     "seconds": round(time.perf_counter() - frame_start, 4)})
    protocol = {"frames": count, "density_threshold": block["density_threshold"], "bev_grid": "x -4.5..4.5, "
                "z 20..3, ppm 7, y 0..0.75 (25 samples)", "voxel_grid": "x -4.5..4.5, y -1.5..2.5, z 20..3, ppm 7"}
    summary = _summary("demo", args.name, protocol, rows, time.perf_counter() - start)
    summary["metrics"] = {}
    _write(args, config, rows, summary, loaded, protocol, info, {}, device)
    return 0


# -------------------------------------------------------------------------------------------------- parser
def _common(parser: argparse.ArgumentParser, needs_model: bool = True) -> None:
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, required=True,
                        help="result folder, e.g. results/eval/<model>/<evaluator>[_<protocol>]")
    parser.add_argument("--name", default=None, help="model name recorded in the summary (e.g. vipocc)")
    if needs_model:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--model", type=Path, default=None, help="results/train/<experiment>/model.pt")
        source.add_argument("--checkpoint", type=Path, default=None, help="official checkpoint file (.pt)")
        parser.add_argument("--checkpoint-kind", choices=CHECKPOINT_KINDS, default=None,
                            help="network of --checkpoint: bts (density field) or vipocc (+ depth branch)")
        parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                            help="overrides evaluation.device")
    parser.add_argument("--raw-root", type=Path, default=None, help="dataset root (default: from the config)")
    parser.add_argument("--derived-root", type=Path, default=None, help=f"derived data root (default {DERIVED_ROOT})")
    parser.add_argument("--split-dir", type=Path, default=None, help="folder of <split>_files.txt")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N frames (smoke runs)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _with_threads(function):
    def run(args: argparse.Namespace) -> int:
        if args.threads is not None:
            import torch

            if args.threads < 1:
                raise ValueError(f"--threads: expected a positive integer, got {args.threads}")
            torch.set_num_threads(args.threads)
        if getattr(args, "checkpoint_kind", None) and getattr(args, "checkpoint", None) is None:
            raise ValueError("--checkpoint-kind is only used with --checkpoint")
        return function(args)
    return run


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("evaluate", help="evaluate a model: occupancy, voxel, depth, pseudo_depth, demo")
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="kind")

    occupancy = kinds.add_parser("occupancy", help="bird's-eye occupancy (scene and object O_acc, IE_acc, IE_rec)")
    _common(occupancy)
    occupancy.add_argument("--z-range", type=float, nargs=2, metavar=("FAR", "NEAR"), default=None,
                           help="z range in m (default: the first of evaluation.occupancy.z_ranges)")
    occupancy.set_defaults(func=_with_threads(run_occupancy))

    voxel = kinds.add_parser("voxel", help="SSCBench-style 3D voxel occupancy")
    _common(voxel)
    voxel.set_defaults(func=_with_threads(run_voxel))

    depth = kinds.add_parser("depth", help="rendered or predicted depth against LiDAR GT")
    _common(depth)
    depth.add_argument("--source", choices=("rendered", "predicted"), required=True)
    depth.add_argument("--scaling", choices=("none", "median", "lsq"), default=None,
                       help="overrides evaluation.depth.scaling")
    depth.add_argument("--pose-root", type=Path, default=None, help="KITTI Raw pose files (default <root>/poses)")
    depth.set_defaults(func=_with_threads(run_depth))

    pseudo = kinds.add_parser("pseudo_depth", help="the pseudo-depth prior against LiDAR GT")
    _common(pseudo, needs_model=False)
    pseudo.add_argument("--scaling", choices=("none", "median", "lsq"), required=True)
    pseudo.set_defaults(func=_with_threads(run_pseudo_depth))

    demo = kinds.add_parser("demo", help="demo renders: depth pictures, bird's-eye profile, voxel mesh (.ply)")
    _common(demo)
    demo.add_argument("--frames", type=int, default=None, help="overrides evaluation.demo.frames")
    demo.set_defaults(func=_with_threads(run_demo))
