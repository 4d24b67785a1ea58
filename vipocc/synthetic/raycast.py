"""Ray casting against a Scene's exact triangle meshes with Intel Embree (through embreex).

Precision: Embree intersects in float32, so WHICH triangle a ray hits is decided with float32 coordinates: near an
edge the choice may differ from exact arithmetic within ~1e-4 m (world coordinates stay within ~1 km of the origin,
the street generator centres the street, float32 ulp <= 6e-5 m there; keep |xyz| < ~2 km). The hit DISTANCE is then
recomputed in float64 as the exact intersection of the ray with the hit triangle's plane, so hit points lie on
the hit face to ~1e-12 m (for rays within 1e-6 of grazing the face, Embree's float32 distance is kept).
Rays start at distance 0 from their origin (tnear = 0); an origin inside a solid hits that solid's boundary from
inside.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from embreex import rtcore_scene
from embreex.mesh_construction import TriangleMesh

from vipocc.synthetic.scene import Scene

_CHUNK_RAYS = 1 << 20
_UNIT_TOL = 1e-4
_EMBREE_MISS_T = 1e30
_GRAZING = 1e-6  # |cos| below which the plane intersection is ill-conditioned  # embree reports tfar = 1e37 on a miss


@dataclass(frozen=True, eq=False)
class Hits:
    """Result of Raycaster.cast for N rays (world frame, metres).

    distance float64 [N]: ray parameter of the first hit = metres along the unit direction (inf on miss).
    solid int32 [N]: index of the hit solid in the Scene (-1 on miss).
    normal float32 [N, 3]: unit normal of the hit face, oriented against the ray (n . dir <= 0); 0 on miss.
    points float64 [N, 3]: origin + distance * dir (nan on miss).
    """
    distance: np.ndarray
    solid: np.ndarray
    normal: np.ndarray
    points: np.ndarray

    @property
    def hit(self) -> np.ndarray:
        """bool [N]: the ray hit something."""
        return self.solid >= 0

    def __len__(self) -> int:
        return len(self.solid)


class Raycaster:
    """First-hit ray casting against all triangles of `scene` (built once; cast() may be called many times)."""

    def __init__(self, scene: Scene) -> None:
        tri, tri_solid = scene.triangles()
        if len(tri) == 0:
            raise ValueError("Raycaster: the scene has no triangles")
        self._tri_solid = tri_solid
        self._tri_normal = scene.tri_normal.astype(np.float64)
        self._tri_offset = -np.einsum("ij,ij->i", scene.tri_normal, scene.tri[:, 0])  # plane: n.x + offset = 0
        self._embree = rtcore_scene.EmbreeScene()
        self._mesh = TriangleMesh(self._embree, np.ascontiguousarray(tri))  # keep a reference: embree shares buffers

    def cast(self, origins: np.ndarray, dirs: np.ndarray) -> Hits:
        """Cast rays from origins [N, 3] (or one origin [3]) along unit dirs [N, 3] (world frame)."""
        dirs = np.asarray(dirs, dtype=np.float64)
        if dirs.ndim != 2 or dirs.shape[1] != 3:
            raise ValueError(f"Raycaster.cast: dirs must have shape [N, 3], got {dirs.shape}")
        origins = np.asarray(origins, dtype=np.float64)
        if origins.shape == (3,):
            origins = np.broadcast_to(origins, dirs.shape)
        if origins.shape != dirs.shape:
            raise ValueError(f"Raycaster.cast: origins must have shape [3] or {dirs.shape}, got {origins.shape}")
        norm = np.linalg.norm(dirs, axis=1)
        if len(dirs) and not (np.abs(norm - 1.0) <= _UNIT_TOL).all():
            raise ValueError("Raycaster.cast: dirs must be unit vectors "
                             f"(|norm - 1| up to {np.abs(norm - 1).max():.3g})")
        if not (np.isfinite(origins).all() and np.isfinite(dirs).all()):
            raise ValueError("Raycaster.cast: origins and dirs must be finite")
        n = len(dirs)
        distance = np.full(n, np.inf)
        solid = np.full(n, -1, np.int32)
        normal = np.zeros((n, 3), np.float32)
        for start in range(0, n, _CHUNK_RAYS):
            sl = slice(start, min(n, start + _CHUNK_RAYS))
            self._cast_chunk(origins[sl], dirs[sl], distance[sl], solid[sl], normal[sl])
        finite = np.isfinite(distance)
        points = np.where(finite[:, None], origins + np.where(finite, distance, 0.0)[:, None] * dirs, np.nan)
        return Hits(distance, solid, normal, points)

    def _cast_chunk(self, origins: np.ndarray, dirs: np.ndarray, distance: np.ndarray, solid: np.ndarray,
                    normal: np.ndarray) -> None:
        """Fill the output views distance/solid/normal for one chunk of rays."""
        out = self._embree.run(np.ascontiguousarray(origins, np.float32), np.ascontiguousarray(dirs, np.float32),
                               output=1)
        prim = out["primID"]
        hit = (prim >= 0) & (out["tfar"] < _EMBREE_MISS_T)
        prim = prim[hit]
        n = self._tri_normal[prim]
        n_dot_dir = np.einsum("ij,ij->i", n, dirs[hit])
        plane_t = -(np.einsum("ij,ij->i", n, origins[hit]) + self._tri_offset[prim]) / np.where(n_dot_dir == 0, 1.0,
                                                                                                  n_dot_dir)
        distance[hit] = np.where(np.abs(n_dot_dir) > _GRAZING, np.maximum(plane_t, 0.0), out["tfar"][hit])
        solid[hit] = self._tri_solid[prim]
        normal[hit] = np.where((n_dot_dir > 0)[:, None], -n, n)


__all__ = ["Hits", "Raycaster"]
