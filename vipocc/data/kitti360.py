"""The KITTI-360 training / evaluation sample of ViPOcc (reference-implementation.md 1.11, 5.3).

One datapoint is a split entry ``(seq, frame, side)``; its *id* is the pose index of the frame (ids index the posed
frames, see :mod:`vipocc.data.poses`). With ``frame_count`` F (2 for training, 1 for evaluation), ``dilation`` D,
``keyframe_offset`` k and ``left = ((F - 1) // 2 + k) * D``:

* perspective ids: ``[id] + [i for i in range(id - left, id - left + F D, D) if i != id]``, each clamped to
  ``[0, N - 1]`` (N posed frames; near the end of a sequence ids repeat, as in the reference);
* fisheye ids: the same around ``id + fo``, ``fo = fisheye_offset`` (posed frames, so it jumps over frame-number
  gaps), or drawn in ``[low_fisheye_offset, up_fisheye_offset]`` per sample when ``variant_fisheye_offset``.

Views, in slot order (V = 8 for F = 2 with stereo and fisheyes); "key" is image_00 for an ``l`` entry and image_01
for an ``r`` entry (the left/right swap), "other" the opposite side:

    key perspective (F views) | other perspective (F, if return_stereo) | key-side fisheye (F, if return_fisheye)
    | other-side fisheye (F, if return_stereo and return_fisheye)

so with F = 2: 0 key t, 1 key t+1, 2 other t, 3 other t+1, 4 key-side fisheye t+fo, 5 t+fo+1, 6 other-side
fisheye t+fo, 7 t+fo+1 (:data:`vipocc.models.frame_roles.VIEW_SLOTS`). The fisheye views are the virtual pinhole
views (:func:`fisheye_to_pinhole_grid`), which share the normalised perspective K.

Sample keys (before collation):

* ``imgs``: V x float32 [3,H,W] in [-1, 1]; ``projs``: V x float32 [3,3] normalised K;
* ``poses``: V x [4,4] camera-to-world (KITTI-360 world frame, m; ``pose_dtype``, float32 as the reference by
  default): ``imu_to_world[id] @ T_rect_to_pose[c]`` (perspective) or ``@ T_virtual_to_pose[c]`` (fisheye);
* ``depths``: F x float32 [1,H,W] LiDAR GT (``<derived>/depth_gt/<seq>/image_0X/<frame>.npy``, frames t, t+1):
  image_00's map for every sample by default (``gt_depth_camera="left"``, the reference, even for ``r`` samples
  whose view 0 is image_01), or the key camera's (``"key"``, uses the image_01 GT the reference lacks);
  ``pseudo_depth``: F x float32 [1,H,W] of the key camera
  (``<derived>/depth/<seq>/image_0X/data_<H>x<W>/<frame>.npy``);
* ``samples``: int32 [P,S,A,2] SNOG anchors (x, y) of the P perspective views in slot order
  (``<derived>/samples/<seq>/image_0X/data_<H>x<W>/<frame>.npy``), or [] when off. Unlike the reference (which
  picks 16 random anchors per view here), all S x A anchors are returned: the ray sampler
  (:class:`vipocc.models.ray_sampler.SnogSampler`) draws from them with its own generator;
* ``3d_bboxes`` (when ``return_3d_bboxes``): the boxes seen by view 0 at the key frame
  (:func:`vipocc.data.bboxes.boxes_in_view`) as tensors, N may be 0;
* voxel GT (when ``return_voxel``): whatever ``voxel_loader(seq, frame, key_cam_to_world)`` returns, merged in;
* ``ts``: int32 [V] pose ids of the views; ``segs``: [] (segmentation is not supported); ``index``: int64 [1];
  ``is_right``: bool; ``seq``: str; ``img_id``: int, the key frame number.

Images come from the raw root (``is_preprocessed`` false: ``data_rect`` resized with cv2 INTER_LINEAR, ``data_rgb``
resampled through the MEI grid, in float as the reference) or from the derived root's preprocessed folders named by
:func:`preprocessed_folders` (true). Everything derived (depth GT, pseudo depth, anchors) is read from the derived
root. Randomness (variant fisheye offset, colour jitter) comes from ``numpy.random.default_rng([seed, epoch,
index])``: a sample is a pure function of (seed, epoch, index).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from vipocc.data.bboxes import BoxArrays, boxes_in_view, load_bboxes, stack_boxes
from vipocc.data.calibration import Kitti360Calibration, load_calibration
from vipocc.data.images import (
    check_image_size,
    color_jitter,
    draw_color_jitter,
    fisheye_to_pinhole_grid,
    preprocessed_folders,
    read_image,
    resample_fisheye_float,
    resize_perspective_float,
    to_unit_float,
)
from vipocc.data.poses import SequencePoses, load_poses
from vipocc.data.splits import read_split, split_file

__all__ = ["Kitti360Dataset", "collate", "fisheye_to_pinhole_grid", "OPTION_KEYS", "sample_ids"]

OPTION_KEYS = (
    "split", "return_stereo", "return_fisheye", "return_segmentation", "return_voxel", "return_gt_depth",
    "return_pseudo_depth", "return_samples", "return_3d_bboxes", "bboxes_semantic_labels",
    "bbox_all_verts_in_frustum", "frame_count", "keyframe_offset", "dilation", "fisheye_offset", "color_aug",
    "is_preprocessed", "variant_fisheye_offset", "low_fisheye_offset", "up_fisheye_offset",
)
VoxelLoader = Callable[[str, int, np.ndarray], Mapping[str, Any]]


def sample_ids(pose_id: int, n_posed: int, frame_count: int, dilation: int, left_offset: int) -> list[int]:
    """Pose ids of a sample's frames around ``pose_id``: ``pose_id`` first, then the others of
    ``range(pose_id - left_offset, pose_id - left_offset + frame_count * dilation, dilation)``, clamped to
    ``[0, n_posed - 1]`` (the reference's rule; the centre id itself is not clamped, only the others)."""
    others = range(pose_id - left_offset, pose_id - left_offset + frame_count * dilation, dilation)
    return [pose_id] + [min(max(i, 0), n_posed - 1) for i in others if i != pose_id]


class Kitti360Dataset(Dataset):
    """ViPOcc's KITTI-360 dataset (see the module docstring for the sample layout).

    Args:
        raw_root: KITTI-360 root (calibration/, data_poses/, data_2d_raw/, data_3d_bboxes/); never written.
        derived_root: root of the derived data (preprocessed images, depth_gt/, depth/, samples/).
        split_dir: folder holding ``<split>_files.txt``; ``options["split"]`` picks the file.
        options: one ``datasets.<use>`` config block (every key of :data:`OPTION_KEYS`).
        image_size: (H, W) of the returned images (config ``preprocess.image_size``).
        fisheye_rotation: (yaw, pitch) degrees of the virtual fisheye views (``preprocess.fisheye_rotation``).
        calibration: a loaded calibration (default: read from ``raw_root``); its rotation must match.
        seed: seed of the per-sample randomness; gt_depth_camera: "left" (reference) or "key" (module docstring);
        voxel_loader: ``(seq, frame, key_cam_to_world [4,4]) -> mapping`` merged into the sample when
        ``return_voxel`` (the voxel GT format belongs to vipocc.data.voxel_gt); pose_dtype: dtype of ``poses``.
    """

    def __init__(self, raw_root: str | os.PathLike, derived_root: str | os.PathLike | None,
                 split_dir: str | os.PathLike, options: Mapping[str, Any], image_size: Sequence[int] = (192, 640),
                 fisheye_rotation: Sequence[float] = (0.0, -15.0), calibration: Kitti360Calibration | None = None,
                 *, seed: int = 0, gt_depth_camera: str = "left", voxel_loader: VoxelLoader | None = None,
                 pose_dtype: torch.dtype = torch.float32) -> None:
        self.raw_root = Path(raw_root)
        self.derived_root = Path(derived_root) if derived_root is not None else None
        self.options = _check_options(options)
        self.image_size = check_image_size(image_size)
        self.calibration = calibration if calibration is not None else load_calibration(raw_root, fisheye_rotation)
        if not np.allclose(self.calibration.fisheye_rotation, _as_rotation(fisheye_rotation)):
            raise ValueError(f"calibration: fisheye_rotation {self.calibration.fisheye_rotation} differs from "
                             f"fisheye_rotation {tuple(fisheye_rotation)}")
        if gt_depth_camera not in ("left", "key"):
            raise ValueError(f"gt_depth_camera: expected 'left' or 'key', got {gt_depth_camera!r}")
        self.perspective_folder, self.fisheye_folder = preprocessed_folders(self.image_size, fisheye_rotation)
        self.seed, self.gt_depth_camera, self.pose_dtype = int(seed), gt_depth_camera, pose_dtype
        self.voxel_loader = voxel_loader
        self._check_requirements()
        self.split_path = split_file(split_dir, self.options["split"])
        self._poses: dict[str, SequencePoses] = {}
        self._boxes: dict[str, BoxArrays] = {}
        self._grids: dict[int, torch.Tensor] = {}
        self.datapoints = self._load_datapoints()
        self.epoch = 0
        opts = self.options
        self.left_offset = ((opts["frame_count"] - 1) // 2 + opts["keyframe_offset"]) * opts["dilation"]

    @classmethod
    def from_config(cls, config: Mapping[str, Any], use: str, raw_root: str | os.PathLike,
                    derived_root: str | os.PathLike | None, split_dir: str | os.PathLike,
                    **kwargs) -> "Kitti360Dataset":
        """Build from a validated config: ``datasets.<use>`` options, ``preprocess.image_size/fisheye_rotation``."""
        if use not in config.get("datasets", {}):
            raise ValueError(f"use: no datasets.{use} block in the config (have {sorted(config.get('datasets', {}))})")
        pre = config["preprocess"]
        return cls(raw_root, derived_root, split_dir, config["datasets"][use], pre["image_size"],
                   pre["fisheye_rotation"], **kwargs)

    # ------------------------------------------------------------------------------------------------ set-up
    def _check_requirements(self) -> None:
        opts = self.options
        if opts["return_segmentation"]:
            raise ValueError("options.return_segmentation: segmentation labels are not supported (unused by ViPOcc)")
        if opts["return_voxel"] and self.voxel_loader is None:
            raise ValueError("options.return_voxel is true but no voxel_loader was given "
                             "(pass the voxel GT reader of vipocc.data.voxel_gt)")
        if opts["variant_fisheye_offset"]:
            low, up = opts["low_fisheye_offset"], opts["up_fisheye_offset"]
            if low is None or up is None or low > up:
                raise ValueError("options.variant_fisheye_offset needs low_fisheye_offset <= up_fisheye_offset, "
                                 f"got {low!r}, {up!r}")
        needs_derived = (opts["is_preprocessed"] or opts["return_gt_depth"] or opts["return_pseudo_depth"]
                         or opts["return_samples"])
        if needs_derived and self.derived_root is None:
            raise ValueError("derived_root: required for preprocessed images, depth GT, pseudo depth or anchors")

    def _load_datapoints(self) -> list[tuple[str, int, bool]]:
        """(seq, pose id, is_right) per split entry; an entry whose frame has no pose names the split and poses."""
        entries = read_split(self.split_path)
        by_seq: dict[str, list[int]] = {}
        for position, entry in enumerate(entries):  # group entries by sequence, keep file order
            by_seq.setdefault(entry.seq, []).append(position)
        pose_ids = np.zeros(len(entries), dtype=np.int64)
        for seq, positions in by_seq.items():  # a handful of sequences
            frames = np.array([entries[p].frame for p in positions], dtype=np.int64)
            try:
                pose_ids[positions] = self.poses(seq).indices_of(frames)
            except (ValueError, FileNotFoundError) as err:
                raise type(err)(f"{self.split_path}: {err}") from None
        return [(e.seq, int(i), e.is_right) for e, i in zip(entries, pose_ids)]

    def poses(self, seq: str) -> SequencePoses:
        """Poses of ``seq`` (loaded once)."""
        if seq not in self._poses:
            self._poses[seq] = load_poses(self.raw_root, seq)
        return self._poses[seq]

    def boxes(self, seq: str) -> BoxArrays:
        """3D boxes of ``seq`` as arrays (loaded once)."""
        if seq not in self._boxes:
            self._boxes[seq] = stack_boxes(load_bboxes(self.raw_root, seq))
        return self._boxes[seq]

    def grid(self, cam: int) -> torch.Tensor:
        """Sampling grid [H,W,2] of fisheye ``cam`` (2 or 3) into its virtual pinhole view (computed once)."""
        if cam not in self._grids:
            calib = self.calibration
            self._grids[cam] = torch.from_numpy(fisheye_to_pinhole_grid(
                calib.K_perspective, self.image_size, calib.mei_normalized[cam], calib.R_fisheye[cam]))
        return self._grids[cam]

    def set_epoch(self, epoch: int) -> None:
        """Change the random stream of the samples (variant fisheye offset, colour jitter) for a new epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.datapoints)

    # ------------------------------------------------------------------------------------------------ paths
    def image_path(self, seq: str, cam: int, frame: int) -> Path:
        """File the view of camera ``cam`` at image number ``frame`` is read from (raw or preprocessed)."""
        if self.options["is_preprocessed"]:
            folder = self.perspective_folder if cam < 2 else self.fisheye_folder
            return self.derived_root / "data_2d_raw" / seq / f"image_{cam:02d}" / folder / f"{frame:010d}.png"
        folder = "data_rect" if cam < 2 else "data_rgb"
        return self.raw_root / "data_2d_raw" / seq / f"image_{cam:02d}" / folder / f"{frame:010d}.png"

    def derived_path(self, kind: str, seq: str, cam: int, frame: int) -> Path:
        """``depth_gt``: <derived>/depth_gt/<seq>/image_0X/<frame>.npy; ``depth`` (pseudo depth) and ``samples``:
        <derived>/<kind>/<seq>/image_0X/data_<H>x<W>/<frame>.npy."""
        base = self.derived_root / kind / seq / f"image_{cam:02d}"
        if kind != "depth_gt":
            base = base / self.perspective_folder
        return base / f"{frame:010d}.npy"

    # ------------------------------------------------------------------------------------------------ loading
    def _image(self, seq: str, cam: int, frame: int, jitter: dict | None) -> torch.Tensor:
        """float32 [3,H,W] in [-1, 1] of one view."""
        path = self.image_path(seq, cam, frame)
        image01 = to_unit_float(read_image(path))
        if self.options["is_preprocessed"]:
            if image01.shape[:2] != self.image_size:
                raise ValueError(f"{path}: preprocessed image is {image01.shape[0]}x{image01.shape[1]}, expected "
                                 f"{self.image_size[0]}x{self.image_size[1]} (stale folder?)")
        elif cam < 2:
            image01 = resize_perspective_float(image01, self.image_size)
        else:
            image01 = resample_fisheye_float(image01, self.grid(cam))
        tensor = torch.from_numpy(np.ascontiguousarray(image01)).permute(2, 0, 1)
        if jitter is not None:
            tensor = color_jitter(tensor, jitter)
        return tensor * 2 - 1

    def _map(self, path: Path, dtype=np.float32) -> np.ndarray:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: file not found")
        try:
            return np.load(path).astype(dtype)
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"{path}: unreadable .npy ({err})") from None

    def _depth_map(self, kind: str, seq: str, cam: int, frame: int) -> torch.Tensor:
        path = self.derived_path(kind, seq, cam, frame)
        depth = self._map(path)
        if depth.shape != self.image_size:
            raise ValueError(f"{path}: expected a [{self.image_size[0]},{self.image_size[1]}] map, got {depth.shape}")
        return torch.from_numpy(depth)[None]

    def _anchors(self, seq: str, views: list[tuple[int, int]]) -> torch.Tensor:
        """int32 [P,S,A,2] anchors of the perspective views (cam, frame) in slot order."""
        arrays = [self._map(self.derived_path("samples", seq, cam, frame), np.int32) for cam, frame in views]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[2] != 2:
            raise ValueError(f"anchors of {seq} {views}: expected equal [S,A,2] arrays, got shapes {sorted(shapes)}")
        return torch.from_numpy(np.stack(arrays))

    def _bbox_tensors(self, seq: str, frame: int, cam_to_world: np.ndarray) -> dict[str, torch.Tensor]:
        found = boxes_in_view(self.boxes(seq), frame, np.linalg.inv(cam_to_world), self.calibration.K_perspective,
                              self.options["bboxes_semantic_labels"], self.options["bbox_all_verts_in_frustum"])
        return {k: torch.from_numpy(v.astype(np.int64 if v.dtype.kind == "i" else np.float32))
                for k, v in found.items()}

    # ------------------------------------------------------------------------------------------------ sample
    def view_table(self, index: int) -> list[tuple[int, int]]:
        """(camera, pose id) of every view slot of datapoint ``index`` (deterministic part of a sample)."""
        return self._views(index, self._rng(index))[0]

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def _views(self, index: int, rng: np.random.Generator) -> tuple[list[tuple[int, int]], list[int]]:
        seq, pose_id, is_right = self.datapoints[index]
        opts = self.options
        n_posed = len(self.poses(seq))
        args = (n_posed, opts["frame_count"], opts["dilation"], self.left_offset)
        ids = sample_ids(pose_id, *args)
        offset = (int(rng.integers(opts["low_fisheye_offset"], opts["up_fisheye_offset"] + 1))
                  if opts["variant_fisheye_offset"] else opts["fisheye_offset"])
        # The centre fisheye id is clamped too (the reference clamps it explicitly).
        ids_fish = sample_ids(pose_id + offset, *args)
        ids_fish[0] = min(max(ids_fish[0], 0), n_posed - 1)
        key, other = (1, 0) if is_right else (0, 1)
        views = [(key, i) for i in ids]
        if opts["return_stereo"]:
            views += [(other, i) for i in ids]
        if opts["return_fisheye"]:
            views += [(2 + key, i) for i in ids_fish]
            if opts["return_stereo"]:
                views += [(2 + other, i) for i in ids_fish]
        return views, ids

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        seq, pose_id, is_right = self.datapoints[index]
        opts, calib = self.options, self.calibration
        rng = self._rng(index)
        views, ids = self._views(index, rng)
        poses = self.poses(seq)
        frames = poses.frames
        jitter = draw_color_jitter(rng) if opts["color_aug"] else None
        cam_to_world = [poses.imu_to_world[i] @ calib.view_to_pose(cam) for cam, i in views]
        key = 1 if is_right else 0
        key_frames = [int(frames[i]) for i in ids]
        sample: dict[str, Any] = {
            "imgs": [self._image(seq, cam, int(frames[i]), jitter) for cam, i in views],
            "projs": [torch.from_numpy(calib.K_perspective.astype(np.float32)) for _ in views],
            "poses": [torch.from_numpy(T).to(self.pose_dtype) for T in cam_to_world],
            "depths": [], "pseudo_depth": [], "samples": [], "segs": [],
            "ts": np.array([i for _, i in views], dtype=np.int32),
            "index": np.array([index]), "is_right": bool(is_right), "seq": seq, "img_id": key_frames[0],
        }
        if opts["return_gt_depth"]:
            gt_cam = key if self.gt_depth_camera == "key" else 0
            sample["depths"] = [self._depth_map("depth_gt", seq, gt_cam, f) for f in key_frames]
        if opts["return_pseudo_depth"]:
            sample["pseudo_depth"] = [self._depth_map("depth", seq, key, f) for f in key_frames]
        if opts["return_samples"]:
            sample["samples"] = self._anchors(seq, [(cam, int(frames[i])) for cam, i in views if cam < 2])
        if opts["return_3d_bboxes"]:
            sample["3d_bboxes"] = self._bbox_tensors(seq, key_frames[0], cam_to_world[0])
        if opts["return_voxel"]:
            sample.update(self.voxel_loader(seq, key_frames[0], cam_to_world[0]))
        return sample


def collate(batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Collate samples: like torch's default_collate, except ``3d_bboxes`` (N differs per sample), which stays a
    list of per-sample dicts, and empty lists (``depths``, ``samples``, ... when off), which stay []."""
    batch = [dict(sample) for sample in batch]
    boxes = [sample.pop("3d_bboxes") for sample in batch] if batch and "3d_bboxes" in batch[0] else None
    empty = [k for k, v in batch[0].items() if isinstance(v, list) and not v] if batch else []
    for sample in batch:
        for k in empty:
            sample.pop(k)
    out = default_collate(batch)
    out.update({k: [] for k in empty})
    if boxes is not None:
        out["3d_bboxes"] = boxes
    return out


# ---------------------------------------------------------------------------------------------------- helpers


def _as_rotation(fisheye_rotation) -> tuple[float, float]:
    values = np.atleast_1d(np.asarray(fisheye_rotation, dtype=np.float64)).ravel()
    return (0.0, float(values[0])) if values.size == 1 else (float(values[0]), float(values[1]))


def _check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(options, Mapping):
        raise ValueError(f"options: expected a datasets.<use> config block (mapping), got {type(options).__name__}")
    missing = [k for k in OPTION_KEYS if k not in options]
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if missing or unknown:
        raise ValueError(f"options: missing keys {missing}, unknown keys {unknown} (see datasets.<use> in the schema)")
    opts = dict(options)
    if opts["frame_count"] not in (1, 2):
        raise ValueError(f"options.frame_count: expected 1 or 2, got {opts['frame_count']!r}")
    if opts["dilation"] < 1 or opts["fisheye_offset"] < 0:
        raise ValueError(f"options: dilation must be >= 1 and fisheye_offset >= 0, got {opts['dilation']!r}, "
                         f"{opts['fisheye_offset']!r}")
    return opts
