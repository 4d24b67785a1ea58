"""Procedural street scenes: a gently curved street with road, curbs, sidewalks, buildings, parked cars, poles, trees
and a terrain slab, all convex solids (vipocc.synthetic.scene).

World frame: right-handed, metres, z up, road surface at z = 0; the xy origin is the centre of the centerline's
bounding box (keeps coordinates small for float32 ray casting).

Street cross-section (lateral coordinate, positive to the LEFT of the driving direction):

    |lateral| <= road_width/2                     driving lanes (two lanes; nothing but road there, ever)
    road_width/2 .. + parking_width               parking strip (road surface; parked cars stand here)
    curb = road_width/2 + parking_width           curb, sidewalk top is curb_height above the road
    curb .. curb + sidewalk_width                 sidewalk (poles and trees stand here)
    beyond                                        terrain (top at -terrain_drop), buildings set back from the sidewalk

The street runs from arc length s = 0 to s = length_m + 2 * margin_m; the trajectory may use
[margin_m, margin_m + length_m] (Centerline.traj_start_s / traj_end_s), so views never see the end of the world
early. The terrain extends terrain_margin_m beyond every other solid.

Solids are ordered by priority for Scene.solid_at (lowest index wins where solids overlap): cars, poles, trees,
buildings, sidewalks, road, terrain. Objects are sunk into their support (except cars, which stand on z = 0) so no
visible faces coincide.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping

import numpy as np
from scipy.spatial import cKDTree

from vipocc.synthetic.scene import (BUILDING, CAR, POLE, ROAD, SIDEWALK, TERRAIN, VEGETATION, Material, Scene, Solid,
                                    box_solid, convex_solid, yaw_axes)

_DS = 0.25  # m, centerline sampling step


# --------------------------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class StreetParams:
    """Street layout. Lengths in metres, ranges are (low, high) of a uniform draw.

    road_width_m: the two driving lanes (3.75 m each). parking_width_m: the parking strip on each side between the
    lanes and the curb (road surface too; an addition to the driving width so that parked cars never enter the lanes).
    """
    road_width_m: float = 7.5
    parking_width_m: float = 2.2
    sidewalk_width_m: float = 2.5
    curb_height_m: float = 0.15
    margin_m: float = 80.0               # street added before and after the trajectory
    segment_m: float = 5.0               # length of one road/sidewalk solid
    max_curvature: float = 1.0 / 150.0   # 1/m, bound on |curvature| of the centerline
    curve_wavelength_m: tuple[float, float] = (150.0, 600.0)
    building_setback_m: tuple[float, float] = (0.0, 3.0)
    building_height_m: tuple[float, float] = (6.0, 20.0)
    building_length_m: tuple[float, float] = (6.0, 30.0)
    building_depth_m: tuple[float, float] = (8.0, 15.0)
    building_gap_m: tuple[float, float] = (2.0, 12.0)
    far_row: bool = True                 # a second, sparser row of buildings behind the first (background depth)
    far_row_setback_m: tuple[float, float] = (25.0, 40.0)
    far_row_gap_m: tuple[float, float] = (8.0, 30.0)
    car_length_m: tuple[float, float] = (3.8, 4.8)
    car_width_m: tuple[float, float] = (1.7, 1.9)
    car_height_m: tuple[float, float] = (1.4, 1.6)
    car_curb_offset_m: tuple[float, float] = (0.05, 0.2)
    car_gap_m: tuple[float, float] = (0.6, 2.0)
    car_big_gap_probability: float = 0.2  # chance that a free stretch follows a car
    car_big_gap_m: tuple[float, float] = (4.0, 12.0)
    obstacle_spacing_m: tuple[float, float] = (8.0, 20.0)  # between successive poles/trees on one sidewalk
    obstacle_curb_offset_m: tuple[float, float] = (0.5, 0.9)
    tree_probability: float = 0.6
    pole_height_m: tuple[float, float] = (4.0, 6.0)
    pole_radius_m: tuple[float, float] = (0.07, 0.12)
    trunk_radius_m: tuple[float, float] = (0.12, 0.2)
    crown_base_m: tuple[float, float] = (2.5, 3.5)   # height of the crown's lowest point (above any car)
    crown_radius_along_m: tuple[float, float] = (1.2, 2.2)
    crown_radius_across_m: tuple[float, float] = (1.0, 1.5)  # also capped to stay over the sidewalk/parking strip
    crown_half_height_m: tuple[float, float] = (1.2, 2.0)
    ground_depth_m: float = 0.3          # road and sidewalk slabs reach this far below z = 0
    terrain_depth_m: float = 1.0
    terrain_drop_m: float = 0.02         # terrain top below the road surface, so the two never coincide
    terrain_margin_m: float = 60.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                if len(value) != 2 or not (0 <= value[0] <= value[1]):
                    raise ValueError(f"StreetParams.{f.name}: expected (low, high) with 0 <= low <= high, got {value}")
            elif isinstance(value, float) and not value >= 0:
                raise ValueError(f"StreetParams.{f.name}: must be >= 0, got {value}")
        for name in ("road_width_m", "segment_m", "max_curvature", "terrain_depth_m", "ground_depth_m"):
            if getattr(self, name) <= 0:
                raise ValueError(f"StreetParams.{name}: must be > 0")
        if self.car_curb_offset_m[1] + self.car_width_m[1] >= self.parking_width_m:
            raise ValueError("StreetParams.parking_width_m: too narrow for the widest car at the largest curb offset")
        if self.crown_base_m[0] <= self.car_height_m[1]:
            raise ValueError("StreetParams.crown_base_m: crowns must start above the tallest car")
        if 2 * self.crown_radius_along_m[1] >= self.obstacle_spacing_m[0]:
            raise ValueError("StreetParams.obstacle_spacing_m: crowns of neighbouring trees could touch")

    @property
    def lane_half_m(self) -> float:
        return self.road_width_m / 2.0

    @property
    def curb_m(self) -> float:
        return self.road_width_m / 2.0 + self.parking_width_m

    @property
    def sidewalk_outer_m(self) -> float:
        return self.curb_m + self.sidewalk_width_m


# --------------------------------------------------------------------------------------------------- centerline
@dataclass(frozen=True, eq=False)
class Centerline:
    """The street's centerline in the world xy plane, sampled every 0.25 m of arc length.

    s [M] arc length (m, from 0); xy [M, 2] world (m); heading_rad [M] direction of travel (rad about +z, 0 = +x);
    curvature [M] (1/m, positive = turning left). traj_start_s / traj_end_s: the arc-length range the ego
    trajectory may use. Lateral offsets are positive to the LEFT of the heading.
    """
    s: np.ndarray
    xy: np.ndarray
    heading_rad: np.ndarray
    curvature: np.ndarray
    traj_start_s: float
    traj_end_s: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tree", cKDTree(self.xy))

    @property
    def length_m(self) -> float:
        return float(self.s[-1])

    def _segment(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = np.asarray(s, dtype=np.float64)
        j = np.clip(np.floor((s - self.s[0]) / _DS).astype(np.int64), 0, len(self.s) - 2)
        return s, j

    def heading(self, s: np.ndarray | float) -> np.ndarray:
        """Heading (rad) at arc length s (linear between samples, held constant beyond the ends)."""
        s, j = self._segment(s)
        w = np.clip((s - self.s[j]) / _DS, 0.0, 1.0)
        return self.heading_rad[j] + w * (self.heading_rad[j + 1] - self.heading_rad[j])

    def point(self, s: np.ndarray | float, lateral: np.ndarray | float = 0.0) -> np.ndarray:
        """World xy [..., 2] of the point at arc length s and lateral offset (m, positive left)."""
        s, j = self._segment(s)
        # Midpoint-heading step from the previous sample: the same rule that built xy, so samples are reproduced.
        mid = self.heading((self.s[j] + s) / 2.0)
        base = self.xy[j] + (s - self.s[j])[..., None] * np.stack([np.cos(mid), np.sin(mid)], axis=-1)
        return base + np.asarray(lateral, np.float64)[..., None] * self.left(s)

    def tangent(self, s: np.ndarray | float) -> np.ndarray:
        h = self.heading(s)
        return np.stack([np.cos(h), np.sin(h)], axis=-1)

    def left(self, s: np.ndarray | float) -> np.ndarray:
        """Unit normal [..., 2] pointing to the left of the direction of travel."""
        h = self.heading(s)
        return np.stack([-np.sin(h), np.cos(h)], axis=-1)

    def to_local(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(s [N], lateral [N]) of world points xy [N, 2]; valid for |lateral| < 1 / max curvature."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        _, j = self._tree.query(xy)
        s = self.s[j].astype(np.float64)
        # Newton on the foot point: at lateral offset l the along-track error shrinks by (1 - curvature * l).
        for _ in range(3):
            offset = xy - self.point(s)
            lateral = np.einsum("ij,ij->i", offset, self.left(s))
            shrink = 1.0 - np.interp(s, self.s, self.curvature) * lateral
            s = s + np.einsum("ij,ij->i", offset, self.tangent(s)) / shrink
        lateral = np.einsum("ij,ij->i", xy - self.point(s), self.left(s))
        return s, lateral

    def to_meta(self) -> dict[str, np.ndarray]:
        return {"centerline_s": self.s, "centerline_xy": self.xy, "centerline_heading": self.heading_rad,
                "centerline_curvature": self.curvature,
                "centerline_traj_range": np.array([self.traj_start_s, self.traj_end_s])}

    @classmethod
    def from_meta(cls, meta: Mapping[str, np.ndarray]) -> "Centerline":
        """Rebuild from Scene.meta of a generated street."""
        try:
            start, end = meta["centerline_traj_range"]
            return cls(meta["centerline_s"], meta["centerline_xy"], meta["centerline_heading"],
                       meta["centerline_curvature"], float(start), float(end))
        except KeyError as err:
            raise ValueError(f"Centerline.from_meta: scene meta lacks {err.args[0]!r} "
                             "(not a generated street)") from err


def make_centerline(rng: np.random.Generator, total_length_m: float, params: StreetParams,
                    traj_range: tuple[float, float]) -> Centerline:
    """A smooth centerline: curvature is a normalised sum of three sinusoids in s, so |k| <= 0.9 max_curvature."""
    s = np.arange(int(np.ceil(total_length_m / _DS)) + 1) * _DS
    wavelength = rng.uniform(*params.curve_wavelength_m, size=3)
    amplitude = rng.uniform(0.3, 1.0, size=3)
    phase = rng.uniform(0.0, 2 * np.pi, size=3)
    waves = (amplitude[:, None] * np.sin(2 * np.pi * s[None] / wavelength[:, None] + phase[:, None])).sum(0)
    curvature = 0.9 * params.max_curvature * waves / amplitude.sum()
    heading = rng.uniform(-np.pi, np.pi) + np.r_[0.0, np.cumsum((curvature[1:] + curvature[:-1]) / 2.0 * _DS)]
    mid = (heading[1:] + heading[:-1]) / 2.0
    xy = np.vstack([np.zeros((1, 2)), np.cumsum(_DS * np.stack([np.cos(mid), np.sin(mid)], 1), axis=0)])
    xy -= (xy.min(axis=0) + xy.max(axis=0)) / 2.0
    return Centerline(s, xy, heading, curvature, float(traj_range[0]), float(traj_range[1]))


# --------------------------------------------------------------------------------------------------- helpers
def _up_frame(origin_xy: np.ndarray, heading: float, z: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    return np.array([origin_xy[0], origin_xy[1], z]), yaw_axes(heading)


def _prism(footprint_xy: np.ndarray, z0: float, z1: float, **labels) -> Solid:
    """Vertical prism over a convex footprint [P, 2] between heights z0 < z1."""
    p = len(footprint_xy)
    points = np.vstack([np.column_stack([footprint_xy, np.full(p, z0)]),
                        np.column_stack([footprint_xy, np.full(p, z1)])])
    return convex_solid(points, **labels)


def _octagon(center_xy: np.ndarray, radius: float) -> np.ndarray:
    angle = np.arange(8) * (np.pi / 4) + np.pi / 8
    return center_xy + radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def _fibonacci_sphere(n: int) -> np.ndarray:
    """n roughly uniform unit vectors [n, 3] (deterministic)."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    r = np.sqrt(1.0 - z * z)
    phi = k * np.pi * (3.0 - np.sqrt(5.0))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def _polygons_overlap(a: np.ndarray, b: np.ndarray, margin: float = 0.0) -> bool:
    """Separating-axis test for convex polygons a [P, 2], b [Q, 2] (vertices in order); margin keeps them apart."""
    edges = np.vstack([np.roll(a, -1, 0) - a, np.roll(b, -1, 0) - b])
    axes = np.stack([-edges[:, 1], edges[:, 0]], axis=1)
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    pa, pb = a @ axes.T, b @ axes.T
    separated = (pa.max(0) + margin < pb.min(0)) | (pb.max(0) + margin < pa.min(0))
    return not separated.any()


class _Ids:
    """Running object id (unique per object in one street) and car instance id (from instance_offset + 1)."""

    def __init__(self, instance_offset: int) -> None:
        self.object = 0
        self.instance = instance_offset

    def next_object(self) -> int:
        self.object += 1
        return self.object

    def next_instance(self) -> int:
        self.instance += 1
        return self.instance


# --------------------------------------------------------------------------------------------------- ground
def _ground_strips(line: Centerline, p: StreetParams) -> tuple[list[Solid], list[Solid]]:
    """Road (curb to curb) and both sidewalks as one quad prism per segment; neighbours share exact corners."""
    n_seg = int(np.ceil(line.length_m / p.segment_m))
    knots = np.linspace(0.0, line.length_m, n_seg + 1)
    road, walks = [], []
    for s0, s1 in zip(knots[:-1], knots[1:]):
        t = (line.point(s1) - line.point(s0)) / (s1 - s0)
        t /= np.linalg.norm(t)
        heading = float(np.arctan2(t[1], t[0]))
        # Texture frame: local x = arc length (origin shifted back by s0), local y = lateral.
        origin = np.r_[line.point(s0) - s0 * t, 0.0]
        frame = dict(frame_origin=origin, frame_axes=yaw_axes(heading))
        quad = lambda lo, hi: np.array([line.point(s0, lo), line.point(s1, lo), line.point(s1, hi),  # noqa: E731
                                        line.point(s0, hi)])
        road.append(_prism(quad(-p.curb_m, p.curb_m), -p.ground_depth_m, 0.0, semantic=ROAD,
                           material=Material.ASPHALT, **frame))
        for side in (1.0, -1.0):
            lo, hi = sorted((side * p.curb_m, side * p.sidewalk_outer_m))
            walks.append(_prism(quad(lo, hi), -p.ground_depth_m, p.curb_height_m, semantic=SIDEWALK,
                                material=Material.SIDEWALK, **frame))
    return road, walks


def _terrain(others: list[Solid], p: StreetParams) -> Solid:
    verts = np.concatenate([s.triangles.reshape(-1, 3) for s in others])
    lo = verts[:, :2].min(0) - p.terrain_margin_m
    hi = verts[:, :2].max(0) + p.terrain_margin_m
    center = np.r_[(lo + hi) / 2.0, -p.terrain_drop_m - p.terrain_depth_m / 2.0]
    size = np.r_[hi - lo, p.terrain_depth_m]
    return box_solid(center, size, 0.0, semantic=TERRAIN, material=Material.GRASS, frame_origin=np.zeros(3),
                     frame_axes=np.eye(3))


# --------------------------------------------------------------------------------------------------- cars
def _car_solids(rng: np.random.Generator, center_xy: np.ndarray, yaw: float, length: float, width: float,
                height: float, instance: int, object_id: int) -> list[Solid]:
    """Body box (z from 0) plus a trapezoidal cabin sunk 5 cm into it; local frame = car frame at the road."""
    origin, axes = _up_frame(center_xy, yaw)
    labels = dict(semantic=CAR, instance=instance, object_id=object_id, frame_origin=origin, frame_axes=axes)
    body_h = rng.uniform(0.55, 0.65) * height
    body = box_solid(np.r_[center_xy, body_h / 2.0], (length, width, body_h), yaw, material=Material.CAR_BODY,
                     **labels)
    cabin_len = rng.uniform(0.45, 0.6) * length
    rear = -length / 2.0 + rng.uniform(0.1, 0.2) * length
    bottom = np.array([[rear, -1], [rear + cabin_len, -1], [rear + cabin_len, 1], [rear, 1]]) * [1, width / 2 - 0.05]
    top = np.array([[rear + 0.2, -1], [rear + cabin_len - 0.6, -1], [rear + cabin_len - 0.6, 1], [rear + 0.2, 1]]) \
        * [1, width / 2 - 0.15]
    local = np.vstack([np.column_stack([bottom, np.full(4, body_h - 0.05)]),
                       np.column_stack([top, np.full(4, height)])])
    cabin = convex_solid(origin + local @ axes.T, material=Material.CAR_CABIN, **labels)
    return [body, cabin]


def _place_cars(rng: np.random.Generator, line: Centerline, p: StreetParams, ids: _Ids
                ) -> tuple[list[Solid], dict[int, float]]:
    """Parked cars along both curbs; left-side cars face the opposite direction (oncoming side of the road)."""
    solids: list[Solid] = []
    yaws: dict[int, float] = {}
    for side in (1.0, -1.0):
        s = rng.uniform(0.0, 6.0)
        while True:
            length, width, height = (rng.uniform(*r) for r in (p.car_length_m, p.car_width_m, p.car_height_m))
            if s + length > line.length_m - 1.0:
                break
            s_center = s + length / 2.0
            lateral = side * (p.curb_m - rng.uniform(*p.car_curb_offset_m) - width / 2.0)
            yaw = float(np.angle(np.exp(1j * (line.heading(s_center) + (np.pi if side > 0 else 0.0)))))
            instance = ids.next_instance()
            solids += _car_solids(rng, line.point(s_center, lateral), yaw, length, width, height, instance,
                                  ids.next_object())
            yaws[instance] = yaw
            big = rng.random() < p.car_big_gap_probability
            s += length + rng.uniform(*(p.car_big_gap_m if big else p.car_gap_m))
    return solids, yaws


# --------------------------------------------------------------------------------------------------- poles, trees
def _pole(rng: np.random.Generator, xy: np.ndarray, heading: float, p: StreetParams, object_id: int) -> list[Solid]:
    origin, axes = _up_frame(xy, heading)
    return [_prism(_octagon(xy, rng.uniform(*p.pole_radius_m)), -0.1, rng.uniform(*p.pole_height_m), semantic=POLE,
                   material=Material.POLE, object_id=object_id, frame_origin=origin, frame_axes=axes)]


def _tree(rng: np.random.Generator, xy: np.ndarray, heading: float, lateral: float, p: StreetParams,
          object_id: int) -> list[Solid]:
    """Octagonal trunk plus an ellipsoidal crown (hull of 32 points on the ellipsoid) kept over sidewalk/parking."""
    origin, axes = _up_frame(xy, heading)
    labels = dict(semantic=VEGETATION, object_id=object_id, frame_origin=origin, frame_axes=axes)
    base = rng.uniform(*p.crown_base_m)
    half_h = rng.uniform(*p.crown_half_height_m)
    across_room = min(p.sidewalk_outer_m - abs(lateral) - 0.15, abs(lateral) - p.lane_half_m - 0.3)
    radii = np.array([rng.uniform(*p.crown_radius_along_m),
                      min(rng.uniform(*p.crown_radius_across_m), across_room), half_h])
    trunk = _prism(_octagon(xy, rng.uniform(*p.trunk_radius_m)), -0.1, base + half_h, material=Material.BARK,
                   **labels)
    local = _fibonacci_sphere(32) * radii + [0.0, 0.0, base + half_h]
    crown = convex_solid(origin + local @ axes.T, material=Material.FOLIAGE, **labels)
    return [trunk, crown]


def _place_obstacles(rng: np.random.Generator, line: Centerline, p: StreetParams, ids: _Ids
                     ) -> tuple[list[Solid], list[Solid]]:
    poles: list[Solid] = []
    trees: list[Solid] = []
    for side in (1.0, -1.0):
        s = rng.uniform(2.0, 10.0)
        while s < line.length_m - 2.0:
            lateral = side * (p.curb_m + rng.uniform(*p.obstacle_curb_offset_m))
            xy, heading = line.point(s, lateral), float(line.heading(s))
            if rng.random() < p.tree_probability:
                trees += _tree(rng, xy, heading, lateral, p, ids.next_object())
            else:
                poles += _pole(rng, xy, heading, p, ids.next_object())
            s += rng.uniform(*p.obstacle_spacing_m)
    return poles, trees


# --------------------------------------------------------------------------------------------------- buildings
def _building_footprint(line: Centerline, s0: float, s1: float, front: float, depth: float, side: float
                        ) -> np.ndarray:
    """Rectangle [4, 2] (front-start, front-end, back-end, back-start) whose front edge is at |lateral| >= front.

    The front edge is the chord between the offset-curve points at s0 and s1; on a curve the chord bulges toward
    the street, so it is pushed outward by the measured shortfall.
    """
    a, b = line.point(s0, side * front), line.point(s1, side * front)
    t = (b - a) / np.linalg.norm(b - a)
    outward = side * np.array([-t[1], t[0]])
    edge = a + np.linspace(0.0, 1.0, 17)[:, None] * (b - a)
    shortfall = max(0.0, front - float((side * line.to_local(edge)[1]).min()))
    a, b = a + outward * (shortfall + 1e-3), b + outward * (shortfall + 1e-3)
    return np.array([a, b, b + outward * depth, a + outward * depth])


def _place_building_row(rng: np.random.Generator, line: Centerline, p: StreetParams, ids: _Ids, side: float,
                        setback: tuple[float, float], gap: tuple[float, float], placed: list[np.ndarray]
                        ) -> list[Solid]:
    solids: list[Solid] = []
    s = rng.uniform(0.0, gap[1])
    while s < line.length_m:
        length, depth, height = (rng.uniform(*r) for r in (p.building_length_m, p.building_depth_m,
                                                            p.building_height_m))
        front = p.sidewalk_outer_m + 0.01 + rng.uniform(*setback)
        s1 = s + length
        footprint = _building_footprint(line, s, s1, front, depth, side)
        if any(_polygons_overlap(footprint, other, margin=0.5) for other in placed):
            s += 1.0  # on the inside of a curve the backs converge: slide along until it fits
            continue
        placed.append(footprint)
        t = footprint[1] - footprint[0]
        origin = np.r_[footprint[0], 0.0]
        axes = yaw_axes(float(np.arctan2(t[1], t[0])))
        solids.append(_prism(footprint, -0.5, height, semantic=BUILDING, material=Material.FACADE,
                             object_id=ids.next_object(), frame_origin=origin, frame_axes=axes))
        s = s1 + rng.uniform(*gap)
    return solids


def _place_buildings(rng: np.random.Generator, line: Centerline, p: StreetParams, ids: _Ids) -> list[Solid]:
    solids: list[Solid] = []
    for side in (1.0, -1.0):
        placed: list[np.ndarray] = []
        solids += _place_building_row(rng, line, p, ids, side, p.building_setback_m, p.building_gap_m, placed)
        if p.far_row:
            solids += _place_building_row(rng, line, p, ids, side, p.far_row_setback_m, p.far_row_gap_m, placed)
    return solids


# --------------------------------------------------------------------------------------------------- the street
def generate_street(seed: int, length_m: float, params: StreetParams | None = None, instance_offset: int = 0
                    ) -> tuple[Scene, Centerline]:
    """A street scene for a trajectory of `length_m` metres (the street adds params.margin_m at both ends).

    Deterministic in (seed, length_m, params, instance_offset). Car instance ids are instance_offset + 1, + 2, ...
    Returns the scene (its meta holds the centerline, see Centerline.from_meta) and the centerline.
    """
    params = StreetParams() if params is None else params
    if not np.isfinite(length_m) or length_m <= 0:
        raise ValueError(f"generate_street: length_m must be a positive number, got {length_m}")
    if instance_offset < 0:
        raise ValueError(f"generate_street: instance_offset must be >= 0, got {instance_offset}")
    # Independent streams per component: changing one placement rule does not reshuffle the others.
    rng_line, rng_cars, rng_obst, rng_bldg = (np.random.default_rng(s)
                                              for s in np.random.SeedSequence(int(seed)).spawn(4))
    total = length_m + 2.0 * params.margin_m
    line = make_centerline(rng_line, total, params, (params.margin_m, params.margin_m + length_m))
    ids = _Ids(int(instance_offset))
    cars, car_yaw = _place_cars(rng_cars, line, params, ids)
    poles, trees = _place_obstacles(rng_obst, line, params, ids)
    buildings = _place_buildings(rng_bldg, line, params, ids)
    road, walks = _ground_strips(line, params)
    solids = cars + poles + trees + buildings + walks + road
    solids.append(_terrain(solids, params))
    meta = line.to_meta() | {"street_lane_half_m": np.array(params.lane_half_m),
                             "street_curb_m": np.array(params.curb_m),
                             "street_sidewalk_outer_m": np.array(params.sidewalk_outer_m)}
    return Scene.from_solids(solids, car_yaw, meta), line


__all__ = ["StreetParams", "Centerline", "generate_street", "make_centerline"]
