"""The occupancy ground-truth job of one sequence: KYN lidar GT, object labels and (synthetic world) exact truth.

For every evaluated frame (the test split frames of the sequence, or every split frame with
``occupancy_gt.frames: all``):

1. Reference frame. ``world_to_ref = A @ inv(P_cam0)`` with ``P_cam0 = imu_to_world[i] @ T_rect_to_pose[0]`` the
   rectified image_00 camera-to-world pose at the frame's pose index i and ``A`` the 5 degree inclination
   correction (:func:`vipocc.data.occupancy_gt.inclination_correction`), as the KYN evaluator. KYN's files are per
   (sequence, frame), so image_00 is the reference for every split entry, whatever its side.
2. Scans. The ``aggregate_scans`` consecutive *posed* frames i, i+1, ... (pose indices, forward). Near the end of a
   sequence fewer exist: the available ones are used and their number is recorded (``scans_used`` in the stats and
   the done-manifest). ``velo_poses[t] = world_to_ref @ imu_to_world[i + t] @ T_velo_to_pose``.
3. GT. :func:`vipocc.data.occupancy_gt.lidar_occupancy` on :func:`~vipocc.data.occupancy_gt.query_grid` (z_range,
   x_range, y = middle of y_range, ppm), saved with :func:`~vipocc.data.occupancy_gt.save_occupancy_gt` as KYN
   ships it: ``GT_Occ/<seq>_<frame:010d>_{occgt,visgt}.npy``, bool [rows, cols], occupied *before* removing the
   visible cells.
4. Object labels (:mod:`vipocc.data.occupancy_labels`): ``Object_Label/<seq>_<frame:010d>_occgt_anno.png``.
5. Synthetic world only: the exact occupancy of the same query points from the oracle,
   ``Exact_Occ/<seq>_<frame:010d>_occ.npy`` (bool [rows, cols], the query point lies in a solid), and the
   lidar-GT-vs-truth counts by distance band (:func:`truth_counts`, :func:`truth_report`).

All paths are under the derived root. A frame is skipped when all its outputs exist and are newer than every input
(its scans, poses.txt, the calibration, the box XML, the oracle scene), so an interrupted job resumes; each file
is written atomically. With ``occupancy_gt.source: path`` nothing is generated: :func:`check_gt_files` only checks
that the user's KYN download holds the files of every evaluated frame, and readers use :func:`occupancy_gt_root`.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vipocc.data import occupancy_gt as og
from vipocc.data.occupancy_labels import (DEFAULT_OBJECT_LABELS, frame_box_indices, object_label_map,
                                          object_label_path, save_object_labels)
from vipocc.io import save_npy

if TYPE_CHECKING:
    from vipocc.data.bboxes import BoxArrays
    from vipocc.data.calibration import Kitti360Calibration
    from vipocc.data.poses import SequencePoses
    from vipocc.synthetic.scene import Scene

__all__ = ["GT_OCC_DIR", "OBJECT_LABEL_DIR", "EXACT_OCC_DIR", "DISTANCE_BANDS", "OccupancyGtSettings", "FrameGt",
           "OccupancyGtStats", "evaluated_frames", "world_to_reference", "scan_window", "velo_poses_for",
           "frame_occupancy", "exact_occupancy", "frame_outputs", "occupancy_gt_sequence", "truth_counts",
           "truth_report", "counts_from_report", "report_csv", "load_frame_truth_counts", "gt_files", "check_gt_files",
           "occupancy_gt_root"]

GT_OCC_DIR = "GT_Occ"
OBJECT_LABEL_DIR = "Object_Label"
EXACT_OCC_DIR = "Exact_Occ"
#: Distance bands (metres of the cell's z, forward in the reference frame) of the truth report; [low, high) except
#: the last, which includes its upper end.
DISTANCE_BANDS = ((4.0, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, 50.0))


# --------------------------------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class OccupancyGtSettings:
    """The ``occupancy_gt`` config block (metres; z_range = (far, near))."""

    aggregate_scans: int = 300
    z_range: tuple[float, float] = og.GT_Z_RANGE
    x_range: tuple[float, float] = og.GT_X_RANGE
    y_range: tuple[float, float] = og.DEFAULT_Y_RANGE
    ppm: float = og.GT_PPM
    min_dist: float = og.DEFAULT_MIN_DIST

    def __post_init__(self) -> None:
        if int(self.aggregate_scans) != self.aggregate_scans or self.aggregate_scans < 1:
            raise ValueError(f"occupancy_gt.aggregate_scans must be a positive integer, got {self.aggregate_scans}")
        for name in ("z_range", "x_range", "y_range"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 2 or not all(math.isfinite(v) for v in value):
                raise ValueError(f"occupancy_gt.{name} must be two finite numbers, got {getattr(self, name)}")
            object.__setattr__(self, name, value)
        if self.y_range[0] > self.y_range[1]:
            raise ValueError(f"occupancy_gt.y_range must be (low, high) with low <= high, got {self.y_range}")

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> "OccupancyGtSettings":
        return cls(int(block["aggregate_scans"]), tuple(block["z_range"]), tuple(block["x_range"]),
                   tuple(block["y_range"]), float(block["ppm"]), float(block["min_dist"]))

    @property
    def slice_y(self) -> float:
        """Height of the slice (metres below the corrected camera): the middle of y_range, as the reference."""
        return self.y_range[0] * 0.5 + self.y_range[1] * 0.5

    @property
    def max_dist(self) -> float:
        """The reference's far-point distance sqrt(z_far^2 + x_min^2) (metres)."""
        return og.max_dist_for(self.z_range[0], self.x_range[0])

    def grid(self) -> np.ndarray:
        """Query points float32 [rows, cols, 3] in the inclination-corrected cam0 frame."""
        return og.query_grid(self.z_range, self.x_range, self.slice_y, self.ppm)


# --------------------------------------------------------------------------------------------------- frames


def evaluated_frames(split_dir: str | os.PathLike, seq: str, which: str = "test") -> list[int]:
    """Sorted unique frame numbers of `seq` to make GT for: those of ``test_files.txt`` (which="test") or of every
    existing ``{train,val,test}_files.txt`` (which="all"). FileNotFoundError naming the missing split file(s)."""
    from vipocc.data.splits import read_split, split_file

    if which not in ("test", "all"):
        raise ValueError(f"occupancy_gt.frames must be 'test' or 'all', got {which!r}")
    paths = [split_file(split_dir, "test")] if which == "test" else [
        split_file(split_dir, split) for split in ("train", "val", "test")]
    existing = [path for path in paths if path.is_file()]
    if not existing or (which == "test" and len(existing) != 1):
        raise FileNotFoundError(f"split file(s) not found: {', '.join(str(p) for p in paths)}")
    return sorted({entry.frame for path in existing for entry in read_split(path) if entry.seq == seq})


def world_to_reference(imu_to_world: np.ndarray, calibration: Kitti360Calibration) -> np.ndarray:
    """float64 [4, 4]: KITTI-360 world -> inclination-corrected rectified cam0 frame of a frame whose IMU pose
    (pose -> world) is `imu_to_world` [4, 4]."""
    cam0_to_world = np.asarray(imu_to_world, dtype=np.float64) @ calibration.view_to_pose(0)
    return og.inclination_correction().astype(np.float64) @ np.linalg.inv(cam0_to_world)


def scan_window(n_posed: int, index: int, n_scans: int) -> np.ndarray:
    """Pose indices int64 [T] of the scans aggregated for pose index `index`: index, index + 1, ... (at most
    n_scans, fewer at the end of a sequence of n_posed posed frames)."""
    if not 0 <= index < n_posed:
        raise ValueError(f"pose index {index} outside the sequence's {n_posed} posed frames")
    return np.arange(index, min(index + int(n_scans), n_posed), dtype=np.int64)


def velo_poses_for(poses: SequencePoses, calibration: Kitti360Calibration, index: int, n_scans: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(velo_poses float64 [T, 4, 4] velodyne -> reference frame of pose index `index`, pose indices int64 [T])."""
    window = scan_window(len(poses), index, n_scans)
    world_to_ref = world_to_reference(poses.imu_to_world[index], calibration)
    return world_to_ref[None] @ poses.imu_to_world[window] @ calibration.T_velo_to_pose, window


class _ScanCache:
    """Velodyne scans of one sequence, kept while they are in the current window (consecutive evaluated frames
    share most of their 300 scans). Each is kept prepared (:func:`vipocc.data.occupancy_gt.prepare_scan`: its
    pose-independent work done once), which makes a frame about twice as fast as passing raw arrays."""

    def __init__(self, raw_root: Path, seq: str) -> None:
        self.raw_root, self.seq = raw_root, seq
        self._scans: dict[int, Any] = {}

    def window(self, frames: Sequence[int]) -> list[Any]:
        from vipocc.data.depth_gt import read_velodyne, velodyne_path
        from vipocc.data.occupancy_gt import prepare_scan

        wanted = set(frames)
        for frame in [f for f in self._scans if f not in wanted]:
            del self._scans[frame]
        for frame in frames:
            if frame not in self._scans:
                self._scans[frame] = prepare_scan(read_velodyne(velodyne_path(self.raw_root, self.seq, frame)))
        return [self._scans[f] for f in frames]


# --------------------------------------------------------------------------------------------------- one frame


@dataclasses.dataclass(frozen=True, eq=False)
class FrameGt:
    """GT of one frame: occupied / visible bool [rows, cols] (occupied before removing visible cells), object
    labels uint8 [rows, cols], exact bool [rows, cols] or None (real data), scans_used, world_to_ref [4, 4]."""

    occupied: np.ndarray
    visible: np.ndarray
    labels: np.ndarray
    exact: np.ndarray | None
    scans_used: int
    world_to_ref: np.ndarray


def exact_occupancy(scene: Scene, query_points: np.ndarray, world_to_ref: np.ndarray) -> np.ndarray:
    """bool [...]: the query points [..., 3] (reference frame, metres) lie inside solid geometry of `scene`."""
    points = np.asarray(query_points, dtype=np.float64)
    ref_to_world = np.linalg.inv(np.asarray(world_to_ref, dtype=np.float64))
    world = points.reshape(-1, 3) @ ref_to_world[:3, :3].T + ref_to_world[:3, 3]
    return scene.occupied(world).reshape(points.shape[:-1])


def frame_occupancy(scans: Sequence[np.ndarray], velo_poses: np.ndarray, world_to_ref: np.ndarray,
                    settings: OccupancyGtSettings, boxes: BoxArrays | None = None, frame: int = -1,
                    object_labels: Sequence[str] = DEFAULT_OBJECT_LABELS, scene: Scene | None = None,
                    workers: int = og.DEFAULT_WORKERS) -> FrameGt:
    """All GT maps of one frame from its scans (scan 0 = the frame) and their velo_poses [T, 4, 4] into the
    reference frame ``world_to_ref`` [4, 4]. boxes: the sequence's boxes (None = no boxes: labels are 0/255 only);
    frame: its image number (selects dynamic boxes); scene: the oracle scene for the exact map (None = skip)."""
    grid = settings.grid()
    occupied, visible = og.lidar_occupancy(grid.reshape(-1, 3), scans, velo_poses, settings.y_range,
                                           settings.max_dist, settings.min_dist, workers=workers)
    occupied, visible = occupied.reshape(grid.shape[:2]), visible.reshape(grid.shape[:2])
    vertices = np.zeros((0, 8, 3))
    if boxes is not None and len(boxes):
        chosen = frame_box_indices(boxes, frame, object_labels)
        world = boxes.vertices_world[chosen]
        vertices = world @ world_to_ref[:3, :3].T + world_to_ref[:3, 3]
    labels, _ = object_label_map(grid, occupied & ~visible, vertices)
    exact = None if scene is None else exact_occupancy(scene, grid, world_to_ref)
    return FrameGt(occupied, visible, labels, exact, len(scans), world_to_ref)


# --------------------------------------------------------------------------------------------------- files


def frame_outputs(derived_root: str | os.PathLike, seq: str, frame: int, exact: bool) -> dict[str, Path]:
    """Output files of one frame: occgt, visgt (GT_Occ/), labels (Object_Label/), exact (Exact_Occ/, synthetic)."""
    root = Path(derived_root)
    occgt, visgt = og.gt_file_paths(root / GT_OCC_DIR, seq, frame)
    outputs = {"occgt": occgt, "visgt": visgt, "labels": object_label_path(root / OBJECT_LABEL_DIR, seq, frame)}
    if exact:
        outputs["exact"] = root / EXACT_OCC_DIR / f"{seq}_{int(frame):010d}_occ.npy"
    return outputs


def _write_frame(outputs: Mapping[str, Path], seq: str, frame: int, gt: FrameGt) -> None:
    """Exact map and labels first, the GT_Occ pair last: a frame interrupted midway lacks a file and is redone."""
    if "exact" in outputs:
        save_npy(outputs["exact"], gt.exact)
    save_object_labels(outputs["labels"].parent, seq, frame, gt.labels)
    og.save_occupancy_gt(outputs["occgt"].parent, seq, frame, gt.occupied, gt.visible)


def _is_up_to_date(outputs: Iterable[Path], inputs: Sequence[Path]) -> bool:
    """Every output exists and is at least as new as every existing input (make's rule)."""
    newest = max((path.stat().st_mtime_ns for path in inputs if path.exists()), default=0)
    try:
        return all(path.stat().st_mtime_ns >= newest for path in outputs)
    except FileNotFoundError:
        return False


@dataclasses.dataclass
class OccupancyGtStats:
    """What one :func:`occupancy_gt_sequence` call did. scans_used: {frame: scans aggregated}; seconds: wall time
    of the frames computed (not the skipped ones)."""

    seq: str
    frames: list[int]
    scans_used: dict[int, int] = dataclasses.field(default_factory=dict)
    written: list[Path] = dataclasses.field(default_factory=list)
    skipped: int = 0
    outputs: list[Path] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        computed = len(self.frames) - self.skipped
        return {"seq": self.seq, "frames": len(self.frames), "computed": computed, "skipped": self.skipped,
                "written": len(self.written), "scans_used": {str(f): n for f, n in self.scans_used.items()},
                "seconds_per_frame": self.seconds / computed if computed else None}


def occupancy_gt_sequence(raw_root: str | os.PathLike, derived_root: str | os.PathLike, seq: str,
                          frames: Iterable[int], settings: OccupancyGtSettings = OccupancyGtSettings(), *,
                          calibration: Kitti360Calibration | None = None, scene: Scene | None = None,
                          scene_path: str | os.PathLike | None = None,
                          object_labels: Sequence[str] = DEFAULT_OBJECT_LABELS, overwrite: bool = False,
                          progress: bool = True, workers: int = og.DEFAULT_WORKERS) -> OccupancyGtStats:
    """Write the occupancy GT files of `frames` (image numbers) of `seq` under `derived_root`.

    raw_root: KITTI-360 root (calibration/, data_poses/, data_3d_raw/, data_3d_bboxes/). scene: the oracle scene
    of the sequence (synthetic world) -> also Exact_Occ files; scene_path: its file, an input of the up-to-date
    check. Resumable (see the module docstring); `overwrite` redoes every frame. Errors name the file: missing
    poses/scan/calibration/box XML (FileNotFoundError), a frame without pose or a truncated scan (ValueError).
    """
    from tqdm.auto import tqdm

    from vipocc.data.bboxes import bboxes_path, load_bboxes, stack_boxes
    from vipocc.data.calibration import load_calibration
    from vipocc.data.depth_gt import velodyne_path
    from vipocc.data.poses import load_poses
    from vipocc.data.preprocess import calibration_files

    raw_root = Path(raw_root)
    calibration = calibration if calibration is not None else load_calibration(raw_root)
    poses = load_poses(raw_root, seq)
    frames = [int(f) for f in frames]
    indices = poses.indices_of(np.asarray(frames, dtype=np.int64)) if frames else np.zeros(0, np.int64)
    boxes = stack_boxes(load_bboxes(raw_root, seq))
    fixed_inputs = [poses.path, bboxes_path(raw_root, seq), *calibration_files(raw_root)]
    if scene_path is not None:
        fixed_inputs.append(Path(scene_path))
    stats = OccupancyGtStats(seq=seq, frames=frames)
    cache = _ScanCache(raw_root, seq)
    for frame, index in tqdm(list(zip(frames, indices)), desc=f"occupancy gt {seq}", unit="frame",
                             disable=not progress):
        window = scan_window(len(poses), int(index), settings.aggregate_scans)
        stats.scans_used[frame] = len(window)
        outputs = frame_outputs(derived_root, seq, frame, exact=scene is not None)
        stats.outputs.extend(outputs.values())
        scan_frames = [int(f) for f in poses.frames[window]]
        inputs = fixed_inputs + [velodyne_path(raw_root, seq, f) for f in scan_frames]
        if not overwrite and _is_up_to_date(outputs.values(), inputs):
            stats.skipped += 1
            continue
        start = time.perf_counter()
        world_to_ref = world_to_reference(poses.imu_to_world[index], calibration)
        velo = world_to_ref[None] @ poses.imu_to_world[window] @ calibration.T_velo_to_pose
        scans = cache.window(scan_frames)
        try:
            gt = frame_occupancy(scans, velo, world_to_ref, settings, boxes, frame, object_labels, scene, workers)
        except ValueError as error:  # e.g. a scan keeping < 360 points: say which frame and scans
            raise ValueError(f"{seq} frame {frame} (scans of frames {scan_frames[0]}..{scan_frames[-1]} under "
                             f"{velodyne_path(raw_root, seq, frame).parent}): {error}") from error
        _write_frame(outputs, seq, frame, gt)
        stats.seconds += time.perf_counter() - start
        stats.written.extend(outputs.values())
    return stats


# --------------------------------------------------------------------------------------------------- truth report

_COUNT_KEYS = ("cells", "visible", "invisible", "exact_occupied", "lidar_occupied", "visible_exact_free",
               "invisible_agree", "lidar_and_exact_occupied", "agree")
# fraction name -> (numerator count, denominator count)
_FRACTIONS = {
    "visible_truly_free": ("visible_exact_free", "visible"),
    "invisible_agreement": ("invisible_agree", "invisible"),
    "lidar_occupied_precision": ("lidar_and_exact_occupied", "lidar_occupied"),
    "exact_occupied_recall": ("lidar_and_exact_occupied", "exact_occupied"),
    "agreement": ("agree", "cells"),
}
_DEFINITIONS = {
    "lidar_occupied": "occgt & ~visgt (the GT the evaluator scores)",
    "visible_truly_free": "visible cells whose query point is free in the exact world",
    "invisible_agreement": "invisible cells where lidar_occupied == exact occupied",
    "lidar_occupied_precision": "lidar_occupied cells that are exactly occupied",
    "exact_occupied_recall": "exactly occupied cells that are lidar_occupied",
    "agreement": "all cells where lidar_occupied == exact occupied",
    "band": "cell z (metres forward in the inclination-corrected cam0 frame), [low, high), last band closed",
}


def _band_names() -> list[str]:
    return [f"{low:g}-{high:g}" for low, high in DISTANCE_BANDS] + ["all"]


def truth_counts(occupied: np.ndarray, visible: np.ndarray, exact: np.ndarray, z: np.ndarray
                 ) -> dict[str, dict[str, int]]:
    """Cell counts {band: {count name: n}} of one frame. occupied / visible / exact: bool [rows, cols] (occupied as
    saved, before removing visible cells); z: [rows] metres of each row. Bands: DISTANCE_BANDS plus "all"."""
    occupied, visible, exact = (np.asarray(a, dtype=bool) for a in (occupied, visible, exact))
    if not occupied.shape == visible.shape == exact.shape or occupied.ndim != 2:
        raise ValueError(f"occupied {occupied.shape}, visible {visible.shape}, exact {exact.shape}: expected equal "
                         "[rows, cols] shapes")
    z = np.asarray(z, dtype=np.float64)
    if z.shape != occupied.shape[:1]:
        raise ValueError(f"z: expected [{occupied.shape[0]}] row distances, got {z.shape}")
    lidar = occupied & ~visible
    masks = {
        "cells": np.ones_like(lidar), "visible": visible, "invisible": ~visible, "exact_occupied": exact,
        "lidar_occupied": lidar, "visible_exact_free": visible & ~exact, "invisible_agree": ~visible & (lidar == exact),
        "lidar_and_exact_occupied": lidar & exact, "agree": lidar == exact,
    }
    per_row = {key: mask.sum(axis=1) for key, mask in masks.items()}  # [rows] each
    last = len(DISTANCE_BANDS) - 1
    rows_in = [(z >= low) & ((z < high) | ((i == last) & (z <= high))) for i, (low, high) in enumerate(DISTANCE_BANDS)]
    rows_in.append(np.ones_like(z, dtype=bool))
    return {name: {key: int(per_row[key][rows].sum()) for key in _COUNT_KEYS}
            for name, rows in zip(_band_names(), rows_in)}


def _sum_counts(counts: Iterable[Mapping[str, Mapping[str, int]]]) -> dict[str, dict[str, int]]:
    total = {name: dict.fromkeys(_COUNT_KEYS, 0) for name in _band_names()}
    for one in counts:
        for name in total:
            for key in _COUNT_KEYS:
                total[name][key] += int(one[name][key])
    return total


def truth_report(counts: Iterable[Mapping[str, Mapping[str, int]]], scope: Mapping[str, Any]) -> dict:
    """The report dict of summed per-frame (or per-sequence) counts: per band the counts and the fractions
    (None where the denominator is 0), plus `scope` (e.g. sequences, frames) and the definitions."""
    total = _sum_counts(counts)
    bands = []
    for name, band_counts in total.items():
        fractions = {key: (band_counts[num] / band_counts[den] if band_counts[den] else None)
                     for key, (num, den) in _FRACTIONS.items()}
        bands.append({"band": name, **band_counts, **fractions})
    return {**scope, "bands": bands, "definitions": _DEFINITIONS}


def counts_from_report(report: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """The summed counts {band: {count: n}} a :func:`truth_report` was made from (to merge reports)."""
    bands = {band["band"]: band for band in report["bands"]}
    if set(bands) != set(_band_names()):
        raise ValueError(f"report bands {sorted(bands)} differ from {_band_names()}")
    return {name: {key: int(bands[name][key]) for key in _COUNT_KEYS} for name in _band_names()}


def report_csv(report: Mapping[str, Any]) -> str:
    """CSV text of a :func:`truth_report`: one row per band (empty field for an undefined fraction)."""
    columns = ["band", *_COUNT_KEYS, *_FRACTIONS]
    lines = [",".join(columns)]
    for band in report["bands"]:
        values = [band[c] for c in columns]
        lines.append(",".join("" if v is None else (f"{v:.6f}" if isinstance(v, float) else str(v)) for v in values))
    return "\n".join(lines) + "\n"


def load_frame_truth_counts(derived_root: str | os.PathLike, seq: str, frame: int, settings: OccupancyGtSettings
                            ) -> dict[str, dict[str, int]]:
    """:func:`truth_counts` of a frame from its written GT_Occ and Exact_Occ files."""
    outputs = frame_outputs(derived_root, seq, frame, exact=True)
    occupied, visible = og.load_occupancy_gt(outputs["occgt"].parent, seq, frame, settings.z_range, settings.ppm)
    if not outputs["exact"].is_file():
        raise FileNotFoundError(f"exact occupancy file not found: {outputs['exact']}")
    exact = np.load(outputs["exact"], allow_pickle=False)
    return truth_counts(occupied, visible, exact, settings.grid()[:, 0, 2])


# --------------------------------------------------------------------------------------------------- user GT


def occupancy_gt_root(config: Mapping[str, Any], derived_root: str | os.PathLike) -> Path:
    """Folder holding GT_Occ/ and Object_Label/: ``occupancy_gt.path`` (source path) or the derived root."""
    block = config["occupancy_gt"]
    if block["source"] == "path":
        if not block.get("path"):
            raise ValueError("occupancy_gt.source is 'path' but occupancy_gt.path is not set")
        return Path(block["path"]).expanduser()
    return Path(derived_root)


def gt_files(gt_root: str | os.PathLike, seq: str, frames: Iterable[int]) -> list[Path]:
    """The KYN files of `frames`: GT_Occ/..._occgt.npy, ..._visgt.npy and Object_Label/..._occgt_anno.png."""
    return [path for frame in frames for path in frame_outputs(gt_root, seq, frame, exact=False).values()]


def check_gt_files(gt_root: str | os.PathLike, seq: str, frames: Iterable[int]) -> list[Path]:
    """All KYN files of `frames` under `gt_root` (the user's download); FileNotFoundError listing the missing."""
    files = gt_files(gt_root, seq, frames)
    missing = [path for path in files if not path.is_file()]
    if missing:
        shown = "\n  ".join(str(p) for p in missing[:20])
        more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise FileNotFoundError(f"occupancy_gt.path {gt_root}: {len(missing)} of {len(files)} KYN GT files of "
                                f"{seq} are missing:\n  {shown}{more}")
    return files
