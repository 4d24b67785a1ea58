"""Fixtures of the training tests: derived data of the smoke world at a tiny image size, and a tiny config.

``build_derived`` writes, for every posed frame of the given sequences of a generated synthetic world: the
preprocessed images (vipocc.data.preprocess), LiDAR depth GT (vipocc.data.depth_gt), a simulated pseudo depth
(vipocc.priors.simulated on the oracle z-depth, resized with nearest sampling) and SNOG anchor sets
(vipocc.priors.snog on the simulated detections). The priors stage proper resamples more carefully; training only
needs files of the right layout with plausible content.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from vipocc.config import validate_config
from vipocc.data.depth_gt import depth_gt_sequence
from vipocc.data.images import preprocessed_folders
from vipocc.data.poses import load_poses
from vipocc.data.preprocess import preprocess_sequence
from vipocc.io import save_npy
from vipocc.priors.simulated import simulate_depth_prior, simulate_instances
from vipocc.priors.snog import anchor_path, sample_anchor_sets, save_anchors
from vipocc.synthetic.oracle import WorldOracle

ROTATION = (0.0, -15.0)
TRAIN_SEQ = "2013_05_28_drive_0000_sync"
VAL_SEQ = "2013_05_28_drive_0003_sync"
SIZE = (48, 160)
ANCHOR_SETS, ANCHORS_PER_SET = 3, 24

# ResNet-18, 4 patches of 8x8 per element, 32 samples per ray: a step takes a fraction of a second on 2 cores.
TINY_TRAINING = {"encoder_depth": 18, "batch_size": 2, "ray_batch_size": 256, "depth_ray_batch_size": 128,
                 "n_samples": 32, "max_steps": 4, "validate_every": None, "checkpoint_every": 2,
                 "log_every": 1, "lr": 1.0e-3}


def _nearest(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(values, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def build_derived(world: Path, derived: Path, sequences: list[str], image_size: tuple[int, int],
                  anchor_sets: int = 0, anchors_per_set: int = 64, seed: int = 0) -> Path:
    """Write the derived data of ``sequences`` at ``image_size`` (H, W); ``anchor_sets`` SNOG sets of
    ``anchors_per_set`` anchors per image (none when 0)."""
    raw = world / "kitti360"
    oracle = WorldOracle(world)
    folder, _ = preprocessed_folders(image_size, ROTATION)
    for seq in sequences:
        preprocess_sequence(raw, derived, seq, image_size=image_size, fisheye_rotation=ROTATION, progress=False)
        depth_gt_sequence(raw, derived, seq, image_size=image_size, progress=False)
        for frame in load_poses(raw, seq).frames:
            for cam in (0, 1):
                rng = np.random.default_rng([seed, cam, int(frame)])
                oracle_depth = _nearest(oracle.depth(seq, cam, int(frame)), image_size)
                prior = simulate_depth_prior(oracle_depth, rng)
                save_npy(derived / "depth" / seq / f"image_{cam:02d}" / folder / f"{int(frame):010d}.npy", prior)
                if anchor_sets:
                    detections, _ = simulate_instances(
                        _nearest(oracle.instance(seq, cam, int(frame)), image_size),
                        _nearest(oracle.semantic(seq, cam, int(frame)), image_size), rng)
                    anchors = sample_anchor_sets(detections, image_size, n_sets=anchor_sets,
                                                 num_patches=anchors_per_set, rng=rng)
                    save_anchors(anchor_path(derived / "samples", seq, f"image_{cam:02d}", folder, int(frame)),
                                 anchors)
    return derived


@dataclass(frozen=True)
class TrainingData:
    """Smoke world raw root, derived root (SIZE) and split folder, plus the constants above."""

    raw: Path
    derived: Path
    splits: Path
    size: tuple[int, int] = SIZE
    train_seq: str = TRAIN_SEQ
    val_seq: str = VAL_SEQ

    def paths(self) -> tuple[Path, Path, Path]:
        return self.raw, self.derived, self.splits


@pytest.fixture(scope="session")
def training_data(smoke_world, tmp_path_factory) -> TrainingData:
    derived = build_derived(smoke_world, tmp_path_factory.mktemp("derived"), [TRAIN_SEQ, VAL_SEQ], SIZE,
                            anchor_sets=ANCHOR_SETS, anchors_per_set=ANCHORS_PER_SET)
    return TrainingData(smoke_world / "kitti360", derived, smoke_world / "splits" / "kitti360")


def tiny_config(experiments: dict | None = None, **training) -> dict:
    """Validated config at SIZE with the tiny training settings (plus overrides / an experiments mapping)."""
    block = {**TINY_TRAINING, **training}
    if experiments is not None:
        block["experiments"] = experiments
    return validate_config({"dataset": {"kind": "synthetic"}, "preprocess": {"image_size": list(SIZE)},
                            "training": block})


@pytest.fixture(scope="session")
def make_config():
    """``make_config(experiments=None, **training_overrides)`` -> validated tiny config."""
    return tiny_config
