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
   first point in scan order - torch.sort is not stable, so the reference itself is undefined there). The 360 (bin-centre angle, range) rows are padded with bin 359 at ``c_359 - 2 pi``
   in front and bin 0 at ``c_0 + 2 pi`` behind, so interpolation wraps across +-pi.
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

Speed (>= 30x the literal loop on 300 scans of ~100k points):

* scans go in chunks of about one scan (cache-resident), zero-padded to [C, N_max] so that every step broadcasts
  over scans and points; chunks run on ``workers`` threads (numpy releases the GIL);
* a scan whose sensor is farther than max_dist plus its reach keeps every point without a transform; elsewhere the
  far test uses a rigid-distance bound and evaluates the exact float32 norm only in a thin shell around max_dist;
* bins come from a float32 atan2 and arithmetic, with the float64 atan2 and an exact border comparison only within
  1e-3 bins of a border; the per-bin minimum is one ``np.minimum.at``, empty bins are filled by a running maximum;
* a 1/64 sample of every scan bounds its bin minima from above; a scan proven "behind everywhere" with it (sensor
  beyond the query box, surface nearer than the box in that direction) adds its vote without being read in full;
* queries go in blocks; (scan, block) pairs proven entirely behind, or entirely in front and beyond min_dist, skip
  the per-query test.

Each shortcut is a proof with a margin far above float32 rounding; the tests compare with the literal oracle cell
for cell, and with the shortcuts disabled.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

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

_LIDAR_CHUNK_POINTS = 1 << 17  # points per chunk of scans: about one scan, temporaries stay in cache
_QUERY_CHUNK_PAIRS = 1 << 18  # (scan, query) pairs per chunk (~20 MB of temporaries)
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)  # threads; results never depend on it
_SAMPLE_STRIDE = 64  # 1 point in 64 of each scan feeds the cheap "behind everywhere" proof
_GOLDEN = (math.sqrt(5) - 1) / 2


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


# ----------------------------------------------------------------------------------------------- input checks


def _check_scans(scans: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Validated [N_t, >=3] arrays (not copied; coordinates are converted chunk by chunk)."""
    if isinstance(scans, np.ndarray) or not isinstance(scans, Sequence) or len(scans) == 0:
        raise ValueError("scans must be a non-empty list of [N, 4] velodyne point arrays")
    checked = []
    for t, scan in enumerate(scans):
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


def _pad_chunk(scans: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """float32 velodyne coordinates [3, C, N_max] of C scans, zero-padded, and the validity mask [C, N_max] (None
    when no scan is padded, e.g. a single-scan chunk).

    One block copy per scan: the only per-scan Python statement, it gathers the ragged input into the padded layout
    on which every computation below broadcasts over scans.
    """
    counts = np.array([len(scan) for scan in scans], dtype=np.int64)
    padded = np.empty((3, len(scans), max(int(counts.max()), 1)), dtype=np.float32)
    for row, scan in enumerate(scans):
        padded[:, row, : len(scan)] = scan[:, :3].T
        padded[:, row, len(scan):] = 0
    if (counts == padded.shape[2]).all():
        return padded, None
    return padded, np.arange(padded.shape[2])[None, :] < counts[:, None]


def _far_shell(poses: np.ndarray, reach: np.ndarray, far: float) -> tuple[np.ndarray, ...]:
    """Per scan: whether every point is beyond max_dist, whether any may be, and the squared radii (velodyne frame,
    around the evaluated origin) inside which a point is surely nearer / beyond which surely farther than max_dist.

    A world point is R p + t = R (p - o), o = -R^-1 t being the evaluated origin in velodyne coordinates, so its
    distance lies within [s_min, s_max] * |p - o| (singular values of R) and within |t| -+ s_max |p|. The slack of
    1e-5 of the magnitudes involved covers, with a wide margin, the float32 rounding of this test and of the exact
    one (~1e-7 relative).
    """
    rotation, shift = poses[:, :3, :3].astype(np.float64), poses[:, :3, 3].astype(np.float64)
    singular = np.linalg.svd(rotation, compute_uv=False)
    origin = -np.linalg.solve(rotation, shift[:, :, None])[:, :, 0]
    distance = np.linalg.norm(shift, axis=1)
    slack = 1e-5 * (distance + singular[:, 0] * reach + far + 1.0)
    all_far = distance - singular[:, 0] * reach > far + slack
    may_be_far = distance + singular[:, 0] * reach >= far - slack
    inner = (np.maximum(far - slack, 0) / singular[:, 0]) ** 2 * (1 - 1e-5)
    outer = ((far + slack) / singular[:, -1]) ** 2 * (1 + 1e-5)
    return all_far, may_be_far, origin.astype(np.float32), inner.astype(np.float32), outer.astype(np.float32)


def _exact_far(x: np.ndarray, y: np.ndarray, z: np.ndarray, matrices: np.ndarray, far: np.float32) -> np.ndarray:
    """The contract's ``||world xyz|| >= max_dist`` for points [K] with their own pose [K, 4, 4]."""
    world = [((x * m[:, 0] + y * m[:, 1]) + z * m[:, 2]) + m[:, 3] for m in (matrices[:, k] for k in range(3))]
    return np.sqrt((world[0] * world[0] + world[1] * world[1]) + world[2] * world[2]) >= far


def _kept(coords: np.ndarray, valid: np.ndarray | None, reach: np.ndarray, poses: np.ndarray, y_low: np.float32,
          y_high: np.float32, far: np.float32) -> np.ndarray:
    """Points kept by the slice test [C, N]: evaluated-frame y in [y_low, y_high] or evaluated-frame norm >= far.

    reach: largest |p| per scan [C] (metres, float64). A scan whose sensor is farther than max_dist + its reach
    keeps every point without a transform; elsewhere the far test is decided by the rigid-distance bound of
    :func:`_far_shell` and the exact float32 norm is evaluated only in the thin shell where that is inconclusive.
    """
    x, y, z = coords
    all_far, may_be_far, origin, inner, outer = _far_shell(poses, reach, float(far))
    keep = np.ones(x.shape, dtype=bool) if valid is None else valid.copy()
    rows = np.flatnonzero(~all_far)
    if len(rows) == 0:
        return keep
    if len(rows) < len(poses):
        x, y, z, poses, may_be_far = x[rows], y[rows], z[rows], poses[rows], may_be_far[rows]
        origin, inner, outer = origin[rows], inner[rows], outer[rows]
    height = _affine_row(x, y, z, poses, 1)
    kept = (height >= y_low) & (height <= y_high)
    mixed = np.flatnonzero(may_be_far)
    if len(mixed):
        if len(mixed) < len(poses):
            x, y, z, poses, origin, inner, outer = x[mixed], y[mixed], z[mixed], poses[mixed], origin[mixed], \
                inner[mixed], outer[mixed]
        dx, dy, dz = x - origin[:, 0:1], y - origin[:, 1:2], z - origin[:, 2:3]
        squared = (dx * dx + dy * dy) + dz * dz
        beyond = squared > outer[:, None]
        shell = np.flatnonzero((squared >= inner[:, None]) & ~beyond)
        row = shell // beyond.shape[1]
        beyond.ravel()[shell] = _exact_far(x.ravel()[shell], y.ravel()[shell], z.ravel()[shell], poses[row], far)
        if len(mixed) < len(kept):
            kept[mixed] |= beyond
        else:
            kept |= beyond
    if len(rows) < len(keep):
        keep[rows] &= kept
    else:
        keep &= kept
    return keep


def _kept_bins(x: np.ndarray, y: np.ndarray, borders: np.ndarray) -> np.ndarray:
    """Bin of every point [K] (N_BINS: no bin): a float32 atan2 decides away from borders; within _NEAR_BORDER of
    one, the contract's float64-rounded atan2 and an exact border comparison do."""
    position = (np.arctan2(y, x) - borders[0]) * _BIN_SCALE
    whole = np.floor(position)
    near = np.flatnonzero(np.abs(position - whole - np.float32(0.5)) > np.float32(0.5) - _NEAR_BORDER)
    bins = whole.astype(np.int64)
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


def _bin_minima(scans: list[np.ndarray], poses: np.ndarray, y_range: tuple[float, float], max_dist: float,
                chunk_points: int, lead: bool = True, workers: int = 1,
                scan_index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum kept range per scan and bin [T, 360] float32 (+inf: empty bin), kept points per scan [T], and the
    range of each scan's smallest-angle kept point [T] where bin 0 is empty (the leading fill; 0 elsewhere).
    Non-finite coordinates raise ValueError naming ``scans[scan_index[i]]``.

    Chunks of whole scans run on `workers` threads; each writes only its own scans' slots, so the result does not
    depend on the number of workers.
    """
    n_scans = len(scans)
    scan_index = np.arange(n_scans) if scan_index is None else scan_index
    borders = _bin_borders()
    y_low, y_high, far = np.float32(y_range[0]), np.float32(y_range[1]), np.float32(max_dist)
    bin_min = np.full((n_scans, N_BINS), np.inf, dtype=np.float32)
    kept_count = np.zeros(n_scans, dtype=np.int64)
    lead_range = np.zeros(n_scans, dtype=np.float32)

    def chunk(bounds: tuple[int, int]) -> None:
        start, stop = bounds
        coords, valid = _pad_chunk(scans[start:stop])
        planar = coords[0] * coords[0] + coords[1] * coords[1]
        squared = (planar + coords[2] * coords[2]).max(axis=1)  # zero padding never raises the maximum
        if not np.isfinite(squared).all():
            t = scan_index[start + int(np.flatnonzero(~np.isfinite(squared))[0])]
            raise ValueError(f"scans[{t}] contains non-finite (or absurdly large) coordinates")
        keep = _kept(coords, valid, np.sqrt(squared.astype(np.float64)), poses[start:stop], y_low, y_high, far)
        kept = np.flatnonzero(keep)  # row-major: scan by scan, each in its own point order
        rows = kept // keep.shape[1]
        x, y = coords[0].ravel()[kept], coords[1].ravel()[kept]
        ranges = np.sqrt(planar.ravel()[kept])
        kept_count[start:stop] = np.diff(np.searchsorted(rows, np.arange(stop - start + 1)))
        bins = _kept_bins(x, y, borders)
        minima = np.full(((stop - start) * N_BINS + 1), np.inf, dtype=np.float32)  # last slot: outside every bin
        np.minimum.at(minima, np.where(bins < N_BINS, rows * N_BINS + bins, len(minima) - 1), ranges)
        filled = np.isfinite(minima[:-1].reshape(stop - start, N_BINS))
        bin_min[start:stop] = minima[:-1].reshape(stop - start, N_BINS)
        leading = ~filled[:, 0]  # the fill before the first non-empty bin matters only where bin 0 stayed empty
        if lead and leading.any():
            # The smallest-angle kept point lies in the first non-empty bin (bin 360, i.e. +pi, if all are empty).
            first_bin = np.where(filled.any(axis=1), filled.argmax(axis=1), N_BINS)
            chosen = np.flatnonzero(leading[rows] & (bins == first_bin[rows]))
            fill = _smallest_angle_ranges(rows[chosen], x[chosen], y[chosen], ranges[chosen], stop - start)
            lead_range[start:stop] = np.where(leading, fill, 0)

    sizes = np.array([len(scan) for scan in scans], dtype=np.int64)
    _run(chunk, _chunks(sizes, chunk_points), workers)
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
    overwrites it with 1). velo_poses: [T, 4, 4] velodyne-to-evaluated-frame (inclination-corrected cam0).
    y_range: kept height band in the evaluated frame (metres, y down). max_dist: kept when the point's distance from
    the evaluated origin is >= max_dist (metres; the caller passes ``max_dist_for(z_far)``). Rows 1..360 are the bins
    (centre angle, forward-filled minimum range); row 0 repeats bin 359 at ``c_359 - 2 pi`` and row 361 bin 0 at
    ``c_0 + 2 pi``. The angle column is the same for every scan (:func:`padded_bin_angles`). workers: threads.
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


def _wrap(angles: np.ndarray) -> np.ndarray:
    """Angles (rad) wrapped into [-pi, pi)."""
    return (angles + np.pi) % (2 * np.pi) - np.pi


def _circular_extrema(values: np.ndarray, start: np.ndarray, width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max and min of ``values[t, (start + k) mod n]`` over k = 0..width, for rows t of values [T, n] and index
    arrays start, width [T, B] (0 <= width < n): a sparse table of power-of-two windows over the doubled rows."""
    n_rows, n = values.shape
    if start.shape[1] <= 16:  # few windows per row: a direct mask [T, B, n] is cheaper than the table
        inside = (np.arange(n) - start[..., None]) % n <= width[..., None]
        return (np.where(inside, values[:, None, :], -np.inf).max(axis=-1),
                np.where(inside, values[:, None, :], np.inf).min(axis=-1))
    length = width + 1
    level = np.floor(np.log2(length)).astype(np.int64)
    highs = np.full((int(level.max()) + 1, n_rows, 2 * n), -np.inf, dtype=values.dtype)
    lows = np.full_like(highs, np.inf)
    highs[0] = lows[0] = np.concatenate((values, values), axis=1)
    for k in range(1, len(highs)):  # at most log2(360) + 1 = 9 levels
        half = 1 << (k - 1)
        highs[k, :, : 2 * n - half] = np.maximum(highs[k - 1, :, : 2 * n - half], highs[k - 1, :, half:])
        lows[k, :, : 2 * n - half] = np.minimum(lows[k - 1, :, : 2 * n - half], lows[k - 1, :, half:])
    row = np.arange(n_rows)[:, None]
    first = start % n
    second = first + length - (1 << level)
    return (np.maximum(highs[level, row, first], highs[level, row, second]),
            np.minimum(lows[level, row, first], lows[level, row, second]))


def _block_proofs(low: np.ndarray, high: np.ndarray, world_to_velo: np.ndarray, ranges: np.ndarray,
                  min_dist: float) -> tuple[np.ndarray, np.ndarray]:
    """For T scans and B query boxes ([B, 3] corners, evaluated frame): bool [T, B] "every query of the box is
    certainly behind the scan's surface" and bool [T, B] "every query is certainly in front of it and at least
    min_dist away", so the per-query test of that (scan, box) pair can be skipped.

    ranges: bin ranges [T, 360]; upper bounds (+inf allowed) suffice for the first proof, the second needs the exact
    filled ranges. The box's distance to the sensor bounds every query distance from below, its farthest corner from
    above (the 4-vector norm adds the homogeneous coordinate, bounded at the corners). When the sensor is outside the
    box's footprint and far enough for rounding to move angles by less than a bin, the queries' angles lie within
    the span of the 8 projected corners, so the interpolated surface lies between the smallest and the largest range
    of the bins in that span widened by two bins; otherwise all 360 bins are used. A slack of 1e-5 of the coordinate
    magnitudes covers the float32 rounding of the real computation (~1e-7 relative).
    """
    pick_high = np.indices((2, 2, 2)).reshape(3, 8).T.astype(bool)  # the 8 corners as (x, y, z) low/high choices
    corners = np.where(pick_high[None], high[:, None, :], low[:, None, :])  # [B, 8, 3]
    rotation, translation = world_to_velo[:, :3, :3].astype(np.float64), world_to_velo[:, :3, 3].astype(np.float64)
    homogeneous = world_to_velo[:, 3].astype(np.float64)
    singular = np.linalg.svd(rotation, compute_uv=False)
    sensor = -np.linalg.solve(rotation, translation[:, :, None])[:, :, 0][:, None, :]  # [T, 1, 3] evaluated frame
    gap = np.linalg.norm(np.maximum(np.maximum(low - sensor, sensor - high), 0.0), axis=-1)  # [T, B]
    lower = singular[:, -1:] * gap
    farthest = np.linalg.norm(corners[None] - sensor[:, :, None, :], axis=-1).max(axis=-1)  # [T, B]
    w = np.abs(np.einsum("tj,bcj->tbc", homogeneous[:, :3], corners) + homogeneous[:, None, None, 3]).max(axis=-1)
    upper = np.sqrt((singular[:, :1] * farthest) ** 2 + w**2)

    projected = np.einsum("tij,bcj->tbci", rotation, corners) + translation[:, None, None, :]  # [T, B, 8, 3]
    centre = np.einsum("tij,bj->tbi", rotation, (low + high) / 2) + translation[:, None, :]
    heading = np.arctan2(centre[..., 1], centre[..., 0])
    relative = _wrap(np.arctan2(projected[..., 1], projected[..., 0]) - heading[..., None])
    first, last = relative.min(axis=-1), relative.max(axis=-1)
    magnitude = np.abs(translation).sum(axis=1) + np.abs(rotation).sum(axis=(1, 2)) * np.abs(corners).max()
    slack = (1e-5 * (magnitude + 1.0))[:, None]  # [T, 1]
    # Outside the footprint the corners span less than a half-turn; rounding then moves an angle < 1e-2 rad.
    horizontal = lower - np.abs(projected[..., 2]).max(axis=-1)
    sector = (last - first < np.pi - 0.2) & (horizontal > 1e3 * slack)

    # Bins whose centre -pi + (i + 0.5) w lies within the span widened by 2 bins (1e-3 bins for centre rounding).
    bin_width = 2 * np.pi / N_BINS
    start = np.ceil((heading + first + np.pi) / bin_width - 2.501).astype(np.int64)
    width = np.floor((heading + last + np.pi) / bin_width + 1.501).astype(np.int64) - start
    start, width = np.where(sector, start, 0), np.where(sector, width, N_BINS - 1)
    highest, lowest = _circular_extrema(ranges, start, width)
    behind = lower > highest * (1 + 1e-5) + slack
    in_front = (upper < lowest * (1 - 1e-5) - slack) & (lower > min_dist * (1 + 1e-5) + slack)
    return behind, in_front


def _query_blocks(queries: np.ndarray) -> np.ndarray:
    """Queries [P, 3] as [B, S, 3] blocks of consecutive points (the last padded by repeating the last query):
    consecutive grid cells are neighbours, so each block has a small bounding box. At most 128 blocks."""
    size = max(512, -(-len(queries) // 128))
    n_blocks = -(-len(queries) // size)
    padded = np.concatenate((queries, np.repeat(queries[-1:], n_blocks * size - len(queries), axis=0)))
    return padded.reshape(n_blocks, size, 3)


def _behind_votes(queries: np.ndarray, ranges: np.ndarray, world_to_velo: np.ndarray, min_dist: float,
                  chunk_pairs: int, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Votes of F scans for P queries: number of scans each query is behind in (int64 [P]) and whether it is behind
    in the first of them (bool [P]). ranges: filled bin ranges [F, 360]; world_to_velo: float32 [F, 4, 4].

    Queries go in blocks; (scan, block) pairs proven by :func:`_block_proofs` skip the per-query test.
    """
    borders = _bin_borders()
    table = padded_bin_angles()
    table_ranges = _padded_slices(ranges)[..., 1]
    blocks = _query_blocks(queries)
    behind, in_front = _block_proofs(blocks.min(axis=1).astype(np.float64), blocks.max(axis=1).astype(np.float64),
                                     world_to_velo, ranges, min_dist)
    coordinates = np.ascontiguousarray(blocks.transpose(2, 0, 1))  # [3, B, S]
    near = np.float32(min_dist)

    def test(pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """behind [n, S] for n (scan, block) pairs."""
        scans, chosen = pairs
        qx, qy, qz = coordinates[:, chosen]  # [n, S] each
        matrices = world_to_velo[scans]
        vx, vy = _affine_row(qx, qy, qz, matrices, 0), _affine_row(qx, qy, qz, matrices, 1)
        vz, vw = _affine_row(qx, qy, qz, matrices, 2), _affine_row(qx, qy, qz, matrices, 3)
        angles = _atan2_f32(vy, vx)
        dists = np.sqrt(((vx * vx + vy * vy) + vz * vz) + vw * vw)  # the homogeneous w counts (reference quirk)

        right = _table_index(angles, table, borders)
        left = right - 1
        scan_ranges = table_ranges[scans]
        interp = (angles - table[left]) / (table[right] - table[left])
        left_range = np.take_along_axis(scan_ranges, left, axis=1)
        right_range = np.take_along_axis(scan_ranges, right, axis=1)
        surface = left_range * (np.float32(1) - interp) + right_range * interp
        return (dists > surface) | (dists < near)

    scan_of, block_of = np.nonzero(~behind & ~in_front)
    per_chunk = max(1, chunk_pairs // blocks.shape[1])
    pairs = [(scan_of[i:i + per_chunk], block_of[i:i + per_chunk]) for i in range(0, len(scan_of), per_chunk)]
    votes = np.repeat(behind.sum(axis=0)[:, None], blocks.shape[1], axis=1)  # [B, S]
    behind_first = np.repeat(~in_front[0][:, None], blocks.shape[1], axis=1)
    for (scans, chosen), result in zip(pairs, _run(test, pairs, workers)):
        np.add.at(votes, chosen, result.astype(np.int64))
        first = scans == 0
        behind_first[chosen[first]] = result[first]
    return votes.ravel()[: len(queries)], behind_first.ravel()[: len(queries)]


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
    evaluated frame. velo_poses: [T, 4, 4] velodyne-to-evaluated-frame. y_range: height band (m, y down);
    max_dist: far-point distance (m), the reference passes ``max_dist_for(z_far)`` = 50.16 m for the 4-50 m GT;
    min_dist: queries closer than this (4-vector norm, m) to a scan's sensor count as behind it.
    ``occupied`` is the vote result *before* ``occupied &= ~visible``; ``visible`` is "not behind in scan 0".
    division: how the float32 vote ratio is formed (see :func:`occupied_from_votes`). workers: threads (2 by
    default); chunk_points / chunk_pairs: memory bounds. None of these three changes the result.
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
    sampled = _spread_samples(checked, _SAMPLE_STRIDE)
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
