"""KYN / ViPOcc lidar occupancy ground truth, vectorized, cell for cell equal to the reference algorithm.

The reference (KYN ``evaluator_lidar.py`` = ViPOcc ``evaluator_occ.py``: ``get_pts``, ``get_lidar_slices``,
``check_occupancy``) labels one horizontal slice of query points from T aggregated Velodyne scans:

1. Frame. Every query lives in the *inclination-corrected cam0 frame* of the evaluated image: cam0 (x right, y down,
   z forward) rotated 5 deg about x so that the xz plane is parallel to the road (:func:`inclination_correction`).
   ``velo_poses[t]`` maps homogeneous velodyne points of scan t into that frame; scan 0 is the evaluated frame.
2. Slices (:func:`lidar_slices`). A point of scan t is kept when its y in the evaluated frame lies in
   ``[y0, y1]`` (inclusive both ends) or its 3-D distance from the evaluated origin is ``>= max_dist``
   (``max_dist = sqrt(z_far**2 + x_min**2)`` = 50.16 m for the 4-50 m GT, so the far side is always closed and GT made
   at 4-20 m differs from GT cropped out of 4-50 m files). Kept points go to polar coordinates of their *velodyne*
   xy (angle = atan2(y, x), range = ||(x, y)||) and into 360 one-degree bins ``[B_i, B_i+1)`` with
   ``B = linspace(-pi, pi, 361)``; an angle equal to ``B_360`` (= +pi in float32) falls in no bin. Each bin keeps
   its minimum range; an empty bin repeats the previous bin's range; bins before the first non-empty bin take the
   range of the smallest-angle kept point (the first row after the reference's sort; on exact angle ties the
   first point in scan order - torch.sort is not stable, so the reference itself is undefined there). The 360
   (bin-centre angle, range) rows are padded with bin 359 at ``c_359 - 2 pi`` in front and bin 0 at ``c_0 + 2 pi``
   behind, so interpolation wraps across +-pi.
3. Votes (:func:`lidar_occupancy`). For every scan each query is moved into that velodyne frame; its angle is
   atan2(y, x) and its distance is the norm of the *homogeneous 4-vector* (x, y, z, 1) - the reference's quirk.
   The surface range is interpolated linearly in angle between the two bracketing bin centres
   (``searchsorted`` left). ``behind = dist > surface or dist < min_dist``.
4. Labels. ``occupied = (1 + #behind) / T > (T - 2) / T`` evaluated in float32 exactly as torch does
   (``division="true"``: CPU torch, equal to ``#behind >= T - 2`` for every T; ``division="reciprocal"``: CUDA
   torch multiplies by float32(1/T), which for T in {11, 12, 14, 15, 20, 26, ...} also marks ``#behind == T - 3``;
   both agree for T = 300). ``visible = not behind in scan 0``. ``occupied`` is returned *before* the evaluator's
   ``occupied &= ~visible``, as KYN saves it. A scan that keeps fewer than 360 points makes the reference crash
   (its binned array is too short); here it raises ValueError.

Precision. The reference holds points, poses, queries, angles, ranges and the vote ratio in float32 (on a GPU).
Bit-identity with a CUDA run is impossible (cuBLAS, atan2 and reductions round differently there), so this module
fixes one exact, machine-independent float32 contract, and the literal oracle ``tests/data/reference_occupancy.py``
follows it:

* every value the reference stores in float32 is float32 here (inputs are rounded to float32 first);
* a 4x4 product is evaluated row by row as ``((m0 x + m1 y) + m2 z) + m3`` and a norm as ``sqrt((a^2 + b^2) + c^2)``
  (``+ w^2`` for the 4-vector), every float32 step correctly rounded (IEEE), i.e. what a float32 BLAS computes up to
  operation order;
* atan2 and the 4x4 inverse are evaluated in float64 from the float32 operands and rounded once to float32 (float32
  atan2 implementations differ between SIMD paths; this is the correctly rounded value up to ~1e-8 odds);
* the element-wise float32 steps the reference writes out (bin centres ``(B_i + B_i+1) * 0.5``, the padding with
  float32(2 pi), the interpolation ``l * (1 - u) + r * u``, the vote ratio) use its exact operation order, so they
  are bit-identical to it; :func:`torch_linspace_f32` reproduces torch's float32 linspace bit for bit.

So results equal the reference's except where a query lies within float32 rounding noise (~1e-7 relative) of a
decision boundary. float64 throughout would move those boundaries as much and cost twice the memory traffic.

Speed (``tests/benchmarks/test_bench_occupancy_gt.py`` times both on one input: per 300-scan frame the literal loop
takes seconds, this module ~1/45 of that from raw arrays and ~1/85 from prepared scans, one thread):

* a 1/64 sample of every scan bounds its bin minima from above; a scan proven "behind everywhere" with it (sensor
  beyond the query box, surface nearer than the box in that direction) adds its vote without being read in full;
* raw scans go in chunks of one full scan (or ~20 samples), copied once into a [3, C, N] float32 layout reused
  from chunk to chunk; every step broadcasts over scans and points, chunks run on ``workers`` threads (numpy
  releases the GIL). The far test forms |p|^2 - 2 o.p (o: evaluated origin in velodyne axes) in float32 and
  evaluates the exact float32 norm only in a thin shell around max_dist; a scan whose sensor is farther than
  max_dist plus its reach keeps every point without a transform;
* :func:`prepare_scan` caches a scan's pose-independent work (the float32 layout, |p|^2, planar ranges, bins, the
  sample, bounding boxes of 256 consecutive points) so that the frames sharing a scan (299 of 300 between
  consecutive KYN frames) skip it; with it, interval proofs on the boxes decide most blocks as a whole ("nothing
  kept", "everything kept") and only the undecided blocks are tested point by point;
* bins come from a float32 atan2 and arithmetic, with the float64 atan2 and an exact border comparison only within
  1e-3 bins of a border; the per-bin minimum is one ``np.minimum.at``, empty bins are filled by a running maximum;
* queries go in Z-order tiles of 64 (8 x 8 grid cells), tiles in groups of 16; (scan, group) and then (scan, tile)
  pairs proven entirely behind, or entirely in front and beyond min_dist, skip the per-query test.

Each shortcut is a proof with a margin far above float32 rounding; the tests compare with the literal oracle cell
for cell, and with the shortcuts disabled.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

CAM_INCLINATION_COS = 0.9961947
CAM_INCLINATION_SIN = 0.0871557

N_BINS = 360
GT_Z_RANGE = (50.0, 4.0)  # (far, near) of KYN's shipped files, metres
EVAL_Z_RANGE = (20.0, 4.0)
GT_X_RANGE = (-4.0, 4.0)
GT_PPM = 10  # cells per metre
GT_SHAPE = (460, 80)
DEFAULT_Y_RANGE = (0.0, 0.75)
DEFAULT_MIN_DIST = 3.0

Division = Literal["true", "reciprocal"]

_LIDAR_CHUNK_POINTS = 1 << 15  # points per chunk of raw scans (one full scan or ~20 samples): stays in cache
_QUERY_CHUNK_PAIRS = 1 << 15  # (scan, query) pairs per chunk of the per-query test (~1 MB temporaries, in cache)
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)  # threads; results never depend on it
_SAMPLE_STRIDE = 64  # 1 point in 64 of each scan feeds the cheap "behind everywhere" proof
_GOLDEN = (math.sqrt(5) - 1) / 2
_BLOCK_POINTS = 256  # consecutive lidar points per bounding box of a prepared scan's kept-point proofs
_TILE_QUERIES = 64  # queries per tile of the per-query test (an 8 x 8 square of the grid)
_GROUP_TILES = 16  # tiles per group of the first, coarse (scan, queries) proofs


def max_dist_for(z_far: float = GT_Z_RANGE[0], x_min: float = GT_X_RANGE[0]) -> float:
    """The reference's ``max_dist = (z_far**2 + x_min**2) ** 0.5`` in metres (50.16 m for the 4-50 m GT)."""
    return (z_far**2 + x_min**2) ** 0.5


DEFAULT_MAX_DIST = max_dist_for()


def inclination_correction() -> np.ndarray:
    """4x4 float32 rotation from cam0 coordinates to the inclination-corrected cam0 frame.

    ``world = A @ inv(P_cam0)`` with ``A = [[1,0,0],[0,c,s],[0,-s,c]]``: a rotation by -5 deg about x (y down,
    z forward), i.e. the frame is cam0 pitched up by 5 deg. cam0's optical axis (0, 0, 1) becomes (0, s, c): it
    points 5 deg *below* the corrected horizontal, as the KITTI-360 cameras look 5 deg down at the road.
    """
    c, s = CAM_INCLINATION_COS, CAM_INCLINATION_SIN
    return np.array([[1, 0, 0, 0], [0, c, s, 0], [0, -s, c, 0], [0, 0, 0, 1]], dtype=np.float32)


def torch_linspace_f32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps)`` in float32, bit for bit: step = (end - start) / (steps - 1) in float32,
    first half ``start + step * i`` and second half ``end - step * (steps - 1 - i)``, each rounded once (torch
    fuses the multiply-add). Returns [steps] float32."""
    if steps < 1:
        raise ValueError(f"linspace steps must be >= 1, got {steps}")
    first, last = np.float32(start), np.float32(end)
    if steps == 1:
        return np.array([first], dtype=np.float32)
    step = np.float64((last - first) / np.float32(steps - 1))
    index = np.arange(steps, dtype=np.float64)
    # float32 operands: these float64 products and sums are exact, so one rounding = torch's fused multiply-add.
    low = np.float64(first) + step * index
    high = np.float64(last) - step * (steps - 1 - index)
    return np.where(index < steps // 2, low, high).astype(np.float32)


def _grid_size(span: float, ppm: float) -> int:
    return abs(int(span * ppm))  # the reference truncates: int((end - start) * ppm)


def query_grid(
    z_range: tuple[float, float] = EVAL_Z_RANGE,
    x_range: tuple[float, float] = GT_X_RANGE,
    y: float = 0.375,
    ppm: float = GT_PPM,
) -> np.ndarray:
    """Query points [rows, cols, 3] float32 (x, y, z in metres) in the inclination-corrected cam0 frame.

    Row 0 is z_range[0] (far), the last row z_range[1] (near); ``rows = |int((z1 - z0) * ppm)|`` and
    ``cols = |int((x1 - x0) * ppm)|`` linspace samples (460 x 80 for 50-4 m, 160 x 80 for 20-4 m). y is the single
    slice height, (y0 + y1) / 2 = 0.375 m below the camera in the reference.
    """
    if not ppm > 0:
        raise ValueError(f"ppm must be > 0, got {ppm}")
    rows = _grid_size(z_range[1] - z_range[0], ppm)
    cols = _grid_size(x_range[1] - x_range[0], ppm)
    if rows < 1 or cols < 1:
        raise ValueError(f"query grid z_range={z_range}, x_range={x_range}, ppm={ppm} has {rows} x {cols} cells")
    grid = np.empty((rows, cols, 3), dtype=np.float32)
    grid[..., 0] = torch_linspace_f32(x_range[0], x_range[1], cols)[None, :]
    grid[..., 1] = np.float32(y)
    grid[..., 2] = torch_linspace_f32(z_range[0], z_range[1], rows)[:, None]
    return grid


def _bin_borders() -> np.ndarray:
    return torch_linspace_f32(-math.pi, math.pi, N_BINS + 1)


def padded_bin_angles() -> np.ndarray:
    """The 362 float32 angles of a padded slice: ``c_359 - 2 pi``, the bin centres ``c_i = (B_i + B_i+1) * 0.5``,
    ``c_0 + 2 pi`` (float32 arithmetic, 2 pi rounded to float32 as torch does with a Python scalar)."""
    borders = _bin_borders()
    centres = (borders[:-1] + borders[1:]) * np.float32(0.5)
    two_pi = np.float32(math.pi * 2)
    return np.concatenate(([centres[-1] - two_pi], centres, [centres[0] + two_pi])).astype(np.float32)


_BORDERS = _bin_borders()  # [361] float32 bin borders
_PADDED_ANGLES = padded_bin_angles()  # [362] float32 padded bin-centre angles


# ----------------------------------------------------------------------------------------------- input checks


def _check_scans(scans: Sequence) -> list:
    """Validated [N_t, >=3] arrays (not copied; coordinates are converted chunk by chunk) or PreparedScan s."""
    if isinstance(scans, np.ndarray) or not isinstance(scans, Sequence) or len(scans) == 0:
        raise ValueError("scans must be a non-empty list of [N, 4] velodyne point arrays")
    checked = []
    for t, scan in enumerate(scans):
        if isinstance(scan, PreparedScan):
            checked.append(scan)
            continue
        array = np.asarray(scan)
        if array.ndim != 2 or array.shape[1] < 3 or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"scans[{t}] must be a numeric array [N, 4] (x, y, z, ignored), got "
                             f"{array.dtype} {array.shape}")
        checked.append(array)
    return checked


def _check_poses(velo_poses: np.ndarray, n_scans: int) -> np.ndarray:
    poses = np.asarray(velo_poses)
    if poses.shape != (n_scans, 4, 4):
        raise ValueError(f"velo_poses must have shape [{n_scans}, 4, 4] (one per scan), got {poses.shape}")
    poses = poses.astype(np.float32)
    if not np.isfinite(poses).all():
        raise ValueError("velo_poses contains non-finite values")
    singular = np.abs(np.linalg.det(poses.astype(np.float64))) < 1e-12
    if singular.any():
        raise ValueError(f"velo_poses[{int(np.flatnonzero(singular)[0])}] is singular")
    return poses


def _check_range(name: str, value: Sequence[float]) -> tuple[float, float]:
    low, high = (float(v) for v in value)
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"{name} must be two finite numbers (low, high) with low <= high, got {value}")
    return low, high


def _chunks(sizes: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) groups of items whose sizes sum to at most `budget` (at least one item each)."""
    ends = np.cumsum(sizes)
    bounds, start = [], 0
    while start < len(sizes):
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + budget, side="right")), start + 1)
        bounds.append((start, stop))
        start = stop
    return bounds


# ------------------------------------------------------------------------------------------------ float32 math


def _affine_row(x: np.ndarray, y: np.ndarray, z: np.ndarray, matrices: np.ndarray, row: int) -> np.ndarray:
    """Row `row` of ``matrices @ (x, y, z, 1)`` as ((m0 x + m1 y) + m2 z) + m3 in float32, every step rounded.

    matrices: float32 [C, 4, 4]; x, y, z: float32 [C, N] or [1, N] -> float32 [C, N].
    """
    m = matrices[:, row, :, None]
    return ((x * m[:, 0] + y * m[:, 1]) + z * m[:, 2]) + m[:, 3]


def _atan2_f32(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The contract's float32 atan2: float64 atan2 of the float32 operands rounded once (machine independent)."""
    return np.arctan2(y.astype(np.float64), x.astype(np.float64)).astype(np.float32)


_BIN_SCALE = np.float32(N_BINS / (2 * math.pi))
# A float32 numpy atan2 is within a few ulp (< 1e-6 rad) of the contract's angle and the bin estimate below adds
# < 1e-4 bins of rounding; an estimate farther than this from a border gives the exact bin without the float64 atan2.
_NEAR_BORDER = np.float32(1e-3)  # bins


def _border_bin(angles: np.ndarray, borders: np.ndarray) -> np.ndarray:
    """Bin i with ``borders[i] <= angle < borders[i + 1]`` (= searchsorted(borders, angle, 'right') - 1), N_BINS for
    ``angle >= borders[-1]``; angles float32 within [borders[0], borders[-1]] (atan2 output).

    The float32 estimate (a - B0) * 360 / 2 pi is within 1e-4 bins of the true position (rounding of the difference,
    of the product and of the torch linspace borders), hence off by at most one; one correction each way is exact.
    """
    estimate = np.floor((angles - borders[0]) * _BIN_SCALE).astype(np.int64)
    np.clip(estimate, 0, N_BINS - 1, out=estimate)
    estimate -= angles < borders[estimate]
    estimate += angles >= borders[estimate + 1]
    return estimate


def _table_index(angles: np.ndarray, table: np.ndarray, borders: np.ndarray) -> np.ndarray:
    """``searchsorted(table, angle, 'left')`` in the 362-entry padded angle table (entry k + 1 = centre of bin k)
    for float32 angles within [borders[0], borders[-1]]; result in [1, 361]. Estimate and correct as above."""
    estimate = np.floor((angles - borders[0]) * _BIN_SCALE + np.float32(0.5)).astype(np.int64) + 1
    np.clip(estimate, 1, N_BINS + 1, out=estimate)
    estimate -= table[estimate - 1] >= angles
    estimate += table[estimate] < angles
    return estimate


# ------------------------------------------------------------------------------------------------------ slices


class PreparedScan:
    """The pose-independent part of one scan's slice work, computed once and reusable by every frame whose window
    holds the scan (consecutive KYN frames share 299 of their 300 scans).

    Attributes: ``count`` points; ``coords`` float32 [3, N] velodyne x, y, z (metres; N = count rounded up to whole
    blocks of _BLOCK_POINTS, the tail repeating the last point); ``squared`` float32 [N] |p|^2 = (x^2 + y^2) + z^2;
    ``reach`` max |p| (metres) and ``finite`` (every coordinate finite and |p|^2 does not overflow); ``ranges``
    float32 [N] planar range sqrt(x^2 + y^2) and ``bins`` int16 [N] one-degree bin (360: none), both in the velodyne
    frame exactly as the reference computes them; ``low``, ``high`` float32 [3, B] bounding box of each block of
    _BLOCK_POINTS consecutive points; ``sample`` the scan's 1/64 spread sample as a PreparedScan (without blocks or
    sample of its own). Build with :func:`prepare_scan`; treat as read-only.
    """

    __slots__ = ("count", "coords", "squared", "reach", "finite", "ranges", "bins", "low", "high", "sample")

    def __len__(self) -> int:
        return self.count


def prepare_scan(scan: np.ndarray) -> PreparedScan:
    """:class:`PreparedScan` of one velodyne scan [N, >=3] (x, y, z in metres; further columns ignored), to pass to
    :func:`lidar_occupancy` / :func:`lidar_slices` in place of the array by every frame that uses the scan. Costs
    about what one frame spends on a scan it reads in full; frames then skip the coordinate copy, the norms and the
    angles, and decide most points block by block. Bad shapes raise ValueError; non-finite points raise only when a
    frame reads the scan (as for arrays)."""
    if isinstance(scan, PreparedScan):
        return scan
    scan = np.asarray(scan)
    if scan.ndim != 2 or scan.shape[1] < 3 or not np.issubdtype(scan.dtype, np.number):
        raise ValueError(f"scan must be a numeric array [N, 4] (x, y, z, ignored), got {scan.dtype} {scan.shape}")
    padded = np.concatenate((scan[:, :3], np.repeat(scan[-1:, :3], _padded_length(len(scan)) - len(scan), axis=0)))
    prepared = _prepared(padded, len(scan))
    if prepared.finite and len(scan):  # blocks (an empty scan has none: it takes the chunk path and fails there)
        starts = np.arange(0, prepared.coords.size, _BLOCK_POINTS)
        shape = (3, prepared.coords.shape[1] // _BLOCK_POINTS)
        prepared.low = np.minimum.reduceat(prepared.coords.ravel(), starts).reshape(shape)
        prepared.high = np.maximum.reduceat(prepared.coords.ravel(), starts).reshape(shape)
    prepared.sample = _prepared(_spread_samples([scan], _SAMPLE_STRIDE)[0])
    return prepared


def _padded_length(count: int) -> int:
    return max(-(-count // _BLOCK_POINTS), 1) * _BLOCK_POINTS


def _prepared(points: np.ndarray, count: int | None = None) -> PreparedScan:
    """PreparedScan (no blocks, no sample) of points [N, >=3], of which the first `count` (default all) are real."""
    chunk = _stack([points])
    prepared = PreparedScan()
    prepared.count = len(points) if count is None else count
    prepared.coords, prepared.squared = chunk.coords[:, 0], chunk.squared[0]
    prepared.reach, prepared.finite = float(chunk.reach[0]), bool(chunk.finite[0])
    prepared.ranges = prepared.bins = prepared.low = prepared.high = prepared.sample = None
    if prepared.finite:
        x, y = prepared.coords[0], prepared.coords[1]
        prepared.ranges = np.sqrt(x * x + y * y)
        prepared.bins = _kept_bins(x, y, _BORDERS).astype(np.int16)
    return prepared


class _Chunk(NamedTuple):
    """C scans in the padded layout (a row's tail repeats its last point): coords float32 [3, C, N], counts [C],
    squared norms |p|^2 float32 [C, N], reach max |p| [C] (float64, metres), finite bool [C], and planar ranges
    float32 [C, N] and bins int16 [C, N] (prepared scans only, else None)."""

    coords: np.ndarray
    counts: np.ndarray
    squared: np.ndarray
    reach: np.ndarray
    finite: np.ndarray
    ranges: np.ndarray | None
    bins: np.ndarray | None


def _stack(items: list, out: np.ndarray | None = None) -> _Chunk:
    """One :class:`_Chunk` from raw scans [n, >=3] or :class:`PreparedScan` s (all of one kind); raw coordinates go
    to the flat float32 buffer `out` when given (reused memory saves a page fault per 4 kB). A single prepared scan
    is only viewed, not copied."""
    counts = np.array([len(item) for item in items], dtype=np.int64)
    n_points = max(int(counts.max()), 1)
    if isinstance(items[0], PreparedScan):
        n_points = max(item.coords.shape[1] for item in items)
        if len(items) == 1:
            item = items[0]
            return _Chunk(item.coords[:, None], counts, item.squared[None], np.array([item.reach]),
                          np.array([item.finite]), None if item.bins is None else item.ranges[None],
                          None if item.bins is None else item.bins[None])
        # Several (small) prepared scans, e.g. samples: only coordinates and norms are stacked, ranges and bins of
        # the few kept points are recomputed (cheaper than copying them for every point).
        coords = np.empty((3, len(items), n_points), dtype=np.float32)
        squared = np.empty((len(items), n_points), dtype=np.float32)
        for row, item in enumerate(items):  # one block copy per scan, the tail repeating the last point
            size = item.coords.shape[1]
            coords[:, row, :size], squared[row, :size] = item.coords, item.squared
            coords[:, row, size:], squared[row, size:] = item.coords[:, -1:], item.squared[-1]
        return _Chunk(coords, counts, squared, np.array([item.reach for item in items]),
                      np.array([item.finite for item in items]), None, None)
    size = 3 * len(items) * n_points
    coords = (np.empty(size, np.float32) if out is None else out[:size]).reshape(3, len(items), n_points)
    for row, scan in enumerate(items):  # one block copy per scan, the tail repeating the last point
        coords[:, row, : len(scan)] = scan[:, :3].T
        coords[:, row, len(scan):] = scan[-1, :3, None] if len(scan) else 0
    x, y, z = coords
    squared = x * x
    scratch = y * y
    squared += scratch
    np.multiply(z, z, out=scratch)
    squared += scratch  # (x^2 + y^2) + z^2
    largest = squared.max(axis=1)  # NaN propagates; inf: non-finite or overflowing coordinates
    finite = np.isfinite(largest)
    return _Chunk(coords, counts, squared, np.sqrt(np.where(finite, largest, 0).astype(np.float64)), finite, None,
                  None)


def _pose_geometry(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per velodyne-to-evaluated pose [T, 4, 4]: largest and smallest singular value of its 3x3 part [T], the
    evaluated origin in velodyne coordinates o = -R^-1 t [T, 3] (metres) and |t| [T], all float64."""
    rotation, shift = poses[:, :3, :3].astype(np.float64), poses[:, :3, 3].astype(np.float64)
    singular = np.linalg.svd(rotation, compute_uv=False)
    origin = -np.linalg.solve(rotation, shift[:, :, None])[:, :, 0]
    return singular[:, 0], singular[:, -1], origin, np.linalg.norm(shift, axis=1)


def _far_shell(geometry: tuple[np.ndarray, ...], reach: np.ndarray, far: float) -> tuple[np.ndarray, ...]:
    """Per scan: whether every point is beyond max_dist, whether any may be, and the squared radii (velodyne frame,
    around the evaluated origin) inside which a point is surely nearer / beyond which surely farther than max_dist.

    A world point is R p + t = R (p - o), o = -R^-1 t being the evaluated origin in velodyne coordinates, so its
    distance lies within [s_min, s_max] * |p - o| (singular values of R) and within |t| -+ s_max |p|. The slack of
    1e-5 of the magnitudes involved covers, with a wide margin, the float32 rounding of this test and of the exact
    one (~1e-7 relative). geometry: :func:`_pose_geometry` of the scans' poses; reach: largest |p| per scan.
    """
    s_max, s_min, _, distance = geometry
    slack = 1e-5 * (distance + s_max * reach + far + 1.0)
    all_far = distance - s_max * reach > far + slack
    may_be_far = distance + s_max * reach >= far - slack
    inner = (np.maximum(far - slack, 0) / s_max) ** 2 * (1 - 1e-5)
    outer = ((far + slack) / s_min) ** 2 * (1 + 1e-5)
    return all_far, may_be_far, inner, outer


def _exact_far(x: np.ndarray, y: np.ndarray, z: np.ndarray, matrices: np.ndarray, far: np.float32) -> np.ndarray:
    """The contract's ``||world xyz|| >= max_dist`` for points [K, S], row k with pose matrices[k] [4, 4]."""
    world = [_affine_row(x, y, z, matrices, k) for k in range(3)]
    return np.sqrt((world[0] * world[0] + world[1] * world[1]) + world[2] * world[2]) >= far


def _far_points(x: np.ndarray, y: np.ndarray, z: np.ndarray, squared: np.ndarray, poses: np.ndarray,
                geometry: tuple[np.ndarray, ...], reach: np.ndarray, far: np.float32) -> np.ndarray:
    """The contract's far test ``||world xyz|| >= far`` for the points [C, N] of C scans (bool [C, N]) with squared
    norms |p|^2 [C, N] and max |p| = reach [C] (metres); poses [C, 4, 4] and geometry ([C] each) may also be one
    scan's ([1]) for rows that all come from that scan.

    |p - o|^2 - |o|^2 = |p|^2 - 2 o.p is formed in float32 with a rounding error below 5e-7 (|o| + |p|)^2, so the
    :func:`_far_shell` radii widened by 2e-6 (|o| + reach + 1)^2 decide every point outside a thin shell around
    max_dist, where the exact float32 norm decides.
    """
    _, _, inner, outer = _far_shell(geometry, reach, float(far))
    origin = geometry[2]
    centre = np.square(origin).sum(axis=1)  # |o|^2
    error = 2e-6 * (np.sqrt(centre) + reach + 1.0) ** 2
    scale = (-2 * origin).astype(np.float32)[:, :, None]  # exact: twice the rounded origin
    shifted = x * scale[:, 0]
    scratch = y * scale[:, 1]
    shifted += scratch
    np.multiply(z, scale[:, 2], out=scratch)
    shifted += scratch
    shifted += squared
    beyond = shifted > (outer - centre + error).astype(np.float32)[:, None]
    shell = np.flatnonzero((shifted >= (inner - centre - error).astype(np.float32)[:, None]) ^ beyond)
    if len(shell):
        row = shell // x.shape[1] if len(poses) > 1 else np.zeros(len(shell), dtype=np.intp)
        beyond.ravel()[shell] = _exact_far(x.ravel()[shell, None], y.ravel()[shell, None], z.ravel()[shell, None],
                                           poses[row], far)[:, 0]
    return beyond


def _kept_points(chunk: _Chunk, poses: np.ndarray, geometry: tuple[np.ndarray, ...], y_low: np.float32,
                 y_high: np.float32, far: np.float32) -> np.ndarray:
    """Ascending flat indices into the [C, N] points of a chunk that the slice test keeps: evaluated-frame y in
    [y_low, y_high] or evaluated-frame norm >= far (padding excluded).

    A scan whose sensor is farther than max_dist + its reach keeps every point without a transform; elsewhere the
    far test is decided by the rigid-distance bound of :func:`_far_shell` and the exact float32 norm only in the thin
    shell where that is inconclusive (:func:`_far_points`).
    """
    x, y, z = chunk.coords
    all_far, may_be_far = _far_shell(geometry, chunk.reach, float(far))[:2]
    keep = np.empty(x.shape, dtype=bool)
    keep[all_far] = True
    rows = np.flatnonzero(~all_far)
    if len(rows):
        whole = len(rows) == len(keep)
        xs, ys, zs = (x, y, z) if whole else (x[rows], y[rows], z[rows])
        height = _affine_row(xs, ys, zs, poses[rows], 1)
        kept = height >= y_low
        kept &= height <= y_high
        mixed = np.flatnonzero(may_be_far[rows])
        if len(mixed) == len(rows):
            kept |= _far_points(xs, ys, zs, chunk.squared if whole else chunk.squared[rows], poses[rows],
                                tuple(g[rows] for g in geometry), chunk.reach[rows], far)
        elif len(mixed):
            chosen = rows[mixed]
            kept[mixed] |= _far_points(x[chosen], y[chosen], z[chosen], chunk.squared[chosen], poses[chosen],
                                       tuple(g[chosen] for g in geometry), chunk.reach[chosen], far)
        keep[rows] = kept
    for row in np.flatnonzero(chunk.counts < keep.shape[1]):  # only scans shorter than the chunk's longest
        keep[row, chunk.counts[row]:] = False
    return np.flatnonzero(keep)


def _block_cases(low: np.ndarray, high: np.ndarray, rows: np.ndarray, geometry: tuple[np.ndarray, ...],
                 y_low: float, y_high: float, far: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interval proofs for R blocks with velodyne bounding boxes low, high [3, R] (float64, metres), the height row
    (row 1) of their scans' poses rows [4, R] and the scans' :func:`_pose_geometry` per block: bool [R] each for "no
    point is kept", "every point is kept" and "the far test is undecided".

    The evaluated-frame height of a box is its centre's plus-minus |row| . half-size; a world point is R (p - o), so
    its distance lies within [s_min, s_max] times the box's nearest and farthest distance from o. Slacks of 1e-5 of
    the magnitudes involved cover, with a wide margin, the float32 rounding of the per-point tests (~1e-7 relative).
    """
    s_max, s_min, origin, shift = geometry  # origin [3, R]
    weight = np.abs(rows[:3])
    height = (rows[:3] * (low + high)).sum(axis=0) * 0.5 + rows[3]
    spread = (weight * (high - low)).sum(axis=0) * 0.5
    spread += 1e-5 * ((weight * np.maximum(np.abs(low), np.abs(high))).sum(axis=0) + np.abs(rows[3]) + 1.0)  # slack
    top, bottom = height + spread, height - spread
    band_none = (top < y_low) | (bottom > y_high)
    band_all = (bottom >= y_low) & (top <= y_high)
    below, above = low - origin, high - origin
    nearest = np.sqrt(np.square(np.maximum(np.maximum(below, -above), 0)).sum(axis=0))
    farthest = np.sqrt(np.maximum(np.square(below), np.square(above)).sum(axis=0))
    far_slack = 1e-5 * (shift + s_max * (np.sqrt(np.square(origin).sum(axis=0)) + farthest) + far + 1.0)
    far_none = s_max * farthest < far - far_slack
    far_all = s_min * nearest > far + far_slack
    return band_none & far_none, band_all | far_all, ~(far_none | far_all)


def _block_kept(scan: PreparedScan, cases: tuple[np.ndarray, ...], pose: np.ndarray,
                geometry: tuple[np.ndarray, ...], y_low: np.float32, y_high: np.float32, far: np.float32) -> np.ndarray:
    """Indices of the points of a prepared scan that the slice test keeps (evaluated-frame y in [y_low, y_high] or
    evaluated-frame norm >= far), grouped by block (not sorted). pose [1, 4, 4]; geometry: its
    :func:`_pose_geometry` ([1] each).

    cases: :func:`_block_cases` of the scan's blocks ([B] each). Only blocks where a test stays undecided are
    evaluated point by point, in the contract's float32; consecutive lidar points are neighbours, so most blocks are
    decided as a whole.
    """
    none, every, far_open = cases
    offsets = np.arange(_BLOCK_POINTS)
    real = np.clip(scan.count - np.arange(len(none)) * _BLOCK_POINTS, 0, _BLOCK_POINTS)  # points before padding
    whole = np.flatnonzero(every & (real == _BLOCK_POINTS))
    tail = np.flatnonzero(every & (real < _BLOCK_POINTS))
    kept = [(whole * _BLOCK_POINTS)[:, None] + offsets,
            ((tail * _BLOCK_POINTS)[:, None] + offsets)[offsets < real[tail][:, None]]]
    open_blocks = np.flatnonzero(~(none | every))
    if len(open_blocks):
        x, y, z = scan.coords.reshape(3, -1, _BLOCK_POINTS)[:, open_blocks]
        height = _affine_row(x, y, z, pose, 1)
        inside = height >= y_low
        inside &= height <= y_high
        straddling = np.flatnonzero(far_open[open_blocks])
        if len(straddling):
            squared = scan.squared.reshape(-1, _BLOCK_POINTS)[open_blocks[straddling]]
            inside[straddling] |= _far_points(x[straddling], y[straddling], z[straddling], squared, pose, geometry,
                                              np.array([scan.reach]), far)
        inside &= offsets < real[open_blocks][:, None]  # no padding
        kept.append(((open_blocks * _BLOCK_POINTS)[:, None] + offsets).ravel()[np.flatnonzero(inside)])
    return np.concatenate([part.ravel() for part in kept])


def _prepared_cases(scans: list[PreparedScan], poses: np.ndarray, geometry: tuple[np.ndarray, ...],
                    y_low: np.float32, y_high: np.float32, far: np.float32) -> list[tuple[np.ndarray, ...]]:
    """:func:`_block_cases` of the blocks of prepared scans, all in one vectorized pass (per scan, call overhead
    would dominate): per scan a tuple of bool [B] (nothing kept, everything kept, far test undecided)."""
    sizes = [scan.low.shape[1] for scan in scans]
    owner = np.repeat(np.arange(len(scans)), sizes)
    s_max, s_min, origin, shift = geometry
    cases = _block_cases(np.concatenate([scan.low for scan in scans], axis=1).astype(np.float64),
                         np.concatenate([scan.high for scan in scans], axis=1).astype(np.float64),
                         poses[owner, 1].astype(np.float64).T, (s_max[owner], s_min[owner], origin[owner].T,
                         shift[owner]), float(y_low), float(y_high), float(far))
    return list(zip(*(np.split(case, np.cumsum(sizes)[:-1]) for case in cases)))


def _blocked_minima(scans: list[PreparedScan], poses: np.ndarray, geometry: tuple[np.ndarray, ...],
                    y_low: np.float32, y_high: np.float32, far: np.float32, lead: bool, workers: int,
                    scan_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_bin_minima` of prepared scans with blocks: their block proofs in one vectorized pass, then per scan
    (on `workers` threads) the undecided blocks point by point, and the minima over the cached ranges and bins."""
    finite = np.array([scan.finite for scan in scans])
    if not finite.all():
        raise ValueError(f"scans[{scan_index[int(np.flatnonzero(~finite)[0])]}] contains non-finite (or absurdly "
                         f"large) coordinates")
    per_scan = _prepared_cases(scans, poses, geometry, y_low, y_high, far)

    def minima(t: int) -> tuple[np.ndarray, int, np.float32]:
        scan = scans[t]
        kept = _block_kept(scan, per_scan[t], poses[t:t + 1], tuple(g[t:t + 1] for g in geometry), y_low, y_high,
                           far)
        ranges, bins = scan.ranges[kept], scan.bins[kept].astype(np.intp)
        bin_min = np.full(N_BINS + 1, np.inf, dtype=np.float32)  # slot 360: outside every bin
        np.minimum.at(bin_min, bins, ranges)
        lead_range = np.float32(0)
        if lead and np.isinf(bin_min[0]):
            # The smallest-angle kept point lies in the first non-empty bin (bin 360, i.e. +pi, if all are empty).
            chosen = np.flatnonzero(bins == np.argmax(np.isfinite(bin_min)))
            chosen = chosen[np.argsort(kept[chosen], kind="stable")]  # scan order decides ties
            points = kept[chosen]
            lead_range = _smallest_angle_ranges(np.zeros(len(chosen), dtype=np.intp), scan.coords[0, points],
                                                scan.coords[1, points], ranges[chosen], 1)[0]
        return bin_min[:N_BINS], len(kept), lead_range

    results = _run(minima, list(range(len(scans))), workers)
    return (np.array([r[0] for r in results]).reshape(len(scans), N_BINS), np.array([r[1] for r in results]),
            np.array([r[2] for r in results], dtype=np.float32))


def _kept_bins(x: np.ndarray, y: np.ndarray, borders: np.ndarray) -> np.ndarray:
    """Bin of every point [K] (N_BINS: no bin): a float32 atan2 decides away from borders; within _NEAR_BORDER of
    one, the contract's float64-rounded atan2 and an exact border comparison do."""
    position = np.arctan2(y, x)
    position -= borders[0]
    position *= _BIN_SCALE
    whole = np.floor(position)
    position -= whole
    position -= np.float32(0.5)
    near = np.flatnonzero(np.abs(position, out=position) > np.float32(0.5) - _NEAR_BORDER)
    bins = whole.astype(np.intp)
    bins[near] = _border_bin(_atan2_f32(y[near], x[near]), borders)
    return bins


def _smallest_angle_ranges(rows: np.ndarray, x: np.ndarray, y: np.ndarray, ranges: np.ndarray,
                           n_rows: int) -> np.ndarray:
    """Per row: range of the candidate point with the smallest contract angle, the first in scan order on ties
    ([n_rows] float32, 0 for rows without candidates). Candidates [K] are given in scan order."""
    angles = _atan2_f32(y, x)
    best = np.full(n_rows, np.inf, dtype=np.float32)
    np.minimum.at(best, rows, angles)
    winners = np.flatnonzero(angles == best[rows])
    first = np.full(n_rows, len(rows), dtype=np.int64)
    np.minimum.at(first, rows[winners], winners)
    return np.append(ranges, np.float32(0))[first]


def _spread_samples(scans: list[np.ndarray], stride: int) -> list[np.ndarray]:
    """One point per run of `stride` points, at an offset that follows the golden-ratio sequence: ascending indices
    (a cheap gather) that cannot alias with the ring-by-ring, azimuth-by-azimuth order of Velodyne points the way a
    fixed stride can, and no random state."""
    longest = max(len(scan) for scan in scans) // stride
    index = np.arange(longest) * stride + (np.mod(np.arange(longest) * _GOLDEN, 1.0) * stride).astype(np.int64)
    return [np.take(scan, index[: len(scan) // stride], axis=0) for scan in scans]


def _chunk_minima(chunk: _Chunk, poses: np.ndarray, geometry: tuple[np.ndarray, ...], y_low: np.float32,
                  y_high: np.float32, far: np.float32, lead: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the C scans of a chunk: minimum kept range per bin [C, 360] float32 (+inf: empty), kept points [C], and
    (lead) the range of the smallest-angle kept point where bin 0 is empty (0 elsewhere) [C]."""
    n_rows, n_points = chunk.coords.shape[1:]
    kept = _kept_points(chunk, poses, geometry, y_low, y_high, far)
    x, y = chunk.coords[0].ravel()[kept], chunk.coords[1].ravel()[kept]
    if chunk.bins is not None:
        ranges, bins = chunk.ranges.ravel()[kept], chunk.bins.ravel()[kept].astype(np.intp)
    else:
        ranges, bins = np.sqrt(x * x + y * y), _kept_bins(x, y, _BORDERS)
    if n_rows == 1:
        rows, slots, kept_count = np.zeros(len(kept), dtype=np.intp), bins, np.array([len(kept)])
    else:
        kept_count = np.diff(np.searchsorted(kept, np.arange(n_rows + 1) * n_points))  # kept is ascending
        rows = np.repeat(np.arange(n_rows), kept_count)
        slots = rows * (N_BINS + 1) + bins
    minima = np.full((n_rows, N_BINS + 1), np.inf, dtype=np.float32)  # slot 360: outside every bin
    np.minimum.at(minima.ravel(), slots, ranges)
    minima = minima[:, :N_BINS]
    lead_range = np.zeros(n_rows, dtype=np.float32)
    leading = np.isinf(minima[:, 0])  # the fill before the first non-empty bin matters only where bin 0 is empty
    if lead and leading.any():
        # The smallest-angle kept point lies in the first non-empty bin (bin 360, i.e. +pi, if all are empty).
        filled = np.isfinite(minima)
        first_bin = np.where(filled.any(axis=1), filled.argmax(axis=1), N_BINS)
        chosen = np.flatnonzero(leading[rows] & (bins == first_bin[rows]))
        fill = _smallest_angle_ranges(rows[chosen], x[chosen], y[chosen], ranges[chosen], n_rows)
        lead_range = np.where(leading, fill, 0).astype(np.float32)
    return minima, kept_count, lead_range


def _bin_minima(scans: list, poses: np.ndarray, y_range: tuple[float, float], max_dist: float,
                chunk_points: int, lead: bool = True, workers: int = 1,
                scan_index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum kept range per scan and bin [T, 360] float32 (+inf: empty bin), kept points per scan [T], and the
    range of each scan's smallest-angle kept point [T] where bin 0 is empty (the leading fill; 0 elsewhere).
    scans: raw arrays [N, >=3] or :class:`PreparedScan` s. Non-finite coordinates raise ValueError naming
    ``scans[scan_index[i]]``.

    Prepared scans with blocks take the block path (:func:`_blocked_minima`); the others (raw scans, samples) go in
    chunks of whole scans of one kind (:func:`_chunk_minima`). Work runs on `workers` threads, each writing only its
    own scans' slots, so the result does not depend on the number of workers.
    """
    n_scans = len(scans)
    scan_index = np.arange(n_scans) if scan_index is None else scan_index
    y_low, y_high, far = np.float32(y_range[0]), np.float32(y_range[1]), np.float32(max_dist)
    geometry = _pose_geometry(poses)
    bin_min = np.full((n_scans, N_BINS), np.inf, dtype=np.float32)
    kept_count = np.zeros(n_scans, dtype=np.int64)
    lead_range = np.zeros(n_scans, dtype=np.float32)
    blocked = np.array([isinstance(scan, PreparedScan) and scan.low is not None for scan in scans], dtype=bool)
    if blocked.any():
        chosen = np.flatnonzero(blocked)
        bin_min[chosen], kept_count[chosen], lead_range[chosen] = _blocked_minima(
            [scans[t] for t in chosen], poses[chosen], tuple(g[chosen] for g in geometry), y_low, y_high, far, lead,
            workers, scan_index[chosen])
    groups = []
    for prepared in (True, False):
        kind = np.flatnonzero(~blocked & np.array([isinstance(scan, PreparedScan) == prepared for scan in scans]))
        sizes = np.array([len(scans[t]) for t in kind], dtype=np.int64)
        groups += [kind[start:stop] for start, stop in (_chunks(sizes, chunk_points) if len(kind) else [])]
    raw = [3 * len(group) * max(len(scans[t]) for t in group) for group in groups
           if not isinstance(scans[group[0]], PreparedScan)]
    buffers = threading.local()  # raw coordinates go to a buffer per thread: fresh memory costs a page fault per 4 kB

    def chunk(group: np.ndarray) -> None:
        if raw and not hasattr(buffers, "coords"):
            buffers.coords = np.empty(max(raw), dtype=np.float32)
        stacked = _stack([scans[t] for t in group], getattr(buffers, "coords", None))
        if not stacked.finite.all():
            raise ValueError(f"scans[{scan_index[group[int(np.flatnonzero(~stacked.finite)[0])]]}] contains "
                             f"non-finite (or absurdly large) coordinates")
        bin_min[group], kept_count[group], lead_range[group] = _chunk_minima(
            stacked, poses[group], tuple(g[group] for g in geometry), y_low, y_high, far, lead)

    _run(chunk, groups, workers)
    return bin_min, kept_count, lead_range


def _run(function, items: list, workers: int) -> list:
    """function over items, on up to `workers` threads (numpy releases the GIL inside its loops)."""
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def _check_kept_counts(kept_count: np.ndarray, scan_index: np.ndarray) -> None:
    short = np.flatnonzero(kept_count < N_BINS)
    if len(short):
        t, count = int(scan_index[short[0]]), int(kept_count[short[0]])
        raise ValueError(
            f"scans[{t}] keeps only {count} points in the y band or beyond max_dist; the reference algorithm needs "
            f"at least {N_BINS} (its binned array would be too short)")


def _filled(bin_min: np.ndarray, lead_range: np.ndarray) -> np.ndarray:
    """Forward fill of empty (+inf) bins [T, 360]: the previous bin's range, the leading fill before the first."""
    filled = np.isfinite(bin_min)  # input ranges are finite, so +inf marks an empty bin
    last_filled = np.maximum.accumulate(np.where(filled, np.arange(N_BINS), -1), axis=1)
    ranges = np.take_along_axis(bin_min, np.maximum(last_filled, 0), axis=1)
    return np.where(last_filled >= 0, ranges, lead_range[:, None])


def _slice_ranges(scans: list[np.ndarray], poses: np.ndarray, y_range: tuple[float, float], max_dist: float,
                  chunk_points: int, scan_index: np.ndarray | None = None, workers: int = 1) -> np.ndarray:
    """Forward-filled minimum range per scan and bin, [T, 360] float32 (metres)."""
    scan_index = np.arange(len(scans)) if scan_index is None else scan_index
    bin_min, kept_count, lead_range = _bin_minima(scans, poses, y_range, max_dist, chunk_points, True, workers,
                                                  scan_index)
    _check_kept_counts(kept_count, scan_index)
    return _filled(bin_min, lead_range)


def _padded_slices(ranges: np.ndarray) -> np.ndarray:
    """[T, 362, 2] float32 (angle, range) rows from bin ranges [T, 360]: bin 359 in front, bin 0 behind."""
    padded = np.concatenate((ranges[:, -1:], ranges, ranges[:, :1]), axis=1)
    angles = np.broadcast_to(padded_bin_angles(), padded.shape)
    return np.stack((angles, padded), axis=-1).astype(np.float32)


def lidar_slices(
    scans: Sequence[np.ndarray],
    velo_poses: np.ndarray,
    y_range: tuple[float, float] = DEFAULT_Y_RANGE,
    max_dist: float = DEFAULT_MAX_DIST,
    *,
    chunk_points: int = _LIDAR_CHUNK_POINTS,
    workers: int = DEFAULT_WORKERS,
) -> np.ndarray:
    """Padded polar slices of T scans: float32 [T, 362, 2], column 0 the angle (rad), column 1 the range (m).

    scans: T arrays [N_t, 4] of velodyne points (x, y, z in metres; the 4th column is ignored, the reference
    overwrites it with 1) or their :func:`prepare_scan` s. velo_poses: [T, 4, 4] velodyne-to-evaluated-frame
    (inclination-corrected cam0). y_range: kept height band in the evaluated frame (metres, y down). max_dist: kept
    when the point's distance from the evaluated origin is >= max_dist (metres; the caller passes
    ``max_dist_for(z_far)``). Rows 1..360 are the bins (centre angle, forward-filled minimum range); row 0 repeats
    bin 359 at ``c_359 - 2 pi`` and row 361 bin 0 at ``c_0 + 2 pi``. The angle column is the same for every scan
    (:func:`padded_bin_angles`). workers: threads.
    """
    checked = _check_scans(scans)
    poses = _check_poses(velo_poses, len(checked))
    y_range = _check_range("y_range", y_range)
    if not max_dist > 0:
        raise ValueError(f"max_dist must be > 0 metres, got {max_dist}")
    return _padded_slices(_slice_ranges(checked, poses, y_range, max_dist, chunk_points, workers=workers))


# ------------------------------------------------------------------------------------------------------- votes


def occupied_from_votes(behind_votes: np.ndarray, n_scans: int, division: Division = "true") -> np.ndarray:
    """The reference's ``(1 + votes) / T > (T - 2) / T`` in float32, bool with the shape of `behind_votes`.

    division "true": float32 division as torch does on the CPU (equal to ``votes >= T - 2``); "reciprocal": multiply
    by float32(1 / T) as torch does on CUDA for a division by a Python scalar (also true for votes == T - 3 at some
    T, e.g. 20; never at T = 300). The threshold (T - 2) / T is a float64 Python number rounded to float32.
    """
    if n_scans < 1:
        raise ValueError(f"n_scans must be >= 1, got {n_scans}")
    votes = np.float32(1) + np.asarray(behind_votes).astype(np.float32)
    if division == "true":
        ratio = votes / np.float32(n_scans)
    elif division == "reciprocal":
        ratio = votes * (np.float32(1) / np.float32(n_scans))
    else:
        raise ValueError(f"division must be 'true' or 'reciprocal', got {division!r}")
    return ratio > np.float32((n_scans - 2) / n_scans)


def _sparse_tables(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max and min of every power-of-two window of the doubled rows of values [T, n]: highs, lows [L, T, 2 n]
    (level k holds windows of 2^k entries; L covers windows up to n entries)."""
    n_rows, n = values.shape
    n_levels = int(math.floor(math.log2(n))) + 1
    highs = np.full((n_levels, n_rows, 2 * n), -np.inf, dtype=values.dtype)
    lows = np.full_like(highs, np.inf)
    highs[0] = lows[0] = np.concatenate((values, values), axis=1)
    for k in range(1, n_levels):  # log2(360) + 1 = 9 levels
        half = 1 << (k - 1)
        highs[k, :, : 2 * n - half] = np.maximum(highs[k - 1, :, : 2 * n - half], highs[k - 1, :, half:])
        lows[k, :, : 2 * n - half] = np.minimum(lows[k - 1, :, : 2 * n - half], lows[k - 1, :, half:])
    return highs, lows


def _window_extrema(tables: tuple[np.ndarray, np.ndarray], rows: np.ndarray, start: np.ndarray,
                    width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max and min of ``values[rows, (start + k) mod n]`` over k = 0..width (0 <= width < n; broadcastable index
    arrays) from the :func:`_sparse_tables` of values: two overlapping power-of-two windows."""
    highs, lows = tables
    n = highs.shape[2] // 2
    length = width + 1
    level = np.floor(np.log2(length)).astype(np.int64)
    first = start % n
    second = first + length - (1 << level)
    return (np.maximum(highs[level, rows, first], highs[level, rows, second]),
            np.minimum(lows[level, rows, first], lows[level, rows, second]))


def _circular_extrema(values: np.ndarray, start: np.ndarray, width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max and min of ``values[t, (start + k) mod n]`` over k = 0..width, for rows t of values [T, n] and index
    arrays start, width [T, B] (0 <= width < n)."""
    return _window_extrema(_sparse_tables(values), np.arange(len(values))[:, None], start, width)


def _scan_frames(world_to_velo: np.ndarray) -> np.ndarray:
    """[23, T] float64, a column per scan: rotation of world_to_velo (9, row-major), its translation (3) and
    homogeneous row (4), the smallest and largest singular value of the rotation, the sensor position in the
    evaluated frame (3), and the sums of |translation| and of |rotation|."""
    rotation = world_to_velo[:, :3, :3].astype(np.float64)
    translation = world_to_velo[:, :3, 3].astype(np.float64)
    singular = np.linalg.svd(rotation, compute_uv=False)
    sensor = -np.linalg.solve(rotation, translation[:, :, None])[:, :, 0]
    return np.concatenate((rotation.reshape(-1, 9), translation, world_to_velo[:, 3].astype(np.float64),
                           singular[:, -1:], singular[:, :1], sensor, np.abs(translation).sum(axis=1, keepdims=True),
                           np.abs(rotation).sum(axis=(1, 2))[:, None]), axis=1).T.copy()


def _pair_proofs(low: np.ndarray, high: np.ndarray, scans: np.ndarray, frames: np.ndarray,
                 ranges: np.ndarray | tuple[np.ndarray, np.ndarray], min_dist: float) -> tuple[np.ndarray, np.ndarray]:
    """For P (scan, query box) pairs - boxes low, high [P, 3] (float64, evaluated frame), scans [P] indexing the
    :func:`_scan_frames` columns and the scans' bin ranges [T, 360] (or their :func:`_sparse_tables`) - bool [P] "every
    query of the box is certainly behind the scan's surface" and bool [P] "every query is certainly in front of it
    and at least min_dist away", so the per-query test of that pair can be skipped.

    The ranges may be upper bounds (+inf allowed) for the first proof; the second needs the exact filled ranges. The
    box's distance to the sensor bounds every query distance from below, its farthest corner from above (the 4-vector
    norm adds the homogeneous coordinate, bounded on the box). When the box lies within a quarter-turn of its
    centre's direction and so far from the sensor that float32 rounding moves a query's angle by < 3e-5 rad, the
    queries' angles lie within the span of the 8 projected corners (the projected box is their convex hull), so the
    interpolated surface lies between the smallest and the largest range of the bins whose centres bracket that
    span; otherwise all 360 bins are used. A slack of 1e-5 of the coordinate magnitudes
    covers the float32 rounding of the real computation (~1e-7 relative). Everything is [*, P] so that numpy
    vectorizes along the pairs.
    """
    frame = frames[:, scans]  # [23, P]
    rotation, translation, homogeneous = frame[:9].reshape(3, 3, -1), frame[9:12], frame[12:16]
    s_min, s_max, sensor, translation_sum, rotation_sum = frame[16], frame[17], frame[18:21], frame[21], frame[22]
    low, high = np.ascontiguousarray(low.T), np.ascontiguousarray(high.T)  # [3, P]
    centre, half = (low + high) * 0.5, (high - low) * 0.5
    lower = s_min * np.sqrt(np.square(np.maximum(np.maximum(low - sensor, sensor - high), 0.0)).sum(axis=0))
    farthest = np.sqrt(np.square(np.maximum(np.abs(low - sensor), np.abs(high - sensor))).sum(axis=0))
    w = np.abs((homogeneous[:3] * centre).sum(axis=0) + homogeneous[3]) + (np.abs(homogeneous[:3]) * half).sum(axis=0)
    upper = np.sqrt(np.square(s_max * farthest) + np.square(w))

    projected = (rotation * centre[None]).sum(axis=1) + translation  # [3, P]: the box centre in velodyne axes
    heading = np.arctan2(projected[1], projected[0])
    # Corner angles relative to the heading h = the centre's velodyne xy: corner c = h + sum_j s_j e_j (s = -+1,
    # e_j = half_j times rotation column j) has cross(h, c) = sum_j s_j cross(h, e_j) and dot(h, c) = |h|^2 +
    # sum_j s_j dot(h, e_j). While every dot is > 0 (less than a quarter-turn off) atan(cross / dot) is the relative
    # angle and monotonic, so only the extreme ratios need an arctan.
    edge_x, edge_y = rotation[0] * half, rotation[1] * half  # [3, P]
    cross = edge_y * projected[0] - edge_x * projected[1]
    dot = edge_x * projected[0] + edge_y * projected[1]
    signs = np.array([-1.0, 1.0])[:, None]
    corner_cross = (signs * cross[0])[:, None, None] + (signs * cross[1])[None, :, None] + signs * cross[2]
    corner_dot = ((signs * dot[0])[:, None, None] + (signs * dot[1])[None, :, None] + signs * dot[2]
                  + np.square(projected[:2]).sum(axis=0))  # [2, 2, 2, P]
    ahead = (corner_dot > 0).all(axis=(0, 1, 2))
    ratio = (corner_cross / np.where(corner_dot > 0, corner_dot, 1.0)).reshape(8, -1)
    first, last = np.arctan(ratio.min(axis=0)), np.arctan(ratio.max(axis=0))
    reach = np.maximum(np.abs(low), np.abs(high)).max(axis=0)
    slack = 1e-5 * (translation_sum + rotation_sum * reach + 1.0)
    # A lower bound on the queries' xy distance from the sensor. Their float32 velodyne x, y are off by < 2e-7 of
    # the magnitudes (< 0.02 slack), so beyond 1e3 slack their angles are off by < 3e-5 rad.
    horizontal = lower - (np.abs(projected[2]) + (np.abs(rotation[2]) * half).sum(axis=0))
    sector = ahead & (horizontal > 1e3 * slack)

    # A query at angle a interpolates the two bins whose centres -pi + (i + 0.5) w bracket a: centres within
    # [a - w, a + w]; 0.05 bins (9e-4 rad) more either way cover angle rounding (< 3e-5 rad) and the float32 centres.
    bin_width = 2 * np.pi / N_BINS
    start = np.ceil((heading + first + np.pi) / bin_width - 1.55).astype(np.int64)
    width = np.floor((heading + last + np.pi) / bin_width + 0.55).astype(np.int64) - start
    start, width = np.where(sector, start, 0), np.where(sector, np.minimum(width, N_BINS - 1), N_BINS - 1)
    if isinstance(ranges, tuple):
        highest, lowest = _window_extrema(ranges, scans, start, width)
    else:  # few pairs: a direct mask over the 360 bins is cheaper than the sparse tables
        inside = (np.arange(N_BINS) - start[:, None]) % N_BINS <= width[:, None]
        values = ranges[scans]
        highest = np.where(inside, values, -np.inf).max(axis=1)
        lowest = np.where(inside, values, np.inf).min(axis=1)
    behind = lower > highest * (1 + 1e-5) + slack
    in_front = (upper < lowest * (1 - 1e-5) - slack) & (lower > min_dist * (1 + 1e-5) + slack)
    return behind, in_front


def _block_proofs(low: np.ndarray, high: np.ndarray, world_to_velo: np.ndarray, ranges: np.ndarray,
                  min_dist: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_pair_proofs` for every pair of T scans (world_to_velo [T, 4, 4], bin ranges [T, 360]) and B query
    boxes (low, high [B, 3]): bool [T, B] behind and in front."""
    n_scans, n_boxes = len(world_to_velo), len(low)
    scans, boxes = np.repeat(np.arange(n_scans), n_boxes), np.tile(np.arange(n_boxes), n_scans)
    tables = ranges if n_boxes <= 4 else _sparse_tables(ranges)
    behind, in_front = _pair_proofs(low[boxes], high[boxes], scans, _scan_frames(world_to_velo), tables, min_dist)
    return behind.reshape(n_scans, n_boxes), in_front.reshape(n_scans, n_boxes)


def _spread_bits(values: np.ndarray) -> np.ndarray:
    """The 16 low bits of values (uint64) moved to the even bit positions 0, 2, ..., 30."""
    values = (values | (values << 8)) & 0x00FF00FF
    values = (values | (values << 4)) & 0x0F0F0F0F
    values = (values | (values << 2)) & 0x33333333
    return (values | (values << 1)) & 0x55555555


def _morton_order(queries: np.ndarray) -> np.ndarray:
    """A permutation [P] of the queries [P, 3] along a Z-order curve in (x, z). Coordinates are numbered in steps of
    span / (distinct values - 1), so a regular grid's points get consecutive integers and any aligned run of 4^k of
    them is a compact square: runs of consecutive queries have small bounding boxes. Stable; any query set is valid
    (only speed varies)."""
    planar = queries[:, [0, 2]].astype(np.float64)
    low = planar.min(axis=0)
    span = planar.max(axis=0) - low
    steps = np.array([len(np.unique(planar[:, axis])) - 1 for axis in (0, 1)], dtype=np.float64)
    step = np.where(steps > 0, span / np.maximum(steps, 1), 1.0)
    step = np.maximum(step, span / 65535)  # at most 16 bits per axis
    cells = np.floor((planar - low) / step + 0.5).astype(np.uint64)
    return np.argsort(_spread_bits(cells[:, 0]) | (_spread_bits(cells[:, 1]) << np.uint64(1)), kind="stable")


@functools.lru_cache(maxsize=4)
def _cached_tiles(data: bytes, count: int) -> tuple[np.ndarray, np.ndarray]:
    queries = np.frombuffer(data, dtype=np.float32).reshape(count, 3)
    order = _morton_order(queries)
    n_tiles = -(-len(queries) // _TILE_QUERIES)
    padded = np.concatenate((order, np.repeat(order[-1:], n_tiles * _TILE_QUERIES - len(order))))
    tiles = queries[padded].reshape(n_tiles, _TILE_QUERIES, 3)
    order.flags.writeable = tiles.flags.writeable = False
    return order, tiles


def _query_tiles(queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order [P], tiles [B, _TILE_QUERIES, 3]) of float32 queries [P, 3]: the queries in :func:`_morton_order`, cut
    into tiles of consecutive queries (the last padded by repeating its last query). Read-only; cached by content,
    since every frame of a run queries the same grid."""
    return _cached_tiles(np.ascontiguousarray(queries, dtype=np.float32).tobytes(), len(queries))


def _surface_test(qx: np.ndarray, qy: np.ndarray, qz: np.ndarray, matrices: np.ndarray, scan_ranges: np.ndarray,
                  near: np.float32) -> np.ndarray:
    """The reference's per-query test for queries [n, S] (evaluated frame, float32), row k against a scan with
    world-to-velodyne matrices[k] and padded slice ranges scan_ranges[k] [362]: bool [n, S], behind its surface
    (query distance > interpolated range) or nearer than min_dist."""
    vx, vy, vz = (_affine_row(qx, qy, qz, matrices, k) for k in range(3))
    squared = (vx * vx + vy * vy) + vz * vz
    if (matrices[:, 3] == np.array([0, 0, 0, 1], dtype=np.float32)).all():
        squared += np.float32(1)  # w = ((0 x + 0 y) + 0 z) + 1 = 1 exactly
    else:
        vw = _affine_row(qx, qy, qz, matrices, 3)
        squared += vw * vw
    dists = np.sqrt(squared)  # the norm of the homogeneous 4-vector (reference quirk)
    angles = _atan2_f32(vy, vx)
    table, borders = _PADDED_ANGLES, _BORDERS
    right = _table_index(angles, table, borders)
    left = right - 1
    interp = (angles - table[left]) / (table[right] - table[left])
    flat = scan_ranges.ravel()
    offset = (np.arange(len(scan_ranges)) * (N_BINS + 2))[:, None]
    left += offset
    right += offset
    surface = flat[left] * (np.float32(1) - interp) + flat[right] * interp
    return (dists > surface) | (dists < near)


def _tiles_of_groups(groups: np.ndarray, n_tiles: int) -> tuple[np.ndarray, np.ndarray]:
    """For group indices [K]: (which of the K each tile comes from, tile index), over all tiles of those groups
    (group g holds tiles g * _GROUP_TILES .. min((g + 1) * _GROUP_TILES, n_tiles) - 1)."""
    counts = np.minimum(_GROUP_TILES, n_tiles - groups * _GROUP_TILES)
    source = np.repeat(np.arange(len(groups)), counts)
    within = np.arange(len(source)) - np.repeat(np.cumsum(counts) - counts, counts)
    return source, groups[source] * _GROUP_TILES + within


def _behind_votes(queries: np.ndarray, ranges: np.ndarray, world_to_velo: np.ndarray, min_dist: float,
                  chunk_pairs: int, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Votes of F scans for P queries: number of scans each query is behind in (int64 [P]) and whether it is behind
    in the first of them (bool [P]). ranges: filled bin ranges [F, 360]; world_to_velo: float32 [F, 4, 4].

    Queries go in compact tiles of 64, tiles in groups of 16. :func:`_pair_proofs` decides (scan, group) pairs,
    then the tiles of undecided groups; only (scan, tile) pairs still undecided run the per-query test.
    """
    order, tiles = _query_tiles(queries)
    n_tiles = len(tiles)
    coordinates = np.ascontiguousarray(tiles.transpose(2, 0, 1))  # [3, B, S]
    tile_low = coordinates.min(axis=2).T.astype(np.float64)  # [B, 3]
    tile_high = coordinates.max(axis=2).T.astype(np.float64)
    group_starts = np.arange(0, n_tiles, _GROUP_TILES)
    group_low = np.minimum.reduceat(tile_low, group_starts, axis=0)
    group_high = np.maximum.reduceat(tile_high, group_starts, axis=0)
    frames, tables = _scan_frames(world_to_velo), _sparse_tables(ranges)
    n_scans, n_groups = len(world_to_velo), len(group_starts)

    scans = np.repeat(np.arange(n_scans), n_groups)
    groups = np.tile(np.arange(n_groups), n_scans)
    behind, in_front = _pair_proofs(group_low[groups], group_high[groups], scans, frames, tables, min_dist)
    group_votes = np.bincount(groups[behind], minlength=n_groups)
    first_behind = np.zeros(n_tiles, dtype=bool)  # scan 0: proven pairs first, tested pairs overwrite below
    first_proven = np.flatnonzero((scans == 0) & (behind | in_front))
    source, chosen = _tiles_of_groups(groups[first_proven], n_tiles)
    first_behind[chosen] = behind[first_proven][source]

    undecided = np.flatnonzero(~(behind | in_front))
    source, tile_of = _tiles_of_groups(groups[undecided], n_tiles)
    scan_of = scans[undecided][source]
    behind, in_front = _pair_proofs(tile_low[tile_of], tile_high[tile_of], scan_of, frames, tables, min_dist)
    tile_votes = group_votes[np.arange(n_tiles) // _GROUP_TILES] + np.bincount(tile_of[behind], minlength=n_tiles)
    first = (scan_of == 0) & (behind | in_front)
    first_behind[tile_of[first]] = behind[first]

    votes = np.repeat(tile_votes, _TILE_QUERIES)  # [B * S]
    first_behind = np.repeat(first_behind[:, None], _TILE_QUERIES, axis=1)
    table_ranges = np.ascontiguousarray(_padded_slices(ranges)[..., 1])
    near = np.float32(min_dist)
    tested = np.flatnonzero(~(behind | in_front))
    per_chunk = max(1, chunk_pairs // _TILE_QUERIES)
    pairs = [(scan_of[tested[i:i + per_chunk]], tile_of[tested[i:i + per_chunk]])
             for i in range(0, len(tested), per_chunk)]

    def test(pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """behind [n, S] for n (scan, tile) pairs."""
        scan, tile = pair
        qx, qy, qz = coordinates[:, tile]
        return _surface_test(qx, qy, qz, world_to_velo[scan], table_ranges[scan], near)

    query_of = np.arange(_TILE_QUERIES)
    for (scan, tile), result in zip(pairs, _run(test, pairs, workers)):
        votes += np.bincount((tile[:, None] * _TILE_QUERIES + query_of)[result], minlength=len(votes))
        first_behind[tile[scan == 0]] = result[scan == 0]
    out_votes, out_first = np.empty(len(queries), np.int64), np.empty(len(queries), bool)
    out_votes[order] = votes[: len(queries)]
    out_first[order] = first_behind.ravel()[: len(queries)]
    return out_votes, out_first


def lidar_occupancy(
    query_points: np.ndarray,
    scans: Sequence[np.ndarray],
    velo_poses: np.ndarray,
    y_range: tuple[float, float] = DEFAULT_Y_RANGE,
    max_dist: float = DEFAULT_MAX_DIST,
    min_dist: float = DEFAULT_MIN_DIST,
    *,
    division: Division = "true",
    chunk_points: int = _LIDAR_CHUNK_POINTS,
    chunk_pairs: int = _QUERY_CHUNK_PAIRS,
    workers: int = DEFAULT_WORKERS,
) -> tuple[np.ndarray, np.ndarray]:
    """KYN lidar occupancy of query points: ``(occupied, visible)``, bool [P] each.

    query_points: [P, 3] metres in the inclination-corrected cam0 frame of the evaluated image (rounded to float32
    as the reference's grid is). scans: T arrays [N_t, 4] of velodyne points (4th column ignored), scan 0 the
    evaluated frame, or their :func:`prepare_scan` s (same result; a sequence of frames should prepare each scan
    once and pass the prepared scans to every frame that aggregates it). velo_poses: [T, 4, 4]
    velodyne-to-evaluated-frame. y_range: height band (m, y down); max_dist: far-point distance (m), the reference
    passes ``max_dist_for(z_far)`` = 50.16 m for the 4-50 m GT; min_dist: queries closer than this (4-vector norm,
    m) to a scan's sensor count as behind it. ``occupied`` is the vote result *before* ``occupied &= ~visible``;
    ``visible`` is "not behind in scan 0". division: how the float32 vote ratio is formed (see
    :func:`occupied_from_votes`). workers: threads (2 by default); chunk_points / chunk_pairs: memory bounds. None
    of these three changes the result.
    Non-finite coordinates raise ValueError in every scan that is read; a scan proven "behind everywhere" from its
    sample is not read in full, and a non-finite value among its unread points could only lower a bin minimum, which
    leaves the proof (and the reference's labels) unchanged, so it is not checked.
    """
    queries = np.asarray(query_points)
    if queries.ndim != 2 or queries.shape[1] != 3:
        raise ValueError(f"query_points must have shape [P, 3], got {queries.shape}")
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if not np.isfinite(queries).all():
        raise ValueError("query_points contains non-finite values")
    if not min_dist >= 0:
        raise ValueError(f"min_dist must be >= 0 metres, got {min_dist}")
    if division not in ("true", "reciprocal"):
        raise ValueError(f"division must be 'true' or 'reciprocal', got {division!r}")
    checked = _check_scans(scans)
    poses = _check_poses(velo_poses, len(checked))
    y_range = _check_range("y_range", y_range)
    if not max_dist > 0:
        raise ValueError(f"max_dist must be > 0 metres, got {max_dist}")
    if len(queries) == 0:
        lidar_slices(checked, poses, y_range, max_dist, chunk_points=chunk_points, workers=workers)  # still binned
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)

    # A 1/_SAMPLE_STRIDE sample first: sampled kept points are kept points, so their bin minima bound the true ones
    # from above, and a scan proven "behind everywhere" with them is never read in full. >= 360 sampled kept points
    # also prove the reference would not crash on that scan. The sample only decides what is skipped, never a label.
    # (Unread points go unchecked for finiteness: a non-finite point can only add a kept point or none, so it can
    # only lower a bin minimum, which keeps the proof valid.)
    world_to_velo = np.linalg.inv(poses.astype(np.float64)).astype(np.float32)
    raw = [t for t, scan in enumerate(checked) if not isinstance(scan, PreparedScan)]
    sampled = [scan.sample if isinstance(scan, PreparedScan) else None for scan in checked]
    for t, sample in zip(raw, _spread_samples([checked[t] for t in raw], _SAMPLE_STRIDE) if raw else []):
        sampled[t] = sample
    upper, sampled_kept, _ = _bin_minima(sampled, poses, y_range, max_dist, chunk_points, False, workers)
    whole = (queries.min(axis=0)[None].astype(np.float64), queries.max(axis=0)[None].astype(np.float64))
    proven = _block_proofs(*whole, world_to_velo, upper, min_dist)[0][:, 0] & (sampled_kept >= N_BINS)
    full = np.flatnonzero(~proven)
    votes = np.full(len(queries), np.count_nonzero(proven), dtype=np.int64)
    visible = np.zeros(len(queries), dtype=bool)
    if len(full):
        ranges = _slice_ranges([checked[t] for t in full], poses[full], y_range, max_dist, chunk_points, full,
                               workers)
        full_votes, behind_first = _behind_votes(queries, ranges, world_to_velo[full], min_dist, chunk_pairs,
                                                 workers)
        votes += full_votes
        if full[0] == 0:
            visible = ~behind_first
    return occupied_from_votes(votes, len(checked), division), visible


def occupancy_slice(
    scans: Sequence[np.ndarray],
    velo_poses: np.ndarray,
    z_range: tuple[float, float] = GT_Z_RANGE,
    x_range: tuple[float, float] = GT_X_RANGE,
    y_range: tuple[float, float] = DEFAULT_Y_RANGE,
    ppm: float = GT_PPM,
    min_dist: float = DEFAULT_MIN_DIST,
    max_dist: float | None = None,
    *,
    division: Division = "true",
    workers: int = DEFAULT_WORKERS,
) -> tuple[np.ndarray, np.ndarray]:
    """(occupied, visible) bool [rows, cols] on :func:`query_grid` (row 0 = z_range[0], the far end).

    The slice height is (y0 + y1) / 2 and max_dist defaults to the reference's ``max_dist_for(z_range[0],
    x_range[0])`` (50.16 m for the KYN 4-50 m files, 20.40 m for a direct 4-20 m run).
    """
    y_range = _check_range("y_range", y_range)
    grid = query_grid(z_range, x_range, y_range[0] * 0.5 + y_range[1] * 0.5, ppm)
    if max_dist is None:
        max_dist = max_dist_for(z_range[0], x_range[0])
    occupied, visible = lidar_occupancy(grid.reshape(-1, 3), scans, velo_poses, y_range, max_dist, min_dist,
                                        division=division, workers=workers)
    return occupied.reshape(grid.shape[:2]), visible.reshape(grid.shape[:2])


# ------------------------------------------------------------------------------------------------------- files


def gt_file_paths(directory: str | os.PathLike, seq: str, frame: int) -> tuple[Path, Path]:
    """KYN names: ``<dir>/<seq>_<frame:010d>_occgt.npy`` and ``..._visgt.npy`` (frame = real image frame number)."""
    stem = f"{seq}_{int(frame):010d}"
    return Path(directory) / f"{stem}_occgt.npy", Path(directory) / f"{stem}_visgt.npy"


def _check_map(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype != np.bool_ or array.ndim != 2 or array.shape[1] != GT_SHAPE[1]:
        raise ValueError(f"{name} must be a bool array [rows, {GT_SHAPE[1]}], got {array.dtype} {array.shape}")
    return np.ascontiguousarray(array)


def save_occupancy_gt(directory: str | os.PathLike, seq: str, frame: int, occupied: np.ndarray,
                      visible: np.ndarray) -> tuple[Path, Path]:
    """Write occupied / visible bool [rows, 80] maps as KYN ships them (``np.save`` of a C-order bool array).

    Both files are written under temporary names in `directory` and renamed into place only after both writes
    succeeded, so an interrupted run never leaves a truncated .npy under the final name. Returns the two paths.
    """
    occupied, visible = _check_map("occupied", occupied), _check_map("visible", visible)
    if occupied.shape != visible.shape:
        raise ValueError(f"occupied {occupied.shape} and visible {visible.shape} must have the same shape")
    paths = gt_file_paths(directory, seq, frame)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    temporaries = []
    try:
        for path, array in zip(paths, (occupied, visible)):
            handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp",
                                                 delete=False)
            temporaries.append(Path(handle.name))
            with handle:
                np.save(handle, array, allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
        for temporary, path in zip(temporaries, paths):
            os.replace(temporary, path)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
    return paths


def gt_crop_rows(z_range: tuple[float, float], ppm: float = GT_PPM) -> slice:
    """Rows of a 4-50 m file kept for a smaller z_range, as the reference crops:
    ``[int(ppm * (50 - z_far)) : 460 - int(ppm * (z_near - 4))]`` ([300:460] for 20-4 m). Only grid-approximate:
    file row 300 is z = 19.935 m while the 20-4 m query grid starts at 20.0 m."""
    z_far, z_near = z_range
    if not (GT_Z_RANGE[1] <= z_near < z_far <= GT_Z_RANGE[0]):
        raise ValueError(f"z_range must satisfy 4 <= z_near < z_far <= 50 (metres), got {z_range}")
    full_rows = _grid_size(GT_Z_RANGE[0] - GT_Z_RANGE[1], ppm)
    return slice(int(ppm * (GT_Z_RANGE[0] - z_far)), full_rows - int(ppm * (z_near - GT_Z_RANGE[1])))


def _load_map(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"occupancy GT file not found: {path}")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"cannot read occupancy GT file {path}: {error}") from error
    if array.ndim != 2 or array.shape[1] != GT_SHAPE[1]:
        raise ValueError(f"occupancy GT file {path} has shape {array.shape}, expected [rows, {GT_SHAPE[1]}]")
    if array.dtype != np.bool_:
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise ValueError(f"occupancy GT file {path} has dtype {array.dtype}, expected bool")
        array = array != 0  # the reference applies .bool()
    return array


def load_occupancy_gt(directory: str | os.PathLike, seq: str, frame: int,
                      z_range: tuple[float, float] = EVAL_Z_RANGE,
                      ppm: float = GT_PPM) -> tuple[np.ndarray, np.ndarray]:
    """(occupied, visible) bool [rows, 80] for `z_range` (far, near) in metres.

    A 460-row 4-50 m file is row-cropped with :func:`gt_crop_rows` when z_range is smaller, exactly as the reference
    does; a file that already has the rows of `z_range` is returned as is. Missing files raise FileNotFoundError;
    unreadable files or other shapes raise ValueError.
    """
    occ_path, vis_path = gt_file_paths(directory, seq, frame)
    occupied, visible = _load_map(occ_path), _load_map(vis_path)
    if occupied.shape != visible.shape:
        raise ValueError(f"{occ_path} {occupied.shape} and {vis_path} {visible.shape} differ in shape")
    rows = occupied.shape[0]
    wanted = _grid_size(z_range[0] - z_range[1], ppm)
    full_rows = _grid_size(GT_Z_RANGE[0] - GT_Z_RANGE[1], ppm)
    if rows == full_rows and ppm * (z_range[0] - z_range[1]) < rows:
        crop = gt_crop_rows(z_range, ppm)
        return occupied[crop], visible[crop]
    if rows == wanted:
        return occupied, visible
    raise ValueError(f"{occ_path} has {rows} rows: neither the 4-50 m layout ({full_rows}) nor z_range {z_range} "
                     f"({wanted} rows)")
