"""A scene made of convex polyhedra: exact inside/outside oracle and exact triangle meshes.

Every piece of geometry of the synthetic world is a convex solid. A convex solid is the intersection of half-spaces
``n . x + d <= 0`` (n unit, outward), so "is this point inside solid geometry?" is exact half-space algebra, and its
boundary is an exact closed triangle mesh (used for ray casting). The scene is the union of its solids.

Frames and units: world frame, right-handed, metres, z up, road surface at z = 0.

`Scene` keeps everything as flat arrays (no Python object per solid at query time):

    planes        float64 [S, Fmax, 4]  face planes (nx, ny, nz, d), inside where n.x + d <= 0; rows past
                                        n_faces[s] are padding (0, 0, 0, -1), which every point satisfies
    n_faces       int32   [S]
    aabb          float64 [S, 2, 3]     (min, max) corners
    solid_semantic, solid_instance, solid_material, solid_object   int32 [S]
    frame_origin  float64 [S, 3]        origin of the solid's local texture frame (world)
    frame_axes    float64 [S, 3, 3]     columns = local x, y, z axes in world; local = (p - origin) @ axes
    tri           float64 [T, 3, 3]     triangle soup, counter-clockwise seen from outside
    tri_solid     int32   [T]           solid of each triangle
    tri_normal    float64 [T, 3]        outward unit normal of each triangle (= its face plane normal)
    cars          CarBoxes              annotation box of every car instance

When solids overlap (an object sunk into the ground), `solid_at` returns the containing solid with the LOWEST
index; scene builders order solids by priority (objects before ground).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np
from scipy.spatial import ConvexHull, QhullError

INSIDE_TOL = 1e-9  # metres: closed-set tolerance of the inside test
# Broad-phase boxes are grown by this much: a point within INSIDE_TOL of every plane can lie slightly outside the
# exact AABB (near a vertex the tolerance zone widens as 1 / sin(half the corner angle)).
_BROAD_MARGIN = 1e-6
_PAD_PLANE = np.array([0.0, 0.0, 0.0, -1.0])  # 0.x - 1 <= 0 holds everywhere: padding never excludes a point
_CHUNK_POINTS = 1 << 16
_FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------------- label table
class Label(NamedTuple):
    name: str
    id: int          # KITTI-360 label id (data_2d_semantics, our semantic images)
    kitti_id: int    # KITTI-360 "kittiId" (used by the 3D bounding-box XML)
    color: tuple[int, int, int]


#: The KITTI-360 labels used by the synthetic world (values from kitti360scripts.helpers.labels).
LABELS: dict[str, Label] = {lab.name: lab for lab in (
    Label("unlabeled", 0, -1, (0, 0, 0)),
    Label("road", 7, 1, (128, 64, 128)),
    Label("sidewalk", 8, 3, (244, 35, 232)),
    Label("building", 11, 11, (70, 70, 70)),
    Label("pole", 17, 21, (153, 153, 153)),
    Label("vegetation", 21, 5, (107, 142, 35)),
    Label("terrain", 22, 4, (152, 251, 152)),
    Label("sky", 23, 9, (70, 130, 180)),
    Label("car", 26, 13, (0, 0, 142)),
)}
UNLABELED, ROAD, SIDEWALK, BUILDING, POLE, VEGETATION, TERRAIN, SKY, CAR = (
    LABELS[n].id for n in ("unlabeled", "road", "sidewalk", "building", "pole", "vegetation", "terrain", "sky", "car"))


class Material(IntEnum):
    """Appearance model of a solid (see vipocc.synthetic.appearance)."""
    ASPHALT = 0
    SIDEWALK = 1
    FACADE = 2
    CAR_BODY = 3
    CAR_CABIN = 4
    BARK = 5
    FOLIAGE = 6
    POLE = 7
    GRASS = 8


# --------------------------------------------------------------------------------------------------- one solid
@dataclass(frozen=True, eq=False)
class Solid:
    """One convex polyhedron with its labels. planes [F, 4] (unit outward n, d); triangles [T, 3, 3] outward CCW;
    normals [T, 3] outward unit normal of each triangle (its Qhull facet plane)."""
    planes: np.ndarray
    triangles: np.ndarray
    normals: np.ndarray
    semantic: int
    material: int
    instance: int = 0
    object_id: int = 0
    frame_origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    frame_axes: np.ndarray = field(default_factory=lambda: np.eye(3))

    @property
    def vertices(self) -> np.ndarray:
        """Unique vertices [V, 3] of the triangle mesh."""
        return np.unique(self.triangles.reshape(-1, 3), axis=0)


def _unique_planes(equations: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Drop repeated planes (Qhull gives one row per triangle, so a box face appears twice)."""
    diff = np.abs(equations[:, None, :] - equations[None, :, :]).max(axis=-1)
    repeats_earlier = np.tril(diff < tol, k=-1).any(axis=1)
    return equations[~repeats_earlier]


def convex_solid(points: np.ndarray, *, semantic: int, material: int, instance: int = 0, object_id: int = 0,
                 frame_origin: np.ndarray | None = None, frame_axes: np.ndarray | None = None) -> Solid:
    """The convex hull of `points` [P, 3] (world, metres) as a Solid.

    frame_origin [3] / frame_axes [3, 3] (columns = local x, y, z in world) define the local texture frame.
    Raises ValueError when the points do not span a volume.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 4 or not np.isfinite(points).all():
        raise ValueError(f"convex_solid: points must be a finite [P>=4, 3] array, got shape {points.shape}")
    try:
        hull = ConvexHull(points)
    except QhullError as err:
        raise ValueError(f"convex_solid: points do not span a 3D volume ({err.args[0].splitlines()[0]})") from err
    eq = hull.equations
    tri = hull.points[hull.simplices]
    # Qhull's simplices have arbitrary winding; flip those whose geometric normal disagrees with the outward plane.
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flip = np.einsum("ij,ij->i", cross, eq[:, :3]) < 0
    tri[flip] = tri[flip][:, [0, 2, 1]]
    origin = np.zeros(3) if frame_origin is None else np.asarray(frame_origin, np.float64).reshape(3)
    axes = np.eye(3) if frame_axes is None else np.asarray(frame_axes, np.float64).reshape(3, 3)
    return Solid(_unique_planes(eq), tri, eq[:, :3].copy(), int(semantic), int(material), int(instance),
                 int(object_id), origin, axes)


def box_solid(center: np.ndarray, size: np.ndarray, yaw: float = 0.0, **labels) -> Solid:
    """An oriented box: center [3] (world), size (length along yaw, width, height), yaw about +z (rad, 0 = +x).

    The local frame is the box frame (origin at the centre, x along the length).
    """
    axes = yaw_axes(yaw)
    half = np.asarray(size, np.float64) / 2.0
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1], indexing="ij")).reshape(3, -1).T
    corners = np.asarray(center, np.float64) + (signs * half) @ axes.T
    labels.setdefault("frame_origin", np.asarray(center, np.float64))
    labels.setdefault("frame_axes", axes)
    return convex_solid(corners, **labels)


def yaw_axes(yaw: float) -> np.ndarray:
    """Rotation [3, 3] about world +z by yaw (rad); columns = rotated x, y, z axes."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# --------------------------------------------------------------------------------------------------- car boxes
@dataclass(frozen=True, eq=False)
class CarBoxes:
    """Annotation boxes of the cars, one row per instance.

    instance_id int32 [C] (unique, > 0); center float64 [C, 3] (world, box centre); size float64 [C, 3] =
    (length, width, height) in metres; yaw float64 [C] (rad about world +z, 0 = +x; length is along yaw).
    """
    instance_id: np.ndarray
    center: np.ndarray
    size: np.ndarray
    yaw: np.ndarray

    def __len__(self) -> int:
        return len(self.instance_id)

    def rotations(self) -> np.ndarray:
        """Box-to-world rotations [C, 3, 3] (columns: length, width, height axes)."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        rot = np.zeros((len(self), 3, 3))
        rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c, -s, s, c, 1.0
        return rot

    def corners(self) -> np.ndarray:
        """World corners [C, 8, 3]; corner k has signs ((k>>2)&1, (k>>1)&1, k&1) -> (-,+) on (length, width, height)."""
        k = np.arange(8)
        signs = np.stack([(k >> 2) & 1, (k >> 1) & 1, k & 1], axis=1) * 2.0 - 1.0
        local = signs[None] * self.size[:, None, :] / 2.0
        return self.center[:, None, :] + np.einsum("cij,ckj->cki", self.rotations(), local)


def _empty_cars() -> CarBoxes:
    return CarBoxes(np.zeros(0, np.int32), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))


def tight_car_boxes(tri: np.ndarray, tri_solid: np.ndarray, solid_instance: np.ndarray,
                    car_yaw: Mapping[int, float]) -> CarBoxes:
    """The tightest yaw-aligned box around all triangles of each car instance listed in car_yaw."""
    ids = np.array(sorted(car_yaw), dtype=np.int32)
    if len(ids) == 0:
        return _empty_cars()
    yaw = np.array([car_yaw[int(i)] for i in ids], dtype=np.float64)
    tri_instance = solid_instance[tri_solid]
    row = np.searchsorted(ids, tri_instance)
    row_ok = (row < len(ids)) & (ids[np.minimum(row, len(ids) - 1)] == tri_instance)
    verts = tri[row_ok].reshape(-1, 3)
    vrow = np.repeat(row[row_ok], 3)
    if np.bincount(vrow, minlength=len(ids)).min() == 0:
        raise ValueError("tight_car_boxes: a car in car_yaw has no solid with its instance id")
    c, s = np.cos(yaw[vrow]), np.sin(yaw[vrow])
    # Coordinates in each car's yaw-aligned frame: then the box is a plain per-row min/max.
    local = np.stack([c * verts[:, 0] + s * verts[:, 1], -s * verts[:, 0] + c * verts[:, 1], verts[:, 2]], axis=1)
    lo = np.full((len(ids), 3), np.inf)
    hi = np.full((len(ids), 3), -np.inf)
    np.minimum.at(lo, vrow, local)
    np.maximum.at(hi, vrow, local)
    mid = (lo + hi) / 2.0
    cy, sy = np.cos(yaw), np.sin(yaw)
    center = np.stack([cy * mid[:, 0] - sy * mid[:, 1], sy * mid[:, 0] + cy * mid[:, 1], mid[:, 2]], axis=1)
    return CarBoxes(ids, center, hi - lo, yaw)


# --------------------------------------------------------------------------------------------------- broad phase
@dataclass(frozen=True)
class _Grid:
    """Uniform xy grid of candidate solids: table[cell] lists (ascending, -1 padded) solids whose AABB meets it."""
    origin: np.ndarray      # [2] xy of the grid corner
    cell: float             # metres
    shape: tuple[int, int]  # (nx, ny)
    table: np.ndarray       # int32 [nx * ny, K]

    def cells(self, xy: np.ndarray) -> np.ndarray:
        """Cell index [N] of xy [N, 2], -1 outside the grid."""
        ij = np.floor((xy - self.origin) / self.cell)
        inside = (ij >= 0).all(axis=1) & (ij[:, 0] < self.shape[0]) & (ij[:, 1] < self.shape[1])
        ij = np.where(inside[:, None], ij, 0).astype(np.int64)
        return np.where(inside, ij[:, 1] * self.shape[0] + ij[:, 0], -1)


def _build_grid(aabb: np.ndarray, cell: float) -> _Grid:
    n_solids = len(aabb)
    if n_solids == 0:
        return _Grid(np.zeros(2), cell, (1, 1), np.full((1, 1), -1, np.int32))
    origin = aabb[:, 0, :2].min(axis=0)
    extent = aabb[:, 1, :2].max(axis=0) - origin
    nx, ny = (np.floor(extent / cell).astype(np.int64) + 1)
    lo = np.floor((aabb[:, 0, :2] - origin) / cell).astype(np.int64)
    hi = np.minimum(np.floor((aabb[:, 1, :2] - origin) / cell).astype(np.int64), [nx - 1, ny - 1])
    span = hi - lo + 1
    count = span[:, 0] * span[:, 1]
    # Enumerate every (solid, covered cell) pair without a loop: k-th cell of solid s is (k % span_x, k // span_x).
    solid = np.repeat(np.arange(n_solids), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    cx = lo[solid, 0] + k % span[solid, 0]
    cy = lo[solid, 1] + k // span[solid, 0]
    cell_id = cy * nx + cx
    order = np.argsort(cell_id, kind="stable")  # stable: solids stay ascending within a cell
    cell_id, solid = cell_id[order], solid[order]
    per_cell = np.bincount(cell_id, minlength=nx * ny)
    slot = np.arange(len(cell_id)) - np.repeat(np.cumsum(per_cell) - per_cell, per_cell)
    table = np.full((nx * ny, max(1, int(per_cell.max()))), -1, np.int32)
    table[cell_id, slot] = solid
    return _Grid(origin, float(cell), (int(nx), int(ny)), table)


# --------------------------------------------------------------------------------------------------- the scene
_ARRAY_FIELDS = ("planes", "n_faces", "aabb", "solid_semantic", "solid_instance", "solid_material", "solid_object",
                 "frame_origin", "frame_axes", "tri", "tri_solid", "tri_normal")
_CAR_FIELDS = ("instance_id", "center", "size", "yaw")


@dataclass(eq=False)
class Scene:
    """Union of convex solids (see the module docstring for every array's shape and meaning)."""
    planes: np.ndarray
    n_faces: np.ndarray
    aabb: np.ndarray
    solid_semantic: np.ndarray
    solid_instance: np.ndarray
    solid_material: np.ndarray
    solid_object: np.ndarray
    frame_origin: np.ndarray
    frame_axes: np.ndarray
    tri: np.ndarray
    tri_solid: np.ndarray
    tri_normal: np.ndarray
    cars: CarBoxes = field(default_factory=_empty_cars)
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    grid_cell_m: float = 4.0

    def __post_init__(self) -> None:
        s = len(self.planes)
        expect = {"planes": (s, None, 4), "n_faces": (s,), "aabb": (s, 2, 3), "solid_semantic": (s,),
                  "solid_instance": (s,), "solid_material": (s,), "solid_object": (s,), "frame_origin": (s, 3),
                  "frame_axes": (s, 3, 3), "tri": (None, 3, 3), "tri_solid": (len(self.tri),),
                  "tri_normal": (len(self.tri), 3)}
        for name, shape in expect.items():
            arr = np.asarray(getattr(self, name))
            if arr.ndim != len(shape) or any(e is not None and e != a for e, a in zip(shape, arr.shape)):
                raise ValueError(f"Scene.{name}: expected shape {shape}, got {arr.shape}")
        if len(self.tri_solid) and (self.tri_solid.min() < 0 or self.tri_solid.max() >= s):
            raise ValueError("Scene.tri_solid: solid index out of range")
        self._grid: _Grid | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_solids(cls, solids: Sequence[Solid], car_yaw: Mapping[int, float] | None = None,
                    meta: Mapping[str, np.ndarray] | None = None) -> "Scene":
        """Pack solids into arrays. car_yaw maps each car instance id -> yaw (rad); its box is made tight."""
        if len(solids) == 0:
            raise ValueError("Scene.from_solids: no solids")
        n_faces = np.array([len(s.planes) for s in solids], np.int32)
        planes = np.tile(_PAD_PLANE, (len(solids), int(n_faces.max()), 1))
        face_solid = np.repeat(np.arange(len(solids)), n_faces)
        face_slot = np.arange(n_faces.sum()) - np.repeat(np.cumsum(n_faces) - n_faces, n_faces)
        planes[face_solid, face_slot] = np.concatenate([s.planes for s in solids])
        n_tri = np.array([len(s.triangles) for s in solids])
        tri = np.concatenate([s.triangles for s in solids])
        tri_solid = np.repeat(np.arange(len(solids)), n_tri).astype(np.int32)
        tri_normal = np.concatenate([s.normals for s in solids])
        aabb = np.stack([np.stack([s.triangles.reshape(-1, 3).min(0), s.triangles.reshape(-1, 3).max(0)])
                         for s in solids])
        ints = lambda key: np.array([getattr(s, key) for s in solids], np.int32)  # noqa: E731
        instance = ints("instance")
        car_yaw = dict(car_yaw or {})
        cars = tight_car_boxes(tri, tri_solid, instance, car_yaw)
        return cls(planes, n_faces, aabb, ints("semantic"), instance, ints("material"), ints("object_id"),
                   np.stack([s.frame_origin for s in solids]), np.stack([s.frame_axes for s in solids]),
                   tri, tri_solid, tri_normal, cars, {k: np.asarray(v) for k, v in (meta or {}).items()})

    @classmethod
    def concatenate(cls, scenes: Sequence["Scene"]) -> "Scene":
        """One scene holding all solids of `scenes` (in order). Car instance ids must not collide; meta is dropped."""
        if len(scenes) == 0:
            raise ValueError("Scene.concatenate: no scenes")
        ids = np.concatenate([s.cars.instance_id for s in scenes])
        if len(np.unique(ids)) != len(ids):
            raise ValueError("Scene.concatenate: car instance ids collide (use distinct instance_offset values)")
        fmax = max(s.planes.shape[1] for s in scenes)
        pad = lambda p: np.concatenate([p, np.tile(_PAD_PLANE, (len(p), fmax - p.shape[1], 1))], 1)  # noqa: E731
        offsets = np.cumsum([0] + [s.n_solids for s in scenes[:-1]])
        cat = lambda name: np.concatenate([getattr(s, name) for s in scenes])  # noqa: E731
        cars = CarBoxes(*(np.concatenate([getattr(s.cars, f) for s in scenes]) for f in _CAR_FIELDS))
        return cls(np.concatenate([pad(s.planes) for s in scenes]), cat("n_faces"), cat("aabb"),
                   cat("solid_semantic"), cat("solid_instance"), cat("solid_material"), cat("solid_object"),
                   cat("frame_origin"), cat("frame_axes"), cat("tri"),
                   np.concatenate([s.tri_solid + o for s, o in zip(scenes, offsets)]).astype(np.int32),
                   cat("tri_normal"), cars)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write one lossless .npz (all arrays, car boxes, meta arrays)."""
        arrays = {name: getattr(self, name) for name in _ARRAY_FIELDS}
        arrays |= {f"cars__{name}": getattr(self.cars, name) for name in _CAR_FIELDS}
        arrays |= {f"meta__{k}": v for k, v in self.meta.items()}
        arrays["format_version"] = np.array(_FORMAT_VERSION)
        arrays["grid_cell_m"] = np.array(self.grid_cell_m)
        with open(path, "wb") as fh:  # a file handle keeps numpy from appending ".npz" to the name
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Scene":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Scene.load: {path} does not exist")
        with np.load(path) as data:
            missing = [k for k in _ARRAY_FIELDS if k not in data.files]
            if missing or "format_version" not in data.files:
                raise ValueError(f"Scene.load: {path} is not a scene file (missing {missing or ['format_version']})")
            if int(data["format_version"]) != _FORMAT_VERSION:
                raise ValueError(f"Scene.load: {path} has format version {int(data['format_version'])}, "
                                 f"expected {_FORMAT_VERSION}")
            cars = CarBoxes(*(data[f"cars__{name}"] for name in _CAR_FIELDS))
            meta = {k[len("meta__"):]: data[k] for k in data.files if k.startswith("meta__")}
            return cls(*(data[k] for k in _ARRAY_FIELDS), cars, meta, float(data["grid_cell_m"]))

    # ------------------------------------------------------------------ queries
    @property
    def n_solids(self) -> int:
        return len(self.planes)

    def __len__(self) -> int:
        return self.n_solids

    def triangles(self) -> tuple[np.ndarray, np.ndarray]:
        """(tri float32 [T, 3, 3] outward CCW, tri_solid int32 [T])."""
        return self.tri.astype(np.float32), self.tri_solid.astype(np.int32)

    def _broad_phase(self) -> _Grid:
        if self._grid is None:
            self._grid = _build_grid(self.aabb + [[-_BROAD_MARGIN], [_BROAD_MARGIN]], self.grid_cell_m)
        return self._grid

    def solid_at(self, points: np.ndarray) -> np.ndarray:
        """Index int32 [N] of the lowest-index solid containing each point [N, 3] (world, closed, tol 1e-9 m); -1
        where no solid contains it."""
        points = _as_points(points, "Scene.solid_at")
        out = np.full(len(points), -1, np.int32)
        grid = self._broad_phase()
        flat_planes = self.planes.reshape(-1, 4)
        fmax = self.planes.shape[1]
        for start in range(0, len(points), _CHUNK_POINTS):
            chunk = points[start:start + _CHUNK_POINTS]
            out[start:start + len(chunk)] = self._solid_at_chunk(chunk, grid, flat_planes, fmax)
        return out

    def _solid_at_chunk(self, pts: np.ndarray, grid: _Grid, flat_planes: np.ndarray, fmax: int) -> np.ndarray:
        cell = grid.cells(pts[:, :2])
        cand = np.where(cell[:, None] >= 0, grid.table[np.maximum(cell, 0)], -1)
        pair_point, pair_k = np.nonzero(cand >= 0)  # row-major: by point, then by ascending solid index
        pair_solid = cand[pair_point, pair_k]
        pair_pts = pts[pair_point]
        box = self.aabb[pair_solid]
        in_box = ((pair_pts >= box[:, 0] - _BROAD_MARGIN) & (pair_pts <= box[:, 1] + _BROAD_MARGIN)).all(axis=1)
        pair_point, pair_solid = pair_point[in_box], pair_solid[in_box]
        result = np.full(len(pts), -1, np.int32)
        if len(pair_point) == 0:
            return result
        # Expand each (point, solid) pair into its real faces only, then take the max signed distance per pair.
        nf = self.n_faces[pair_solid]
        pair_start = np.cumsum(nf) - nf
        face_row = np.repeat(pair_solid.astype(np.int64) * fmax - pair_start, nf) + np.arange(nf.sum())
        face_point = np.repeat(pair_point, nf)
        inside = np.maximum.reduceat(_plane_distance(flat_planes[face_row], pts[face_point]), pair_start) <= INSIDE_TOL
        hit_point, hit_solid = pair_point[inside], pair_solid[inside]
        first = np.ones(len(hit_point), bool)
        first[1:] = hit_point[1:] != hit_point[:-1]
        result[hit_point[first]] = hit_solid[first]
        return result

    def occupied(self, points: np.ndarray) -> np.ndarray:
        """bool [N]: the point [N, 3] (world) lies in some solid (closed set)."""
        return self.solid_at(points) >= 0

    def semantic_at(self, points: np.ndarray) -> np.ndarray:
        """KITTI-360 label id int32 [N] of the solid containing each point; 0 (unlabeled) in free space."""
        solid = self.solid_at(points)
        return np.where(solid >= 0, self.solid_semantic[np.maximum(solid, 0)], UNLABELED).astype(np.int32)

    def instance_at(self, points: np.ndarray) -> np.ndarray:
        """Car instance id int32 [N] of the solid containing each point; 0 elsewhere."""
        solid = self.solid_at(points)
        return np.where(solid >= 0, self.solid_instance[np.maximum(solid, 0)], 0).astype(np.int32)


def _plane_distance(planes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Signed distance n.p + d of points [M, 3] to planes [M, 4], written out so every caller rounds identically."""
    return planes[:, 0] * points[:, 0] + planes[:, 1] * points[:, 1] + planes[:, 2] * points[:, 2] + planes[:, 3]


def _as_points(points: np.ndarray, who: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 1 and points.shape == (3,):
        points = points[None]
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"{who}: points must have shape [N, 3], got {points.shape}")
    return points


__all__ = ["LABELS", "Label", "Material", "Solid", "CarBoxes", "Scene", "convex_solid", "box_solid", "yaw_axes",
           "tight_car_boxes", "INSIDE_TOL", "UNLABELED", "ROAD", "SIDEWALK", "BUILDING", "POLE", "VEGETATION",
           "TERRAIN", "SKY", "CAR"]
