"""KITTI-360 ego poses with the reference's pose-index semantics (reference-implementation.md 1.3).

``<root>/data_poses/<seq>/poses.txt``: one line per *posed* frame, ``frame`` followed by the 12 row-major values of
the 3x4 IMU ("pose" frame) -> world transform. Only some frames have a pose and the frame numbers have gaps.

A dataset *id* is an index into the posed frames (``SequencePoses.frames[id]`` is the image number): ``id + 1`` is
the next posed frame and the fisheye offset counts posed frames, not frame numbers.

Differences from the reference: a missing poses.txt raises FileNotFoundError (the reference silently reuses the
previous sequence's poses); poses are float64 (the reference uses float32).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np

__all__ = ["SequencePoses", "load_poses", "poses_path"]


@dataclasses.dataclass(frozen=True, eq=False)
class SequencePoses:
    """Posed frames of one sequence.

    frames: int64 [N] strictly increasing image (frame) numbers; imu_to_world: float64 [N,4,4] pose frame ->
    KITTI-360 world (metres); path: the poses.txt they were read from.
    """

    frames: np.ndarray
    imu_to_world: np.ndarray
    path: Path

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def index_of(self, frame: int) -> int:
        """Pose index of image number ``frame``; ValueError naming poses.txt when the frame has no pose."""
        return int(self.indices_of(np.asarray([frame]))[0])

    def indices_of(self, frames: np.ndarray) -> np.ndarray:
        """Pose indices int64 [M] of image numbers ``frames`` [M] (vectorized :meth:`index_of`)."""
        frames = np.asarray(frames)
        if frames.ndim != 1 or (frames.size and not np.issubdtype(frames.dtype, np.integer)):
            raise ValueError(f"frames: expected a 1-D array of integer frame numbers, got {frames.dtype} "
                             f"{frames.shape}")
        index = np.searchsorted(self.frames, frames)
        clipped = np.minimum(index, len(self) - 1)
        found = (index < len(self)) & (self.frames[clipped] == frames)
        if not found.all():
            missing = frames[~found]
            raise ValueError(f"{self.path}: frame(s) {missing[:10].tolist()} have no pose "
                             f"({missing.size} missing; posed frames {self.frames[0]}..{self.frames[-1]})")
        return index.astype(np.int64)


def poses_path(root: str | os.PathLike, seq: str) -> Path:
    """``<root>/data_poses/<seq>/poses.txt``."""
    return Path(root) / "data_poses" / seq / "poses.txt"


def load_poses(root: str | os.PathLike, seq: str) -> SequencePoses:
    """Read ``<root>/data_poses/<seq>/poses.txt`` (root = KITTI-360 dataset root).

    Raises FileNotFoundError naming the file when it is missing and ValueError naming the file (and line) for a
    malformed line, non-integer or non-increasing frame numbers.
    """
    path = poses_path(root, seq)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: poses file not found (sequence {seq!r} has no poses)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # an empty file is reported below
            data = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError:
        _raise_first_bad_line(path)
        raise
    if data.shape[0] == 0:
        raise ValueError(f"{path}: no poses")
    if data.shape[1] != 13:
        _raise_first_bad_line(path)
        raise ValueError(f"{path}: expected 13 numbers per line (frame + 3x4 pose), got {data.shape[1]}")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{path}: line {int(np.argmax(~np.isfinite(data).all(axis=1))) + 1} has non-finite values")
    frames = data[:, 0]
    if np.any(frames != np.round(frames)) or np.any(frames < 0):
        line = int(np.argmax((frames != np.round(frames)) | (frames < 0))) + 1
        raise ValueError(f"{path}:{line}: frame number must be a non-negative integer, got {frames[line - 1]}")
    if np.any(np.diff(frames) <= 0):
        line = int(np.argmax(np.diff(frames) <= 0)) + 2
        raise ValueError(f"{path}:{line}: frame numbers must be strictly increasing ({frames[line - 2]:.0f} then "
                         f"{frames[line - 1]:.0f})")
    imu_to_world = np.zeros((data.shape[0], 4, 4))
    imu_to_world[:, :3, :] = data[:, 1:].reshape(-1, 3, 4)
    imu_to_world[:, 3, 3] = 1.0
    frames = frames.astype(np.int64)
    frames.flags.writeable = False
    imu_to_world.flags.writeable = False
    return SequencePoses(frames, imu_to_world, path)


def _raise_first_bad_line(path: Path) -> None:
    """Slow diagnostic pass, only after the fast parser failed: name the first malformed line."""
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        tokens = line.split()
        try:
            [float(t) for t in tokens]
        except ValueError:
            raise ValueError(f"{path}:{lineno}: malformed line (expected numbers): {line.strip()[:120]!r}") from None
        if len(tokens) != 13:
            raise ValueError(f"{path}:{lineno}: expected 13 numbers (frame + 3x4 pose), got {len(tokens)}")
