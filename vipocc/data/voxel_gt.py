"""Voxel ground truth in the SSCBench-KITTI-360 format (what the fork's ``eval_voxel`` reads): writer for the
synthetic world, reader for both the synthetic files and the user's SSCBench download.

Grid (SSCBench): 256 x 256 x 32 voxels of 0.2 m in the *velodyne frame* of the voxel frame, axis-aligned with it
(x forward, y left, z up), lowest corner at ``VOXEL_ORIGIN = (1, -25.6, -2.5)`` m; voxel (i, j, k) has its centre at
``VOXEL_ORIGIN + (i + 0.5, j + 0.5, k + 0.5) * 0.2``; arrays are indexed ``[i, j, k]`` (C order).

Labels (uint8 ``[256, 256, 32]``): 0 = empty, 255 = unknown, anything else = occupied. SSCBench stores its
19-class learning ids there; the synthetic writer stores the KITTI-360 label id of the solid containing the voxel
*centre* (car 26, road 7, building 11, ...; 1 for a solid without a class), and 255 for centres outside the xy
extent of the modelled world (the union of the scene's solid bounds). The fork's evaluator only tests
``label != 0 and label != 255``, so both encodings score the same. The containing solid is exactly what the
oracle ``Scene.solid_at`` says for the centre, but it is found per (solid, voxel column) from the face planes (a
convex solid meets a column of centres in an interval) and only centres within 1e-6 m of a face go to the oracle:
~0.4 s instead of ~3 s per frame on the default world (one core).

Visible mask (bool ``[256, 256, 32]``, synthetic writer): a voxel is visible if its centre lies inside image_00's
view (z > 0 and the normalised projection within [-1, 1]^2) and the camera ray through the centre reaches it before
hitting any surface (the exact Embree ray cast of :mod:`vipocc.synthetic.raycast`, one ray per in-view free voxel;
a centre on a surface or within 1e-6 m in front of it counts as hidden). So a visible voxel is free by
construction: the writer casts no ray to occupied voxels (about half of those in view), whose line of sight must
cross their solid's boundary first. This is camera visibility of the evaluated image, like the fork's
``make_vis_mask`` (which marches pixel rays and also marks the first occupied voxel); we test voxel centres exactly
instead of marching rays.

Layouts read by :class:`VoxelGtReader`:

* ``frames`` (our synthetic writer, under ``<derived>/voxel_gt``): ``labels/<seq>/<frame:010d>_1_1.npy`` and
  ``visible_mask/<seq>/<frame:010d>.npy``; the voxel frame is the evaluated frame itself.
* ``sscbench`` (``voxel_gt.source: path``; path = the SSCBench-KITTI-360 ``preprocess`` folder):
  ``<path>/labels/<seq>/<ssc_id:06d>_1_1.npy`` plus the match file ``kitti_360_match.txt`` in ``<path>`` or its
  parent (one line ``<seq> <kitti360 frame:010d>.png <ssc file>`` per SSCBench frame; the SSCBench id of a line is
  its position among the lines of its sequence). Labels exist for every 5th SSCBench frame; an evaluated frame uses
  the first of those whose KITTI-360 frame number is >= its own (the fork's rule). Optional visible masks:
  ``<path>/visible_mask/<seq>/<frame:010d>.npy``, keyed by the evaluated frame (what the fork's make_vis_mask
  writes). ``voxellidar2c`` is computed from our calibration (the fork uses SSCBench's velo2cam, marked FIXME
  there).
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vipocc.io import save_npy

if TYPE_CHECKING:
    from vipocc.data.calibration import Kitti360Calibration
    from vipocc.synthetic.raycast import Raycaster
    from vipocc.synthetic.scene import Scene

__all__ = ["VOXEL_ORIGIN", "VOXEL_SIZE", "VOXEL_SHAPE", "EMPTY", "UNKNOWN", "OCCUPIED_UNCLASSIFIED", "VOXEL_GT_DIR",
           "MATCH_FILE", "voxel_centers", "voxel_labels", "camera_visible_mask", "label_path", "visible_mask_path",
           "sscbench_label_path", "read_match_file", "sscbench_voxel_frame", "VoxelGtStats", "voxel_gt_sequence",
           "VoxelGtReader", "load_voxel_gt", "voxel_gt_root", "voxel_reader_for", "check_voxel_gt_files"]

VOXEL_ORIGIN = (1.0, -25.6, -2.5)  # metres, velodyne frame
VOXEL_SIZE = 0.2  # metres
VOXEL_SHAPE = (256, 256, 32)
EMPTY = 0
UNKNOWN = 255
OCCUPIED_UNCLASSIFIED = 1
VOXEL_GT_DIR = "voxel_gt"
MATCH_FILE = "kitti_360_match.txt"
SSCBENCH_LABEL_STRIDE = 5  # SSCBench labels every 5th frame of its frame list
_HIDDEN_MARGIN = 1e-6  # metres: a centre this close in front of a surface counts as hidden
_CHUNK = 1 << 19  # voxels per ray-cast chunk
_BAND_M = 1e-6  # metres: plane distances within this of 0 are left to the exact oracle (its tolerance: 1e-9 m)
_INDEX_PAD_M = 1e-3  # metres: AABB growth before the column ranges (the oracle grows them by 1e-6)
_CHUNK_PLANES = 1 << 21  # (solid column, face) pairs per vectorised step of voxel_labels


# --------------------------------------------------------------------------------------------------- geometry


@lru_cache(maxsize=1)
def _centers() -> np.ndarray:
    index = np.indices(VOXEL_SHAPE, dtype=np.float64).reshape(3, -1).T  # [V, 3], C order (k fastest)
    centers = np.asarray(VOXEL_ORIGIN) + (index + 0.5) * VOXEL_SIZE
    centers.flags.writeable = False
    return centers


def voxel_centers() -> np.ndarray:
    """float64 [256 * 256 * 32, 3] voxel centres in the velodyne frame (metres), row-major over [i, j, k]."""
    return _centers()


def _transform(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    return points @ T[:3, :3].T + T[:3, 3]


def _column_boxes(scene: Scene, velo_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Conservative (i, j) column ranges of every solid: lo, hi int64 [S, 2] (inclusive, clipped to the grid; a
    solid with lo > hi misses the grid). A voxel outside its solid's range is > 1 voxel outside the solid's AABB."""
    signs = np.indices((2, 2, 2)).reshape(3, -1).T.astype(bool)  # [8, 3] corner selectors
    grown = scene.aabb + np.array([[-_INDEX_PAD_M], [_INDEX_PAD_M]])
    corners = np.where(signs[None], grown[:, None, 1], grown[:, None, 0])  # [S, 8, 3] world
    velo = _transform(np.linalg.inv(np.asarray(velo_to_world, dtype=np.float64)), corners)
    index = (velo[..., :2] - np.asarray(VOXEL_ORIGIN[:2])) / VOXEL_SIZE - 0.5  # continuous (i, j) of the corners
    lo = np.maximum(np.floor(index.min(axis=1)).astype(np.int64) - 1, 0)
    hi = np.minimum(np.ceil(index.max(axis=1)).astype(np.int64) + 1, np.asarray(VOXEL_SHAPE[:2]) - 1)
    return lo, hi


def _plane_coefficients(planes: np.ndarray, velo_to_world: np.ndarray) -> np.ndarray:
    """Signed plane distance of voxel (i, j, k) as an affine function a_i i + a_j j + a_k k + b (metres).

    planes float64 [..., 4] world planes (n, d); returns float64 [..., 4] = (a_i, a_j, a_k, b). Exact up to
    rounding (~1e-12 m for world coordinates within a few km), far below the 1e-6 m band it is used with."""
    T = np.asarray(velo_to_world, dtype=np.float64)
    normal_velo = planes[..., :3] @ T[:3, :3]  # R^T n: the normal in the velodyne frame
    first_centre = np.asarray(VOXEL_ORIGIN) + 0.5 * VOXEL_SIZE
    offset = normal_velo @ first_centre + planes[..., :3] @ T[:3, 3] + planes[..., 3]
    return np.concatenate([normal_velo * VOXEL_SIZE, offset[..., None]], axis=-1)


def _k_interval(const: np.ndarray, slope: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive k range [lo, hi] (int64 [P], clipped to the column, empty when lo > hi) where every plane of the
    row has const + slope * k <= threshold; const, slope float64 [P, F] (one row per solid column)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        bound = (threshold - const) / slope  # k where the plane's distance crosses the threshold
    upper = np.where(slope > 0, np.floor(bound), np.inf).min(axis=1)
    lower = np.where(slope < 0, np.ceil(bound), -np.inf).max(axis=1)
    blocked = ((slope == 0) & (const > threshold)).any(axis=1)  # a plane parallel to the column, column outside
    depth = VOXEL_SHAPE[2]
    lo = np.clip(lower, 0, depth).astype(np.int64)
    hi = np.where(blocked, -1, np.clip(upper, -1, depth - 1)).astype(np.int64)
    return lo, hi


def _columns_of(solids: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every column of the column ranges of `solids` [B], enumerated without a loop: (position in `solids`, i, j),
    int64 [P] each."""
    span = hi[solids] - lo[solids] + 1
    count = span[:, 0] * span[:, 1]
    row = np.repeat(np.arange(len(solids)), count)
    n = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)  # n-th column of its solid
    return row, lo[solids[row], 0] + n // span[row, 1], lo[solids[row], 1] + n % span[row, 1]


def _voxel_solids(scene: Scene, velo_to_world: np.ndarray, world: np.ndarray) -> np.ndarray:
    """int32 [V]: ``scene.solid_at(world)`` for the voxel centres `world` [V, 3] of the grid posed by
    `velo_to_world`, bit for bit, without testing every centre against every nearby solid.

    Voxel centres on one (i, j) column lie on a line, and a convex solid meets a line in an interval, so per
    (solid, column) two k intervals follow from the face planes (affine in i, j, k): centres inside every plane by
    more than _BAND_M (surely inside) and centres within _BAND_M of inside (possibly inside). Surely-inside
    centres are inside for the exact test too (its tolerance and rounding are << _BAND_M), centres outside the
    possible interval are outside for it; a voxel with a possible-but-not-sure solid is given to the exact oracle.
    Every other voxel gets the lowest surely-containing solid, as solid_at does.
    """
    n_voxels, n_solids = len(world), scene.n_solids
    best = np.full(n_voxels, n_solids, np.int32)  # n_solids = no containing solid
    uncertain = np.zeros(n_voxels, bool)
    lo, hi = _column_boxes(scene, velo_to_world)
    in_grid = (lo <= hi).all(axis=1)
    columns = np.prod(hi - lo + 1, axis=1)
    for n_faces in np.unique(scene.n_faces[in_grid]):  # one pass per solid shape (box, prism, crown, ...)
        group = np.flatnonzero(in_grid & (scene.n_faces == n_faces))
        # Batches of solids with at most _CHUNK_PLANES (column, face) pairs (or one big solid) bound the buffers.
        batch = np.cumsum(columns[group]) * int(n_faces) // _CHUNK_PLANES
        for solids in np.split(group, np.flatnonzero(np.diff(batch)) + 1):
            coefficients = _plane_coefficients(scene.planes[solids, :n_faces], velo_to_world)  # [B, F, 4]
            row, i, j = _columns_of(solids, lo, hi)
            _paint_columns(coefficients[row], solids[row], i, j, best, uncertain)
    result = np.where(best < n_solids, best, -1).astype(np.int32)
    if uncertain.any():
        result[uncertain] = scene.solid_at(world[uncertain])
    return result


def _paint_columns(coefficients: np.ndarray, solid: np.ndarray, i: np.ndarray, j: np.ndarray, best: np.ndarray,
                   uncertain: np.ndarray) -> None:
    """Lower `best` [V] to `solid` on the surely-inside voxels of each (solid, i, j) column and flag the
    possibly-inside rest in `uncertain` [V]; coefficients float64 [P, F, 4] from _plane_coefficients."""
    const = coefficients[..., 0] * i[:, None] + coefficients[..., 1] * j[:, None] + coefficients[..., 3]
    slope = coefficients[..., 2]
    sure_lo, sure_hi = _k_interval(const, slope, -_BAND_M)
    maybe_lo, maybe_hi = _k_interval(const, slope, _BAND_M)
    length = np.maximum(maybe_hi - maybe_lo + 1, 0)
    row = np.repeat(np.arange(len(solid)), length)
    k = maybe_lo[row] + np.arange(len(row)) - np.repeat(np.cumsum(length) - length, length)
    flat = (i[row] * VOXEL_SHAPE[1] + j[row]) * VOXEL_SHAPE[2] + k
    sure = (k >= sure_lo[row]) & (k <= sure_hi[row])
    np.minimum.at(best, flat[sure], solid[row[sure]].astype(np.int32))
    uncertain[flat[~sure]] = True


def voxel_labels(scene: Scene, velo_to_world: np.ndarray) -> np.ndarray:
    """uint8 [256, 256, 32] labels of the voxel grid of a frame whose velodyne -> world pose is `velo_to_world`
    [4, 4]: KITTI-360 label id of the solid containing each voxel centre (1 if the solid has none), 0 = free,
    255 = centre outside the xy extent of the scene's solids. The containing solid is ``scene.solid_at`` of the
    centre, bit for bit (computed per solid column, see :func:`_voxel_solids`)."""
    return _labels_at(scene, velo_to_world, _transform(velo_to_world, voxel_centers()))


def _labels_at(scene: Scene, velo_to_world: np.ndarray, world: np.ndarray) -> np.ndarray:
    """voxel_labels given the voxel centres `world` [V, 3] (world frame) of the grid posed by `velo_to_world`."""
    solid = _voxel_solids(scene, velo_to_world, world)
    semantic = scene.solid_semantic[np.maximum(solid, 0)]
    semantic = np.where((semantic <= EMPTY) | (semantic >= UNKNOWN), OCCUPIED_UNCLASSIFIED, semantic)
    labels = np.where(solid >= 0, semantic, EMPTY)
    low, high = scene.aabb[:, 0, :2].min(axis=0), scene.aabb[:, 1, :2].max(axis=0)
    outside = np.any((world[:, :2] < low) | (world[:, :2] > high), axis=1)
    return np.where(outside, UNKNOWN, labels).astype(np.uint8).reshape(VOXEL_SHAPE)


def camera_visible_mask(caster: Raycaster, cam_to_world: np.ndarray, K_norm: np.ndarray, velo_to_world: np.ndarray,
                        occupied: np.ndarray | None = None) -> np.ndarray:
    """bool [256, 256, 32]: the voxel centre is in the camera's view and seen by it (see the module docstring).

    cam_to_world: [4, 4] camera (x right, y down, z forward) -> world; K_norm: [3, 3] intrinsics normalised to
    [-1, 1]; velo_to_world: [4, 4] pose of the voxel grid's velodyne frame. occupied: optional bool
    [256, 256, 32] of voxels whose centre lies in a solid (labels not in {0, 255}): these are hidden without a
    ray (the line of sight must cross the solid's boundary first), which saves their ray casts.
    """
    if occupied is not None and np.shape(occupied) != VOXEL_SHAPE:
        raise ValueError(f"occupied: expected shape {VOXEL_SHAPE}, got {np.shape(occupied)}")
    return _visible_at(caster, cam_to_world, K_norm, _transform(velo_to_world, voxel_centers()), occupied)


def _visible_at(caster: Raycaster, cam_to_world: np.ndarray, K_norm: np.ndarray, centers_world: np.ndarray,
                occupied: np.ndarray | None) -> np.ndarray:
    """camera_visible_mask given the voxel centres `centers_world` [V, 3] (world frame)."""
    centers_cam = _transform(np.linalg.inv(np.asarray(cam_to_world, dtype=np.float64)), centers_world)
    projected = centers_cam @ np.asarray(K_norm, dtype=np.float64).T
    z = centers_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u, v = projected[:, 0] / projected[:, 2], projected[:, 1] / projected[:, 2]
    in_view = (z > 0) & (np.abs(u) <= 1) & (np.abs(v) <= 1)
    if occupied is not None:
        in_view &= ~np.asarray(occupied, dtype=bool).reshape(-1)
    in_view = np.flatnonzero(in_view)
    origin = np.asarray(cam_to_world, dtype=np.float64)[:3, 3]
    visible = np.zeros(len(centers_world), dtype=bool)
    for start in range(0, len(in_view), _CHUNK):  # chunks bound the ray buffers, not a per-voxel loop
        chosen = in_view[start:start + _CHUNK]
        offset = centers_world[chosen] - origin
        distance = np.linalg.norm(offset, axis=1)
        hits = caster.cast(origin, offset / distance[:, None])
        visible[chosen] = hits.distance > distance + _HIDDEN_MARGIN
    return visible.reshape(VOXEL_SHAPE)


# --------------------------------------------------------------------------------------------------- files


def label_path(root: str | os.PathLike, seq: str, frame: int) -> Path:
    """``<root>/labels/<seq>/<frame:010d>_1_1.npy`` (frames layout)."""
    return Path(root) / "labels" / seq / f"{int(frame):010d}_1_1.npy"


def visible_mask_path(root: str | os.PathLike, seq: str, frame: int) -> Path:
    """``<root>/visible_mask/<seq>/<frame:010d>.npy`` (both layouts; frame = the evaluated frame)."""
    return Path(root) / "visible_mask" / seq / f"{int(frame):010d}.npy"


def sscbench_label_path(root: str | os.PathLike, seq: str, ssc_id: int) -> Path:
    """``<root>/labels/<seq>/<ssc_id:06d>_1_1.npy`` (SSCBench layout)."""
    return Path(root) / "labels" / seq / f"{int(ssc_id):06d}_1_1.npy"


def _find_match_file(root: Path) -> Path:
    for candidate in (root / MATCH_FILE, root.parent / MATCH_FILE):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"SSCBench match file not found: {root / MATCH_FILE} (nor {root.parent / MATCH_FILE})")


def read_match_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """{seq: int64 [M] KITTI-360 frame of each SSCBench frame, in SSCBench id order} from kitti_360_match.txt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SSCBench match file not found: {path}")
    frames: dict[str, list[int]] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        stem = tokens[1].rsplit(".", 1)[0] if len(tokens) == 3 else ""
        if not stem.isdigit():
            raise ValueError(f"{path}:{lineno}: expected '<seq> <frame:010d>.png <sscbench file>', got {line!r}")
        frames.setdefault(tokens[0], []).append(int(stem))
    return {seq: np.asarray(values, dtype=np.int64) for seq, values in frames.items()}


def sscbench_voxel_frame(match_frames: np.ndarray, frame: int, source: str = MATCH_FILE) -> tuple[int, int]:
    """(SSCBench id, KITTI-360 frame) of the labelled SSCBench frame used for evaluated `frame`: the first of every
    5th SSCBench frame whose KITTI-360 frame number is >= `frame`. ValueError naming `source` if there is none."""
    labelled = np.asarray(match_frames)[::SSCBENCH_LABEL_STRIDE]
    position = int(np.searchsorted(labelled, int(frame), side="left"))
    if position == len(labelled):
        raise ValueError(f"{source}: no labelled SSCBench frame at or after frame {frame}")
    return position * SSCBENCH_LABEL_STRIDE, int(labelled[position])


# --------------------------------------------------------------------------------------------------- writer


@dataclasses.dataclass
class VoxelGtStats:
    """What one :func:`voxel_gt_sequence` call did."""

    seq: str
    frames: list[int]
    written: list[Path] = dataclasses.field(default_factory=list)
    skipped: int = 0
    outputs: list[Path] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        computed = len(self.frames) - self.skipped
        return {"seq": self.seq, "frames": len(self.frames), "computed": computed, "skipped": self.skipped,
                "written": len(self.written), "seconds_per_frame": self.seconds / computed if computed else None}


def voxel_gt_sequence(raw_root: str | os.PathLike, derived_root: str | os.PathLike, seq: str, frames: Iterable[int],
                      scene: Scene, *, scene_path: str | os.PathLike | None = None,
                      calibration: Kitti360Calibration | None = None, overwrite: bool = False,
                      progress: bool = True) -> VoxelGtStats:
    """Write labels and camera visible masks (frames layout, ``<derived_root>/voxel_gt``) for `frames` of `seq`
    from the exact scene. A frame is skipped when both files exist and are newer than poses.txt, the calibration
    and `scene_path`; `overwrite` redoes all. Each file is written atomically."""
    from tqdm.auto import tqdm

    from vipocc.data.calibration import load_calibration
    from vipocc.data.poses import load_poses
    from vipocc.data.preprocess import calibration_files
    from vipocc.synthetic.raycast import Raycaster

    raw_root = Path(raw_root)
    calibration = calibration if calibration is not None else load_calibration(raw_root)
    poses = load_poses(raw_root, seq)
    frames = [int(f) for f in frames]
    indices = poses.indices_of(np.asarray(frames, dtype=np.int64)) if frames else np.zeros(0, np.int64)
    inputs = [poses.path, *calibration_files(raw_root)] + ([Path(scene_path)] if scene_path is not None else [])
    newest = max((p.stat().st_mtime_ns for p in inputs if p.exists()), default=0)
    root = Path(derived_root) / VOXEL_GT_DIR
    stats = VoxelGtStats(seq=seq, frames=frames)
    caster: Raycaster | None = None
    for frame, index in tqdm(list(zip(frames, indices)), desc=f"voxel gt {seq}", unit="frame", disable=not progress):
        outputs = (label_path(root, seq, frame), visible_mask_path(root, seq, frame))
        stats.outputs.extend(outputs)
        if not overwrite and all(p.is_file() and p.stat().st_mtime_ns >= newest for p in outputs):
            stats.skipped += 1
            continue
        start = time.perf_counter()
        caster = caster or Raycaster(scene)
        imu_to_world = poses.imu_to_world[index]
        velo_to_world = imu_to_world @ calibration.T_velo_to_pose
        world = _transform(velo_to_world, voxel_centers())  # shared by labels and visibility
        labels = _labels_at(scene, velo_to_world, world)
        save_npy(outputs[0], labels)
        save_npy(outputs[1], _visible_at(caster, imu_to_world @ calibration.view_to_pose(0),
                                         calibration.K_perspective, world, (labels != EMPTY) & (labels != UNKNOWN)))
        stats.seconds += time.perf_counter() - start
        stats.written.extend(outputs)
    return stats


# --------------------------------------------------------------------------------------------------- reader


class VoxelGtReader:
    """The dataset's ``voxel_loader``: ``reader(seq, frame, key_cam_to_world) -> dict``.

    root: the voxel GT folder (``<derived>/voxel_gt`` for layout "frames", the SSCBench preprocess folder for
    "sscbench"); raw_root: the KITTI-360 root (poses and calibration give the voxel frame's velodyne pose).
    require_visible: a missing visible mask is an error (True) or the key is left out (False).

    Returned: ``voxel`` int32 [256, 256, 32] labels, ``voxellidar2c`` float32 [4, 4] voxel-grid velodyne frame ->
    key camera (``inv(key_cam_to_world) @ velo_to_world``), ``voxel_frame`` (KITTI-360 frame of the grid),
    ``voxel_file_path`` (str), and ``voxel_visible`` bool [256, 256, 32] when present.
    """

    def __init__(self, root: str | os.PathLike, raw_root: str | os.PathLike, layout: str = "frames",
                 calibration: Kitti360Calibration | None = None, require_visible: bool = True) -> None:
        if layout not in ("frames", "sscbench"):
            raise ValueError(f"layout must be 'frames' or 'sscbench', got {layout!r}")
        self.root, self.raw_root, self.layout = Path(root), Path(raw_root), layout
        self.require_visible = require_visible
        self._calibration = calibration
        self._poses: dict[str, Any] = {}
        self._match: dict[str, np.ndarray] | None = None
        self._match_path: Path | None = None

    def voxel_file(self, seq: str, frame: int) -> tuple[Path, int]:
        """(label file, KITTI-360 frame of the voxel grid) for evaluated `frame` of `seq`."""
        if self.layout == "frames":
            return label_path(self.root, seq, frame), int(frame)
        if self._match is None:
            self._match_path = _find_match_file(self.root)
            self._match = read_match_file(self._match_path)
        if seq not in self._match:
            raise ValueError(f"{self._match_path}: sequence {seq} is not listed")
        ssc_id, voxel_frame = sscbench_voxel_frame(self._match[seq], frame, str(self._match_path))
        return sscbench_label_path(self.root, seq, ssc_id), voxel_frame

    def __call__(self, seq: str, frame: int, key_cam_to_world: np.ndarray) -> dict[str, Any]:
        from vipocc.data.calibration import load_calibration
        from vipocc.data.poses import load_poses

        path, voxel_frame = self.voxel_file(seq, frame)
        voxel = _load_grid(path, np.uint8, "voxel labels").astype(np.int32)
        if self._calibration is None:
            self._calibration = load_calibration(self.raw_root)
        if seq not in self._poses:
            self._poses[seq] = load_poses(self.raw_root, seq)
        poses = self._poses[seq]
        velo_to_world = poses.imu_to_world[poses.index_of(voxel_frame)] @ self._calibration.T_velo_to_pose
        key = np.asarray(key_cam_to_world, dtype=np.float64)
        if key.shape != (4, 4):
            raise ValueError(f"key_cam_to_world: expected [4, 4], got {key.shape}")
        out = {"voxel": voxel, "voxellidar2c": (np.linalg.inv(key) @ velo_to_world).astype(np.float32),
               "voxel_frame": voxel_frame, "voxel_file_path": str(path)}
        visible = visible_mask_path(self.root, seq, frame)
        if visible.is_file() or self.require_visible:
            out["voxel_visible"] = _load_grid(visible, np.bool_, "visible mask")
        return out


def _load_grid(path: Path, dtype: type, what: str) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        grid = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"cannot read {what} file {path}: {error}") from error
    if grid.shape != VOXEL_SHAPE:
        raise ValueError(f"{what} file {path} has shape {grid.shape}, expected {VOXEL_SHAPE}")
    if dtype is np.bool_:
        return grid.astype(bool) if grid.dtype != np.bool_ else grid
    if not np.issubdtype(grid.dtype, np.integer) or grid.min() < 0 or grid.max() > 255:
        raise ValueError(f"{what} file {path} must hold integer labels 0..255, got {grid.dtype}")
    return grid.astype(dtype)


def load_voxel_gt(root: str | os.PathLike, raw_root: str | os.PathLike, seq: str, frame: int,
                  key_cam_to_world: np.ndarray, layout: str = "frames") -> dict[str, Any]:
    """One-off :class:`VoxelGtReader` call (use the reader itself for many frames: it caches poses)."""
    return VoxelGtReader(root, raw_root, layout, require_visible=layout == "frames")(seq, frame, key_cam_to_world)


def voxel_gt_root(config: Mapping[str, Any], derived_root: str | os.PathLike) -> tuple[Path, str]:
    """(voxel GT folder, layout) of the config: ``voxel_gt.path`` with "sscbench" (source path) or
    ``<derived>/voxel_gt`` with "frames" (source generate)."""
    block = config["voxel_gt"]
    if block["source"] == "path":
        if not block.get("path"):
            raise ValueError("voxel_gt.source is 'path' but voxel_gt.path is not set")
        return Path(block["path"]).expanduser(), "sscbench"
    return Path(derived_root) / VOXEL_GT_DIR, "frames"


def voxel_reader_for(config: Mapping[str, Any], derived_root: str | os.PathLike, raw_root: str | os.PathLike
                     ) -> VoxelGtReader:
    """The dataset's ``voxel_loader`` for the config: our files (visible masks required) or the user's SSCBench
    folder (visible masks optional)."""
    root, layout = voxel_gt_root(config, derived_root)
    return VoxelGtReader(root, raw_root, layout, require_visible=layout == "frames")


def check_voxel_gt_files(root: str | os.PathLike, seq: str, frames: Iterable[int], layout: str = "sscbench"
                         ) -> list[Path]:
    """Label files (and, frames layout, visible masks) the evaluated `frames` need; FileNotFoundError listing the
    missing ones, ValueError when a frame has no labelled SSCBench frame."""
    reader = VoxelGtReader(root, root, layout)
    files = []
    for frame in frames:
        files.append(reader.voxel_file(seq, frame)[0])
        if layout == "frames":
            files.append(visible_mask_path(root, seq, frame))
    missing = [path for path in files if not path.is_file()]
    if missing:
        shown = "\n  ".join(str(p) for p in missing[:20])
        more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise FileNotFoundError(f"voxel GT {root}: {len(missing)} of {len(files)} files of {seq} are missing:\n"
                                f"  {shown}{more}")
    return sorted(set(files))
