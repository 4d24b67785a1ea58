"""Preprocessing of one KITTI-360 sequence: resized perspective images and virtual pinhole views of the fisheyes.

What the reference's ``preprocess_kitti_360.py`` writes (reference-implementation.md 2.1), for every posed frame:

* image_00 / image_01: ``data_rect`` resized to ``image_size`` (cv2 INTER_LINEAR on the float image);
* image_02 / image_03: ``data_rgb`` fisheye resampled through the MEI grid into a pinhole view with the perspective
  normalised K, rotated by ``fisheye_rotation`` (bilinear ``grid_sample``, align_corners=True);

all saved through the reference's float -> uint8 ``cv2.imwrite`` cast (:mod:`vipocc.data.images` does the pixel
work). Layout under the derived root (mirrors the reference's, so its tools read it)::

    <derived>/data_2d_raw/<seq>/image_0{0,1}/<perspective folder>/<frame:010d>.png   e.g. data_192x640
    <derived>/data_2d_raw/<seq>/image_0{2,3}/<fisheye folder>/<frame:010d>.png       e.g. data_192x640_0x-15

Folder names come from :func:`vipocc.data.images.preprocessed_folders`. Differences from the reference: the raw
root is never written to; ``image_size`` really sets the output size (the reference's ``--resolution`` only renamed
the folders); a missing or unreadable raw image is an error naming the file (the reference silently drops frames
whose four images are not all present); a frame is skipped only when all four outputs exist and are newer than
their raw image and the calibration (so an interrupted run resumes and changed raw data is redone).
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vipocc.io import write_png

if TYPE_CHECKING:
    from vipocc.data.calibration import Kitti360Calibration

__all__ = [
    "CAMERAS",
    "PreprocessStats",
    "calibration_files",
    "check_split_frames",
    "is_up_to_date",
    "preprocess_sequence",
    "preprocessed_image_path",
    "raw_image_path",
    "split_frames",
    "write_png_atomic",
]

CAMERAS = (0, 1, 2, 3)
PERSPECTIVE_CAMERAS = (0, 1)
FISHEYE_CAMERAS = (2, 3)
_RAW_FOLDER = {0: "data_rect", 1: "data_rect", 2: "data_rgb", 3: "data_rgb"}


def raw_image_path(raw_root: str | os.PathLike, seq: str, cam: int, frame: int) -> Path:
    """``<raw>/data_2d_raw/<seq>/image_0X/{data_rect | data_rgb}/<frame:010d>.png``."""
    if cam not in CAMERAS:
        raise ValueError(f"cam: expected a KITTI-360 camera id 0..3, got {cam!r}")
    return Path(raw_root) / "data_2d_raw" / seq / f"image_{cam:02d}" / _RAW_FOLDER[cam] / f"{int(frame):010d}.png"


def preprocessed_image_path(derived_root: str | os.PathLike, seq: str, cam: int, frame: int,
                            folders: tuple[str, str]) -> Path:
    """Output PNG of camera `cam`; `folders` = (perspective, fisheye) from ``preprocessed_folders``."""
    if cam not in CAMERAS:
        raise ValueError(f"cam: expected a KITTI-360 camera id 0..3, got {cam!r}")
    folder = folders[0] if cam in PERSPECTIVE_CAMERAS else folders[1]
    return Path(derived_root) / "data_2d_raw" / seq / f"image_{cam:02d}" / folder / f"{int(frame):010d}.png"


def calibration_files(raw_root: str | os.PathLike) -> list[Path]:
    """The calibration files the preprocessing depends on (their mtimes invalidate outputs)."""
    folder = Path(raw_root) / "calibration"
    return [folder / name for name in ("perspective.txt", "calib_cam_to_pose.txt", "calib_cam_to_velo.txt",
                                       "image_02.yaml", "image_03.yaml")]


def write_png_atomic(path: Path, image_rgb: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG (BGR on disk, as cv2 and the reference) under a temporary name, then rename."""
    write_png(path, np.ascontiguousarray(image_rgb[..., ::-1]))


def is_up_to_date(output: Path, inputs: Iterable[Path]) -> bool:
    """True if `output` exists and is at least as new as every existing input (make's rule)."""
    try:
        out_mtime = output.stat().st_mtime_ns
    except FileNotFoundError:
        return False
    return all(out_mtime >= path.stat().st_mtime_ns for path in inputs if path.exists())


# ------------------------------------------------------------------------------------------------ split files


def split_frames(split_dir: str | os.PathLike, seq: str, splits: Sequence[str] = ("train", "val", "test")
                 ) -> dict[Path, np.ndarray]:
    """{split file: sorted unique frames of `seq` in it} for the split files of `split_dir` that exist.

    FileNotFoundError naming `split_dir` if none of ``<split>_files.txt`` exists.
    """
    from vipocc.data.splits import read_split, split_file

    found = {}
    for split in splits:
        path = split_file(split_dir, split)
        if path.is_file():
            found[path] = np.unique([entry.frame for entry in read_split(path) if entry.seq == seq]).astype(np.int64)
    if not found:
        raise FileNotFoundError(f"{split_dir}: none of the split files {[f'{s}_files.txt' for s in splits]} exists")
    return found


def check_split_frames(split_dir: str | os.PathLike, seq: str, posed_frames: np.ndarray) -> int:
    """Every frame of `seq` named in a split file must be a posed frame (so it gets preprocessed).

    Returns the number of distinct split frames of `seq`; ValueError naming the split file and frames otherwise.
    """
    posed = np.asarray(posed_frames)
    total = set()
    for path, frames in split_frames(split_dir, seq).items():
        missing = frames[~np.isin(frames, posed)]
        if missing.size:
            raise ValueError(f"{path}: {missing.size} frame(s) of {seq} have no pose, so no preprocessed image: "
                             f"{missing[:10].tolist()}")
        total.update(frames.tolist())
    return len(total)


# ------------------------------------------------------------------------------------------------ the stage


@dataclasses.dataclass
class PreprocessStats:
    """What one :func:`preprocess_sequence` call did. `outputs` lists every output file of the frames processed
    (written now or already up to date)."""
    seq: str
    frames: int
    image_size: tuple[int, int]
    folders: tuple[str, str]
    written: list[Path] = dataclasses.field(default_factory=list)
    skipped: int = 0
    outputs: list[Path] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        return {"seq": self.seq, "frames": self.frames, "image_size": list(self.image_size),
                "folders": list(self.folders), "written": len(self.written), "skipped": self.skipped}


def _check_raw_size(path: Path, image: np.ndarray, expected_hw: tuple[int, int]) -> None:
    if image.shape[:2] != tuple(expected_hw):
        raise ValueError(f"{path}: image is {image.shape[1]}x{image.shape[0]} (WxH) but the calibration says "
                         f"{expected_hw[1]}x{expected_hw[0]}")


def preprocess_sequence(raw_root: str | os.PathLike, derived_root: str | os.PathLike, seq: str,
                        frames: Iterable[int] | None = None, image_size: Sequence[int] = (192, 640),
                        fisheye_rotation: Sequence[float] = (0.0, -15.0),
                        calibration: Kitti360Calibration | None = None, overwrite: bool = False,
                        progress: bool = True) -> PreprocessStats:
    """Write the 4 preprocessed images of every posed frame of `seq` (or of `frames`) under `derived_root`.

    Args:
        raw_root: KITTI-360 root (calibration/, data_2d_raw/, data_poses/), only read.
        derived_root: where data_2d_raw/<seq>/image_0X/<folder>/ is written.
        frames: image numbers to process (each must have a pose); None = all posed frames.
        image_size: (H, W) of the outputs.
        fisheye_rotation: (yaw, pitch) degrees of the virtual views; must match `calibration`'s.
        calibration: a loaded Kitti360Calibration (default: read from raw_root with fisheye_rotation).
        overwrite: redo frames whose outputs are up to date.

    Returns PreprocessStats. Raises FileNotFoundError / ValueError naming the file for a missing, unreadable or
    wrongly sized raw image; a frame's images are all read before any of its outputs is written, and each output
    is written atomically, so a failure leaves no partial file.
    """
    from tqdm.auto import tqdm

    from vipocc.data.calibration import load_calibration
    from vipocc.data.images import (check_image_size, fisheye_to_pinhole_grid, preprocessed_folders, read_image,
                                    resample_fisheye, resize_perspective)
    from vipocc.data.poses import load_poses

    size = check_image_size(image_size)
    folders = preprocessed_folders(size, fisheye_rotation)
    calibration = calibration if calibration is not None else load_calibration(raw_root, fisheye_rotation)
    if preprocessed_folders(size, calibration.fisheye_rotation) != folders:
        raise ValueError(f"fisheye_rotation {tuple(fisheye_rotation)} differs from the calibration's "
                         f"{calibration.fisheye_rotation}: the folder name would not match the views")
    poses = load_poses(raw_root, seq)
    frame_list = [int(f) for f in poses.frames] if frames is None else [int(f) for f in frames]
    poses.indices_of(np.asarray(frame_list, dtype=np.int64))  # ValueError naming poses.txt for unposed frames

    # The sampling grid depends only on the camera: compute it once per fisheye, not per frame.
    grids = {cam: fisheye_to_pinhole_grid(calibration.K_perspective, size, calibration.mei_normalized[cam],
                                          calibration.R_fisheye[cam]) for cam in FISHEYE_CAMERAS}
    expected_raw = {0: calibration.raw_size, 1: calibration.raw_size, **calibration.fisheye_size}
    calib_files = calibration_files(raw_root)

    stats = PreprocessStats(seq=seq, frames=len(frame_list), image_size=size, folders=folders)
    for frame in tqdm(frame_list, desc=f"preprocess {seq}", unit="frame", disable=not progress):
        sources = {cam: raw_image_path(raw_root, seq, cam, frame) for cam in CAMERAS}
        targets = {cam: preprocessed_image_path(derived_root, seq, cam, frame, folders) for cam in CAMERAS}
        stats.outputs.extend(targets.values())
        todo = [cam for cam in CAMERAS
                if overwrite or not is_up_to_date(targets[cam], [sources[cam], *calib_files])]
        stats.skipped += len(CAMERAS) - len(todo)
        images = {}
        for cam in todo:  # read (and validate) everything first: a bad input leaves this frame untouched
            images[cam] = read_image(sources[cam])
            _check_raw_size(sources[cam], images[cam], expected_raw[cam])
        for cam, image in images.items():
            out = resize_perspective(image, size) if cam in PERSPECTIVE_CAMERAS else resample_fisheye(image, grids[cam])
            write_png_atomic(targets[cam], out)
            stats.written.append(targets[cam])
    return stats
