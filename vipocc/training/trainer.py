"""Training of BTS and ViPOcc on KITTI-360 (reference ``models/vipocc/trainer.py``; protocol.md 3, digest 3.7-3.9).

One step (:func:`training_step`):

1. frame roles ``kitti360-mono`` (loss views {0,3,4,7} / render views {1,2,5,6}, swapped with p 0.5) and the
   encoder flip (p 0.5) are drawn; poses are re-based to the key camera (in float64, then float32);
2. photometric rays: ``ray_batch_size / ps²`` random ps x ps patches per element on the loss views (``patch``),
   or SNOG anchors on the perspective loss views plus random patches on the fisheye ones (``snog``);
3. the network encodes view 0, renders the rays with colours sampled from the render views (image-based
   rendering), and, for ViPOcc, renders ``depth_ray_batch_size`` key-frame rays and predicts the aligned depth of
   frames t and t+1 (one batch of 2B images);
4. losses (:mod:`vipocc.models.losses`): L_ph (counted twice by default, as the reference), optional BTS
   edge-aware smoothness, L_rc between aligned and rendered z-depth, L_ta (warp t+1 into t with the GT relative
   pose); Adam step; StepLR step (per iteration).

Randomness: every random draw of a step comes from generators seeded by ``(seed, rank, step)``, the data order of
an epoch from ``(seed, epoch)`` (:class:`ResumableSampler`), a sample's own randomness from ``(seed, epoch, index)``
(the dataset), and the initial weights from ``seed``. Exact resume therefore needs only the step, the weights and
the optimizer / scheduler / scaler states, which the rolling checkpoints hold (plus the global RNG states, for
completeness). On CPU with ``deterministic`` and the same thread count, a run killed and restarted ends with the same
weights, bit for bit, as an uninterrupted run.

Validation every ``validate_every`` steps and after the last one, on ``validation_frames`` evenly spaced frames of
the val split (sharded over DDP ranks): depth metrics (:func:`vipocc.evaluation.metrics.depth_metrics`, metric
depth, clamp [1e-3, 80], GT != 0) of the depth branch's prediction (ViPOcc) or of the rendered z-depth (BTS); the
best step by ``selection_metric`` is kept.

Logs (work folder): ``losses.csv`` (step, epoch, each loss term averaged over ``log_every`` steps, lr, seconds per
step), ``validation.csv``, TensorBoard scalars in ``tensorboard/`` (``loss-train/*``, ``lr-train``,
``timing-train/secs_per_iter``, ``metrics-val/*``) and a tqdm bar. Multi-GPU: launch with ``torchrun`` (DDP; gloo
on CPU, nccl on GPU), ``find_unused_parameters`` only when the depth branch exists but no term trains it.
"""
from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from vipocc.io import write_text
from vipocc.models.density_field import RenderViews
from vipocc.models.frame_roles import kitti360_mono_roles, rebase_poses
from vipocc.models.losses import (
    DEFAULT_MIN_VALID_FRACTION,
    depth_reconstruction_loss,
    edge_aware_smoothness,
    photometric_loss,
    temporal_alignment_loss,
    total_loss,
)
from vipocc.models.network import NetworkConfig, NetworkInputs, NetworkOutputs, ViPOccNetwork
from vipocc.models.ray_sampler import DepthPatchSampler, PatchSampler, SnogSampler
from vipocc.models.warp import pixel_intrinsics
from vipocc.training import checkpoint as ckpt
from vipocc.training.experiments import (
    TrainingSettings,
    resume_hash,
    train_dataset_options,
    training_settings,
    validation_dataset_options,
)

__all__ = [
    "LOSS_COLUMNS",
    "ResumableSampler",
    "StepBatch",
    "StepGenerators",
    "Samplers",
    "DistributedContext",
    "network_config",
    "build_network",
    "step_generators",
    "prepare_batch",
    "build_inputs",
    "compute_losses",
    "training_step",
    "validate",
    "validation_subset",
    "Trainer",
    "train",
]

log = logging.getLogger("vipocc")

LOSS_COLUMNS = ("loss", "loss_rgb_coarse", "loss_rgb_fine", "loss_depth_recon", "loss_temp_align",
                "loss_edge_smooth", "loss_invalid_ratio")
_LOSS_HEADER = ("step", "epoch", *LOSS_COLUMNS, "lr", "seconds_per_step")
_VALIDATION_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
_VALIDATION_HEADER = ("step", *_VALIDATION_METRICS, "frames", "seconds")


# ------------------------------------------------------------------------------------------------ data order


class ResumableSampler(Sampler[int]):
    """Dataset indices of one epoch for one DDP rank, restartable at any batch.

    The epoch's order is ``numpy.random.default_rng([seed, epoch]).permutation(n)`` (``shuffle``) or ``0..n-1``;
    it is cut to whole global batches (``batch_size x world_size``, the tail is dropped as ``drop_last``) and global
    batch k gives rank r the items ``[k, r*batch_size : (r+1)*batch_size]``. ``set_position(epoch, batch)`` makes
    the next iteration start at that batch of the epoch, which is all a resumed run needs (torch's
    DistributedSampler cannot start mid-epoch).
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True) -> None:
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"batch_size={batch_size}, rank={rank}, world_size={world_size}: invalid")
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.rank, self.world_size, self.shuffle = int(rank), int(world_size), bool(shuffle)
        self.batches_per_epoch = self.n // (self.batch_size * self.world_size)
        self.epoch, self.start_batch = 0, 0

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """int64 [batches_per_epoch * batch_size]: this rank's indices of ``epoch`` in order."""
        order = (np.random.default_rng([self.seed, int(epoch)]).permutation(self.n) if self.shuffle
                 else np.arange(self.n))
        used = order[: self.batches_per_epoch * self.batch_size * self.world_size]
        return used.reshape(self.batches_per_epoch, self.world_size, self.batch_size)[:, self.rank].reshape(-1)

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(f"start_batch={start_batch}: the epoch has {self.batches_per_epoch} batches")
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices(self.epoch)[self.start_batch * self.batch_size:].tolist())

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size


# ------------------------------------------------------------------------------------------------ one step


@dataclass
class StepGenerators:
    """cpu: frame roles and flips (scalar draws); device: rays and sample jitter (drawn where they are used)."""

    cpu: torch.Generator
    device: torch.Generator


def step_generators(seed: int, rank: int, step: int, device: torch.device | str = "cpu") -> StepGenerators:
    """Generators of one step, seeded from ``(seed, rank, step)`` only (so a resumed run draws the same numbers)."""
    seeds = np.random.SeedSequence([int(seed), int(rank), int(step)]).generate_state(2, dtype=np.uint64)
    seeds = [int(s) & ((1 << 63) - 1) for s in seeds]
    device = torch.device(device)
    cpu = torch.Generator().manual_seed(seeds[0])
    dev = torch.Generator(device=device).manual_seed(seeds[1]) if device.type != "cpu" else \
        torch.Generator().manual_seed(seeds[1])
    return StepGenerators(cpu=cpu, device=dev)


@dataclass
class StepBatch:
    """A collated training batch on the device.

    images ``[B,V,3,H,W]`` in [-1,1] (V = 8 slots); K ``[B,V,3,3]`` normalised; poses ``[B,V,4,4]``
    camera-to-key-camera (re-based, m); w2c their inverses; pseudo_depth ``[B,F,1,H,W]`` (m) or None; anchors
    ``[B,P,S,A,2]`` SNOG (x, y) centres of the perspective slots 0-3 or None.
    """

    images: torch.Tensor
    K: torch.Tensor
    poses: torch.Tensor
    w2c: torch.Tensor
    pseudo_depth: torch.Tensor | None = None
    anchors: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.images.shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[-2]), int(self.images.shape[-1])


def prepare_batch(batch: Mapping[str, Any], device: torch.device | str) -> StepBatch:
    """Stack a :func:`vipocc.data.kitti360.collate` batch and re-base its poses to view 0.

    The dataset's camera-to-world poses are in KITTI-360 world coordinates (hundreds of metres); re-basing and
    inverting in float64 before the float32 cast keeps millimetre precision.
    """
    poses_world = torch.stack(list(batch["poses"]), dim=1).to(torch.float64)
    poses = rebase_poses(poses_world)
    w2c = torch.linalg.inv(poses)
    pseudo = batch.get("pseudo_depth")
    anchors = batch.get("samples")
    return StepBatch(
        images=torch.stack(list(batch["imgs"]), dim=1).to(device=device, dtype=torch.float32),
        K=torch.stack(list(batch["projs"]), dim=1).to(device=device, dtype=torch.float32),
        poses=poses.to(device=device, dtype=torch.float32),
        w2c=w2c.to(device=device, dtype=torch.float32),
        pseudo_depth=torch.stack(list(pseudo), dim=1).to(device) if isinstance(pseudo, list | tuple) and pseudo
        else None,
        anchors=anchors.to(device) if isinstance(anchors, torch.Tensor) else None,
    )


@dataclass
class Samplers:
    """The ray samplers of a run (built once from the settings)."""

    patch: PatchSampler
    depth: DepthPatchSampler
    snog: SnogSampler | None

    @classmethod
    def from_settings(cls, s: TrainingSettings) -> "Samplers":
        snog = None
        if s.experiment.sample_mode == "snog":
            snog = SnogSampler(s.patch_size, s.n_patches, s.experiment.snog_anchors_per_view, s.pixel_convention)
        return cls(
            patch=PatchSampler(s.patch_size, s.n_patches, s.shared_patches, s.pixel_convention),
            depth=DepthPatchSampler(s.patch_size, s.n_depth_patches, s.shared_patches, s.pixel_convention),
            snog=snog,
        )


def build_inputs(settings: TrainingSettings, batch: StepBatch, samplers: Samplers, generators: StepGenerators,
                 ) -> tuple[NetworkInputs, list[int], list[int]]:
    """Draw roles, flip and rays of one step: (network inputs, ids_loss, ids_render)."""
    exp = settings.experiment
    ids_loss, ids_render = kitti360_mono_roles(generators.cpu)
    flip = settings.flip_augmentation and bool(torch.rand((), generator=generators.cpu) < 0.5)
    images01 = batch.images * 0.5 + 0.5
    loss_args = (images01[:, ids_loss], batch.poses[:, ids_loss], batch.K[:, ids_loss])
    if samplers.snog is not None:
        if batch.anchors is None:
            raise ValueError(f"experiment {exp.name}: sample_mode snog needs SNOG anchors in the batch "
                             "(dataset option return_samples)")
        rays = samplers.snog.sample(*loss_args, ids_loss, batch.anchors, generators.device)
    else:
        rays = samplers.patch.sample(*loss_args, generators.device)
    views = RenderViews(images01[:, ids_render], batch.K[:, ids_render], batch.w2c[:, ids_render])
    weights = exp.loss_weights()
    depth_rays = None
    if "depth_recon" in weights:
        depth_rays = samplers.depth.sample(batch.poses[:, 0], batch.K[:, 0], batch.image_size, generators.device)
    depth_images = depth_priors = None
    if exp.trains_depth_branch:
        depth_images = torch.cat((batch.images[:, 0], batch.images[:, 1]), dim=0)  # frames t, then t+1
        if exp.needs_prior:
            if batch.pseudo_depth is None:
                raise ValueError(f"experiment {exp.name}: the depth branch needs the pseudo depth "
                                 "(dataset option return_pseudo_depth)")
            depth_priors = torch.cat((batch.pseudo_depth[:, 0], batch.pseudo_depth[:, 1]), dim=0)
    inputs = NetworkInputs(key_image=batch.images[:, 0], key_K=batch.K[:, 0], key_w2c=batch.w2c[:, 0], rays=rays,
                           render_views=views, flip=flip, depth_rays=depth_rays, depth_images=depth_images,
                           depth_priors=depth_priors, generator=generators.device)
    return inputs, ids_loss, ids_render


def _as_float(t: torch.Tensor | None) -> torch.Tensor | None:
    # Losses are computed in float32 even when the networks ran under autocast.
    return None if t is None else (t.float() if t.is_floating_point() else t)


def compute_losses(settings: TrainingSettings, batch: StepBatch, inputs: NetworkInputs,
                   outputs: NetworkOutputs) -> dict[str, torch.Tensor]:
    """Loss terms of one step -> :func:`vipocc.models.losses.total_loss` dict (``loss`` keeps the graph)."""
    exp = settings.experiment
    weights = exp.loss_weights()
    render, rays = outputs.render, inputs.rays
    photometric = photometric_loss(_as_float(render.rgb), rays.rgb_gt, _as_float(render.weights), render.invalid,
                                   settings.patch_size, exp.invalid_policy)
    terms: dict[str, torch.Tensor] = {"rgb": photometric.loss}
    if "edge_smooth" in weights:
        terms["edge_smooth"] = edge_aware_smoothness(rays.patches(rays.rgb_gt), rays.patches(_as_float(render.depth)),
                                                     rays.patches(photometric.ray_invalid))
    if "depth_recon" in weights or "temp_align" in weights:
        depth_t, depth_t1 = _as_float(outputs.pred_depth).split(batch.batch_size, dim=0)
        if "depth_recon" in weights:
            depth_rays = inputs.depth_rays
            rendered_z = _as_float(outputs.depth_render.depth) * depth_rays.z_factor
            predicted_z = depth_rays.gather(depth_t)[..., 0]
            terms["depth_recon"] = depth_reconstruction_loss(predicted_z, rendered_z, exp.depth_recon_version)
        if "temp_align" in weights:
            T_t_to_t1 = torch.linalg.solve(batch.poses[:, 1], batch.poses[:, 0])  # inv(P_t+1) @ P_t
            K_pixel = pixel_intrinsics(batch.K[:, 0], batch.image_size)
            fraction = exp.min_valid_fraction or DEFAULT_MIN_VALID_FRACTION
            terms["temp_align"] = temporal_alignment_loss(batch.images[:, 0], batch.images[:, 1], depth_t, depth_t1,
                                                          T_t_to_t1, K_pixel, fraction).loss
    return total_loss(terms, weights, exp.count_photometric_twice,
                      extras={"invalid_ratio": photometric.invalid_ratio})


def _autocast(device: torch.device, amp: str | None) -> contextlib.AbstractContextManager:
    if amp is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def training_step(model: torch.nn.Module, batch: StepBatch, settings: TrainingSettings, samplers: Samplers,
                  generators: StepGenerators, amp: str | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Forward pass and losses of one step (no backward): (total loss with graph, {log key: float}).

    ``model`` is a :class:`ViPOccNetwork` or its DDP wrapper (called once, so DDP sees the whole step).
    """
    inputs, _, _ = build_inputs(settings, batch, samplers, generators)
    with _autocast(batch.images.device, amp):
        outputs = model(inputs)
    losses = compute_losses(settings, batch, inputs, outputs)
    values = {key: float(value.detach()) for key, value in losses.items()}
    return losses["loss"], values


# ------------------------------------------------------------------------------------------------ validation


def validation_subset(n: int, frames: int | None) -> np.ndarray:
    """Indices of ``frames`` evenly spaced val frames (first and last included), or all when None / >= n."""
    if n < 1:
        raise ValueError("validation split is empty")
    if frames is None or frames >= n:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, int(frames))).astype(np.int64))


@torch.no_grad()
def validate(model: ViPOccNetwork, loader: DataLoader, settings: TrainingSettings, device: torch.device,
             amp: str | None = None) -> list[dict[str, float]]:
    """Per-frame depth metrics (one dict per validated frame) of the predicted (depth branch) or rendered
    (density field) z-depth against the LiDAR GT of view 0; metric depth, no scaling."""
    from vipocc.evaluation.metrics import depth_metrics

    was_training = model.training
    model.eval()
    per_frame: list[dict[str, float]] = []
    try:
        for batch in loader:
            image = batch["imgs"][0].to(device=device, dtype=torch.float32)
            K = batch["projs"][0].to(device=device, dtype=torch.float32)
            gt = batch["depths"][0]
            with _autocast(device, amp):
                if settings.validation_depth == "predicted":
                    prior = batch["pseudo_depth"][0].to(device) if settings.experiment.needs_prior else None
                    pred = model.predict_depth(image, prior)
                else:
                    pred = model.render_depth_map(image, K, pixel_convention=settings.pixel_convention)
            pred = pred.float().cpu()
            per_frame.extend(depth_metrics(gt[b, 0], pred[b, 0]) for b in range(pred.shape[0]))
    finally:
        model.train(was_training)
    return per_frame


# ------------------------------------------------------------------------------------------------ logs


@dataclass
class _Window:
    """Running sums of the current log window (restored on resume, so windows do not depend on kills)."""

    steps: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, values: Mapping[str, float], seconds: float) -> None:
        self.steps += 1
        self.seconds += seconds
        for key in LOSS_COLUMNS:
            if key in values:
                self.sums[key] = self.sums.get(key, 0.0) + values[key]

    def state(self) -> dict[str, Any]:
        return {"steps": self.steps, "sums": dict(self.sums), "seconds": self.seconds}


class MetricsLog:
    """losses.csv, validation.csv and TensorBoard scalars in the work folder (rank 0 only).

    On resume from step s, rows and events after s (written before a kill) are dropped first.
    """

    def __init__(self, work_dir: Path, resume_step: int, log_every: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.log_every = int(log_every)
        self.losses_path = work_dir / "losses.csv"
        self.validation_path = work_dir / "validation.csv"
        self.window = _Window()
        self.writer = None
        if not enabled:
            return
        _truncate_csv(self.losses_path, _LOSS_HEADER, resume_step)
        _truncate_csv(self.validation_path, _VALIDATION_HEADER, resume_step)
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(work_dir / "tensorboard"), purge_step=resume_step + 1)

    def load_window(self, state: Mapping[str, Any] | None) -> None:
        if state:
            self.window = _Window(int(state["steps"]), dict(state["sums"]), float(state["seconds"]))

    def add_step(self, step: int, epoch: int, values: Mapping[str, float], lr: float, seconds: float,
                 force: bool = False) -> dict[str, float] | None:
        """Accumulate one step; every ``log_every`` steps (or when ``force``) write the window means as a row."""
        self.window.add(values, seconds)
        if not (force or step % self.log_every == 0):
            return None
        window, self.window = self.window, _Window()
        means = {key: total / window.steps for key, total in window.sums.items()}
        row = {"step": step, "epoch": epoch, **means, "lr": lr, "seconds_per_step": window.seconds / window.steps}
        if self.enabled:
            _append_csv(self.losses_path, _LOSS_HEADER, row)
            for key, value in means.items():
                self.writer.add_scalar(f"loss-train/{key}", value, step)
            self.writer.add_scalar("lr-train", lr, step)
            self.writer.add_scalar("timing-train/secs_per_iter", row["seconds_per_step"], step)
        return row

    def add_validation(self, step: int, metrics: Mapping[str, float], frames: int, seconds: float) -> None:
        if not self.enabled:
            return
        _append_csv(self.validation_path, _VALIDATION_HEADER,
                    {"step": step, **metrics, "frames": frames, "seconds": seconds})
        for key in _VALIDATION_METRICS:
            if key in metrics:
                self.writer.add_scalar(f"metrics-val/{key}", metrics[key], step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _append_csv(path: Path, header: Sequence[str], row: Mapping[str, Any]) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(header), restval="")
        if new:
            writer.writeheader()
        writer.writerow({k: row[k] for k in header if k in row})
        handle.flush()


def _truncate_csv(path: Path, header: Sequence[str], last_step: int) -> None:
    """Keep the header and the rows with step <= last_step (atomically)."""
    if not path.is_file():
        return
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("step", "").isdigit() and int(r["step"]) <= last_step]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), restval="")
    writer.writeheader()
    writer.writerows({k: r.get(k, "") for k in header} for r in rows)
    write_text(path, buffer.getvalue())


# ------------------------------------------------------------------------------------------------ set-up


@dataclass
class DistributedContext:
    """rank / world size of this process; ``active`` when launched by torchrun with more than one process."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> "DistributedContext":
        """Read torchrun's RANK / LOCAL_RANK / WORLD_SIZE (a plain process is rank 0 of 1)."""
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                   int(os.environ.get("WORLD_SIZE", 1)))


def _resolve_device(requested: str, ctx: DistributedContext) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("training.device: cuda was requested but no GPU is visible")
        return torch.device("cuda", ctx.local_rank if ctx.active else torch.cuda.current_device())
    return torch.device("cpu")


def network_config(settings: TrainingSettings) -> NetworkConfig:
    exp = settings.experiment
    return NetworkConfig(encoder_depth=settings.encoder_depth, use_depth_branch=exp.use_depth_branch,
                         rid_ablation=exp.rid_ablation, depth_encoder_depth=settings.depth_encoder_depth,
                         encoder_weights=settings.encoder_weights, depth_encoder_weights=settings.depth_encoder_weights,
                         z_near=settings.z_near, z_far=settings.z_far, n_samples=settings.n_samples)


def build_network(settings: TrainingSettings) -> ViPOccNetwork:
    """The network with initial weights that depend only on ``settings.seed`` (the global torch RNG, which module
    initialisers use, is forked, seeded and restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        return ViPOccNetwork(network_config(settings))


def _count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------------ trainer


class Trainer:
    """One training run of one experiment (see the module docstring); :meth:`run` trains and writes the outputs.

    Args:
        config: validated workflow config (``training``, ``preprocess``, ``datasets``, ``dataset``).
        experiment: a key of ``training.experiments``.
        out_dir: results/train/<experiment> (gets model.pt, model.json, losses.csv, validation.csv).
        raw_root, derived_root, split_dir: KITTI-360 raw root, derived root, folder of <split>_files.txt.
        work_dir: checkpoints and live logs (default ``out_dir/work``).
        device: overrides ``training.device``.
        stop_at_step: end this session after that step without final outputs (a planned "kill"; the next run
            resumes from the checkpoints).
        progress: show a tqdm bar.
    """

    def __init__(self, config: Mapping[str, Any], experiment: str, out_dir: str | os.PathLike,
                 raw_root: str | os.PathLike, derived_root: str | os.PathLike, split_dir: str | os.PathLike,
                 work_dir: str | os.PathLike | None = None, device: str | None = None,
                 stop_at_step: int | None = None, progress: bool = True) -> None:
        self.config = config
        self.settings = training_settings(config, experiment)
        self.out_dir = Path(out_dir)
        self.work_dir = Path(work_dir) if work_dir is not None else self.out_dir / "work"
        self.paths = (Path(raw_root), Path(derived_root), Path(split_dir))
        self.ctx = DistributedContext.from_environment()
        self.device = _resolve_device(device or self.settings.device, self.ctx)
        self.amp = self.settings.amp if self.device.type == "cuda" else None
        if self.settings.amp is not None and self.amp is None:
            log.warning("training.amp=%s ignored: mixed precision is for GPUs, this run is on %s",
                        self.settings.amp, self.device)
        self.stop_at_step = stop_at_step
        self.progress = progress

    # ---------------------------------------------------------------------------------------------- data
    def _datasets(self):
        from vipocc.data.kitti360 import Kitti360Dataset

        raw, derived, splits = self.paths
        s = self.settings
        common = dict(image_size=s.image_size, fisheye_rotation=s.fisheye_rotation, seed=s.seed,
                      pose_dtype=torch.float64)
        train = Kitti360Dataset(raw, derived, splits, train_dataset_options(self.config, s), **common)
        validation = None
        if s.validate_every is not None:
            validation = Kitti360Dataset(raw, derived, splits, validation_dataset_options(self.config, s), **common)
        return train, validation

    def _train_loader(self, dataset, sampler: ResumableSampler) -> DataLoader:
        from vipocc.data.kitti360 import collate

        return DataLoader(dataset, batch_size=self.settings.batch_size, sampler=sampler, drop_last=True,
                          collate_fn=collate, num_workers=self.settings.num_workers,
                          generator=torch.Generator().manual_seed(self.settings.seed))

    def _validation_loader(self, dataset) -> tuple[DataLoader, int]:
        """Loader of this rank's shard of the validation subset, and the subset's size."""
        from torch.utils.data import Subset

        from vipocc.data.kitti360 import collate

        indices = validation_subset(len(dataset), self.settings.validation_frames)
        shard = indices[self.ctx.rank::self.ctx.world_size].tolist()
        return DataLoader(Subset(dataset, shard), batch_size=self.settings.batch_size, shuffle=False,
                          collate_fn=collate, num_workers=self.settings.num_workers), len(indices)

    # ---------------------------------------------------------------------------------------------- run
    def run(self) -> dict[str, Any] | None:
        """Train to the step budget and write the outputs (rank 0). Returns the model card, or None when stopped
        early (``stop_at_step``) or on ranks > 0."""
        deterministic_before = torch.are_deterministic_algorithms_enabled()
        fill_before = torch.utils.deterministic.fill_uninitialized_memory
        started_group = False
        if self.ctx.active and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")
            started_group = True
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        try:
            if self.device.type == "cpu" and self.settings.deterministic:
                torch.use_deterministic_algorithms(True)
                # Deterministic mode also fills every new tensor with NaN to expose reads of uninitialised memory;
                # that debugging aid quadruples the step time and has nothing to do with reproducibility.
                torch.utils.deterministic.fill_uninitialized_memory = False
            run = self._prepare()
            self._train(run)
            return self._finish(run)
        finally:
            torch.use_deterministic_algorithms(deterministic_before)
            torch.utils.deterministic.fill_uninitialized_memory = fill_before
            if started_group:
                dist.destroy_process_group()

    def _prepare(self) -> "_Run":
        """Data, network, optimizer, scheduler and scaler, restored from the newest matching checkpoint."""
        s, ctx = self.settings, self.ctx
        self.work_dir.mkdir(parents=True, exist_ok=True)
        train_set, val_set = self._datasets()
        sampler = ResumableSampler(len(train_set), s.batch_size, s.seed, ctx.rank, ctx.world_size)
        if sampler.batches_per_epoch == 0:
            raise ValueError(f"{train_set.split_path}: {len(train_set)} samples give no full batch of "
                             f"{s.batch_size} x {ctx.world_size} processes")
        val_loader, val_frames = self._validation_loader(val_set) if val_set is not None else (None, 0)
        model = build_network(s).to(self.device)
        # fused: one kernel for all parameters (4x faster than the per-tensor loop on CPU; same update rule)
        optimizer = torch.optim.Adam(model.parameters(), lr=s.lr, fused=True)
        run = _Run(
            train_set=train_set, sampler=sampler, loader=self._train_loader(train_set, sampler),
            val_loader=val_loader, val_frames=val_frames,
            total_steps=s.max_steps if s.max_steps is not None else s.epochs * sampler.batches_per_epoch,
            model=model, optimizer=optimizer,
            scheduler=torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.lr_step, gamma=s.lr_gamma),
            scaler=torch.amp.GradScaler("cuda", enabled=self.amp == "fp16"),
            run_hash=resume_hash(self.config, s, ctx.world_size),
            best={"metric": s.selection_metric, "value": None, "step": None},
        )
        state = self._matching_checkpoint(run.run_hash)
        if state is not None:
            self._restore(run, state)
        run.train_model = model
        if ctx.active:
            from torch.nn.parallel import DistributedDataParallel

            # A depth branch that no loss term uses gets no gradient; DDP must be told to expect that.
            unused = s.experiment.use_depth_branch and not s.experiment.trains_depth_branch
            run.train_model = DistributedDataParallel(model, device_ids=None, find_unused_parameters=unused)
        model.train()
        run.metrics_log = MetricsLog(self.work_dir, run.step, s.log_every, enabled=ctx.is_main)
        run.metrics_log.load_window(state["log_window"] if state is not None else None)
        return run

    def _matching_checkpoint(self, run_hash: str) -> dict | None:
        """The newest checkpoint of this run; checkpoints of other settings are deleted (they cannot be resumed)."""
        # On the CPU: RNG states must stay CPU tensors; the model and optimizer move their own tensors to the device.
        state = ckpt.load_latest_checkpoint(self.work_dir, map_location="cpu")
        if state is None or state.get("resume_hash") == run_hash:
            return state
        log.warning("checkpoints in %s belong to different settings; deleting them and starting from step 0",
                    self.work_dir)
        if self.ctx.is_main:
            for _, path in ckpt.list_checkpoints(self.work_dir):
                path.unlink(missing_ok=True)
            ckpt.prune_best_models(self.work_dir, [])
            for name in ("losses.csv", "validation.csv"):
                (self.work_dir / name).unlink(missing_ok=True)
        return None

    def _restore(self, run: "_Run", state: Mapping[str, Any]) -> None:
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        run.scaler.load_state_dict(state["scaler"])
        ckpt.restore_rng_state(state["rng"])
        run.step = run.resumed_from = int(state["step"])
        run.wall_before = float(state["wall_seconds"])
        run.sessions = int(state["sessions"]) + 1
        run.best = dict(state["best"])
        if run.best["step"] is not None and not ckpt.best_model_path(self.work_dir, run.best["step"]).is_file():
            log.warning("best model of step %s is missing from %s; best-model tracking restarts",
                        run.best["step"], self.work_dir)
            run.best = {"metric": self.settings.selection_metric, "value": None, "step": None}
        log.info("resuming %s from step %d (%s)", self.settings.experiment.name, run.step, self.work_dir)

    def _train(self, run: "_Run") -> None:
        """Steps until the budget (or ``stop_at_step``); validation and checkpoints on their schedules."""
        s = self.settings
        end = run.total_steps if self.stop_at_step is None else min(run.total_steps, self.stop_at_step)
        samplers = Samplers.from_settings(s)
        bar = self._progress_bar(run)
        try:
            while run.step < end:
                epoch, position = divmod(run.step, run.sampler.batches_per_epoch)
                run.sampler.set_position(epoch, position)
                run.train_set.set_epoch(epoch)
                for raw_batch in run.loader:
                    tic = time.perf_counter()
                    lr = run.optimizer.param_groups[0]["lr"]  # the rate this step uses
                    values = self._optimise(run, raw_batch, samplers)
                    run.step += 1
                    row = run.metrics_log.add_step(run.step, epoch, values, lr, time.perf_counter() - tic,
                                                   force=run.step == run.total_steps)
                    run.last_row = row or run.last_row
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{values['loss']:.4f}", refresh=False)
                    self._after_step(run, epoch)
                    if run.step >= end:
                        break
        finally:
            if bar is not None:
                bar.close()
            run.metrics_log.close()

    def _progress_bar(self, run: "_Run"):
        if not (self.progress and self.ctx.is_main):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=run.total_steps, initial=run.step, desc=f"train {self.settings.experiment.name}",
                    unit="step", dynamic_ncols=True, mininterval=1.0 if os.isatty(2) else 30.0)

    def _optimise(self, run: "_Run", raw_batch: Mapping[str, Any], samplers: Samplers) -> dict[str, float]:
        """One optimisation step; returns the logged loss values."""
        batch = prepare_batch(raw_batch, self.device)
        generators = step_generators(self.settings.seed, self.ctx.rank, run.step, self.device)
        loss, values = training_step(run.train_model, batch, self.settings, samplers, generators, self.amp)
        if not math.isfinite(values["loss"]) and self.amp != "fp16":
            raise FloatingPointError(f"step {run.step + 1}: the loss is not finite ({values})")
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        return values

    def _after_step(self, run: "_Run", epoch: int) -> None:
        s, last = self.settings, run.step == run.total_steps
        if run.val_loader is not None and (run.step % s.validate_every == 0 or last):
            self._validation(run)
        if run.step % s.checkpoint_every == 0 or last:
            self._checkpoint(run, epoch)

    def _validation(self, run: "_Run") -> None:
        from vipocc.evaluation.metrics import mean_metrics

        tic = time.perf_counter()
        per_frame = validate(run.model, run.val_loader, self.settings, self.device, self.amp)
        if self.ctx.active:
            gathered: list[list[dict]] = [None] * self.ctx.world_size  # type: ignore[list-item]
            dist.all_gather_object(gathered, per_frame)
            per_frame = [m for part in gathered for m in part]
        metrics = mean_metrics(per_frame)
        seconds = time.perf_counter() - tic
        run.metrics_log.add_validation(run.step, metrics, run.val_frames, seconds)
        log.info("step %d validation (%d frames, %.1f s): %s", run.step, run.val_frames, seconds,
                 ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        value, best = metrics.get(self.settings.selection_metric, math.nan), run.best["value"]
        better = math.isfinite(value) and (
            best is None or (value > best if self.settings.higher_is_better else value < best))
        if not better:
            return
        if self.ctx.is_main:
            ckpt.save_weights(ckpt.best_model_path(self.work_dir, run.step), run.model.state_dict())
        run.best = {"metric": self.settings.selection_metric, "value": value, "step": run.step, "metrics": metrics}

    def _checkpoint(self, run: "_Run", epoch: int) -> None:
        if not self.ctx.is_main:
            return
        state = {
            "step": run.step, "epoch": epoch, "resume_hash": run.run_hash,
            "experiment": self.settings.experiment.name, "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(), "rng": ckpt.capture_rng_state(), "best": dict(run.best),
            "log_window": run.metrics_log.window.state(), "wall_seconds": run.wall_seconds,
            "sessions": run.sessions, "world_size": self.ctx.world_size,
        }
        ckpt.save_checkpoint(self.work_dir, run.step, state, self.settings.keep_checkpoints)
        # Best-model files still referenced by a kept checkpoint survive (a resume may return to that state).
        referenced = [run.best.get("step")]
        for _, path in ckpt.list_checkpoints(self.work_dir):
            kept = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # lazy: reads "best" only
            referenced.append(kept["best"].get("step"))
        ckpt.prune_best_models(self.work_dir, referenced)

    def _replicas_in_sync(self, model: torch.nn.Module) -> bool:
        """All DDP replicas hold identical parameters (per-tensor float64 sums compared exactly). Buffers are left
        out: BatchNorm statistics are updated by each rank's own last forward and DDP re-broadcasts rank 0's at the
        next one, so they legitimately differ at the end (rank 0's are saved)."""
        sums = torch.stack([p.detach().double().sum() for p in model.parameters()]).to(self.device)
        gathered = [torch.empty_like(sums) for _ in range(self.ctx.world_size)]
        dist.all_gather(gathered, sums)
        return all(torch.equal(gathered[0], g) for g in gathered[1:])

    def _finish(self, run: "_Run") -> dict[str, Any] | None:
        """Write model.pt, the logs and model.json (rank 0) once the budget is reached."""
        if run.step < run.total_steps:
            log.info("stopped after step %d of %d (resume by running again)", run.step, run.total_steps)
            return None
        in_sync = self._replicas_in_sync(run.model) if self.ctx.active else None
        if not self.ctx.is_main:
            return None
        use_best = self.settings.final_weights == "best" and run.best.get("step") is not None
        weights = (ckpt.load_weights(ckpt.best_model_path(self.work_dir, run.best["step"])) if use_best
                   else run.model.state_dict())
        self.out_dir.mkdir(parents=True, exist_ok=True)
        model_path = ckpt.save_weights(self.out_dir / "model.pt", weights)
        for name in ("losses.csv", "validation.csv"):
            if (self.work_dir / name).is_file():
                write_text(self.out_dir / name, (self.work_dir / name).read_text())
        card = self._card(run, "best" if use_best else "last", in_sync)
        return ckpt.write_model_card(self.out_dir / "model.json", model_path, card)

    def _card(self, run: "_Run", weights: str, in_sync: bool | None) -> dict[str, Any]:
        from vipocc.provenance import provenance

        s = self.settings
        return {
            "experiment": s.experiment.name,
            "description": s.experiment.description,
            "settings": s.as_dict(),
            "config": self.config,
            "network": {"class": "vipocc.models.network.ViPOccNetwork",
                        "config": {k: (str(v) if isinstance(v, Path) else v)
                                   for k, v in network_config(s).__dict__.items()},
                        "parameters": _count_parameters(run.model)},
            "steps": run.total_steps,
            "steps_per_epoch": run.sampler.batches_per_epoch,
            "epochs": run.total_steps / run.sampler.batches_per_epoch,
            "train_samples": len(run.train_set),
            "validation_frames": run.val_frames,
            "weights": weights,
            "best": run.best,
            "final_losses": run.last_row,
            "wall_time_s": round(run.wall_seconds, 3),
            "sessions": run.sessions,
            "resumed_from_step": run.resumed_from if run.sessions > 1 else None,
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
            "amp": self.amp,
            "torch_threads": torch.get_num_threads(),
            "deterministic": self.device.type == "cpu" and s.deterministic,
            "distributed": {"world_size": self.ctx.world_size, "replicas_in_sync": in_sync},
            "work_dir": str(self.work_dir),
            "provenance": provenance(run.run_hash),
        }


@dataclass
class _Run:
    """Mutable state of one training session (see :class:`Trainer`)."""

    train_set: Any
    sampler: ResumableSampler
    loader: DataLoader
    val_loader: DataLoader | None
    val_frames: int
    total_steps: int
    model: ViPOccNetwork
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    run_hash: str
    best: dict[str, Any]
    train_model: torch.nn.Module | None = None
    metrics_log: MetricsLog | None = None
    step: int = 0
    resumed_from: int = 0
    sessions: int = 1
    wall_before: float = 0.0
    last_row: dict[str, float] | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def wall_seconds(self) -> float:
        """Training wall time of the steps that led here: earlier sessions (up to their checkpoint) + this one."""
        return self.wall_before + time.perf_counter() - self.started


def train(config: Mapping[str, Any], experiment: str, out_dir: str | os.PathLike, raw_root: str | os.PathLike,
          derived_root: str | os.PathLike, split_dir: str | os.PathLike, **kwargs) -> dict[str, Any] | None:
    """Train ``experiment`` (see :class:`Trainer` for the arguments); returns the model card or None."""
    return Trainer(config, experiment, out_dir, raw_root, derived_root, split_dir, **kwargs).run()
