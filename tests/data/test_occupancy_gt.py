"""Tests for the vectorized KYN lidar occupancy GT (vipocc.data.occupancy_gt).

Truth comes from the literal slow oracle ``reference_occupancy.py`` (torch, one iteration per scan and per bin, written
from the reference's description), hand-computed geometry (a ring wall around the sensor), integer arithmetic for the
vote threshold, and torch itself for torch's float32 linspace / division semantics.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vipocc.data import occupancy_gt as occ
from vipocc.data.occupancy_gt import (
    CAM_INCLINATION_COS,
    CAM_INCLINATION_SIN,
    gt_crop_rows,
    gt_file_paths,
    inclination_correction,
    lidar_occupancy,
    lidar_slices,
    load_occupancy_gt,
    max_dist_for,
    occupancy_slice,
    occupied_from_votes,
    padded_bin_angles,
    prepare_scan,
    query_grid,
    save_occupancy_gt,
    torch_linspace_f32,
)


def _load_oracle():
    path = Path(__file__).resolve().parent / "reference_occupancy.py"
    spec = importlib.util.spec_from_file_location("reference_occupancy_oracle", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


oracle = _load_oracle()
WALL_RADIUS = 10.0


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The oracle's small torch ops stall on 2 threads when other jobs share the 2 cores; the result is the same."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _ring_scan(radius: float, n_points: int = 7200, height: float = -0.4, extra=()) -> np.ndarray:
    """Velodyne points on a horizontal circle (angles offset half a step so none sits on a bin border)."""
    angles = -math.pi + (np.arange(n_points) + 0.5) * (2 * math.pi / n_points)
    points = np.stack((radius * np.cos(angles), radius * np.sin(angles), np.full(n_points, height)), axis=1)
    if len(extra):
        points = np.concatenate((points, np.asarray(extra, dtype=np.float64)))
    return np.concatenate((points, np.zeros((len(points), 1))), axis=1).astype(np.float32)


def _at_origin(n_scans: int = 1) -> np.ndarray:
    """Sensor at the evaluated origin, velodyne axes aligned with the road: velodyne z up = -y, so y_world = -z."""
    return np.repeat(oracle.velo_pose(np.zeros(3))[None], n_scans, axis=0).astype(np.float32)


def _inputs(scans, prepared: bool):
    """The scans as given (raw arrays) or as PreparedScan s, the two inputs lidar_occupancy accepts."""
    return [prepare_scan(scan) for scan in scans] if prepared else scans


def _proofs(queries, poses, ranges, blocks=None):
    """The module's (behind, in front) proofs per scan for the whole query box, or per block of `blocks`."""
    boxes = queries[None] if blocks is None else blocks
    world_to_velo = np.linalg.inv(poses.astype(np.float64)).astype(np.float32)
    proofs = occ._block_proofs(boxes.min(axis=1).astype(np.float64), boxes.max(axis=1).astype(np.float64),
                               world_to_velo, ranges, 3.0)
    return proofs if blocks is not None else tuple(p[:, 0] for p in proofs)


# ------------------------------------------------------------------------------------------- oracle, cell by cell


@pytest.mark.parametrize("prepared", [False, True])
@pytest.mark.parametrize(
    ("n_scans", "spacing", "far_points", "z_range", "seed"),
    [(1, 2.0, True, (20.0, 4.0), 1), (3, 2.0, False, (50.0, 4.0), 2), (3, 7.0, True, (20.0, 4.0), 3)],
)
def test_occupancy_equals_the_literal_oracle(n_scans, spacing, far_points, z_range, seed, prepared):
    rng = np.random.default_rng(seed)
    scans, poses = oracle.random_scene(rng, n_scans, spacing, far_points=far_points)
    queries = query_grid(z_range).reshape(-1, 3)
    occupied, visible = lidar_occupancy(queries, _inputs(scans, prepared), poses)
    expected_occupied, expected_visible = oracle.reference_occupancy(queries, scans, poses)
    np.testing.assert_array_equal(visible, expected_visible)
    np.testing.assert_array_equal(occupied, expected_occupied)
    assert 0 < visible.mean() < 1


def test_twenty_scans_equal_the_oracle_for_both_divisions_and_exercise_every_shortcut():
    rng = np.random.default_rng(20)
    scans, poses = oracle.random_scene(rng, 20, spacing=5.0)
    queries = query_grid((20.0, 4.0)).reshape(-1, 3)
    sums, expected_visible = oracle.reference_vote_sums(queries, scans, poses)
    labels = {}
    for division, prepared in (("true", False), ("reciprocal", False), ("true", True)):
        labels[division], visible = lidar_occupancy(queries, _inputs(scans, prepared), poses, division=division)
        np.testing.assert_array_equal(labels[division], oracle.reference_labels(sums, 20, division))
        np.testing.assert_array_equal(visible, expected_visible.numpy())
    # Non-vacuous: cells behind in exactly T - 3 = 17 scans flip under CUDA's reciprocal division, some scans are
    # proven behind everywhere, some (scan, tile) pairs in front, and some scans have an empty first bin.
    np.testing.assert_array_equal(labels["true"] != labels["reciprocal"], sums.numpy() == 18)
    assert np.any(sums.numpy() == 18)
    ranges = lidar_slices(scans, poses)[:, 1:-1, 1]
    behind, in_front = _proofs(queries, poses, ranges, occ._query_tiles(queries)[1])
    assert _proofs(queries, poses, ranges)[0].sum() >= 3 and behind.sum() > 0 and in_front.sum() > 0
    assert any(np.arctan2(s[:, 1], s[:, 0]).min() > -math.pi + 0.05 for s in scans)


@pytest.mark.parametrize("prepared", [False, True])
def test_slices_equal_the_oracle_including_angles_padding_and_leading_fill(prepared):
    rng = np.random.default_rng(7)
    scans, poses = oracle.random_scene(rng, 3, spacing=3.0)
    slices = lidar_slices(_inputs(scans, prepared), poses)
    expected = torch.stack(oracle.reference_slices(scans, poses)).numpy()
    np.testing.assert_array_equal(slices, expected)
    np.testing.assert_array_equal(slices[0, :, 0], padded_bin_angles())
    assert slices.shape == (3, 362, 2) and slices.dtype == np.float32


def test_pruned_scans_chunk_sizes_threads_and_prepared_scans_do_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(11)
    scans, poses = oracle.random_scene(rng, 8, spacing=9.0)
    queries = query_grid((20.0, 4.0)).reshape(-1, 3)
    prepared = _inputs(scans, True)
    reference = lidar_occupancy(queries, scans, poses)
    variants = [lidar_occupancy(queries, scans, poses, chunk_points=1, chunk_pairs=1, workers=1),
                lidar_occupancy(queries, scans, poses, chunk_points=30000, chunk_pairs=5000, workers=3),
                lidar_occupancy(queries, prepared, poses, workers=3),
                lidar_occupancy(queries, [p if t % 2 else s for t, (s, p) in enumerate(zip(scans, prepared))], poses)]
    ranges = lidar_slices(scans, poses)[:, 1:-1, 1]
    whole_behind = _proofs(queries, poses, ranges)[0]
    behind, in_front = _proofs(queries, poses, ranges, occ._query_tiles(queries)[1])
    assert whole_behind.sum() >= 2 and behind.sum() > whole_behind.sum() * behind.shape[1] and in_front.any()

    def nothing_proven(low, high, scans, *args):
        return (np.zeros(len(scans), bool),) * 2

    def every_block_open(low, high, *args):
        return (np.zeros(low.shape[1], bool),) * 2 + (np.ones(low.shape[1], bool),)

    monkeypatch.setattr(occ, "_pair_proofs", nothing_proven)
    monkeypatch.setattr(occ, "_block_cases", every_block_open)
    variants += [lidar_occupancy(queries, scans, poses), lidar_occupancy(queries, prepared, poses)]
    for result in variants:
        np.testing.assert_array_equal(result[0], reference[0])
        np.testing.assert_array_equal(result[1], reference[1])


def _boundary_points(rng: np.random.Generator, pose: np.ndarray, far: float, n: int = 300) -> np.ndarray:
    """Velodyne points [3 n, 4] whose evaluated-frame position is within 1e-3 m .. 1e-7 m of the 50.16 m sphere or
    of the band planes y = 0 and y = 0.75 (both sides)."""
    offsets = rng.choice([-1e-3, -1e-5, -1e-6, -1e-7, 0.0, 1e-7, 1e-6, 1e-5, 1e-3], n)
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    sphere = direction * (far + offsets)[:, None]
    planes = rng.uniform(-30, 30, (2 * n, 3))
    planes[:, 1] = np.concatenate((np.zeros(n), np.full(n, 0.75))) + np.concatenate((offsets, offsets))
    world = np.concatenate((sphere, planes))
    velo = (world - pose[:3, 3]) @ np.linalg.inv(pose[:3, :3]).T
    return np.concatenate((velo, np.zeros((len(velo), 1))), axis=1).astype(np.float32)


@pytest.mark.parametrize("distance", [0.0, 5.0, 30.0, 60.0, 100.0, 160.0, 400.0])
def test_kept_points_with_far_and_block_shortcuts_equal_the_oracle_mask(distance, monkeypatch):
    rng = np.random.default_rng(int(distance))
    poses = np.array([oracle.velo_pose(np.array([1.0, -0.3, distance]), 0.3)] * 2, dtype=np.float32)
    scans = [np.concatenate((oracle.random_scan(rng, 4000, 15.0, far_points=far),
                             _boundary_points(rng, poses[0].astype(np.float64), occ.DEFAULT_MAX_DIST)))
             for far in (True, False)]
    # A third scan written ring by ring, azimuth by azimuth, as a Velodyne does (the shuffled ones leave every block
    # undecided): rings on the road, in the band and above it, near, around and beyond max_dist.
    rings = [_ring_scan(radius, 2000, height) for radius in (8.0, 30.0, 49.0, 51.0, 75.0)
             for height in (-1.7, -0.4, 0.8)]
    scans.append(np.concatenate(rings + [scans[0][-20:]]))
    poses = np.concatenate((poses, poses[:1]))
    shell_points = []
    exact_far = occ._exact_far
    monkeypatch.setattr(occ, "_exact_far", lambda x, *args: shell_points.append(x.size) or exact_far(x, *args))
    limits = np.float32(0.0), np.float32(0.75), np.float32(occ.DEFAULT_MAX_DIST)
    geometry = occ._pose_geometry(poses)
    chunk = occ._stack(scans)  # raw scans: the per-point path
    kept = occ._kept_points(chunk, poses, geometry, *limits)
    prepared = [prepare_scan(scan) for scan in scans]  # prepared scans: the block path
    cases = occ._prepared_cases(prepared, poses, geometry, *limits)
    for row, scan in enumerate(scans):
        expected = oracle.reference_kept_mask(scan, poses[row], (0.0, 0.75), occ.DEFAULT_MAX_DIST).numpy()
        mask = np.zeros(chunk.coords.shape[1:], dtype=bool).ravel()
        mask[kept] = True
        padding = chunk.coords.shape[2] - len(scan)
        np.testing.assert_array_equal(mask.reshape(chunk.coords.shape[1:])[row], np.pad(expected, (0, padding)))
        blocked = occ._block_kept(prepared[row], cases[row], poses[row:row + 1],
                                  tuple(g[row:row + 1] for g in geometry), *limits)
        assert len(np.unique(blocked)) == len(blocked)
        np.testing.assert_array_equal(np.sort(blocked), np.flatnonzero(expected))
    none, every, far_open = cases[2]
    assert (none | every).mean() > 0.5  # the ring scan: most blocks decided as a whole
    if distance <= 30:  # some rings nearer than max_dist: blocks with nothing kept, and blocks cut by the sphere
        assert none.any() and every.any() and (far_open & ~none & ~every).any()
    if distance <= 100:  # the sensor is near enough for the sphere to cut the scans: the thin shell is tested
        assert sum(shell_points) > 0


# ----------------------------------------------------------------------------------- analytic geometry (ring wall)


def _ring_truth(queries: np.ndarray, min_dist: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Hand geometry for a sensor at the origin inside a wall of radius R: the query's velodyne 4-vector is
    (z, -x, -y, 1), so its distance is sqrt(x^2 + y^2 + z^2 + 1); visible iff min_dist <= distance < R."""
    distance = np.sqrt((queries.astype(np.float64) ** 2).sum(axis=1) + 1.0)
    decided = np.abs(distance - WALL_RADIUS) > 1e-3
    return (distance >= min_dist) & (distance < WALL_RADIUS), decided


def test_ring_wall_inside_is_free_and_visible_outside_occupied():
    queries = query_grid((20.0, 4.0)).reshape(-1, 3)
    expected_visible, decided = _ring_truth(queries)
    scan = _ring_scan(WALL_RADIUS)
    occupied, visible = lidar_occupancy(queries, [scan], _at_origin())
    np.testing.assert_array_equal(visible[decided], expected_visible[decided])
    assert occupied.all()  # T = 1: the threshold (1 - 2) / 1 = -1 marks everything before `occ &= ~vis`
    np.testing.assert_array_equal((occupied & ~visible)[decided], ~expected_visible[decided])

    occupied3, visible3 = lidar_occupancy(queries, [scan] * 3, _at_origin(3))
    np.testing.assert_array_equal(visible3, visible)
    np.testing.assert_array_equal(occupied3, ~visible)  # T = 3: occupied iff behind in >= 1 scan


def test_min_dist_and_the_homogeneous_norm_quirk_on_hand_picked_queries():
    # (0, 0.375, z): 4-vector distance sqrt(z^2 + 0.140625 + 1).
    queries = np.array([[0, 0.375, 2.0], [0, 0.375, 2.9], [0, 0.375, 9.90], [0, 0.375, 9.96]], dtype=np.float32)
    scan = [_ring_scan(WALL_RADIUS)]
    _, visible = lidar_occupancy(queries, scan, _at_origin())
    # 2.0 -> 2.267 < 3: behind by min_dist; 2.9 -> 3.090 visible; 9.90 -> 9.957 < 10 visible;
    # 9.96 -> 10.017 > 10 although its 3-D distance 9.967 is inside the wall: the homogeneous 1 hides it.
    np.testing.assert_array_equal(visible, [False, True, True, False])
    _, visible_no_min = lidar_occupancy(queries, scan, _at_origin(), min_dist=0.0)
    np.testing.assert_array_equal(visible_no_min, [True, True, True, False])


def test_band_edges_are_inclusive_and_max_dist_keeps_far_points_outside_the_band():
    # y_world = -z_velo here; a 30 m ring (in the band) fills every bin. Extra points, one bin each:
    # 21 m on the y = 0.75 edge (kept) beside 15 m just below it (y = 0.75 + 1 ulp, dropped); 22 m on the y = 0 edge
    # (kept); 16 m at y = -1e-6 (dropped); 25 m at y = -2 (outside the band, world distance 25.08 m: kept only when
    # max_dist = 20.40 m, the value a direct 4-20 m run uses, not with the 50.16 m of the 4-50 m files).
    above = float(-np.nextafter(np.float32(0.75), np.float32(1)))
    placed = {0.3: [(21, -0.75), (15, above)], -0.5: [(22, 0.0)], 2.0: [(16, 1e-6)], 1.0: [(25, 2.0)]}
    extra = [[r * math.cos(a), r * math.sin(a), z] for a, points in placed.items() for r, z in points]
    scan = _ring_scan(30.0, n_points=720, height=-0.4, extra=extra)
    borders = torch.linspace(-math.pi, math.pi, 361).numpy()
    column = {a: 1 + int(np.searchsorted(borders, np.float32(a), side="right")) - 1 for a in placed}
    strict = lidar_slices([scan], _at_origin(), max_dist=max_dist_for(50.0))[0, :, 1]
    loose = lidar_slices([scan], _at_origin(), max_dist=max_dist_for(20.0))[0, :, 1]
    expected = {0.3: 21.0, -0.5: 22.0, 2.0: 30.0, 1.0: 30.0}
    for angle, value in expected.items():
        assert strict[column[angle]] == pytest.approx(value, abs=1e-4)
    assert loose[column[1.0]] == pytest.approx(25.0, abs=1e-4)
    assert max_dist_for(50.0) == pytest.approx(math.sqrt(2516)) and max_dist_for(20.0) == pytest.approx(math.sqrt(416))


def test_empty_bins_repeat_the_previous_range_and_leading_bins_take_the_smallest_angle_point():
    # 400 points only in bins 10..19, none elsewhere. The smallest-angle point (bin 10) has range 7 while bin 10's
    # minimum is 5: bins 0-9 must read 7 (the reference's first sorted row), 10 -> 5, 11..19 -> 20 + i, 20..359 -> 39.
    borders = torch.linspace(-math.pi, math.pi, 361).numpy().astype(np.float64)
    rng = np.random.default_rng(5)
    angles, radii = [borders[10] + 1e-4, borders[10] + 5e-3], [7.0, 5.0]
    for i in range(10, 20):
        inside = rng.uniform(borders[i] + 2e-3, borders[i + 1] - 1e-4, 40)
        angles += list(inside)
        radii += list(np.where(np.arange(40) == 0, 20.0 + i, 40.0 + 10 * rng.random(40)))
    angles, radii = np.array(angles), np.array(radii)
    points = np.stack((radii * np.cos(angles), radii * np.sin(angles), np.full(len(radii), -0.4)), axis=1)
    scan = np.concatenate((points, np.zeros((len(points), 1))), axis=1).astype(np.float32)
    ranges = lidar_slices([scan], _at_origin())[0, :, 1]
    expected = np.concatenate(([39.0], [7.0] * 10, [5.0], 20.0 + np.arange(11, 20), [39.0] * 340, [7.0]))
    np.testing.assert_allclose(ranges, expected, rtol=1e-6)
    np.testing.assert_array_equal(ranges, torch.stack(oracle.reference_slices([scan], _at_origin())).numpy()[0, :, 1])


def test_the_pi_seam_point_belongs_to_no_bin_and_minus_pi_to_bin_zero():
    ring = _ring_scan(20.0, n_points=720)
    plus_pi = np.array([[-5.0, 0.0, -0.4, 0.0]], dtype=np.float32)  # atan2(+0, -5) = +pi = B_360
    minus_pi = np.array([[-6.0, -0.0, -0.4, 0.0]], dtype=np.float32)  # atan2(-0, -6) = -pi = B_0
    ranges = lidar_slices([np.concatenate((ring, plus_pi))], _at_origin())[0, :, 1]
    assert ranges[360] == pytest.approx(20.0, abs=1e-4) and ranges[1] == pytest.approx(20.0, abs=1e-4)
    ranges = lidar_slices([np.concatenate((ring, minus_pi))], _at_origin())[0, :, 1]
    assert ranges[1] == pytest.approx(6.0, abs=1e-5) and ranges[361] == ranges[1] and ranges[0] == ranges[360]


# --------------------------------------------------------------------------------- float32 mechanics vs torch


@pytest.mark.parametrize("steps", [1, 2, 80, 160, 361, 460, 1001])
def test_linspace_is_torch_float32_linspace_bit_for_bit(steps):
    for start, end in [(-math.pi, math.pi), (50.0, 4.0), (20.0, 4.0), (-4.0, 4.0), (3.0, -2.0)]:
        np.testing.assert_array_equal(torch_linspace_f32(start, end, steps),
                                      torch.linspace(start, end, steps).numpy())


def test_padded_angles_follow_torch_float32_arithmetic():
    borders = torch.linspace(-math.pi, math.pi, 361)
    centres = (borders[:-1] + borders[1:]) * 0.5
    expected = torch.cat(((centres[-1] - math.pi * 2)[None], centres, (centres[0] + math.pi * 2)[None])).numpy()
    np.testing.assert_array_equal(padded_bin_angles(), expected)


def test_bin_and_table_lookups_equal_binary_search_on_adversarial_angles():
    borders = occ._bin_borders()
    table = padded_bin_angles()
    rng = np.random.default_rng(3)
    seeds = np.concatenate((borders, table[1:-1], rng.uniform(-math.pi, math.pi, 20000).astype(np.float32)))
    angles, up, down = [seeds], seeds, seeds
    for _ in range(4):  # every border and centre, and up to 4 ulps either side of it
        up, down = np.nextafter(up, np.float32(4)), np.nextafter(down, np.float32(-4))
        angles += [up, down]
    angles = np.clip(np.concatenate(angles), borders[0], borders[-1]).astype(np.float32)
    np.testing.assert_array_equal(occ._border_bin(angles, borders), np.searchsorted(borders, angles, "right") - 1)
    np.testing.assert_array_equal(occ._table_index(angles, table, borders), np.searchsorted(table, angles, "left"))


@pytest.mark.parametrize("n_windows", [3, 40])
def test_circular_window_extrema_equal_brute_force(n_windows):
    rng = np.random.default_rng(12)
    values = rng.random((5, 360)).astype(np.float32)
    start = rng.integers(-400, 800, (5, n_windows))
    width = rng.integers(0, 360, (5, n_windows))
    highest, lowest = occ._circular_extrema(values, start, width)
    for t in range(5):
        for b in range(n_windows):
            window = values[t, (start[t, b] + np.arange(width[t, b] + 1)) % 360]
            assert highest[t, b] == window.max() and lowest[t, b] == window.min()


def test_query_tiles_are_a_compact_permutation_and_samples_stay_in_range():
    queries = query_grid((50.0, 4.0)).reshape(-1, 3)
    order, tiles = occ._query_tiles(queries)
    np.testing.assert_array_equal(np.sort(order), np.arange(len(queries)))
    np.testing.assert_array_equal(tiles.reshape(-1, 3)[: len(queries)], queries[order])
    extent = tiles.max(axis=1) - tiles.min(axis=1)  # 64 cells of 0.1 m: an 8 x 8 square is 0.7 m wide
    assert np.median(extent[:, 0]) < 0.8 and np.median(extent[:, 2]) < 0.8 and (extent[:, [0, 2]] < 1.7).mean() > 0.9
    values = np.random.default_rng(4).integers(0, 1 << 16, 1000).astype(np.uint64)
    slow = [sum(((int(v) >> bit) & 1) << (2 * bit) for bit in range(16)) for v in values]
    np.testing.assert_array_equal(occ._spread_bits(values), slow)
    scans = [np.arange(4 * n, dtype=np.float32).reshape(n, 4) for n in (33, 1000, 4097)]
    for scan, sample in zip(scans, occ._spread_samples(scans, 32)):
        index = sample[:, 0].astype(np.int64) // 4
        assert len(sample) == len(scan) // 32 and np.all(np.diff(index) > 0) and index[-1] < len(scan)
        np.testing.assert_array_equal(index // 32, np.arange(len(sample)))  # one point per run of 32


def test_pair_proofs_agree_with_the_per_query_test():
    rng = np.random.default_rng(21)
    scans, poses = oracle.random_scene(rng, 10, spacing=4.0)
    queries = query_grid((20.0, 4.0)).reshape(-1, 3)
    ranges = lidar_slices(scans, poses)[:, 1:-1, 1]
    world_to_velo = np.linalg.inv(poses.astype(np.float64)).astype(np.float32)
    tiles = occ._query_tiles(queries)[1]  # [B, 64, 3]
    behind, in_front = _proofs(queries, poses, ranges, tiles)  # [T, B]
    table_ranges = occ._padded_slices(ranges)[..., 1]
    for t in range(len(scans)):
        x, y, z = np.ascontiguousarray(tiles.transpose(2, 0, 1))
        truth = occ._surface_test(x, y, z, world_to_velo[[t] * len(tiles)], table_ranges[[t] * len(tiles)],
                                  np.float32(3.0))  # [B, 64]
        assert truth[behind[t]].all() and not truth[in_front[t]].any()
    assert behind.any() and in_front.any() and (~(behind | in_front)).any()


def test_vote_threshold_true_division_is_the_integer_rule_and_matches_torch():
    for n_scans in range(1, 401):
        votes = np.arange(n_scans + 1)
        occupied = occupied_from_votes(votes, n_scans, "true")
        np.testing.assert_array_equal(occupied, votes >= n_scans - 2)
        np.testing.assert_array_equal(occupied, oracle.reference_labels(torch.tensor(1.0 + votes).float(), n_scans))


def test_vote_threshold_reciprocal_division_matches_torch_cuda_semantics():
    flips = []
    for n_scans in range(1, 401):
        votes = np.arange(n_scans + 1)
        occupied = occupied_from_votes(votes, n_scans, "reciprocal")
        expected = oracle.reference_labels(torch.tensor(1.0 + votes).float(), n_scans, "reciprocal")
        np.testing.assert_array_equal(occupied, expected)
        if occupied[n_scans - 3] if n_scans >= 3 else False:
            flips.append(n_scans)
    assert 20 in flips and 300 not in flips  # BTS's T = 20 also counts T - 3 votes on CUDA; KYN's T = 300 does not


# ------------------------------------------------------------------------------------------- frame and query grid


def test_inclination_correction_is_a_5_degree_pitch_about_x():
    rotation = inclination_correction().astype(np.float64)
    assert math.degrees(math.atan2(CAM_INCLINATION_SIN, CAM_INCLINATION_COS)) == pytest.approx(5.0, abs=1e-5)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(4), atol=1e-7)
    # cam0's optical axis points 5 deg below the corrected (road-parallel) horizontal: +y is down.
    np.testing.assert_allclose(rotation @ [0, 0, 1, 0], [0, CAM_INCLINATION_SIN, CAM_INCLINATION_COS, 0], atol=1e-7)
    np.testing.assert_array_equal(rotation[:, 0], [1, 0, 0, 0])


@pytest.mark.parametrize(("z_range", "rows"), [((50.0, 4.0), 460), ((20.0, 4.0), 160)])
def test_query_grid_shape_order_and_coordinates(z_range, rows):
    grid = query_grid(z_range)
    assert grid.shape == (rows, 80, 3) and grid.dtype == np.float32
    np.testing.assert_array_equal(grid[:, 0, 2], torch.linspace(z_range[0], z_range[1], rows).numpy())
    np.testing.assert_array_equal(grid[0, :, 0], torch.linspace(-4.0, 4.0, 80).numpy())
    assert grid[0, 0, 2] == z_range[0] and grid[-1, 0, 2] == 4.0 and (grid[..., 1] == np.float32(0.375)).all()
    assert np.diff(grid[:, 0, 2]) == pytest.approx(-(z_range[0] - 4.0) / (rows - 1), abs=1e-5)


def test_occupancy_slice_is_lidar_occupancy_on_the_grid_with_the_reference_max_dist():
    rng = np.random.default_rng(9)
    scans, poses = oracle.random_scene(rng, 3, spacing=2.0)
    occupied, visible = occupancy_slice(scans, poses, z_range=(20.0, 4.0))
    flat = lidar_occupancy(query_grid((20.0, 4.0)).reshape(-1, 3), scans, poses, max_dist=max_dist_for(20.0))
    assert occupied.shape == visible.shape == (160, 80)
    np.testing.assert_array_equal(occupied.ravel(), flat[0])
    np.testing.assert_array_equal(visible.ravel(), flat[1])


# ------------------------------------------------------------------------------------------------------- files


def test_crop_rows_of_the_50_m_files():
    assert gt_crop_rows((20.0, 4.0)) == slice(300, 460)
    assert gt_crop_rows((50.0, 4.0)) == slice(0, 460)
    assert gt_crop_rows((30.0, 10.0)) == slice(200, 400)
    z = query_grid((50.0, 4.0))[gt_crop_rows((20.0, 4.0)), 0, 2]
    assert len(z) == 160 and z[0] == pytest.approx(50 - 300 * 46 / 459, abs=1e-5) and z[-1] == 4.0  # 19.935 m
    with pytest.raises(ValueError, match="z_range"):
        gt_crop_rows((60.0, 4.0))


def test_save_load_round_trip_in_the_kyn_layout(tmp_path):
    rng = np.random.default_rng(4)
    occupied, visible = rng.random((460, 80)) < 0.3, rng.random((460, 80)) < 0.5
    seq = "2013_05_28_drive_0000_sync"
    paths = save_occupancy_gt(tmp_path / "GT_Occ", seq, 1234, occupied, visible)
    assert [p.name for p in paths] == [f"{seq}_0000001234_occgt.npy", f"{seq}_0000001234_visgt.npy"]
    assert sorted(p.name for p in (tmp_path / "GT_Occ").iterdir()) == sorted(p.name for p in paths)  # no temp left
    raw = np.load(paths[0])
    assert raw.dtype == np.bool_ and raw.shape == (460, 80)
    full = load_occupancy_gt(tmp_path / "GT_Occ", seq, 1234, z_range=(50.0, 4.0))
    np.testing.assert_array_equal(full[0], occupied)
    np.testing.assert_array_equal(full[1], visible)
    cropped = load_occupancy_gt(tmp_path / "GT_Occ", seq, 1234)
    np.testing.assert_array_equal(cropped[0], occupied[300:460])
    np.testing.assert_array_equal(cropped[1], visible[300:460])
    save_occupancy_gt(tmp_path, seq, 5, occupied[300:], visible[300:])  # a file made directly at 4-20 m
    np.testing.assert_array_equal(load_occupancy_gt(tmp_path, seq, 5)[0], occupied[300:])


def test_file_errors_name_the_file_and_the_problem(tmp_path):
    seq = "2013_05_28_drive_0000_sync"
    with pytest.raises(FileNotFoundError, match="_occgt.npy"):
        load_occupancy_gt(tmp_path, seq, 1)
    occ_path, vis_path = gt_file_paths(tmp_path, seq, 2)
    np.save(occ_path, np.zeros((100, 80), dtype=bool))
    np.save(vis_path, np.zeros((100, 80), dtype=bool))
    with pytest.raises(ValueError, match="100 rows"):
        load_occupancy_gt(tmp_path, seq, 2)
    np.save(occ_path, np.zeros((460, 7), dtype=bool))
    with pytest.raises(ValueError, match="shape"):
        load_occupancy_gt(tmp_path, seq, 2)
    occ_path.write_bytes(b"not a npy file")
    with pytest.raises(ValueError, match="cannot read"):
        load_occupancy_gt(tmp_path, seq, 2)
    with pytest.raises(ValueError, match="bool"):
        save_occupancy_gt(tmp_path, seq, 3, np.zeros((460, 80)), np.zeros((460, 80), dtype=bool))
    with pytest.raises(ValueError, match="same shape"):
        save_occupancy_gt(tmp_path, seq, 3, np.zeros((460, 80), bool), np.zeros((160, 80), bool))
    assert not gt_file_paths(tmp_path, seq, 3)[0].exists()


# ------------------------------------------------------------------------------------------------------ inputs


def test_bad_inputs_raise_value_errors_naming_the_argument():
    rng = np.random.default_rng(6)
    scans, poses = oracle.random_scene(rng, 2)
    queries = query_grid((20.0, 4.0), ppm=2).reshape(-1, 3)
    with pytest.raises(ValueError, match="query_points"):
        lidar_occupancy(queries[:, :2], scans, poses)
    with pytest.raises(ValueError, match="velo_poses"):
        lidar_occupancy(queries, scans, poses[:1])
    with pytest.raises(ValueError, match="scans"):
        lidar_occupancy(queries, np.stack(scans[:1]), poses[:1])
    with pytest.raises(ValueError, match=r"scans\[1\]"):
        lidar_occupancy(queries, [scans[0], scans[1][:, :2]], poses)
    bad = scans[1].copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        lidar_occupancy(queries, [scans[0], bad], poses)
    singular = poses.copy()
    singular[1, :3, :3] = 0
    with pytest.raises(ValueError, match=r"velo_poses\[1\] is singular"):
        lidar_occupancy(queries, scans, singular)
    with pytest.raises(ValueError, match="division"):
        lidar_occupancy(queries, scans, poses, division="half")


def test_a_scan_with_fewer_than_360_kept_points_fails_like_the_reference_crashes():
    sparse = _ring_scan(WALL_RADIUS, n_points=359)
    queries = query_grid((20.0, 4.0), ppm=2).reshape(-1, 3)
    with pytest.raises(ValueError, match=r"scans\[0\] keeps only 359 points"):
        lidar_occupancy(queries, [sparse], _at_origin())
    with pytest.raises(IndexError):
        oracle.reference_occupancy(queries, [sparse], _at_origin())
    lidar_occupancy(queries, [_ring_scan(WALL_RADIUS, n_points=360)], _at_origin())  # 360 is enough


def test_a_short_scan_far_ahead_still_fails_even_though_it_could_be_skipped():
    rng = np.random.default_rng(8)
    scans, poses = oracle.random_scene(rng, 2)
    poses[1] = oracle.velo_pose(np.array([0.0, -0.3, 200.0]))
    queries = query_grid((20.0, 4.0), ppm=2).reshape(-1, 3)
    lidar_occupancy(queries, scans, poses)
    with pytest.raises(ValueError, match=r"scans\[1\] keeps only 359 points"):
        lidar_occupancy(queries, [scans[0], scans[1][:359]], poses)


def test_non_finite_points_fail_in_every_scan_that_is_read():
    rng = np.random.default_rng(10)
    scans, poses = oracle.random_scene(rng, 2)
    scans[1] = oracle.random_scan(rng, 40000)  # 625 sampled points: enough to prove it behind everywhere
    poses[1] = oracle.velo_pose(np.array([0.0, -0.3, 200.0]))
    queries = query_grid((20.0, 4.0), ppm=2).reshape(-1, 3)
    for prepared in (False, True):  # a PreparedScan keeps the bad point; it raises when a frame reads it
        for t, row in ((0, 1), (1, 0)):  # row 0 is always sampled (one point per run of 64, the first at 0)
            bad = [scan.copy() for scan in scans]
            bad[t][row, 2] = np.inf
            with pytest.raises(ValueError, match=rf"scans\[{t}\] contains non-finite"):
                lidar_occupancy(queries, _inputs(bad, prepared), poses)
            with pytest.raises(ValueError, match=rf"scans\[{t}\] contains non-finite"):
                lidar_slices(_inputs(bad, prepared), poses)
        # An unread point of a skipped scan can only lower its bin minima: the labels stay the reference's.
        bad = [scans[0], scans[1].copy()]
        bad[1][1, 2] = np.inf
        np.testing.assert_array_equal(lidar_occupancy(queries, _inputs(bad, prepared), poses)[0],
                                      lidar_occupancy(queries, scans, poses)[0])
