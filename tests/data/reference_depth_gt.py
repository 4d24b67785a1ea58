"""Test oracle: a literal, loop-based re-implementation of the reference's LiDAR depth GT (``load_depth``).

Written from the behaviour described in reference-implementation.md 1.5 (not from the reference's code): float32
calibration and points, projection with the normalised K, round-half-even pixel coordinates, bounds test, fancy
assignment (last write wins), then a Python loop over the duplicated monodepth2 ``sub2ind`` keys
``v * (W - 1) + u - 1`` counted with ``collections.Counter``, the key minimum written to the pixel of the key's first
point, and finally negative depths set to 0. Deliberately slow and simple; never import it from the package.
"""
from collections import Counter

import numpy as np


def reference_depth_map(points_velo, T_velo_to_rect, K_norm, image_size, filter_behind_camera=False):
    height, width = int(image_size[0]), int(image_size[1])
    points = np.array(points_velo, dtype=np.float32)[:, :4].copy()
    if points.shape[1] == 3:
        points = np.concatenate([points, np.zeros((len(points), 1), np.float32)], axis=1)
    points[:, 3] = 1.0
    K = np.array(K_norm, dtype=np.float32)
    T = np.array(T_velo_to_rect, dtype=np.float32)

    cam = np.dot(K @ T[:3, :], points.T).T
    if filter_behind_camera:
        cam = cam[cam[:, 2] > 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        cam[:, :2] = cam[:, :2] / cam[:, 2][..., None]
    cam[:, 0] = np.round((cam[:, 0] * .5 + .5) * width)
    cam[:, 1] = np.round((cam[:, 1] * .5 + .5) * height)
    keep = (cam[:, 0] >= 0) & (cam[:, 1] >= 0) & (cam[:, 0] < width) & (cam[:, 1] < height)
    cam = cam[keep]

    depth = np.zeros((height, width))
    depth[cam[:, 1].astype(np.int32), cam[:, 0].astype(np.int32)] = cam[:, 2]

    keys = cam[:, 1] * (width - 1) + cam[:, 0] - 1
    for key, count in Counter(keys).items():
        if count < 2:
            continue
        members = np.where(keys == key)[0]
        col = int(cam[members[0], 0])
        row = int(cam[members[0], 1])
        depth[row, col] = cam[members, 2].min()
    depth[depth < 0] = 0
    return depth.astype(np.float32)
