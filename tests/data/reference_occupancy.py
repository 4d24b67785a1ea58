"""Literal, slow KYN/ViPOcc lidar occupancy GT: a test oracle only.

Written from the behaviour described in shared/reference/reference-implementation.md 4.1 and protocol.md 4.1, step
by step in the order the reference evaluates it: torch tensors, one Python iteration per scan and, inside it, one
per 1-degree bin, a sort plus ``searchsorted`` over the bin borders, and ``torch.cat`` for the +-2 pi padding. It
shares no code with ``vipocc.data.occupancy_gt``; only the precision contract is the same (see that module):

* every tensor the reference keeps in float32 is float32 here too;
* a 4x4 product is written out row by row as ((m0 x + m1 y) + m2 z) + m3 and norms as sqrt((a^2 + b^2) + c^2), in
  float32 with every step correctly rounded (IEEE, so bit-reproducible on any machine);
* atan2 and the 4x4 inverse are evaluated in float64 from the float32 operands and rounded to float32 once;
* bin centres, padding, interpolation and the vote ratio are plain torch float32, exactly as the reference writes them.

Deliberate literal quirks: the kept-points mask is y in [y0, y1] (inclusive) or world norm >= max_dist; an empty bin
repeats the previous bin's range and bins before the first non-empty one take the range of the smallest-angle point
(first after a stable sort); a scan that keeps fewer than 360 points fails with IndexError (the reference's
``zeros_like(polar[:360])`` is too short); the query distance is the norm of the homogeneous 4-vector.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

N_BINS = 360


def _round32(values64: torch.Tensor) -> torch.Tensor:
    return values64.to(torch.float32)


def _sqrt32(values: torch.Tensor) -> torch.Tensor:
    """IEEE float32 sqrt. torch's vectorized CPU float32 sqrt is not correctly rounded (~0.7 % of values differ by an
    ulp); the float64 root of a float32 value rounded to float32 is."""
    return torch.sqrt(values.double()).float()


def _transform(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """float32 [N, 4]: every row k of matrix @ (x, y, z, 1) written out, left to right."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    rows = [((x * matrix[k, 0] + y * matrix[k, 1]) + z * matrix[k, 2]) + matrix[k, 3] for k in range(4)]
    return torch.stack(rows, dim=1)


def reference_kept_mask(scan: np.ndarray, velo_pose: np.ndarray, y_range: Sequence[float],
                        max_dist: float) -> torch.Tensor:
    """bool [N]: evaluated-frame y within [y0, y1] (inclusive) or evaluated-frame 3-D norm >= max_dist."""
    points = torch.from_numpy(np.ascontiguousarray(scan[:, :3], dtype=np.float32))
    evaluated = _transform(torch.from_numpy(np.asarray(velo_pose, dtype=np.float32)), points)
    distance = _sqrt32((evaluated[:, 0] ** 2 + evaluated[:, 1] ** 2) + evaluated[:, 2] ** 2)
    height = evaluated[:, 1]
    floor = torch.linspace(y_range[0], y_range[1], 1)[0]  # a one-sample linspace is its start: the band is [y0, y1]
    in_band = (height >= floor) & (height <= y_range[-1])
    return in_band | (distance >= max_dist)


def reference_slice(scan: np.ndarray, velo_pose: np.ndarray, y_range: Sequence[float], max_dist: float) -> torch.Tensor:
    """One scan's padded polar slice, [362, 2] float32 (bin-centre angle in rad, minimum 2-D range in m)."""
    planar = torch.from_numpy(np.ascontiguousarray(scan[:, :2], dtype=np.float32))
    planar = planar[reference_kept_mask(scan, velo_pose, y_range, max_dist)]
    bearing = _round32(torch.atan2(planar[:, 1].double(), planar[:, 0].double()))
    reach = _sqrt32(planar[:, 0] ** 2 + planar[:, 1] ** 2)
    order = torch.sort(bearing, stable=True).indices
    bearing, reach = bearing[order], reach[order]

    edges = torch.linspace(-math.pi, math.pi, N_BINS + 1)
    cut = torch.searchsorted(bearing, edges)  # bin k holds sorted points cut[k] .. cut[k + 1] - 1
    table = torch.zeros(min(len(reach), N_BINS), 2)  # as short as the point list: < 360 points -> IndexError
    carried = reach[0]  # the smallest-angle point, until a bin has points of its own
    for k in range(N_BINS):
        members = reach[cut[k]:cut[k + 1]]
        if len(members) > 0:
            carried = members.min()
        table[k, 0] = (edges[k] + edges[k + 1]) * 0.5
        table[k, 1] = carried

    before = torch.tensor([[table[-1, 0] - 2 * math.pi, table[-1, 1]]])
    after = torch.tensor([[table[0, 0] + 2 * math.pi, table[0, 1]]])
    return torch.cat((before, table, after), dim=0)


def reference_slices(scans, velo_poses, y_range=(0.0, 0.75), max_dist=math.sqrt(50.0**2 + 4.0**2)) -> list:
    """Padded polar slices of every scan, in order: list of [362, 2] float32 tensors."""
    return [reference_slice(scan, pose, y_range, max_dist) for scan, pose in zip(scans, velo_poses)]


def reference_vote_sums(
    query_points: np.ndarray,
    scans: Sequence[np.ndarray],
    velo_poses: np.ndarray,
    y_range=(0.0, 0.75),
    max_dist: float = math.sqrt(50.0**2 + 4.0**2),
    min_dist: float = 3.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1 + number of scans each query is behind in) as the reference's float32 accumulator [P], and visible [P]."""
    slices = reference_slices(scans, velo_poses, y_range, max_dist)
    queries = torch.from_numpy(np.asarray(query_points, dtype=np.float32).reshape(-1, 3))
    tally = torch.ones(len(queries))
    seen = torch.zeros(len(queries), dtype=torch.bool)
    velo_from_ref = _round32(torch.inverse(torch.from_numpy(np.asarray(velo_poses, dtype=np.float32)).double()))

    for scan_number, (polar, matrix) in enumerate(zip(slices, velo_from_ref)):
        local = _transform(matrix, queries)
        heading = _round32(torch.atan2(local[:, 1].double(), local[:, 0].double()))
        span = _sqrt32(((local[:, 0] ** 2 + local[:, 1] ** 2) + local[:, 2] ** 2) + local[:, 3] ** 2)
        upper = torch.searchsorted(polar[:, 0].contiguous(), heading)
        lower = upper - 1
        fraction = (heading - polar[lower, 0]) / (polar[upper, 0] - polar[lower, 0])
        surface = polar[lower, 1] * (1 - fraction) + polar[upper, 1] * fraction
        hidden = (span > surface) | (span < min_dist)
        tally += hidden.float()
        if scan_number == 0:
            seen = ~hidden
    return tally, seen


def reference_labels(vote_sums: torch.Tensor, n_scans: int, division: str = "true") -> np.ndarray:
    """occupied [P]: vote_sums / T > (T - 2) / T as torch evaluates it on the CPU ("true": a real division) or on
    CUDA ("reciprocal": a division by a Python scalar there multiplies by float32(1 / T))."""
    share = vote_sums.clone()
    if division == "true":
        share /= n_scans
    elif division == "reciprocal":
        share *= torch.tensor(1.0, dtype=torch.float32) / n_scans
    else:
        raise ValueError(f"division must be 'true' or 'reciprocal', got {division!r}")
    return (share > (n_scans - 2) / n_scans).numpy()


def reference_occupancy(query_points, scans, velo_poses, y_range=(0.0, 0.75), max_dist=math.sqrt(50.0**2 + 4.0**2),
                        min_dist=3.0, division="true") -> tuple[np.ndarray, np.ndarray]:
    """(occupied, visible) bool [P]; occupied is the value before ``occ &= ~vis``."""
    sums, visible = reference_vote_sums(query_points, scans, velo_poses, y_range, max_dist, min_dist)
    return reference_labels(sums, len(scans), division), visible.numpy()


# ------------------------------------------------------------------------------------------- synthetic test scenes

# Velodyne axes (x forward, y left, z up) expressed in the corrected cam0 frame (x right, y down, z forward).
VELO_TO_CAM_ROTATION = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
SENSOR_HEIGHT = 1.73  # metres above the road
BORDERS_F32 = torch.linspace(-math.pi, math.pi, N_BINS + 1).numpy()


def velo_pose(position: np.ndarray, yaw: float = 0.0) -> np.ndarray:
    """4x4 float64 velodyne-to-evaluated-frame pose: sensor at `position` (evaluated frame, m), turned by `yaw` (rad)
    about the velodyne z axis."""
    c, s = math.cos(yaw), math.sin(yaw)
    pose = np.eye(4)
    pose[:3, :3] = VELO_TO_CAM_ROTATION @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    pose[:3, 3] = position
    return pose


def _polar_points(rng, angles, radii, heights) -> np.ndarray:
    return np.stack((radii * np.cos(angles), radii * np.sin(angles), heights), axis=1)


def random_scan(rng: np.random.Generator, n_points: int = 3000, wall_radius: float = 12.0, far_points: bool = True,
                empty_first_bins: bool = False) -> np.ndarray:
    """One velodyne scan [N, 4] float32: a ring wall with two gaps (empty bins), road points, boxes, far points,
    points exactly on the +-pi seam, points within a few 1e-7 rad of bin borders, and exact duplicates."""
    n_wall, n_road, n_box = int(0.45 * n_points), int(0.2 * n_points), int(0.15 * n_points)
    n_far = int(0.15 * n_points) if far_points else 0
    gaps = rng.uniform(-math.pi, math.pi, 2)
    wall_angles = rng.uniform(-math.pi, math.pi, n_wall)
    for gap in gaps:  # two gaps of 10-30 degrees leave runs of empty bins
        wall_angles = wall_angles[np.abs(np.angle(np.exp(1j * (wall_angles - gap)))) > rng.uniform(0.09, 0.26)]
    parts = [
        _polar_points(rng, wall_angles, wall_radius + rng.normal(0, 0.05, len(wall_angles)),
                      rng.uniform(-1.3, 0.2, len(wall_angles))),
        _polar_points(rng, rng.uniform(-math.pi, math.pi, n_road), rng.uniform(3, 40, n_road),
                      -SENSOR_HEIGHT + rng.normal(0, 0.02, n_road)),
        _polar_points(rng, rng.uniform(-math.pi, math.pi, n_far), rng.uniform(55, 90, n_far),
                      rng.uniform(-1, 3, n_far)),
    ]
    for _ in range(3):  # box faces facing the sensor: short straight wall segments
        centre, heading = rng.uniform(4, 30), rng.uniform(-math.pi, math.pi)
        along = rng.uniform(-2, 2, n_box // 3)
        x = centre * math.cos(heading) - along * math.sin(heading)
        y = centre * math.sin(heading) + along * math.cos(heading)
        parts.append(np.stack((x, y, rng.uniform(-1.7, -0.2, len(along))), axis=1))
    seam = rng.uniform(5, 20, 8)
    parts.append(np.stack((-seam, np.where(np.arange(8) % 2, 0.0, -0.0), rng.uniform(-1.2, 0.2, 8)), axis=1))
    border = BORDERS_F32[rng.integers(0, N_BINS + 1, 60)].astype(np.float64) + rng.integers(-4, 5, 60) * 1.2e-7
    parts.append(_polar_points(rng, border, rng.uniform(5, 30, 60), rng.uniform(-1.2, 0.2, 60)))
    points = np.concatenate(parts)
    points = np.concatenate((points, points[rng.integers(0, len(points), 20)]))
    if empty_first_bins:  # no point in the first 3 degrees: the leading-fill quirk decides bins 0-2
        points = points[np.arctan2(points[:, 1], points[:, 0]) > -math.pi + math.radians(3)]
    points = points[rng.permutation(len(points))]
    intensity = rng.uniform(0, 1, (len(points), 1))
    return np.concatenate((points, intensity), axis=1).astype(np.float32)


def random_scene(rng: np.random.Generator, n_scans: int, spacing: float = 2.0, n_points: int = 3000,
                 far_points: bool = True) -> tuple[list[np.ndarray], np.ndarray]:
    """T scans driving forward `spacing` metres apart with jitter, and their velo-to-evaluated poses [T, 4, 4]."""
    scans, poses = [], []
    for t in range(n_scans):
        scans.append(random_scan(rng, n_points, rng.uniform(6, 25), far_points, empty_first_bins=t % 3 == 1))
        position = np.array([rng.normal(0, 0.3), -0.3 + rng.normal(0, 0.05), t * spacing + rng.normal(0, 0.2)])
        poses.append(velo_pose(position, rng.normal(0, 0.05)))
    return scans, np.array(poses, dtype=np.float32)
