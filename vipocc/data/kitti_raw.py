"""KITTI Raw dataset with BTS's conventions (the secondary dataset of ViPOcc/BTS), read through pykitti.

Layout (KITTI Raw "sync" download; monodepth2 converts the images to .jpg, both are accepted)::

    <root>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    <root>/<date>/<date>_drive_<NNNN>_sync/image_0{2,3}/data/<index:010d>.{png,jpg}
    <root>/<date>/<date>_drive_<NNNN>_sync/velodyne_points/data/<index:010d>.bin
    <pose_root>/<date>/<date>_drive_<NNNN>_sync.txt     BTS pose file: line k = 12 floats, rectified cam 0 -> world

Conventions (BTS ``KittiRawDataset``):

* Cameras: ``image_02`` (left colour) and ``image_03`` (right colour), rectified. Their offset from rectified
  cam 0 is a pure x translation ``T_cam_from_cam0[0, 3] = P_rect_0X[0, 3] / fx`` (metres), so the camera-to-world
  pose of camera X at frame k is ``T_w_cam0[k] @ inv(T_cam_from_cam0)``. World = the pose file's world.
* Intrinsics: ``P_rect_02[:3, :3]`` normalised to [-1, 1] by the original image size (W, H) read from the
  calibration (``S_rect_02``): fx' = 2 fx / W, cx' = 2 cx / W - 1, same for y. Both cameras share it.
* Images: RGB, float in [0, 1], (optionally cropped to the target aspect ratio), ``cv2.resize`` INTER_LINEAR to
  ``image_size``, then mapped to [-1, 1]; tensors [3, H, W].
* GT depth (monodepth2 ``generate_depth_map`` / BTS ``load_depth``): Velodyne points with x >= 0 projected with
  ``P_rect_0X @ R_rect_00 @ T_velo_to_cam0``, pixel = round(u) - 1, round(v) - 1 (the KITTI MATLAB convention),
  value = z-depth in metres of the rectified camera, duplicates resolved by the minimum (with monodepth2's
  ``sub2ind`` key collision reproduced by default), negative depths set to 0, at the *original* resolution.
  The Eigen evaluation restricts it to the Garg crop and 1e-3 < d < 80 (:func:`eigen_crop_depth`).

The split entries are :class:`vipocc.data.eigen_splits.RawSplitEntry` (``<date>/<drive> <index> <l|r>``).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pykitti
import pykitti.utils
import torch
from torch.utils.data import Dataset

from vipocc.data.eigen_splits import RawSplitEntry, as_raw_entries, read_raw_split
from vipocc.evaluation.metrics import garg_crop
from vipocc.geometry.transforms import invert_rigid

__all__ = [
    "CAMERA_OF_SIDE",
    "IMAGE_EXTENSIONS",
    "KittiRawCalibration",
    "load_raw_calibration",
    "normalized_intrinsics",
    "load_bts_poses",
    "pose_file",
    "frame_image_path",
    "read_rgb",
    "read_velodyne",
    "velodyne_depth_map",
    "eigen_crop_depth",
    "load_gt_depth",
    "KittiRawDataset",
]

CAMERA_OF_SIDE = {"l": 2, "r": 3}
IMAGE_EXTENSIONS = ("png", "jpg")  # pykitti's default first; monodepth2's jpg conversion second
EIGEN_MIN_DEPTH, EIGEN_MAX_DEPTH = 1e-3, 80.0
_CAM_TO_CAM, _VELO_TO_CAM = "calib_cam_to_cam.txt", "calib_velo_to_cam.txt"
# every key pykitti's cam-to-cam parser reads (it needs all four cameras), plus the image size
_REQUIRED_KEYS = {_CAM_TO_CAM: {**{f"P_rect_0{i}": 12 for i in range(4)}, **{f"R_rect_0{i}": 9 for i in range(4)},
                                "S_rect_02": 2},
                  _VELO_TO_CAM: {"R": 9, "T": 3}}


# --------------------------------------------------------------------------------------------------- calibration
@dataclass(frozen=True, eq=False)
class KittiRawCalibration:
    """Calibration of one recording day (float64 numpy arrays; metres, pixels).

    Attributes:
        date: the day folder, e.g. ``2011_09_26``.
        raw_size: (H, W) of the rectified colour images (``S_rect_02``).
        P_rect: {2, 3} -> [3, 4] rectified projections of image_02 / image_03 (pixels).
        R_rect_00: [3, 3] rectifying rotation of cam 0 (unrectified cam 0 -> rectified cam 0).
        T_velo_to_cam0: [4, 4] Velodyne -> *unrectified* cam 0 (``calib_velo_to_cam.txt``).
        T_velo_to_cam: {2, 3} -> [4, 4] Velodyne -> rectified camera X (pykitti ``T_cam2_velo``, ``T_cam3_velo``).
        T_cam_from_cam0: {2, 3} -> [4, 4] rectified cam 0 -> rectified camera X (x translation P[0,3] / fx).
        baseline: distance between the image_02 and image_03 centres (pykitti ``b_rgb``, metres).
        K: [3, 3] pixel intrinsics of image_02 (``P_rect_02[:3, :3]``).
    """

    date: str
    raw_size: tuple[int, int]
    P_rect: dict[int, np.ndarray]
    R_rect_00: np.ndarray
    T_velo_to_cam0: np.ndarray
    T_velo_to_cam: dict[int, np.ndarray]
    T_cam_from_cam0: dict[int, np.ndarray]
    baseline: float
    K: np.ndarray

    def cam_to_cam0(self, camera: int) -> np.ndarray:
        """[4, 4] rectified camera ``camera`` (2 or 3) -> rectified cam 0 (BTS's ``inv(T_l)`` / ``inv(T_r)``)."""
        return invert_rigid(self.T_cam_from_cam0[_check_camera(camera)])

    def velo_to_image(self, camera: int) -> np.ndarray:
        """[3, 4] ``P_rect_0X @ R_rect_00 @ T_velo_to_cam0``: Velodyne point -> homogeneous pixel of camera X."""
        R_rect = np.eye(4)
        R_rect[:3, :3] = self.R_rect_00
        return self.P_rect[_check_camera(camera)] @ R_rect @ self.T_velo_to_cam0


def _check_camera(camera: int) -> int:
    if camera not in (2, 3):
        raise ValueError(f"camera: expected 2 (image_02, left) or 3 (image_03, right), got {camera!r}")
    return camera


class _PykittiDayCalibration(pykitti.raw):
    """pykitti's own calibration parser for a day folder, without a drive.

    ``pykitti.raw.__init__`` also globs a drive and parses its OXTS packets and timestamps, which BTS's loader never
    needs (and monodepth2-style copies may lack); only the cam-to-cam / velo-to-cam part is used here.
    """

    def __init__(self, day_folder: Path):  # noqa: D107 - deliberately skips pykitti.raw.__init__
        self.calib_path = str(day_folder)
        self.calib = self._load_calib_cam_to_cam(_VELO_TO_CAM, _CAM_TO_CAM)


def _check_calibration_file(path: Path) -> dict[str, np.ndarray]:
    """Parse ``path`` with pykitti's reader and check the keys this loader needs (name and value count)."""
    if not path.is_file():
        raise FileNotFoundError(f"KITTI Raw calibration file not found: {path}")
    try:
        data = pykitti.utils.read_calib_file(str(path))
    except ValueError as exc:  # a line without ':'
        raise ValueError(f"{path}: malformed calibration line ({exc})") from None
    for key, count in _REQUIRED_KEYS[path.name].items():
        if key not in data or data[key].size != count:
            raise ValueError(f"{path}: key {key!r} missing or malformed (expected {count} numbers)")
    return data


def load_raw_calibration(root: str | os.PathLike, date: str) -> KittiRawCalibration:
    """Calibration of day ``date`` under ``root`` (pykitti's parser; image size from ``S_rect_02``)."""
    day = Path(root) / date
    cam_to_cam = _check_calibration_file(day / _CAM_TO_CAM)
    _check_calibration_file(day / _VELO_TO_CAM)
    calib = _PykittiDayCalibration(day).calib
    width, height = (int(round(v)) for v in cam_to_cam["S_rect_02"])
    if width < 1 or height < 1:
        raise ValueError(f"{day / _CAM_TO_CAM}: S_rect_02 must be a positive image size, got {cam_to_cam['S_rect_02']}")
    P_rect = {2: np.asarray(calib["P_rect_20"], dtype=np.float64), 3: np.asarray(calib["P_rect_30"], dtype=np.float64)}
    for cam, P in P_rect.items():
        if not P[0, 0] > 0:
            raise ValueError(f"{day / _CAM_TO_CAM}: P_rect_0{cam} has a non-positive focal length {P[0, 0]}")
    T_from_cam0 = {}
    for cam, P in P_rect.items():
        T = np.eye(4)
        T[0, 3] = P[0, 3] / P[0, 0]  # rectified cameras differ by an x translation only
        T_from_cam0[cam] = T
    return KittiRawCalibration(
        date=date, raw_size=(height, width), P_rect=P_rect, R_rect_00=np.asarray(calib["R_rect_00"])[:3, :3].copy(),
        T_velo_to_cam0=np.asarray(calib["T_cam0_velo_unrect"], dtype=np.float64),
        T_velo_to_cam={2: np.asarray(calib["T_cam2_velo"]), 3: np.asarray(calib["T_cam3_velo"])},
        T_cam_from_cam0=T_from_cam0, baseline=float(calib["b_rgb"]), K=P_rect[2][:, :3].copy())


def normalized_intrinsics(K: np.ndarray, raw_size: tuple[int, int], image_size: tuple[int, int],
                          keep_aspect_ratio: bool = False) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """Pixel K [3, 3] of a ``raw_size`` (H, W) image -> (K normalised to [-1, 1] float32, crop or None).

    Without ``keep_aspect_ratio`` the whole image is resized to ``image_size`` (aspect not kept) and
    fx' = 2 fx / W, cx' = 2 cx / W - 1 (same in y), independent of ``image_size``. With it, the image is first
    centre-cropped to the aspect ratio of ``image_size``; ``crop`` = (top, left, height, width) in raw pixels and
    K is normalised by the cropped size (integer crop; BTS uses a fractional offset in K, < 0.5 px apart).
    """
    H, W = raw_size
    top, left, height, width = 0, 0, H, W
    if keep_aspect_ratio:
        target = image_size[0] / image_size[1]
        if H / W >= target:
            height = int(round(W * target))
            top = (H - height) // 2
        else:
            width = int(round(H / target))
            left = (W - width) // 2
    K_norm = np.eye(3, dtype=np.float64)
    K_norm[0, 0] = 2.0 * K[0, 0] / width
    K_norm[1, 1] = 2.0 * K[1, 1] / height
    K_norm[0, 2] = 2.0 * (K[0, 2] - left) / width - 1.0
    K_norm[1, 2] = 2.0 * (K[1, 2] - top) / height - 1.0
    return K_norm.astype(np.float32), ((top, left, height, width) if keep_aspect_ratio else None)


# --------------------------------------------------------------------------------------------- poses and files
def pose_file(pose_root: str | os.PathLike, seq: str) -> Path:
    """``<pose_root>/<date>/<drive>.txt`` for ``seq`` = ``<date>/<drive>``."""
    return Path(pose_root) / f"{seq}.txt"


def load_bts_poses(pose_root: str | os.PathLike, seq: str) -> np.ndarray:
    """BTS pose file of ``seq`` -> [N, 4, 4] float64 rectified cam 0 -> world; row k = frame k."""
    path = pose_file(pose_root, seq)
    if not path.is_file():
        raise FileNotFoundError(f"pose file not found: {path}")
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: malformed pose file ({exc})") from None
    if values.shape[0] == 0 or values.shape[1] != 12 or not np.all(np.isfinite(values)):
        raise ValueError(f"{path}: expected lines of 12 finite numbers (3x4 cam0 -> world), got shape {values.shape}")
    poses = np.zeros((len(values), 4, 4))
    poses[:, :3, :] = values.reshape(-1, 3, 4)
    poses[:, 3, 3] = 1.0
    return poses


def frame_image_path(root: str | os.PathLike, seq: str, camera: int, frame: int) -> Path:
    """Image of ``camera`` (2/3) at ``frame``: the .png if present, else the .jpg (FileNotFoundError naming both)."""
    folder = Path(root) / seq / f"image_{_check_camera(camera):02d}" / "data"
    candidates = [folder / f"{int(frame):010d}.{ext}" for ext in IMAGE_EXTENSIONS]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"image not found: {candidates[0]} (nor {candidates[1].name})")


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """uint8 RGB [H, W, 3] (cv2 decoder, as the reference)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: unreadable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_velodyne(path: str | os.PathLike) -> np.ndarray:
    """float32 [N, 4] (x, y, z, reflectance; Velodyne frame: x forward, y left, z up; metres)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Velodyne scan not found: {path}")
    size = path.stat().st_size
    if size % 16:
        raise ValueError(f"{path}: truncated Velodyne scan ({size} bytes is not a multiple of 16 = 4 float32)")
    return pykitti.utils.load_velo_scan(str(path))


# --------------------------------------------------------------------------------------------------- GT depth
def _last_per_pixel(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique pixel ids and, for each, the index of the last point that falls on it (numpy's fancy assignment
    keeps the last write in practice; made explicit here so the result does not depend on that)."""
    reversed_unique, first_in_reversed = np.unique(flat[::-1], return_index=True)
    return reversed_unique, len(flat) - 1 - first_in_reversed


def velodyne_depth_map(points: np.ndarray, P_velo_to_image: np.ndarray, image_size: tuple[int, int], *,
                       matlab_offset: bool = True, reference_duplicates: bool = True,
                       dtype: type = np.float64) -> np.ndarray:
    """Sparse z-depth map [H, W] float32 (metres, 0 = no return) from Velodyne ``points`` [N, >=3].

    monodepth2 / BTS: keep x >= 0, project with ``P_velo_to_image`` [3, 4] (pixels), pixel = round(u) - 1,
    round(v) - 1 (``matlab_offset``; False gives round(u), round(v), where the projection lands), keep pixels
    inside the image, then resolve several points on one pixel by the minimum z. ``reference_duplicates``
    reproduces monodepth2's ``sub2ind`` key ``v * (W - 1) + u - 1``, under which pixel (v, W-1) and (v+1, 0) share a
    key and the minimum over both is written to the pixel of the first point; False = exact per-pixel minimum.
    Negative depths become 0. ``dtype``: arithmetic precision (monodepth2 float64; BTS computes in float32).
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"points: expected [N, 3] or [N, 4], got shape {points.shape}")
    P = np.asarray(P_velo_to_image, dtype=dtype)
    if P.shape != (3, 4):
        raise ValueError(f"P_velo_to_image: expected [3, 4], got shape {P.shape}")
    H, W = (int(s) for s in image_size)
    xyz = points[points[:, 0] >= 0, :3].astype(dtype)
    projected = xyz @ P[:, :3].T + P[:, 3]
    with np.errstate(divide="ignore", invalid="ignore"):  # z = 0 gives inf / nan, dropped by the bounds test
        uv = np.round(projected[:, :2] / projected[:, 2:3]) - (1 if matlab_offset else 0)
    inside = (uv[:, 0] >= 0) & (uv[:, 1] >= 0) & (uv[:, 0] < W) & (uv[:, 1] < H)
    u, v = uv[inside, 0].astype(np.int64), uv[inside, 1].astype(np.int64)
    z = projected[inside, 2]
    depth = np.zeros(H * W, dtype=np.float64)
    flat = v * W + u
    if reference_duplicates:
        pixels, last = _last_per_pixel(flat)
        depth[pixels] = z[last]
        keys = v * (W - 1) + u - 1
        _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
        key_min = np.full(len(first), np.inf)
        np.minimum.at(key_min, inverse, z)
        shared = counts > 1
        depth[flat[first[shared]]] = key_min[shared]
    else:
        depth_min = np.full(H * W, np.inf)
        np.minimum.at(depth_min, flat, z)
        hit = np.isfinite(depth_min)
        depth[hit] = depth_min[hit]
    depth[depth < 0] = 0.0
    return depth.reshape(H, W).astype(np.float32)


def eigen_crop_depth(depth: np.ndarray, min_depth: float = EIGEN_MIN_DEPTH,
                     max_depth: float = EIGEN_MAX_DEPTH) -> np.ndarray:
    """Eigen evaluation GT: ``depth`` [..., H, W] with 0 outside the Garg crop and outside (min_depth, max_depth)."""
    depth = np.asarray(depth)
    keep = garg_crop(depth.shape[-2:]) & (depth > min_depth) & (depth < max_depth)
    return np.where(keep, depth, 0).astype(depth.dtype)


def load_gt_depth(root: str | os.PathLike, seq: str, frame: int, calibration: KittiRawCalibration,
                  camera: int = 2, *, eigen_crop: bool = False, **options) -> np.ndarray:
    """GT depth [H, W] float32 of ``camera`` at ``frame`` from its Velodyne scan, at the calibration's image size.
    ``options`` go to :func:`velodyne_depth_map`; ``eigen_crop`` applies :func:`eigen_crop_depth`."""
    path = Path(root) / seq / "velodyne_points" / "data" / f"{int(frame):010d}.bin"
    depth = velodyne_depth_map(read_velodyne(path), calibration.velo_to_image(camera), calibration.raw_size,
                               **options)
    return eigen_crop_depth(depth) if eigen_crop else depth


# ----------------------------------------------------------------------------------------------------- dataset
@dataclass(frozen=True)
class _Drive:
    poses: np.ndarray  # [N, 4, 4] rectified cam 0 -> world
    length: int  # number of image_02 frames (BTS clamps neighbour ids to it)
    calibration: KittiRawCalibration


def _listed_frames(folder: Path, suffixes: tuple[str, ...] = (".png", ".jpg")) -> np.ndarray:
    """Sorted frame indices of the ``<index:010d><suffix>`` files in ``folder``."""
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    stems = [name[:-4] for name in os.listdir(folder) if name[-4:] in suffixes and name[:-4].isdigit()]
    return np.unique(np.array(stems, dtype=np.int64))


class KittiRawDataset(Dataset):
    """BTS-style KITTI Raw samples.

    Args:
        root: folder holding the ``<date>`` folders. pose_root: folder holding ``<date>/<drive>.txt`` pose files.
        split_entries: RawSplitEntry / ``(seq, frame, side)`` items, or the path of a split file.
        image_size: (H, W) of the returned images. frame_count, dilation, keyframe_offset: temporal window as BTS
            (ids = [t] + the others of range(t - left_offset, t - left_offset + frame_count * dilation, dilation),
            clamped to the drive; left_offset = ((frame_count - 1) // 2 + keyframe_offset) * dilation).
        return_stereo: add the other camera's views after the key camera's.
        return_gt_depth: add the key camera's Velodyne GT depth at frame t (original resolution).
        eigen_crop: restrict that GT to the Garg crop and 1e-3 < d < 80 (BTS ``eigen_depth``).
        keep_aspect_ratio: centre-crop to the aspect of ``image_size`` before resizing (K adjusted).
        pseudo_depth_root: if given, read ``<root>/<drive>/image_0X/data/<index:010d>.npy`` for the key camera's
            views (the reference's layout; it ships no generator for KITTI Raw).
        depth_options: extra keyword arguments of :func:`velodyne_depth_map`.

    Sample (V = frame_count * (2 if return_stereo else 1); key camera = image_03 for an 'r' entry):
        imgs: V x float32 [3, H, W] in [-1, 1], order [key cam t, key cam t+1, ..., other cam t, other cam t+1, ...];
        projs: V x float32 [3, 3] normalised K; poses: V x float32 [4, 4] camera -> world (pose-file world);
        depths: [] or [float32 [1, H_raw, W_raw]]; pseudo_depth: [] or frame_count x float32 [1, h, w];
        ts: int64 [V] frame indices of the views; index, is_right, seq (``<date>/<drive>``), img_id (frame t).
    """

    def __init__(self, root: str | os.PathLike, pose_root: str | os.PathLike,
                 split_entries: Iterable[RawSplitEntry | Sequence] | str | os.PathLike,
                 image_size: tuple[int, int] = (192, 640), frame_count: int = 2, return_stereo: bool = True,
                 return_gt_depth: bool = False, eigen_crop: bool = True, *, keep_aspect_ratio: bool = False,
                 dilation: int = 1, keyframe_offset: int = 0, pseudo_depth_root: str | os.PathLike | None = None,
                 depth_options: dict | None = None):
        if len(image_size) != 2 or any(int(s) != s or s < 1 for s in image_size):
            raise ValueError(f"image_size: expected (H, W) positive integers, got {image_size!r}")
        for name, value, low in (("frame_count", frame_count, 1), ("dilation", dilation, 1),
                                 ("keyframe_offset", keyframe_offset, None)):
            if isinstance(value, bool) or int(value) != value or (low is not None and value < low):
                raise ValueError(f"{name}: expected an integer{f' >= {low}' if low else ''}, got {value!r}")
        self.root, self.pose_root = Path(root), Path(pose_root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"KITTI Raw root not found: {self.root}")
        if isinstance(split_entries, (str, os.PathLike)):
            self.entries = read_raw_split(split_entries)
        else:
            self.entries = as_raw_entries(split_entries, "split_entries")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.frame_count, self.dilation, self.keyframe_offset = int(frame_count), int(dilation), int(keyframe_offset)
        self.left_offset = ((self.frame_count - 1) // 2 + self.keyframe_offset) * self.dilation
        self.return_stereo, self.return_gt_depth, self.eigen_crop = return_stereo, return_gt_depth, eigen_crop
        self.keep_aspect_ratio = keep_aspect_ratio
        self.pseudo_depth_root = None if pseudo_depth_root is None else Path(pseudo_depth_root)
        self.depth_options = dict(depth_options or {})
        calibrations = {date: load_raw_calibration(self.root, date) for date in sorted({e.date for e in self.entries})}
        by_seq: dict[str, list[RawSplitEntry]] = {}
        for entry in self.entries:
            by_seq.setdefault(entry.seq, []).append(entry)
        self.drives = {seq: self._load_drive(seq, entries, calibrations[entries[0].date])
                       for seq, entries in sorted(by_seq.items())}
        self.intrinsics = {date: normalized_intrinsics(c.K, c.raw_size, self.image_size, keep_aspect_ratio)
                           for date, c in calibrations.items()}

    def _load_drive(self, seq: str, entries: list[RawSplitEntry], calibration: KittiRawCalibration) -> _Drive:
        """Poses and length of ``seq``; checks that every split frame of it (``entries``) has a pose and its files
        on disk."""
        poses = load_bts_poses(self.pose_root, seq)
        frames = np.array([e.frame for e in entries], dtype=np.int64)
        no_pose = frames >= len(poses)
        if no_pose.any():
            raise ValueError(f"{pose_file(self.pose_root, seq)}: {len(poses)} poses, no pose for split frame(s) "
                             f"{sorted(set(frames[no_pose].tolist()))[:20]}")
        listed = {cam: _listed_frames(self.root / seq / f"image_{cam:02d}" / "data") for cam in (2, 3)}
        right = np.array([e.is_right for e in entries])
        for cam in (2, 3):
            needed = np.ones_like(right) if self.return_stereo else (right == (cam == 3))
            missing = needed & ~np.isin(frames, listed[cam])
            if missing.any():  # raises FileNotFoundError naming the first missing file
                frame_image_path(self.root, seq, cam, int(frames[missing][0]))
        if self.return_gt_depth:
            velodyne = self.root / seq / "velodyne_points" / "data"
            missing = ~np.isin(frames, _listed_frames(velodyne, (".bin",)))
            if missing.any():
                raise FileNotFoundError(f"Velodyne scan not found: {velodyne / f'{int(frames[missing][0]):010d}.bin'}")
        return _Drive(poses=poses, length=len(listed[2]), calibration=calibration)

    def __len__(self) -> int:
        return len(self.entries)

    def frame_ids(self, entry: RawSplitEntry) -> list[int]:
        """Frame indices of the temporal window of ``entry`` (BTS: key frame first, neighbours clamped)."""
        last = min(self.drives[entry.seq].length, len(self.drives[entry.seq].poses)) - 1
        start = entry.frame - self.left_offset
        window = range(start, start + self.frame_count * self.dilation, self.dilation)
        return [entry.frame] + [max(min(i, last), 0) for i in window if i != entry.frame]

    def _image(self, seq: str, camera: int, frame: int, crop: tuple[int, int, int, int] | None) -> torch.Tensor:
        path = frame_image_path(self.root, seq, camera, frame)
        rgb = read_rgb(path)
        raw_size = self.drives[seq].calibration.raw_size
        if rgb.shape[:2] != raw_size:
            raise ValueError(f"{path}: image is {rgb.shape[1]}x{rgb.shape[0]}, calibration S_rect_02 says "
                             f"{raw_size[1]}x{raw_size[0]}")
        image = rgb.astype(np.float32) / 255.0  # the reference resizes the float image, not the uint8 one
        if crop is not None:
            top, left, height, width = crop
            image = image[top:top + height, left:left + width]
        image = cv2.resize(image, (self.image_size[1], self.image_size[0]), interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)) * 2.0 - 1.0)

    def _pseudo_depth(self, seq: str, camera: int, frame: int) -> torch.Tensor:
        path = self.pseudo_depth_root / seq.split("/", 1)[1] / f"image_{camera:02d}" / "data" / f"{frame:010d}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"pseudo depth not found: {path}")
        depth = np.load(path).astype(np.float32)
        return torch.from_numpy(depth if depth.ndim == 3 else depth[None])

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index = index % len(self)
        entry = self.entries[index]
        drive = self.drives[entry.seq]
        K_norm, crop = self.intrinsics[entry.date]
        key = CAMERA_OF_SIDE[entry.side]
        cameras = [key, 5 - key] if self.return_stereo else [key]
        ids = self.frame_ids(entry)
        views = [(cam, i) for cam in cameras for i in ids]
        cam_to_cam0 = {cam: drive.calibration.cam_to_cam0(cam) for cam in cameras}
        sample = {
            "imgs": [self._image(entry.seq, cam, i, crop) for cam, i in views],
            "projs": [torch.from_numpy(K_norm.copy()) for _ in views],
            "poses": [torch.from_numpy((drive.poses[i] @ cam_to_cam0[cam]).astype(np.float32)) for cam, i in views],
            "depths": [],
            "pseudo_depth": [],
            "ts": torch.tensor([i for _, i in views], dtype=torch.int64),
            "index": index,
            "is_right": entry.is_right,
            "seq": entry.seq,
            "img_id": entry.frame,
        }
        if self.return_gt_depth:
            depth = load_gt_depth(self.root, entry.seq, entry.frame, drive.calibration, key,
                                  eigen_crop=self.eigen_crop, **self.depth_options)
            sample["depths"] = [torch.from_numpy(depth[None])]
        if self.pseudo_depth_root is not None:
            sample["pseudo_depth"] = [self._pseudo_depth(entry.seq, key, i) for i in ids]
        return sample
