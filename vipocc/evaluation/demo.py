"""Demo renders of one test frame (reference ``evaluator_demo.py``, digest 4.4), on CPU or GPU.

Files per frame, named ``<seq>_<frame:010d>_<what>``:

* ``_rgb.png``: the input view;
* ``_disp_r.png`` / ``_disp_p.png`` / ``_disp_pseudo.png``: rendered depth, predicted depth (models with a depth
  branch) and the pseudo-depth prior, each shown as 1/depth, min-max normalised per image, magma colours;
* ``_bev.png``: bird's-eye occupancy profile (:func:`bev_profile`), magma, row 0 = far end (z = 20 m);
* ``_voxel.ply``: voxelised occupancy mesh (:func:`occupancy_voxels`, :func:`write_voxel_ply`), one cube per
  occupied cell, coloured by height, binary little-endian PLY written here (no plyfile dependency).

Frames: the camera of the input view is the world (identity pose; x right, y down, z forward, m). The demo grids
live in the inclination-corrected camera frame of the occupancy protocol (x-z plane parallel to the road,
:func:`vipocc.data.occupancy_gt.inclination_correction`) and are rotated back into the camera before querying.
Differences from the reference: the voxel grid is built in that corrected frame (the reference shears y by
-z tan 5 deg instead of rotating; the two agree to 0.4 % in z), and interior cube faces are kept (a viewer does
not care; it keeps the writer simple and the face count = 6 x cubes).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vipocc.data.occupancy_gt import inclination_correction
from vipocc.io import write_bytes, write_png

__all__ = [
    "BevSettings",
    "VoxelSettings",
    "bev_profile",
    "colorize",
    "inverse_depth_image",
    "occupancy_voxels",
    "query_density",
    "read_ply_header",
    "render_demo_frame",
    "voxel_mesh",
    "write_voxel_ply",
]


@dataclass(frozen=True)
class BevSettings:
    """The reference's ``render_profile`` grid: x in [-4.5, 4.5], z from 20 down to 3 m, ppm 7 (63 x 119
    cells); ``y_samples`` heights in [0, 0.75] m; a cell's value is the fraction of its heights with density below
    ``density_threshold`` (0.6, hard-coded in the reference)."""

    x_range: tuple[float, float] = (-4.5, 4.5)
    z_range: tuple[float, float] = (20.0, 3.0)
    y_range: tuple[float, float] = (0.0, 0.75)
    y_samples: int = 25
    ppm: float = 7.0
    density_threshold: float = 0.6


@dataclass(frozen=True)
class VoxelSettings:
    """The reference's ``draw_occ`` grid: x [-4.5, 4.5] (63), y [-1.5, 2.5] (25), z [20, 3] (119) at ppm 7;
    density averaged over 2x2x2 neighbourhoods (stride 1), occupied if > ``occ_threshold``."""

    x_range: tuple[float, float] = (-4.5, 4.5)
    y_range: tuple[float, float] = (-1.5, 2.5)
    z_range: tuple[float, float] = (20.0, 3.0)
    ppm: float = 7.0
    y_points: int = 25
    occ_threshold: float = 0.5


def _axis(low_high: tuple[float, float], ppm: float) -> np.ndarray:
    """``linspace(a, b, int(|b - a| * ppm))`` (the reference's grid sizes: 63 for 9 m, 119 for 17 m at ppm 7)."""
    a, b = low_high
    return np.linspace(a, b, int(abs(b - a) * ppm), dtype=np.float32)


def _to_camera(points_corrected: np.ndarray) -> np.ndarray:
    """[..., 3] points of the inclination-corrected frame -> the camera frame (rotation inverse = transpose)."""
    rotation = inclination_correction()[:3, :3].astype(np.float64)
    return (points_corrected.astype(np.float64) @ rotation).astype(np.float32)  # p_cam = A^T p, row-vector form


def query_density(network: torch.nn.Module, image: torch.Tensor, K: torch.Tensor, points_camera: np.ndarray,
                  device: torch.device, batch_points: int = 50000) -> tuple[np.ndarray, np.ndarray]:
    """Density at camera-frame points of one view.

    image ``[1,3,H,W]`` in [-1, 1]; K ``[1,3,3]`` normalised; points_camera ``[P,3]`` m. Encodes the view with an
    identity pose, queries ``network.field.density`` in batches of ``batch_points``. Returns sigma ``[P]`` float32
    (1/m) and invalid ``[P]`` bool (outside the view's frustum).
    """
    if batch_points < 1:
        raise ValueError(f"batch_points: must be >= 1, got {batch_points}")
    identity = torch.eye(4, device=device).unsqueeze(0)
    points = torch.from_numpy(np.ascontiguousarray(points_camera, dtype=np.float32)).to(device).unsqueeze(0)
    sigmas, invalids = [], []
    with torch.no_grad():
        network.field.encode(image.to(device), K.to(device), identity, flip=False)
        for start in range(0, points.shape[1], batch_points):  # a few batches
            sigma, invalid = network.field.density(points[:, start:start + batch_points])
            sigmas.append(sigma.float().cpu())
            invalids.append(invalid.cpu())
    return torch.cat(sigmas, 1)[0].numpy(), torch.cat(invalids, 1)[0].numpy()


def bev_profile(network: torch.nn.Module, image: torch.Tensor, K: torch.Tensor, device: torch.device,
                settings: BevSettings = BevSettings(), batch_points: int = 50000) -> np.ndarray:
    """Bird's-eye profile ``[Z, X]`` float32 in [0, 1] (119 x 63 by default; row 0 = far end, column 0 = x min):
    the fraction of the ``y_samples`` heights of each cell whose density is below the threshold. Points outside
    the view's frustum count as dense (sigma set to 1, as the reference)."""
    xs, zs = _axis(settings.x_range, settings.ppm), _axis(settings.z_range, settings.ppm)
    ys = np.linspace(*settings.y_range, settings.y_samples, dtype=np.float32)
    z, y, x = np.meshgrid(zs, ys, xs, indexing="ij")  # [Z, Y, X]
    points = _to_camera(np.stack([x, y, z], axis=-1).reshape(-1, 3))
    sigma, invalid = query_density(network, image, K, points, device, batch_points)
    sigma = np.where(invalid, np.float32(1.0), sigma).reshape(z.shape)
    return (sigma < settings.density_threshold).mean(axis=1).astype(np.float32)


def occupancy_voxels(network: torch.nn.Module, image: torch.Tensor, K: torch.Tensor, device: torch.device,
                     settings: VoxelSettings = VoxelSettings(),
                     batch_points: int = 50000) -> tuple[np.ndarray, np.ndarray, float]:
    """Occupied voxels of the demo grid.

    Returns occupied ``[X-1, Y-1, Z-1]`` bool (density averaged over each 2x2x2 block of grid points, > the
    threshold), centres ``[X-1, Y-1, Z-1, 3]`` float32 in the inclination-corrected camera frame (m; the mean of
    the block's corner points) and the cube edge length (m, the grid spacing 1/ppm).
    """
    xs, zs = _axis(settings.x_range, settings.ppm), _axis(settings.z_range, settings.ppm)
    ys = np.linspace(*settings.y_range, settings.y_points, dtype=np.float32)
    grid = np.stack(np.meshgrid(xs, ys, zs, indexing="ij"), axis=-1)  # [X, Y, Z, 3]
    sigma, _ = query_density(network, image, K, _to_camera(grid.reshape(-1, 3)), device, batch_points)
    pooled = F.avg_pool3d(torch.from_numpy(sigma.reshape(1, 1, *grid.shape[:3])), kernel_size=2, stride=1)[0, 0]
    centres = F.avg_pool3d(torch.from_numpy(grid).permute(3, 0, 1, 2)[None], kernel_size=2, stride=1)[0]
    return (pooled.numpy() > settings.occ_threshold), centres.permute(1, 2, 3, 0).numpy(), 1.0 / settings.ppm


# Unit cube corners (x, y, z in {0, 1}) and its 6 quads (counter-clockwise seen from outside).
_CORNERS = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float32) - 0.5
_QUADS = np.array([[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]],
                  dtype=np.int32)


def colorize(values: np.ndarray, cmap: str = "magma") -> np.ndarray:
    """``[...]`` floats in [0, 1] -> ``[..., 3]`` uint8 RGB through a matplotlib colour map (NaN -> 0)."""
    from matplotlib import colormaps

    table = (colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    index = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)) * 255, 0, 255).round().astype(np.int64)
    return table[index]


def voxel_mesh(centres: np.ndarray, size: float, cmap: str = "magma") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cube mesh of voxels: centres ``[N,3]`` (m, y down) -> vertices ``[8N,3]`` float32, faces ``[6N,4]`` int32
    (vertex indices) and vertex colours ``[8N,3]`` uint8 RGB by height (-y, min-max over the voxels, magma)."""
    centres = np.asarray(centres, dtype=np.float32).reshape(-1, 3)
    vertices = (centres[:, None, :] + _CORNERS[None] * np.float32(size)).reshape(-1, 3)
    faces = (_QUADS[None] + 8 * np.arange(len(centres), dtype=np.int32)[:, None, None]).reshape(-1, 4)
    height = -centres[:, 1]
    span = float(height.max() - height.min()) if len(centres) else 0.0
    level = (height - height.min()) / span if span > 0 else np.zeros_like(height)
    colours = np.repeat(colorize(level, cmap), 8, axis=0) if len(centres) else np.zeros((0, 3), np.uint8)
    return vertices, faces, colours


def write_voxel_ply(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray,
                    binary: bool = True) -> Path:
    """Write a PLY mesh: vertex (float x, y, z; uchar red, green, blue) and face (uchar count, int indices).

    vertices ``[V,3]`` float, faces ``[F,k]`` int (all faces of one size k), colours ``[V,3]`` uint8. Binary
    little endian by default, ASCII with ``binary=False``. Written atomically.
    """
    vertices = np.asarray(vertices, dtype="<f4").reshape(-1, 3)
    colours = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    faces = np.asarray(faces, dtype="<i4")
    if faces.ndim != 2 or len(vertices) != len(colours):
        raise ValueError(f"write_voxel_ply {path}: faces must be [F,k] and colours [V,3] with V = {len(vertices)}")
    header = ("ply\nformat {} 1.0\ncomment vipocc voxelised occupancy\nelement vertex {}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\n"
              "element face {}\nproperty list uchar int vertex_indices\nend_header\n").format(
        "binary_little_endian" if binary else "ascii", len(vertices), len(faces))
    if binary:
        vertex_dtype = np.dtype([("xyz", "<f4", 3), ("rgb", "u1", 3)])
        vertex_rows = np.empty(len(vertices), dtype=vertex_dtype)
        vertex_rows["xyz"], vertex_rows["rgb"] = vertices, colours
        face_dtype = np.dtype([("n", "u1"), ("idx", "<i4", faces.shape[1])])
        face_rows = np.empty(len(faces), dtype=face_dtype)
        face_rows["n"], face_rows["idx"] = faces.shape[1], faces
        body = vertex_rows.tobytes() + face_rows.tobytes()
    else:
        vertex_text = "".join(f"{x:.6f} {y:.6f} {z:.6f} {r} {g} {b}\n"
                              for (x, y, z), (r, g, b) in zip(vertices.tolist(), colours.tolist()))
        face_text = "".join(f"{len(f)} {' '.join(map(str, f))}\n" for f in faces.tolist())
        body = (vertex_text + face_text).encode()
    write_bytes(path, header.encode() + body)
    return Path(path)


def read_ply_header(path: str | os.PathLike) -> dict[str, object]:
    """Format and element counts of a PLY file (``{"format": ..., "vertex": n, "face": m, "header_bytes": b}``)."""
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError(f"{path}: not a PLY file (no 'ply' magic or no end_header)")
    info: dict[str, object] = {"header_bytes": end + len(b"end_header\n")}
    for line in data[:end].decode("ascii").splitlines():
        words = line.split()
        if words[:1] == ["format"]:
            info["format"] = words[1]
        elif words[:1] == ["element"]:
            info[words[1]] = int(words[2])
    return info


def inverse_depth_image(depth: np.ndarray) -> np.ndarray:
    """``[H,W]`` depth (m) -> ``[H,W,3]`` uint8 RGB of 1/depth, min-max normalised, magma (the reference's
    disparity pictures). Non-positive or non-finite depths map to the lowest colour."""
    depth = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    inverse = np.where(valid, 1.0 / np.where(valid, depth, 1.0), np.nan)
    if not valid.any():
        return colorize(np.zeros(depth.shape))
    low, high = np.nanmin(inverse), np.nanmax(inverse)
    scaled = (inverse - low) / (high - low) if high > low else np.zeros_like(inverse)
    return colorize(scaled)


def _save_rgb(path: Path, rgb: np.ndarray) -> Path:
    write_png(path, np.ascontiguousarray(rgb[..., ::-1]))  # cv2 writes BGR
    return path


def render_demo_frame(network: torch.nn.Module, image: torch.Tensor, K: torch.Tensor, prior: torch.Tensor | None,
                      out_dir: str | os.PathLike, stem: str, device: torch.device, *,
                      density_threshold: float = 0.6, pixel_convention: str = "linspace",
                      batch_points: int = 50000) -> dict[str, str]:
    """Write the demo files of one frame (module docstring) under ``out_dir``, named ``<stem>_<what>``.

    image ``[1,3,H,W]`` in [-1, 1]; K ``[1,3,3]`` normalised; prior ``[1,1,H,W]`` pseudo depth (m) or None (then
    no ``_disp_pseudo.png``, and no ``_disp_p.png`` when the depth branch needs it). Returns {what: path}.
    """
    from vipocc.evaluation.depth import DepthFrame, network_needs_prior, predict_depth_map

    out = Path(out_dir)
    files: dict[str, Path] = {}
    rgb = ((image[0].permute(1, 2, 0).float().cpu().numpy() * 0.5 + 0.5).clip(0, 1) * 255).round()
    files["rgb"] = _save_rgb(out / f"{stem}_rgb.png", rgb.astype(np.uint8))
    frame = DepthFrame(seq="", frame=0, is_right=False, image=image, K=K, gt=np.zeros((1, 1), np.float32), prior=prior)
    rendered = predict_depth_map(network, frame, "rendered", device, pixel_convention)
    files["disp_r"] = _save_rgb(out / f"{stem}_disp_r.png", inverse_depth_image(rendered))
    if getattr(network, "depth_branch", None) is not None and (prior is not None or not network_needs_prior(network)):
        predicted = predict_depth_map(network, frame, "predicted", device)
        files["disp_p"] = _save_rgb(out / f"{stem}_disp_p.png", inverse_depth_image(predicted))
    if prior is not None:
        pseudo = prior.float().cpu().numpy().reshape(prior.shape[-2:])
        files["disp_pseudo"] = _save_rgb(out / f"{stem}_disp_pseudo.png", inverse_depth_image(pseudo))
    profile = bev_profile(network, image, K, device, BevSettings(density_threshold=density_threshold), batch_points)
    files["bev"] = _save_rgb(out / f"{stem}_bev.png", colorize(profile))
    occupied, centres, size = occupancy_voxels(network, image, K, device, batch_points=batch_points)
    files["voxel"] = write_voxel_ply(out / f"{stem}_voxel.ply", *voxel_mesh(centres[occupied], size))
    return {key: str(path) for key, path in files.items()}
