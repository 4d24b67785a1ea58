"""The previous (slow, plain) voxel GT algorithm: a test oracle for vipocc.data.voxel_gt.

Labels: the exact oracle ``Scene.solid_at`` at every one of the 2 M voxel centres. Visibility: one Embree ray per
in-view centre, occupied or not. Same arithmetic as the module had before it was sped up (centres, transforms,
projection, ray directions), so the fast module must reproduce these arrays bit for bit.
"""

from __future__ import annotations

import numpy as np

VOXEL_ORIGIN = np.array([1.0, -25.6, -2.5])
VOXEL_SIZE = 0.2
VOXEL_SHAPE = (256, 256, 32)
HIDDEN_MARGIN = 1e-6
CHUNK = 1 << 19


def centers() -> np.ndarray:
    """float64 [V, 3] voxel centres (velodyne frame), row-major over [i, j, k]."""
    index = np.indices(VOXEL_SHAPE, dtype=np.float64).reshape(3, -1).T
    return VOXEL_ORIGIN + (index + 0.5) * VOXEL_SIZE


def transform(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    return points @ T[:3, :3].T + T[:3, 3]


def reference_labels(scene, velo_to_world: np.ndarray) -> np.ndarray:
    """uint8 [256, 256, 32]: semantic of solid_at at every centre (1 for class-less solids), 0 free, 255 outside."""
    world = transform(velo_to_world, centers())
    solid = scene.solid_at(world)
    semantic = scene.solid_semantic[np.maximum(solid, 0)]
    semantic = np.where((semantic <= 0) | (semantic >= 255), 1, semantic)
    labels = np.where(solid >= 0, semantic, 0)
    low, high = scene.aabb[:, 0, :2].min(axis=0), scene.aabb[:, 1, :2].max(axis=0)
    outside = np.any((world[:, :2] < low) | (world[:, :2] > high), axis=1)
    return np.where(outside, 255, labels).astype(np.uint8).reshape(VOXEL_SHAPE)


def reference_visible(caster, cam_to_world: np.ndarray, K_norm: np.ndarray, velo_to_world: np.ndarray) -> np.ndarray:
    """bool [256, 256, 32]: in view and the ray from the camera reaches the centre (one ray per in-view centre)."""
    world = transform(velo_to_world, centers())
    cam = transform(np.linalg.inv(np.asarray(cam_to_world, dtype=np.float64)), world)
    projected = cam @ np.asarray(K_norm, dtype=np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        u, v = projected[:, 0] / projected[:, 2], projected[:, 1] / projected[:, 2]
    in_view = np.flatnonzero((cam[:, 2] > 0) & (np.abs(u) <= 1) & (np.abs(v) <= 1))
    origin = np.asarray(cam_to_world, dtype=np.float64)[:3, 3]
    visible = np.zeros(len(world), dtype=bool)
    for start in range(0, len(in_view), CHUNK):
        chosen = in_view[start:start + CHUNK]
        offset = world[chosen] - origin
        distance = np.linalg.norm(offset, axis=1)
        visible[chosen] = caster.cast(origin, offset / distance[:, None]).distance > distance + HIDDEN_MARGIN
    return visible.reshape(VOXEL_SHAPE)
