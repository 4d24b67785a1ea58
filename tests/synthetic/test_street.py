"""Tests of vipocc.synthetic.street: street invariants, centerline geometry, determinism."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from vipocc.synthetic.scene import (BUILDING, CAR, LABELS, POLE, ROAD, SIDEWALK, TERRAIN, VEGETATION, Scene,
                                    yaw_axes)
from vipocc.synthetic.street import Centerline, StreetParams, generate_street

PARAMS = StreetParams()
LENGTH = 120.0
OBJECTS = (CAR, POLE, VEGETATION, BUILDING)


@pytest.fixture(scope="module")
def street() -> tuple[Scene, Centerline]:
    return generate_street(seed=3, length_m=LENGTH, params=PARAMS, instance_offset=500)


def _solid_vertices(scene: Scene, s: int) -> np.ndarray:
    return scene.tri[scene.tri_solid == s].reshape(-1, 3)


def _interiors_overlap(scene: Scene, a: int, b: int) -> float:
    """Depth t* of the deepest point inside both convex solids (LP); t* > 0 means the interiors intersect."""
    planes = np.concatenate([scene.planes[a, : scene.n_faces[a]], scene.planes[b, : scene.n_faces[b]]])
    # maximise t subject to n.x + d + t <= 0 for every plane of both solids (t capped at 1 m to stay bounded)
    res = linprog(c=[0, 0, 0, -1], A_ub=np.column_stack([planes[:, :3], np.ones(len(planes))]), b_ub=-planes[:, 3],
                  bounds=[(None, None)] * 3 + [(None, 1.0)], method="highs")
    assert res.status == 0
    return -res.fun


def _aabb_pairs(scene: Scene, candidates: np.ndarray) -> np.ndarray:
    lo, hi = scene.aabb[candidates, 0], scene.aabb[candidates, 1]
    overlap = ((lo[:, None] < hi[None]) & (lo[None] < hi[:, None])).all(-1)
    i, j = np.nonzero(np.triu(overlap, k=1))
    return np.column_stack([candidates[i], candidates[j]])


# ------------------------------------------------------------------------------------------------ centerline
def test_centerline_covers_trajectory_plus_margins(street):
    _, line = street
    assert line.length_m == pytest.approx(LENGTH + 2 * PARAMS.margin_m, abs=0.25)
    assert (line.traj_start_s, line.traj_end_s) == (PARAMS.margin_m, PARAMS.margin_m + LENGTH)
    # Samples are spaced by their arc length (unit-speed parametrisation).
    assert np.allclose(np.linalg.norm(np.diff(line.xy, axis=0), axis=1), np.diff(line.s), rtol=1e-6)


def test_centerline_curvature_bound_from_geometry(street):
    _, line = street
    # Curvature of the circle through three points 2 m apart, computed from xy only.
    a, b, c = line.xy[:-16:8], line.xy[8:-8:8], line.xy[16::8]
    cross = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
    k = 2 * cross / (np.linalg.norm(b - a, axis=1) * np.linalg.norm(c - b, axis=1) * np.linalg.norm(c - a, axis=1))
    assert np.abs(k).max() <= PARAMS.max_curvature
    assert np.abs(k).max() > 0.05 * PARAMS.max_curvature  # the street does curve
    assert np.allclose(k, line.curvature[8:-8:8], atol=1e-5)
    assert np.abs(np.diff(line.curvature)).max() / 0.25 < 2 * np.pi / 150 * PARAMS.max_curvature  # smoothly varying


def test_centerline_point_and_to_local_are_inverse(street):
    _, line = street
    rng = np.random.default_rng(1)
    s = rng.uniform(0, line.length_m, 500)
    lat = rng.uniform(-40, 40, 500)
    s_back, lat_back = line.to_local(line.point(s, lat))
    assert np.allclose(s_back, s, atol=1e-6) and np.allclose(lat_back, lat, atol=1e-6)
    assert np.allclose(line.point(line.s[::97]), line.xy[::97], atol=1e-12)
    # Lateral is positive to the left: the left normal is the tangent turned by +90 degrees.
    t, n = line.tangent(s), line.left(s)
    assert np.allclose(t[:, 0] * n[:, 1] - t[:, 1] * n[:, 0], 1.0)


def test_centerline_roundtrips_through_scene_meta(street, tmp_path):
    scene, line = street
    scene.save(tmp_path / "s.npz")
    again = Centerline.from_meta(Scene.load(tmp_path / "s.npz").meta)
    assert np.array_equal(again.xy, line.xy) and again.traj_end_s == line.traj_end_s
    with pytest.raises(ValueError, match="meta"):
        Centerline.from_meta({})


# ------------------------------------------------------------------------------------------------ layout
def test_labels_and_instances(street):
    scene, _ = street
    known = {lab.id for lab in LABELS.values()}
    assert set(np.unique(scene.solid_semantic)) <= known
    assert {ROAD, SIDEWALK, TERRAIN, BUILDING, CAR, POLE, VEGETATION} <= set(np.unique(scene.solid_semantic))
    car = scene.solid_semantic == CAR
    assert (scene.solid_instance[~car] == 0).all() and (scene.solid_instance[car] > 500).all()
    ids = scene.cars.instance_id
    assert np.array_equal(ids, 501 + np.arange(len(ids)))
    assert set(np.unique(scene.solid_instance[car])) == set(ids)


def test_instance_offset_only_shifts_ids():
    a, _ = generate_street(seed=5, length_m=30.0)
    b, _ = generate_street(seed=5, length_m=30.0, instance_offset=1000)
    assert np.array_equal(a.tri, b.tri)
    assert np.array_equal(b.cars.instance_id, a.cars.instance_id + 1000)


def test_driving_lanes_are_free(street):
    scene, line = street
    # Dense samples of the lane corridor above the road, and every vertex of every non-ground solid.
    s, lat, z = np.meshgrid(np.arange(0, line.length_m, 0.5), np.linspace(-PARAMS.lane_half_m, PARAMS.lane_half_m, 31),
                            np.linspace(1e-6, 8.0, 9), indexing="ij")
    points = np.column_stack([line.point(s.ravel(), lat.ravel()), z.ravel()])
    assert not scene.occupied(points).any()
    assert (scene.semantic_at(points * [1, 1, 0] - [0, 0, 0.1]) == ROAD).all()  # and road right below
    objects = np.flatnonzero(np.isin(scene.solid_semantic, OBJECTS))
    verts = np.concatenate([_solid_vertices(scene, s) for s in objects])
    _, lateral = line.to_local(verts[:, :2])
    assert (np.abs(lateral) > PARAMS.lane_half_m).all()


def test_cars_stand_on_the_parking_strip(street):
    scene, line = street
    cars = scene.cars
    for k, inst in enumerate(cars.instance_id):
        verts = np.concatenate([_solid_vertices(scene, s) for s in np.flatnonzero(scene.solid_instance == inst)])
        assert verts[:, 2].min() == pytest.approx(0.0, abs=1e-12)  # on the road surface
        _, lateral = line.to_local(verts[:, :2])
        assert PARAMS.lane_half_m < np.abs(lateral).min() and np.abs(lateral).max() < PARAMS.curb_m
        assert np.all(np.sign(lateral) == np.sign(lateral[0]))  # on one side of the street
    lo = np.array([PARAMS.car_length_m[0], PARAMS.car_width_m[0], PARAMS.car_height_m[0]])
    hi = np.array([PARAMS.car_length_m[1], PARAMS.car_width_m[1], PARAMS.car_height_m[1]])
    assert ((cars.size >= lo - 1e-9) & (cars.size <= hi + 1e-9)).all()
    # Parked along the street: the box's long axis follows the street's tangent (either direction).
    s, _ = line.to_local(cars.center[:, :2])
    along = np.abs(np.einsum("ij,ij->i", yaw_axes_batch(cars.yaw), line.tangent(s)))
    assert along.min() > np.cos(np.deg2rad(1.0))
    assert len(cars) > 2 * LENGTH / 10  # both curbs are lined with cars


def yaw_axes_batch(yaw: np.ndarray) -> np.ndarray:
    return np.stack([yaw_axes(y)[:2, 0] for y in yaw])


def test_car_boxes_cover_car_solids(street):
    scene, _ = street
    for k, inst in enumerate(scene.cars.instance_id):
        verts = np.concatenate([_solid_vertices(scene, s) for s in np.flatnonzero(scene.solid_instance == inst)])
        local = (verts - scene.cars.center[k]) @ yaw_axes(scene.cars.yaw[k])
        assert (np.abs(local) <= scene.cars.size[k] / 2 + 1e-9).all()


def test_objects_do_not_overlap_each_other(street):
    scene, _ = street
    objects = np.flatnonzero(np.isin(scene.solid_semantic, OBJECTS))
    pairs = _aabb_pairs(scene, objects)
    same = scene.solid_object[pairs[:, 0]] == scene.solid_object[pairs[:, 1]]
    # Solids of one object overlap on purpose (cabin sunk 5 cm into the body): the LP must see that.
    car_parts = pairs[same & (scene.solid_semantic[pairs[:, 0]] == CAR)][:5]
    assert len(car_parts) == 5
    assert min(_interiors_overlap(scene, a, b) for a, b in car_parts) > 0.02
    # Different objects never overlap.
    others = pairs[~same]
    assert len(others) > 20
    depth = np.array([_interiors_overlap(scene, a, b) for a, b in others])
    assert depth.max() <= 1e-9, others[depth.argmax()]


def test_static_objects_stand_beside_the_road(street):
    scene, line = street
    for semantic, lo, hi in ((POLE, PARAMS.curb_m, PARAMS.sidewalk_outer_m),
                             (VEGETATION, PARAMS.lane_half_m, PARAMS.sidewalk_outer_m),
                             (BUILDING, PARAMS.sidewalk_outer_m, np.inf)):
        verts = np.concatenate([_solid_vertices(scene, s) for s in np.flatnonzero(scene.solid_semantic == semantic)])
        _, lateral = line.to_local(verts[:, :2])
        assert (np.abs(lateral) >= lo).all() and (np.abs(lateral) <= hi).all(), semantic
    # Tree crowns start above the tallest car.
    crowns = [s for s in np.flatnonzero(scene.solid_semantic == VEGETATION) if scene.n_faces[s] > 10]
    assert min(scene.aabb[s, 0, 2] for s in crowns) >= PARAMS.crown_base_m[0] - 1e-9


def test_ground_levels(street):
    scene, line = street
    rng = np.random.default_rng(2)
    s = rng.uniform(1, line.length_m - 1, 2000)
    for lateral, top, semantic in ((0.0, 0.0, ROAD), (PARAMS.curb_m - 0.3, 0.0, ROAD),
                                   (PARAMS.curb_m + 0.2, PARAMS.curb_height_m, SIDEWALK)):
        xy = line.point(s, lateral * np.where(rng.random(2000) < 0.5, 1, -1))
        below = np.column_stack([xy, np.full(2000, top - 1e-6)])
        above = below + [0, 0, 2e-6]
        assert (scene.semantic_at(below) == semantic).all()
        # the only things standing on the ground surface are objects (cars, poles, trees) - never more ground
        assert not np.isin(scene.semantic_at(above), [ROAD, SIDEWALK, TERRAIN]).any()


# ------------------------------------------------------------------------------------------------ determinism
def test_same_seed_bit_identical_different_seed_differs():
    a, la = generate_street(seed=11, length_m=30.0)
    b, lb = generate_street(seed=11, length_m=30.0)
    c, _ = generate_street(seed=12, length_m=30.0)
    for name in ("planes", "tri", "solid_semantic", "solid_instance", "frame_origin", "aabb"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert np.array_equal(a.cars.center, b.cars.center) and np.array_equal(la.xy, lb.xy)
    assert a.tri.shape != c.tri.shape or not np.array_equal(a.tri, c.tri)


def test_bad_arguments():
    with pytest.raises(ValueError, match="length_m"):
        generate_street(0, -5.0)
    with pytest.raises(ValueError, match="instance_offset"):
        generate_street(0, 10.0, instance_offset=-1)
    with pytest.raises(ValueError, match="building_height_m"):
        StreetParams(building_height_m=(20.0, 6.0))
    with pytest.raises(ValueError, match="parking_width_m"):
        StreetParams(parking_width_m=1.0)
