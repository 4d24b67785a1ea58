"""Tests of vipocc.synthetic.raycast against analytic geometry and the exact inside oracle."""
from __future__ import annotations

import numpy as np
import pytest

import vipocc.synthetic.raycast as raycast_module
from vipocc.synthetic.raycast import Raycaster
from vipocc.synthetic.scene import Material, Scene, box_solid
from vipocc.synthetic.street import generate_street
from vipocc.synthetic.trajectory import ego_poses


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _slab_distance(lo: np.ndarray, hi: np.ndarray, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Independent truth: first-hit distance to an axis-aligned box by the slab method (inf on miss)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - origins) / dirs, (hi - origins) / dirs
    t_near = np.nanmax(np.minimum(t1, t2), axis=1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=1)
    return np.where((t_near <= t_far) & (t_near >= 0), t_near, np.inf)


@pytest.fixture(scope="module")
def street():
    scene, line = generate_street(seed=9, length_m=60.0)
    return scene, line, Raycaster(scene), ego_poses(line, 50, seed=9)


@pytest.mark.parametrize("centre", [(0.0, 0.0, 0.0), (600.0, -400.0, 5.0)])
def test_single_box_analytic_distance(centre):
    centre = np.array(centre)
    size = np.array([4.0, 2.0, 1.0])
    scene = Scene.from_solids([box_solid(centre, size, 0.0, semantic=26, material=Material.CAR_BODY)])
    caster = Raycaster(scene)
    rng = np.random.default_rng(0)
    origins = centre + rng.uniform(-10, 10, size=(5000, 3))
    outside = (np.abs(origins - centre) > size / 2 + 0.01).any(axis=1)
    origins = origins[outside]
    targets = centre + rng.uniform(-1, 1, size=origins.shape) * size * 0.6  # some rays hit, some miss
    dirs = _unit(targets - origins)
    hits = caster.cast(origins, dirs)
    truth = _slab_distance(centre - size / 2, centre + size / 2, origins, dirs)
    hit = np.isfinite(truth)
    assert 0.2 < hit.mean() < 0.95
    assert np.array_equal(hits.solid >= 0, hit)
    # Distances are re-intersected in float64 with the hit face's plane: far better than Embree's float32 (which
    # is off by up to ~5e-4 m for grazing rays ~700 m from the origin); only the face choice near edges is float32.
    assert np.abs(hits.distance[hit] - truth[hit]).max() < 1e-6
    assert np.isinf(hits.distance[~hit]).all() and (hits.solid[~hit] == -1).all()
    assert np.isnan(hits.points[~hit]).all() and (hits.normal[~hit] == 0).all()
    # The hit normal is the axis of the box face that was hit, facing the ray.
    local = (hits.points[hit] - centre) / (size / 2)
    face_axis = np.abs(local).argmax(axis=1)
    expected = np.zeros((hit.sum(), 3))
    expected[np.arange(hit.sum()), face_axis] = np.sign(local[np.arange(hit.sum()), face_axis])
    assert np.allclose(hits.normal[hit], expected, atol=1e-6)
    assert np.allclose(hits.points[hit], origins[hit] + hits.distance[hit, None] * dirs[hit])


def test_single_origin_broadcast_and_chunking(monkeypatch):
    scene = Scene.from_solids([box_solid([5, 0, 0], [1, 1, 1], 0.3, semantic=11, material=Material.FACADE)])
    caster = Raycaster(scene)
    dirs = _unit(np.random.default_rng(1).normal(size=(1000, 3)) * [1, 0.2, 0.2] + [1, 0, 0])
    whole = caster.cast(np.zeros(3), dirs)
    monkeypatch.setattr(raycast_module, "_CHUNK_RAYS", 7)
    chunked = caster.cast(np.zeros((1000, 3)), dirs)
    assert np.array_equal(whole.distance, chunked.distance) and np.array_equal(whole.solid, chunked.solid)
    assert whole.hit.any() and not whole.hit.all()


def test_hits_agree_with_the_oracle(street):
    scene, _, caster, poses = street
    rng = np.random.default_rng(2)
    dirs = _unit(rng.normal(size=(60000, 3)))
    origin = poses[25, :3, 3] + [0, 0, 0.65]  # roughly where cam0 is
    hits = caster.cast(origin, dirs)
    hit = hits.hit
    assert 0.3 < hit.mean() < 0.95
    p, d, solid = hits.points[hit], dirs[hit], hits.solid[hit]
    # Before the hit the ray is in free space (no solid at all, not just "not the hit solid").
    assert (scene.solid_at(p - 1e-3 * d) == -1).all()
    # Just after the hit the ray is inside the hit solid, unless it enters within 2 mm of an edge, where it may
    # leave through the neighbouring face (decided from the solid's planes, independently of the ray caster).
    planes = scene.planes[solid]
    dist_at_hit = np.einsum("nfk,nk->nf", planes[:, :, :3], p) + planes[:, :, 3]
    second = np.sort(dist_at_hit, axis=1)[:, -2]
    cos = np.abs(np.einsum("ij,ij->i", hits.normal[hit], d))
    clean = (second < -2e-3) & (cos > 0.05)
    assert clean.mean() > 0.95
    after = p[clean] + 1e-3 * d[clean]
    inside = (np.einsum("nfk,nk->nf", planes[clean, :, :3], after) + planes[clean, :, 3]).max(axis=1) <= 1e-9
    assert inside.all()
    # The hit point lies exactly on a face plane of the hit solid, and inside the solid up to the float32 choice
    # of the face near edges; the normal faces the ray.
    assert np.abs(dist_at_hit).min(axis=1).max() < 1e-9
    assert np.abs(dist_at_hit.max(axis=1)).max() < 1e-4
    assert np.allclose(np.linalg.norm(hits.normal[hit], axis=1), 1.0, atol=1e-6)
    assert (np.einsum("ij,ij->i", hits.normal[hit], d) <= 0).all()


def test_misses_go_to_the_sky(street):
    scene, line, caster, poses = street
    # Straight up, and steeply up, from above the driving lanes: nothing overhangs the lanes.
    rng = np.random.default_rng(3)
    origins = poses[:, :3, 3] + [0, 0, 0.65]
    dirs = _unit(np.column_stack([rng.normal(scale=0.05, size=(len(origins), 2)), np.ones(len(origins))]))
    hits = caster.cast(origins, dirs)
    assert (hits.solid == -1).all() and np.isinf(hits.distance).all()
    # Downwards the ray always hits the road.
    down = caster.cast(origins, np.tile([0, 0, -1.0], (len(origins), 1)))
    assert (scene.solid_semantic[down.solid] == 7).all()
    assert np.allclose(down.distance, 1.55, atol=1e-4)
    assert np.allclose(down.normal, [0, 0, 1])


def test_input_validation(street):
    _, _, caster, _ = street
    with pytest.raises(ValueError, match="unit"):
        caster.cast(np.zeros(3), np.array([[0, 0, 2.0]]))
    with pytest.raises(ValueError, match="dirs"):
        caster.cast(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="origins"):
        caster.cast(np.zeros((2, 3)), np.tile([0, 0, 1.0], (3, 1)))
    with pytest.raises(ValueError, match="finite"):
        caster.cast(np.array([np.nan, 0, 0]), np.tile([0, 0, 1.0], (3, 1)))
    empty = caster.cast(np.zeros(3), np.zeros((0, 3)))
    assert len(empty) == 0
