"""Named training experiments: the ``training`` config block resolved into the settings of one run.

``training.experiments`` maps a name (the ``{experiment}`` wildcard of ``results/train/{experiment}/model.pt``) to a
block of model flags and loss weights; every other ``training`` key is shared by all experiments. The built-in
blocks are ``bts`` (density field only, photometric loss + edge-aware smoothness 0.001), ``vipocc`` (depth branch,
L_ph + 0.005 L_rc + 0.01 L_ta) and the ablations ``vipocc_no_ta``, ``vipocc_no_rc``, ``vipocc_res_depth``,
``vipocc_depth`` and ``vipocc_snog`` (schemas/config.schema.yaml documents every key).

:func:`training_settings` turns (validated config, name) into a frozen :class:`TrainingSettings`; inconsistent
settings (a depth term without a depth branch, rays that are not whole patches, ...) raise ValueError naming the
experiment and the key. :func:`train_dataset_options` / :func:`validation_dataset_options` derive the dataset
options of a run from ``datasets.train`` / ``datasets.validation``: the ``return_*`` flags are set to what the
experiment needs (pseudo depth only with a prior-based depth branch, anchors only for SNOG, no 3D boxes), so BTS does
not wait for VFM priors and validation does not load fisheye views.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vipocc.config import config_hash

__all__ = [
    "Experiment",
    "TrainingSettings",
    "RUNTIME_KEYS",
    "HIGHER_IS_BETTER",
    "experiment_names",
    "default_experiments",
    "resolve_experiment",
    "training_settings",
    "train_dataset_options",
    "validation_dataset_options",
    "resume_hash",
]

# Keys that change neither the weights nor the data order, so changing them keeps the checkpoints usable.
# max_steps/epochs only set where the run stops: raising them continues training. validate_every only changes how
# often the (unchanged) validation runs; validation_frames / selection_metric change what "best" means and count.
RUNTIME_KEYS = ("num_workers", "checkpoint_every", "keep_checkpoints", "max_steps", "epochs", "log_every",
                "validate_every", "default_experiments", "experiments")
HIGHER_IS_BETTER = ("a1", "a2", "a3")


@dataclass(frozen=True)
class Experiment:
    """One ``training.experiments.<name>`` block (see the schema for the meaning of each field)."""

    name: str
    description: str
    use_depth_branch: bool
    rid_ablation: str
    lambda_photometric: float
    count_photometric_twice: bool
    lambda_depth_recon: float
    depth_recon_version: int
    lambda_temporal_alignment: float
    lambda_edge_smoothness: float
    sample_mode: str
    snog_anchors_per_view: int
    min_valid_fraction: tuple[float, float] | None
    invalid_policy: str
    batch_size: int | None

    @property
    def needs_prior(self) -> bool:
        """The depth branch reads the VFM pseudo depth (rid, res_depth)."""
        return self.use_depth_branch and self.rid_ablation != "depth"

    @property
    def trains_depth_branch(self) -> bool:
        """Some loss term runs the depth branch (otherwise it gets no gradient and is not run in training)."""
        return self.use_depth_branch and (self.lambda_depth_recon > 0 or self.lambda_temporal_alignment > 0)

    def loss_weights(self) -> dict[str, float]:
        """Weights keyed by the term names of :func:`vipocc.models.losses.total_loss`; zero-weight terms are
        left out (they are not computed)."""
        weights = {
            "rgb": self.lambda_photometric,
            "depth_recon": self.lambda_depth_recon,
            "temp_align": self.lambda_temporal_alignment,
            "edge_smooth": self.lambda_edge_smoothness,
        }
        return {name: float(w) for name, w in weights.items() if w > 0 or name == "rgb"}


@dataclass(frozen=True)
class TrainingSettings:
    """Everything one training run needs: the shared ``training`` keys, the experiment, the image geometry.

    ``batch_size`` is the experiment's override when set; ``validation_depth`` is resolved (``predicted`` or
    ``rendered``); ``image_size`` (H, W) px and ``fisheye_rotation`` (yaw, pitch) degrees come from ``preprocess``.
    """

    experiment: Experiment
    seed: int
    batch_size: int
    lr: float
    lr_step: int
    lr_gamma: float
    epochs: int
    max_steps: int | None
    validate_every: int | None
    validation_frames: int | None
    selection_metric: str
    validation_depth: str
    final_weights: str
    checkpoint_every: int
    keep_checkpoints: int
    log_every: int
    num_workers: int
    device: str
    amp: str | None
    deterministic: bool
    encoder_depth: int
    depth_encoder_depth: int
    encoder_weights: str | None
    depth_encoder_weights: str | None
    ray_batch_size: int
    depth_ray_batch_size: int
    patch_size: int
    n_samples: int
    z_near: float
    z_far: float
    flip_augmentation: bool
    shared_patches: bool
    pixel_convention: str
    image_size: tuple[int, int]
    fisheye_rotation: tuple[float, float]

    @property
    def n_patches(self) -> int:
        return self.ray_batch_size // self.patch_size**2

    @property
    def n_depth_patches(self) -> int:
        return self.depth_ray_batch_size // self.patch_size**2

    @property
    def higher_is_better(self) -> bool:
        return self.selection_metric in HIGHER_IS_BETTER

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the experiment nested under ``experiment``)."""
        return dataclasses.asdict(self)


def _training_block(config: Mapping[str, Any]) -> Mapping[str, Any]:
    if "training" not in config:
        raise ValueError("config: no training block (validate the config with vipocc.config first)")
    return config["training"]


def experiment_names(config: Mapping[str, Any]) -> list[str]:
    """Names of the configured experiments, sorted."""
    return sorted(_training_block(config)["experiments"])


def default_experiments(config: Mapping[str, Any]) -> list[str]:
    """``training.default_experiments`` (the default target), each checked to be configured."""
    names = list(_training_block(config)["default_experiments"])
    unknown = [n for n in names if n not in _training_block(config)["experiments"]]
    if unknown:
        raise ValueError(f"training.default_experiments: {unknown} are not in training.experiments "
                         f"({experiment_names(config)})")
    return names


def resolve_experiment(config: Mapping[str, Any], name: str) -> Experiment:
    """The experiment block ``name`` as an :class:`Experiment`; ValueError for an unknown name or a block whose
    settings contradict each other."""
    blocks = _training_block(config)["experiments"]
    if name not in blocks:
        raise ValueError(f"experiment {name!r} is not configured; training.experiments has {sorted(blocks)}")
    block = dict(blocks[name])
    fraction = block.get("min_valid_fraction")
    block["min_valid_fraction"] = None if fraction is None else (float(fraction[0]), float(fraction[1]))
    fields = {f.name for f in dataclasses.fields(Experiment)} - {"name"}
    unknown = sorted(set(block) - fields)
    missing = sorted(fields - set(block))
    if unknown or missing:
        raise ValueError(f"training.experiments.{name}: unknown keys {unknown}, missing keys {missing}")
    experiment = Experiment(name=name, **block)
    _check_experiment(experiment)
    return experiment


def _check_experiment(exp: Experiment) -> None:
    where = f"training.experiments.{exp.name}"
    if not exp.use_depth_branch:
        for key in ("lambda_depth_recon", "lambda_temporal_alignment"):
            if getattr(exp, key) > 0:
                raise ValueError(f"{where}.{key} = {getattr(exp, key)} needs use_depth_branch: true (the term "
                                 "compares the depth branch's prediction); set it to 0 for a BTS-style experiment")
    if exp.lambda_photometric <= 0:
        raise ValueError(f"{where}.lambda_photometric must be > 0: the photometric loss is what trains the field")


def training_settings(config: Mapping[str, Any], name: str) -> TrainingSettings:
    """Settings of experiment ``name`` from a validated config (``training`` and ``preprocess`` blocks)."""
    block = _training_block(config)
    experiment = resolve_experiment(config, name)
    shared = {k: v for k, v in block.items() if k not in ("experiments", "default_experiments")}
    validation_depth = shared.pop("validation_depth")
    if validation_depth == "auto":
        validation_depth = "predicted" if experiment.use_depth_branch else "rendered"
    if validation_depth == "predicted" and not experiment.use_depth_branch:
        raise ValueError(f"training.validation_depth: predicted needs a depth branch, experiment {name!r} has none")
    if experiment.batch_size is not None:
        shared["batch_size"] = experiment.batch_size
    preprocess = config["preprocess"]
    settings = TrainingSettings(
        experiment=experiment,
        validation_depth=validation_depth,
        image_size=(int(preprocess["image_size"][0]), int(preprocess["image_size"][1])),
        fisheye_rotation=(float(preprocess["fisheye_rotation"][0]), float(preprocess["fisheye_rotation"][1])),
        **shared,
    )
    _check_settings(settings)
    return settings


def _check_settings(s: TrainingSettings) -> None:
    area = s.patch_size**2
    for key in ("ray_batch_size", "depth_ray_batch_size"):
        if getattr(s, key) % area:
            raise ValueError(f"training.{key} = {getattr(s, key)} is not a whole number of "
                             f"{s.patch_size}x{s.patch_size} patches")
    height, width = s.image_size
    if min(height, width) <= 32 or min(height, width) < s.patch_size:
        raise ValueError(f"preprocess.image_size {s.image_size}: the encoder needs more than 32 px and a "
                         f"{s.patch_size}x{s.patch_size} patch must fit")
    if not 0 < s.z_near < s.z_far:
        raise ValueError(f"training.z_near {s.z_near} / z_far {s.z_far}: need 0 < z_near < z_far")
    exp = s.experiment
    if exp.sample_mode == "snog" and 2 * exp.snog_anchors_per_view >= s.n_patches:
        raise ValueError(f"training.experiments.{exp.name}.snog_anchors_per_view = {exp.snog_anchors_per_view}: "
                         f"two perspective loss views need fewer than the {s.n_patches} patches of ray_batch_size, "
                         "leaving some for the fisheye loss views")


def train_dataset_options(config: Mapping[str, Any], settings: TrainingSettings) -> dict[str, Any]:
    """``datasets.train`` with the loads the experiment needs: stereo and fisheye views and two frames (the
    kitti360-mono roles use all 8 slots), pseudo depth iff the depth branch uses a prior, SNOG anchors iff
    sample_mode is snog, no GT depth, voxels or 3D boxes (training never reads them)."""
    options = dict(config["datasets"]["train"])
    options.update(return_stereo=True, return_fisheye=True, frame_count=2, return_gt_depth=False,
                   return_pseudo_depth=settings.experiment.needs_prior and settings.experiment.trains_depth_branch,
                   return_samples=settings.experiment.sample_mode == "snog", return_3d_bboxes=False,
                   return_voxel=False, return_segmentation=False)
    return options


def validation_dataset_options(config: Mapping[str, Any], settings: TrainingSettings) -> dict[str, Any]:
    """``datasets.validation`` reduced to what validation reads: the key view of frame t, its LiDAR GT depth and,
    for predicted depth with a prior, its pseudo depth (the reference also loads fisheye views it never uses)."""
    options = dict(config["datasets"]["validation"])
    options.update(return_stereo=False, return_fisheye=False, frame_count=1, return_gt_depth=True,
                   return_pseudo_depth=settings.validation_depth == "predicted" and settings.experiment.needs_prior,
                   return_samples=False, return_3d_bboxes=False, return_voxel=False, return_segmentation=False)
    return options


def resume_hash(config: Mapping[str, Any], settings: TrainingSettings, world_size: int) -> str:
    """Hash of everything that determines the weights step by step: checkpoints with another hash belong to a
    different run. Runtime keys (:data:`RUNTIME_KEYS`) are left out, so e.g. raising max_steps resumes."""
    relevant = {k: v for k, v in settings.as_dict().items() if k not in RUNTIME_KEYS}
    payload = {"settings": relevant, "dataset": config["dataset"], "preprocess": config["preprocess"],
               "datasets": {use: config["datasets"][use] for use in ("train", "validation")},
               "world_size": int(world_size)}
    return config_hash(payload)
