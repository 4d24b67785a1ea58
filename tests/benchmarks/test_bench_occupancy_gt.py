"""Throughput of the KYN lidar occupancy GT: vectorized module vs the literal per-scan, per-bin oracle.

One call = one frame's GT on KYN's grid: 460 x 80 queries (z 50 -> 4 m), T scans of a synthetic street (64-ring
Velodyne pattern, ~100k points each in ring order: road, side walls, parked cars, 80 m range) driving 0.8 m per scan.
The 80 scans nearest the evaluated frame (the ones a frame reads in full) are distinct arrays; farther ones share 6
base sweeps (only their 1/64 sample is read).

``test_bench_occupancy_gt_speedup_vs_literal_loop`` times the literal oracle and the module on the same input in the
same process, interleaved, best of k rounds, and prints / records (extra_info) both and their ratio:

* raw: scan arrays as read from disk, every frame on its own (workers = 1 and 2 threads);
* steady: :func:`prepare_scan` s reused across frames as in a sequence (consecutive frames share 299 of 300 scans),
  plus the preparation of the one new scan each frame brings.

With ``--benchmark-enable`` it runs T = 300 (about a minute: the oracle takes seconds per call); as a plain test
(benchmarks disabled) T = 4 and one round, to stay fast. No timing is asserted.
"""

from __future__ import annotations

import importlib.util
import math
import time
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from vipocc.data.occupancy_gt import lidar_occupancy, prepare_scan, query_grid


def _load_oracle():
    path = Path(__file__).resolve().parents[1] / "data" / "reference_occupancy.py"
    spec = importlib.util.spec_from_file_location("reference_occupancy_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


oracle = _load_oracle()
N_BASE_SCANS = 6
N_DISTINCT = 80


def _street_scan(rng: np.random.Generator, n_azimuth: int = 1600, n_rings: int = 64, max_range: float = 80.0):
    """[N, 4] float32 returns of one Velodyne sweep in a street: road plane, walls at +-W, 8 parked cars."""
    elevation = np.radians(np.linspace(2.0, -24.9, n_rings))[:, None]
    azimuth = np.linspace(-math.pi, math.pi, n_azimuth, endpoint=False)[None, :] + rng.uniform(0, 0.004)
    direction = np.stack(np.broadcast_arrays(np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                                             np.sin(elevation)), axis=-1).reshape(-1, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        hit = np.where(direction[:, 2] < 0, oracle.SENSOR_HEIGHT / -direction[:, 2], np.inf)
        half_width = rng.uniform(6, 9)
        wall = np.abs(half_width / direction[:, 1])
        hit = np.minimum(hit, np.where(np.isfinite(wall), wall, np.inf))
        for _ in range(8):
            side = rng.choice([-1, 1]) * (half_width - 1.5)
            low = np.array([rng.uniform(-40, 60) - 2, side - 0.9, -oracle.SENSOR_HEIGHT])
            t1, t2 = (low - 0) / direction, (low + [4.0, 1.8, 1.5]) / direction
            enter, leave = np.nanmax(np.minimum(t1, t2), axis=1), np.nanmin(np.maximum(t1, t2), axis=1)
            hit = np.where((enter <= leave) & (enter > 0), np.minimum(hit, enter), hit)
    returned = hit < max_range
    points = direction[returned] * (hit[returned] * (1 + rng.normal(0, 0.001, returned.sum())))[:, None]
    return np.concatenate((points, rng.uniform(0, 1, (len(points), 1))), axis=1).astype(np.float32)


@cache
def _street(n_scans: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    base = [_street_scan(rng) for _ in range(N_BASE_SCANS)]
    scans = [base[t % N_BASE_SCANS].copy() if t < N_DISTINCT else base[t % N_BASE_SCANS] for t in range(n_scans)]
    poses = [oracle.velo_pose(np.array([0.0, -0.3, 0.8 * t]), rng.normal(0, 0.01)) for t in range(n_scans)]
    return scans, np.array(poses, dtype=np.float32)


@cache
def _prepared(n_scans: int) -> list:
    return [prepare_scan(scan) for scan in _street(n_scans)[0]]


def _seconds(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def test_bench_occupancy_gt_speedup_vs_literal_loop(benchmark, capsys):
    n_scans, rounds = (300, 3) if benchmark.enabled else (4, 1)
    scans, poses = _street(n_scans)
    prepared = _prepared(n_scans)
    queries = query_grid((50.0, 4.0)).reshape(-1, 3)
    threads = torch.get_num_threads()
    times: dict[str, list[float]] = {name: [] for name in ("oracle", "raw_1", "raw_2", "steady_1", "steady_2")}
    prepare = []
    try:
        for _ in range(rounds):  # interleaved, so that load from other jobs hits every variant alike
            # The oracle on one torch thread: its small ops stall on 2 threads when the other core is busy.
            torch.set_num_threads(1)
            seconds, expected = _seconds(oracle.reference_occupancy, queries, scans, poses)
            torch.set_num_threads(threads)
            times["oracle"].append(seconds)
            for workers in (1, 2):
                seconds, raw = _seconds(lidar_occupancy, queries, scans, poses, workers=workers)
                times[f"raw_{workers}"].append(seconds)
                seconds, steady = _seconds(lidar_occupancy, queries, prepared, poses, workers=workers)
                times[f"steady_{workers}"].append(seconds)
                for result in (raw, steady):
                    np.testing.assert_array_equal(result[0], expected[0])
                    np.testing.assert_array_equal(result[1], expected[1])
            prepare.append(_seconds(prepare_scan, scans[1])[0])  # the one new scan of the next frame
    finally:
        torch.set_num_threads(threads)
    best = {name: min(values) for name, values in times.items()}
    best["steady_1"] += min(prepare)
    best["steady_2"] += min(prepare)
    info = {f"{name}_s": round(value, 4) for name, value in best.items()}
    info.update({f"speedup_{name}": round(best["oracle"] / best[name], 1) for name in best if name != "oracle"})
    info.update(n_scans=n_scans, rounds=rounds, prepare_scan_s=round(min(prepare), 4))
    benchmark.extra_info.update(info)
    # The fixture's own timing: the raw two-thread frame (the table row), after the interleaved comparison.
    benchmark.pedantic(lidar_occupancy, args=(queries, scans, poses), kwargs={"workers": 2}, rounds=rounds,
                       iterations=1)
    with capsys.disabled():
        print(f"\n[occupancy GT, T = {n_scans}, best of {rounds}] literal oracle {best['oracle']:.3f} s/frame; "
              + "; ".join(f"{name} {best[name]:.3f} s ({info[f'speedup_{name}']}x)" for name in best
                          if name != "oracle"))


@pytest.mark.parametrize(("steady", "workers"), [(False, 1), (False, 2), (True, 1), (True, 2)])
def test_bench_occupancy_gt_vectorized(benchmark, steady, workers):
    n_scans = 300 if benchmark.enabled else 4
    scans, poses = _street(n_scans)
    inputs = _prepared(n_scans) if steady else scans
    queries = query_grid((50.0, 4.0)).reshape(-1, 3)
    occupied, visible = benchmark.pedantic(lidar_occupancy, args=(queries, inputs, poses),
                                           kwargs={"workers": workers}, rounds=5, iterations=1, warmup_rounds=1)
    assert occupied.shape == visible.shape == (len(queries),) and 0 < visible.mean() < 1
    benchmark.extra_info["points"] = int(sum(len(s) for s in scans))
