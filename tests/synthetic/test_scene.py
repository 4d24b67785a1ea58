"""Tests of vipocc.synthetic.scene: convex solids, exact meshes, the inside oracle and car boxes."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import ConvexHull

from vipocc.synthetic.scene import (BUILDING, CAR, LABELS, ROAD, TERRAIN, Material, Scene, box_solid, convex_solid,
                                    yaw_axes)
from vipocc.synthetic.street import generate_street


@pytest.fixture(scope="module")
def street() -> Scene:
    scene, _ = generate_street(seed=7, length_m=60.0)
    return scene


def _two_car_scene() -> Scene:
    """Hand-made scene: a ground box, one rotated car (body + roof box), a building."""
    ground = box_solid([0, 0, -0.5], [40, 40, 1], 0.0, semantic=ROAD, material=Material.ASPHALT)
    body = box_solid([2, 3, 0.4], [4, 2, 0.8], np.pi / 6, semantic=CAR, material=Material.CAR_BODY, instance=9)
    roof = box_solid([2, 3, 1.1], [2, 1.6, 0.6], np.pi / 6, semantic=CAR, material=Material.CAR_CABIN, instance=9)
    house = box_solid([-10, -10, 5], [8, 6, 10], 0.0, semantic=BUILDING, material=Material.FACADE, object_id=4)
    return Scene.from_solids([body, roof, house, ground], car_yaw={9: np.pi / 6})


def _brute_force_solid_at(scene: Scene, points: np.ndarray) -> np.ndarray:
    """Independent slow oracle: test every point against every solid, keep the lowest index."""
    out = np.full(len(points), -1, np.int32)
    for s in range(scene.n_solids - 1, -1, -1):
        planes = scene.planes[s, : scene.n_faces[s]]
        dist = (planes[:, None, 0] * points[None, :, 0] + planes[:, None, 1] * points[None, :, 1]
                + planes[:, None, 2] * points[None, :, 2] + planes[:, None, 3])
        out[dist.max(axis=0) <= 1e-9] = s
    return out


# ------------------------------------------------------------------------------------------------ single solids
def test_box_solid_has_six_planes_and_analytic_volume():
    box = box_solid([1, 2, 3], [4, 2, 1], 0.3, semantic=CAR, material=0)
    assert box.planes.shape == (6, 4)
    assert np.allclose(np.linalg.norm(box.planes[:, :3], axis=1), 1.0)
    # Divergence theorem on the outward-wound mesh gives the volume 4 * 2 * 1 = 8.
    tri = box.triangles
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    assert volume == pytest.approx(8.0, abs=1e-9)


def test_convex_solid_rejects_flat_or_malformed_points():
    with pytest.raises(ValueError, match="3D volume"):
        convex_solid(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.0]]), semantic=ROAD, material=0)
    with pytest.raises(ValueError, match="points"):
        convex_solid(np.zeros((3, 3)), semantic=ROAD, material=0)


def test_meshes_are_watertight_and_outward(street: Scene):
    tri, tri_solid = street.tri, street.tri_solid
    # Vertex ids per solid (hull vertices are copied exactly, so exact equality identifies them).
    keys = np.column_stack([np.repeat(tri_solid, 3), tri.reshape(-1, 3)])
    _, vid = np.unique(keys, axis=0, return_inverse=True)
    vid = vid.reshape(-1, 3)
    directed = np.concatenate([vid[:, [0, 1]], vid[:, [1, 2]], vid[:, [2, 0]]])
    # Closed, consistently oriented 2-manifold: every directed edge once, and its reverse exactly once too.
    uniq, counts = np.unique(directed, axis=0, return_counts=True)
    assert counts.max() == 1
    reverse = np.unique(directed[:, ::-1], axis=0)
    assert np.array_equal(uniq, reverse)
    # Genus 0 per solid: V - E + F = 2.
    n_v = np.bincount(np.unique(np.column_stack([np.repeat(tri_solid, 3), vid.ravel()]), axis=0)[:, 0])
    n_f = np.bincount(tri_solid)
    assert np.array_equal(n_v - 3 * n_f // 2 + n_f, np.full(street.n_solids, 2))
    # Outward: the winding normal agrees with the stored normal and points away from the solid's vertex mean.
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert (np.einsum("ij,ij->i", cross, street.tri_normal) > 0).all()
    centre = np.stack([np.bincount(np.repeat(tri_solid, 3), tri.reshape(-1, 3)[:, k]) for k in range(3)], 1)
    centre /= (3 * n_f)[:, None]
    away = np.einsum("ij,ij->i", tri.mean(axis=1) - centre[tri_solid], street.tri_normal)
    assert (away > 0).all()


def test_mesh_volume_matches_qhull_and_planes_bound_the_mesh(street: Scene):
    tri = street.tri
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    volume = np.bincount(street.tri_solid, signed)
    for s in range(0, street.n_solids, 37):  # a sample of solids, against scipy's own hull volume
        verts = tri[street.tri_solid == s].reshape(-1, 3)
        assert volume[s] == pytest.approx(ConvexHull(verts).volume, rel=1e-9)
    # Every mesh vertex satisfies every plane of its own solid (mesh and half-spaces describe the same body).
    verts = tri.reshape(-1, 3)
    solid = np.repeat(street.tri_solid, 3)
    dist = np.einsum("nfk,nk->nf", street.planes[solid, :, :3], verts) + street.planes[solid, :, 3]
    assert dist.max() < 1e-9


# ------------------------------------------------------------------------------------------------ the oracle
def test_solid_at_hand_made_scene_known_points():
    scene = _two_car_scene()
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    points = np.array([
        [2, 3, 0.4],                          # car body centre
        [2 + 1.95 * c, 3 + 1.95 * s, 0.4],    # 5 cm inside the front face of the rotated body
        [2 + 2.05 * c, 3 + 2.05 * s, 0.4],    # 5 cm outside it
        [2, 3, 1.3],                          # roof box
        [0, 0, -0.5],                         # below ground
        [0, 0, 3.0],                          # air
        [-10, -10, 9.9],                      # inside the building
        [-10, -10, 10.0],                     # on the roof (closed set)
        [-10, -10, 10.0 + 1e-6],              # just above it
        [100, 100, 0],                        # outside everything
    ])
    assert scene.solid_at(points).tolist() == [0, 0, -1, 1, 3, -1, 2, 2, -1, -1]
    assert scene.semantic_at(points).tolist() == [CAR, CAR, 0, CAR, ROAD, 0, BUILDING, BUILDING, 0, 0]
    assert scene.instance_at(points).tolist() == [9, 9, 0, 9, 0, 0, 0, 0, 0, 0]
    assert scene.occupied(points).tolist() == [True, True, False, True, True, False, True, True, False, False]


def test_solid_at_street_known_points(street: Scene):
    cars = street.cars
    assert street.semantic_at(cars.center).tolist() == [CAR] * len(cars)
    assert np.array_equal(street.instance_at(cars.center), cars.instance_id)
    house = np.flatnonzero(street.solid_semantic == BUILDING)[0]
    inside = (street.aabb[house, 0] + street.aabb[house, 1]) / 2  # centre of a convex prism's box is inside it
    assert street.solid_at(inside[None])[0] == house
    terrain = np.flatnonzero(street.solid_semantic == TERRAIN)[0]
    corner = street.aabb[terrain, 0] + [1.0, 1.0, 0.5]  # far corner of the terrain slab: nothing else there
    assert street.solid_at(np.array([corner, corner + [0, 0, 2.0]])).tolist() == [terrain, -1]


def test_solid_at_agrees_exactly_with_brute_force(street: Scene):
    rng = np.random.default_rng(0)
    lo, hi = street.aabb[:, 0].min(0), street.aabb[:, 1].max(0)
    hi[2] = 8.0
    # Random points, vertices and face centres (points exactly on boundaries), points just off the boundaries.
    random = rng.uniform(lo, hi, size=(20000, 3))
    near_street = rng.uniform(-1, 1, size=(20000, 3)) * [30, 30, 3] + street.cars.center.mean(0)
    on_boundary = np.concatenate([street.tri.reshape(-1, 3)[::5], street.tri.mean(axis=1)])
    off = on_boundary + rng.normal(scale=1e-6, size=on_boundary.shape)
    points = np.concatenate([random, near_street, on_boundary, off])
    expected = _brute_force_solid_at(street, points)
    assert np.array_equal(street.solid_at(points), expected)
    assert (expected >= 0).sum() > 1000 and (expected == -1).sum() > 1000


def test_solid_at_input_validation(street: Scene):
    with pytest.raises(ValueError, match="shape"):
        street.solid_at(np.zeros((4, 2)))
    assert street.solid_at(np.zeros((0, 3))).shape == (0,)


# ------------------------------------------------------------------------------------------------ car boxes
def test_car_box_of_hand_made_car_is_tight():
    cars = _two_car_scene().cars
    assert cars.instance_id.tolist() == [9]
    assert np.allclose(cars.center, [[2, 3, 0.7]])  # z from 0 (body bottom) to 1.4 (roof top)
    assert np.allclose(cars.size, [[4, 2, 1.4]])
    assert cars.yaw[0] == pytest.approx(np.pi / 6)


def test_car_boxes_cover_their_solids_tightly(street: Scene):
    cars = street.cars
    assert len(cars) > 0
    for k, inst in enumerate(cars.instance_id):
        verts = street.tri[street.solid_instance[street.tri_solid] == inst].reshape(-1, 3)
        local = (verts - cars.center[k]) @ yaw_axes(cars.yaw[k])
        half = cars.size[k] / 2
        assert (np.abs(local) <= half + 1e-9).all()
        # Tight: each of the 6 box faces is touched by a vertex.
        assert np.allclose(local.max(0), half) and np.allclose(local.min(0), -half)
    corners = cars.corners()
    assert corners.shape == (len(cars), 8, 3)
    assert np.allclose(corners.mean(axis=1), cars.center)


def test_tight_box_requires_a_solid_per_car():
    ground = box_solid([0, 0, -0.5], [4, 4, 1], 0.0, semantic=ROAD, material=0)
    with pytest.raises(ValueError, match="no solid"):
        Scene.from_solids([ground], car_yaw={3: 0.0})


# ------------------------------------------------------------------------------------------------ persistence etc.
def test_save_load_roundtrip_is_lossless(street: Scene, tmp_path):
    path = tmp_path / "scene.npz"
    street.save(path)
    loaded = Scene.load(path)
    for name in ("planes", "n_faces", "aabb", "solid_semantic", "solid_instance", "solid_material", "solid_object",
                 "frame_origin", "frame_axes", "tri", "tri_solid", "tri_normal"):
        a, b = getattr(street, name), getattr(loaded, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    for name in ("instance_id", "center", "size", "yaw"):
        assert np.array_equal(getattr(street.cars, name), getattr(loaded.cars, name))
    assert street.meta.keys() == loaded.meta.keys()
    assert all(np.array_equal(street.meta[k], loaded.meta[k]) for k in street.meta)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        Scene.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a scene file"):
        Scene.load(tmp_path / "other.npz")


def test_concatenate_offsets_solids_and_rejects_instance_collisions():
    a = _two_car_scene()
    shifted = box_solid([50, 0, 0.5], [4, 2, 1], 0.0, semantic=CAR, material=Material.CAR_BODY, instance=10)
    b = Scene.from_solids([shifted], car_yaw={10: 0.0})
    both = Scene.concatenate([a, b])
    assert both.n_solids == a.n_solids + 1
    assert both.solid_at(np.array([[50, 0, 0.5], [2, 3, 0.4]])).tolist() == [a.n_solids, 0]
    assert both.cars.instance_id.tolist() == [9, 10]
    with pytest.raises(ValueError, match="collide"):
        Scene.concatenate([a, a])


def test_label_table_matches_kitti360scripts():
    labels = pytest.importorskip("kitti360scripts.helpers.labels")
    for name, ours in LABELS.items():
        theirs = labels.name2label[name]
        assert (ours.id, ours.kitti_id, ours.color) == (theirs.id, theirs.kittiId, tuple(theirs.color)), name
