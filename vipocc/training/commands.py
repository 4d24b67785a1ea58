"""`vipocc train`: train one named experiment (BTS, ViPOcc or an ablation) on KITTI-360 / the synthetic world.

    vipocc train --config-json '<json>' --experiment vipocc --out results/train/vipocc

writes ``<out>/model.pt`` (weights), ``<out>/model.json`` (card), ``<out>/losses.csv`` and ``<out>/validation.csv``;
checkpoints and live logs go to ``<out>/work/`` (``--work``), and running the same command again after a kill
resumes from the newest checkpoint. Paths: the raw root is ``results/world/kitti360`` for the synthetic world or
``dataset.root``; the derived root (preprocessed images, depth GT, pseudo depth, anchors) defaults to
``results/data/kitti360``; the split folder to ``dataset.split_dir``, else ``results/world/splits/kitti360``
(synthetic) or ``splits/kitti360`` (real KITTI-360, relative to the working folder). Several GPUs:
``torchrun --standalone --nproc_per_node=N --no-python vipocc train ...`` (DDP, one process per GPU).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vipocc.commandline import add_config_arguments, config_from
from vipocc.config import ConfigError

log = logging.getLogger("vipocc")

DERIVED_ROOT = Path("results/data/kitti360")
SYNTHETIC_SPLIT_DIR = Path("results/world/splits/kitti360")
SYNTHETIC_RAW_ROOT = Path("results/world/kitti360")
REAL_SPLIT_DIR = Path("splits/kitti360")


def training_paths(config: dict, raw_root: Path | None, derived_root: Path | None,
                   split_dir: Path | None) -> tuple[Path, Path, Path]:
    """(raw root, derived root, split folder) from the config and the command-line overrides; each must exist."""
    kind = config["dataset"]["kind"]
    if kind == "kitti_raw":
        raise ConfigError("vipocc train trains on KITTI-360 (or the synthetic world): dataset.kind kitti_raw is "
                          "not supported")
    if raw_root is None:
        raw_root = SYNTHETIC_RAW_ROOT if kind == "synthetic" else Path(config["dataset"]["root"]).expanduser()
    if split_dir is None:
        configured = config["dataset"].get("split_dir")
        split_dir = Path(configured) if configured else SYNTHETIC_SPLIT_DIR if kind == "synthetic" else REAL_SPLIT_DIR
    derived_root = DERIVED_ROOT if derived_root is None else derived_root
    for name, path in (("raw root", raw_root), ("derived root", derived_root), ("split folder", split_dir)):
        if not Path(path).is_dir():
            raise FileNotFoundError(f"{name} {path} is not a folder")
    return Path(raw_root), Path(derived_root), Path(split_dir)


def run_train(args: argparse.Namespace) -> int:
    import torch

    from vipocc.training.trainer import train

    config = config_from(args)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads: expected a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    raw_root, derived_root, split_dir = training_paths(config, args.raw_root, args.derived_root, args.split_dir)
    if args.max_steps is not None:
        config["training"]["max_steps"] = args.max_steps
    card = train(config, args.experiment, args.out, raw_root, derived_root, split_dir, work_dir=args.work,
                 device=args.device, stop_at_step=args.stop_at_step, progress=not args.no_progress)
    if card is not None:
        best = card["best"]
        log.info("%s: %d steps in %.1f s on %s; model %s (sha256 %s), best %s %s at step %s", card["experiment"],
                 card["steps"], card["wall_time_s"], card["device"], Path(args.out) / "model.pt",
                 card["model_sha256"][:12], best["metric"], best["value"], best["step"])
    return 0


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--experiment", required=True, help="a key of training.experiments (e.g. bts, vipocc)")
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. results/train/<experiment>")
    parser.add_argument("--work", type=Path, default=None, help="checkpoint folder (default: <out>/work)")
    parser.add_argument("--raw-root", type=Path, default=None, help="KITTI-360 root (default: from the config)")
    parser.add_argument("--derived-root", type=Path, default=None,
                        help=f"derived data root (default: {DERIVED_ROOT})")
    parser.add_argument("--split-dir", type=Path, default=None,
                        help="folder of <split>_files.txt (default: dataset.split_dir or the dataset's default)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                        help="overrides training.device")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--max-steps", type=int, default=None, help="overrides training.max_steps")
    parser.add_argument("--stop-at-step", type=int, default=None,
                        help="end this session after that step without final outputs (rerun to continue)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train one experiment (BTS, ViPOcc, ablations); resumes from checkpoints")
    add_train_arguments(parser)
    parser.set_defaults(func=run_train)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m vipocc.training.commands train ...``), e.g. under torchrun."""
    parser = argparse.ArgumentParser(prog="vipocc-train")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"vipocc train: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
