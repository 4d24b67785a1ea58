"""Throughput of the synthetic world's core: street generation, the inside oracle, ray casting and shading.

Run with `pytest tests/benchmarks/test_bench_raycast.py --benchmark-enable`; in the normal run (benchmarks
disabled) each body executes once as a plain test. Nothing here asserts on timings.
"""
from __future__ import annotations

import numpy as np
import pytest

from vipocc.synthetic.appearance import shade
from vipocc.synthetic.raycast import Raycaster
from vipocc.synthetic.street import generate_street
from vipocc.synthetic.trajectory import ego_poses, trajectory_length_needed

N_RAYS = 1_000_000
N_POINTS = 1_000_000
N_SHADE = 200_000
FRAMES = 200  # a 200-frame sequence: ~220 m of trajectory, ~380 m of street


@pytest.fixture(scope="module")
def world():
    scene, line = generate_street(seed=0, length_m=trajectory_length_needed(FRAMES))
    poses = ego_poses(line, FRAMES, seed=0)
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(N_RAYS, 3))
    dirs[:, 2] = -np.abs(dirs[:, 2]) * 0.5  # mostly towards the ground and the street, like camera rays
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    origin = poses[FRAMES // 2, :3, 3] + [0, 0, 0.65]
    s = rng.uniform(line.traj_start_s, line.traj_end_s, N_POINTS)
    points = np.column_stack([line.point(s, rng.uniform(-30, 30, N_POINTS)), rng.uniform(-1, 10, N_POINTS)])
    return scene, Raycaster(scene), origin, dirs, points


def test_bench_generate_street(benchmark):
    scene, _ = benchmark.pedantic(generate_street, args=(0, trajectory_length_needed(FRAMES)), rounds=3)
    assert scene.n_solids > 500


def test_bench_cast_1m_rays(benchmark, world):
    _, caster, origin, dirs, _ = world
    hits = benchmark.pedantic(caster.cast, args=(origin, dirs), rounds=3)
    assert hits.hit.mean() > 0.5


def test_bench_solid_at_1m_points(benchmark, world):
    scene, _, _, _, points = world
    solid = benchmark.pedantic(scene.solid_at, args=(points,), rounds=3)
    assert (solid >= 0).any() and (solid < 0).any()


def test_bench_shade_200k_hits(benchmark, world):
    scene, caster, origin, dirs, _ = world
    hits = caster.cast(origin, dirs[:N_SHADE])
    rgb = benchmark.pedantic(shade, args=(scene, hits, dirs[:N_SHADE]), rounds=3)
    assert rgb.shape == (N_SHADE, 3)
