"""LiDAR depth ground truth: Velodyne scans projected into the preprocessed perspective images.

What the reference does (BTS / ViPOcc ``Kitti360Dataset.load_depth``, run once per frame by
``preprocess_kitti_360_data3draw.py``; reference-implementation.md 1.5), reproduced bit for bit by
:func:`lidar_depth_map` with ``filter_behind_camera=False``:

1. the scan [N,4] gets its 4th column (intensity) set to 1 and is projected with ``(K_norm @ T_velo_to_rect[:3])``,
   K normalised to [-1, 1] image coordinates; ``u_n = p_x / p_z``, ``v_n = p_y / p_z``. There is *no* z > 0 test,
   so points behind the camera land mirrored inside the image;
2. pixel ``u = round((u_n * 0.5 + 0.5) * W)``, ``v = round((v_n * 0.5 + 0.5) * H)`` (round half to even), kept if in
   ``[0, W) x [0, H)``; depth = ``p_z`` (z-depth in the rectified camera, metres);
3. ``depth[v, u] = z``: the last point written to a pixel wins;
4. duplicates are then resolved through monodepth2's ``sub2ind`` key ``v * (W - 1) + u - 1``. Because of the
   ``W - 1``, pixel (v, 0) and pixel (v - 1, W - 1) share a key. For every key held by more than one point, the
   pixel of the key's *first* point (scan order) gets the minimum depth of all the key's points; the other pixel
   of a colliding pair keeps its last-written value;
5. ``depth[depth < 0] = 0``: a behind-camera point that shares a key with real returns erases them.

Precision: the reference parses the calibration and the scan as float32, so the whole projection is float32
(``np.dot`` of a float32 3x4 by float32 points). This module casts K, T and the points to float32 and uses the same
numpy operations, so the result equals the reference's for the same float32 inputs. The map is returned as
float32 (the reference's float64 map only ever holds float32 values, so the cast is exact).

``filter_behind_camera=True`` drops points with z <= 0 before step 2 and changes nothing else (the key collision of
step 4 is kept, so the two modes differ only where a behind-camera point mattered).

Files (the reference writes ``depth_gt/<seq>/<frame>.npy`` for image_00 only; we add a camera level and image_01,
projected through ``T_velo_to_rect[1]``): ``<derived>/depth_gt/<seq>/image_0X/<frame:010d>.npy``, float32 [H, W],
metres, 0 = no return, no upper cap.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from vipocc.data.calibration import Kitti360Calibration

__all__ = [
    "DEPTH_GT_CAMERAS",
    "DepthGtStats",
    "depth_gt_path",
    "depth_gt_sequence",
    "lidar_depth_map",
    "project_velodyne",
    "read_velodyne",
    "resolve_pixel_depths",
    "velodyne_path",
]

DEPTH_GT_CAMERAS = ("image_00", "image_01")


# ------------------------------------------------------------------------------------------------- the math


def _image_size(image_size: Sequence[int]) -> tuple[int, int]:
    try:
        height, width = (int(s) for s in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size: expected (height, width), got {image_size!r}") from None
    if height <= 0 or width <= 0 or (height, width) != tuple(image_size):
        raise ValueError(f"image_size: expected positive integers (height, width), got {image_size!r}")
    return height, width


def _homogeneous_points(points_velo: np.ndarray) -> np.ndarray:
    pts = np.asarray(points_velo)
    if pts.ndim != 2 or pts.shape[1] not in (3, 4) or not np.issubdtype(pts.dtype, np.number):
        raise ValueError(f"points_velo: expected a numeric array [N,4] (or [N,3]), got {pts.dtype} {pts.shape}")
    out = np.ones((len(pts), 4), dtype=np.float32)
    out[:, :3] = pts[:, :3]
    return out


def _projection(T_velo_to_rect: np.ndarray, K_norm: np.ndarray) -> np.ndarray:
    T = np.asarray(T_velo_to_rect, dtype=np.float32)
    K = np.asarray(K_norm, dtype=np.float32)
    if T.shape not in ((4, 4), (3, 4)):
        raise ValueError(f"T_velo_to_rect: expected shape [4,4] or [3,4], got {T.shape}")
    if K.shape != (3, 3):
        raise ValueError(f"K_norm: expected shape [3,3], got {K.shape}")
    if not (np.all(np.isfinite(T)) and np.all(np.isfinite(K))):
        raise ValueError("T_velo_to_rect / K_norm: must be finite")
    return K @ T[:3, :]


def project_velodyne(points_velo: np.ndarray, T_velo_to_rect: np.ndarray, K_norm: np.ndarray,
                     image_size: Sequence[int], filter_behind_camera: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project a Velodyne scan into a [-1,1]-normalised pinhole image as the reference does (steps 1-2).

    Args:
        points_velo: [N,4] (x, y, z, intensity) or [N,3], metres, Velodyne frame; the 4th column is ignored.
        T_velo_to_rect: [4,4] Velodyne -> rectified camera.
        K_norm: [3,3] intrinsics normalised to [-1,1] (fx' = 2 fx / W, cx' = 2 cx / W - 1).
        image_size: (H, W) of the depth map.
        filter_behind_camera: drop points with z <= 0 first (the reference does not).

    Returns:
        rows [M] int64, cols [M] int64, z [M] float32 (z-depth in metres, negative for points behind the
        camera), for the M points that land in the image, in scan order.
    """
    height, width = _image_size(image_size)
    pts = _homogeneous_points(points_velo)
    projected = np.dot(_projection(T_velo_to_rect, K_norm), pts.T).T  # float32 [N,3], as the reference
    if filter_behind_camera:
        projected = projected[projected[:, 2] > 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        u_n = projected[:, 0] / projected[:, 2]
        v_n = projected[:, 1] / projected[:, 2]
    # float32 scalars keep the arithmetic in float32 exactly like the reference's float32 array ops.
    half = np.float32(0.5)
    u = np.round((u_n * half + half) * np.float32(width))
    v = np.round((v_n * half + half) * np.float32(height))
    inside = (u >= 0) & (v >= 0) & (u < width) & (v < height)  # NaN / inf (z == 0) fail every comparison
    return v[inside].astype(np.int64), u[inside].astype(np.int64), projected[inside, 2]


def resolve_pixel_depths(rows: np.ndarray, cols: np.ndarray, z: np.ndarray, image_size: Sequence[int]
                         ) -> np.ndarray:
    """The reference's write-then-deduplicate rule (steps 3-5 of the module docstring), vectorized.

    Args:
        rows, cols: [M] integer pixel coordinates inside the image, in scan order.
        z: [M] depths (any float dtype), metres.
        image_size: (H, W).

    Returns:
        float32 [H, W]: per pixel the last-written depth, the key minimum on the first pixel of every duplicated
        ``v * (W - 1) + u - 1`` key, negatives set to 0.
    """
    height, width = _image_size(image_size)
    rows, cols, z = np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(z)
    if not (rows.shape == cols.shape == z.shape) or rows.ndim != 1:
        raise ValueError(f"rows, cols, z: expected equal 1-D shapes, got {rows.shape}, {cols.shape}, {z.shape}")
    if len(z) and (rows.min() < 0 or rows.max() >= height or cols.min() < 0 or cols.max() >= width):
        raise ValueError(f"rows/cols: pixel outside the {height}x{width} image")
    depth = np.zeros(height * width, dtype=z.dtype if np.issubdtype(z.dtype, np.floating) else np.float64)
    if len(z) == 0:
        return depth.reshape(height, width).astype(np.float32)
    pixel = rows * width + cols

    # Last write wins: the first occurrence in the reversed order is the last one in scan order.
    _, first_in_reversed = np.unique(pixel[::-1], return_index=True)
    last = len(pixel) - 1 - first_in_reversed
    depth[pixel[last]] = z[last]

    # Duplicated sub2ind keys: min depth goes to the pixel of the key's first point (stable sort keeps scan order).
    key = rows * (width - 1) + cols - 1
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_key[1:] != sorted_key[:-1])))
    counts = np.diff(np.append(starts, len(key)))
    key_min = np.minimum.reduceat(z[order], starts)
    duplicated = counts > 1
    depth[pixel[order[starts[duplicated]]]] = key_min[duplicated]

    depth[depth < 0] = 0
    return depth.reshape(height, width).astype(np.float32)


def lidar_depth_map(points_velo: np.ndarray, T_velo_to_rect: np.ndarray, K_norm: np.ndarray,
                    image_size: Sequence[int], filter_behind_camera: bool = False) -> np.ndarray:
    """LiDAR z-depth map of one scan, equal bit for bit to the reference's ``load_depth`` by default.

    Args:
        points_velo: [N,4] float (x, y, z, intensity), metres, Velodyne frame (intensity ignored).
        T_velo_to_rect: [4,4] Velodyne -> rectified camera (``Kitti360Calibration.T_velo_to_rect[c]``).
        K_norm: [3,3] normalised intrinsics (``Kitti360Calibration.K_perspective``).
        image_size: (H, W) of the map (the preprocessed image size, e.g. (192, 640)).
        filter_behind_camera: False = the reference (no z > 0 test); True = drop z <= 0 first (corrected GT).

    Returns:
        float32 [H, W] z-depth in metres in the rectified camera frame; 0 = no return; no upper cap.
    """
    rows, cols, z = project_velodyne(points_velo, T_velo_to_rect, K_norm, image_size, filter_behind_camera)
    return resolve_pixel_depths(rows, cols, z, image_size)


# ------------------------------------------------------------------------------------------------- files


def velodyne_path(raw_root: str | os.PathLike, seq: str, frame: int) -> Path:
    """``<raw_root>/data_3d_raw/<seq>/velodyne_points/data/<frame:010d>.bin``."""
    return Path(raw_root) / "data_3d_raw" / seq / "velodyne_points" / "data" / f"{int(frame):010d}.bin"


def read_velodyne(path: str | os.PathLike) -> np.ndarray:
    """A KITTI Velodyne ``.bin`` scan as float32 [N,4] (x, y, z in metres, intensity).

    Raises FileNotFoundError for a missing file and ValueError for a size that is not a whole number of
    16-byte points (a truncated download).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"velodyne scan {path} not found")
    size = path.stat().st_size
    if size % 16:
        raise ValueError(f"velodyne scan {path}: {size} bytes is not a multiple of 16 (4 float32 per point); "
                         "truncated file?")
    return np.fromfile(path, dtype="<f4").reshape(-1, 4).astype(np.float32, copy=False)


def depth_gt_path(derived_root: str | os.PathLike, seq: str, camera: str, frame: int) -> Path:
    """``<derived_root>/depth_gt/<seq>/<camera>/<frame:010d>.npy`` (camera image_00 or image_01)."""
    if camera not in DEPTH_GT_CAMERAS:
        raise ValueError(f"camera: expected one of {DEPTH_GT_CAMERAS}, got {camera!r}")
    return Path(derived_root) / "depth_gt" / seq / camera / f"{int(frame):010d}.npy"


@dataclasses.dataclass
class DepthGtStats:
    """What one :func:`depth_gt_sequence` call did: .npy files written, skipped (up to date), and all outputs."""
    seq: str
    frames: int
    written: list[Path] = dataclasses.field(default_factory=list)
    skipped: int = 0
    outputs: list[Path] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        return {"seq": self.seq, "frames": self.frames, "written": len(self.written), "skipped": self.skipped}


def depth_gt_sequence(raw_root: str | os.PathLike, derived_root: str | os.PathLike, seq: str,
                      frames: Iterable[int] | None = None, image_size: Sequence[int] = (192, 640),
                      cameras: Sequence[str] = DEPTH_GT_CAMERAS, filter_behind_camera: bool = False,
                      calibration: Kitti360Calibration | None = None, overwrite: bool = False,
                      progress: bool = True) -> DepthGtStats:
    """Write the LiDAR depth GT of every posed frame of `seq` (or of `frames`) for `cameras`.

    image_00 uses ``T_velo_to_rect[0]``, image_01 ``T_velo_to_rect[1]``; both the shared normalised K. Resumable:
    an output at least as new as its scan and the calibration files is skipped (unless `overwrite`; pass it when
    image_size or filter_behind_camera changed, since they are not part of the file name). Each file is written
    atomically. FileNotFoundError / ValueError naming the file for a missing or truncated scan (nothing is written
    for that frame) and ValueError naming poses.txt for a requested frame without a pose.
    """
    from tqdm.auto import tqdm

    from vipocc.data.calibration import load_calibration
    from vipocc.data.poses import load_poses
    from vipocc.data.preprocess import calibration_files, is_up_to_date
    from vipocc.io import save_npy

    size = _image_size(image_size)
    cameras = tuple(cameras)
    for camera in cameras:
        depth_gt_path(derived_root, seq, camera, 0)  # validates the camera name
    calibration = calibration if calibration is not None else load_calibration(raw_root)
    frames = _frames_to_process(load_poses(raw_root, seq), frames)
    calib_files = calibration_files(raw_root)
    stats = DepthGtStats(seq=seq, frames=len(frames))
    for frame in tqdm(frames, desc=f"depth gt {seq}", unit="frame", disable=not progress):
        scan = velodyne_path(raw_root, seq, frame)
        outputs = {camera: depth_gt_path(derived_root, seq, camera, frame) for camera in cameras}
        stats.outputs.extend(outputs.values())
        todo = [camera for camera, path in outputs.items()
                if overwrite or not is_up_to_date(path, [scan, *calib_files])]
        stats.skipped += len(cameras) - len(todo)
        if not todo:
            continue
        points = read_velodyne(scan)
        for camera in todo:
            depth = lidar_depth_map(points, calibration.T_velo_to_rect[int(camera[-1])],
                                    calibration.K_perspective, size, filter_behind_camera)
            save_npy(outputs[camera], depth)
            stats.written.append(outputs[camera])
    return stats


def _frames_to_process(poses, frames: Iterable[int] | None) -> list[int]:
    """All posed frames, or the requested ones after checking that each has a pose (ValueError naming poses.txt)."""
    if frames is None:
        return [int(f) for f in poses.frames]
    requested = [int(f) for f in frames]
    poses.indices_of(np.asarray(requested, dtype=np.int64))
    return requested
