"""Camera models: rectified pinhole and the MEI (unified omnidirectional) model of the KITTI-360 fisheyes.

Conventions
-----------
* Camera frame: x right, y down, z forward (OpenCV). Units: metres for points, pixels for ``uv``.
* Pixel convention (OpenCV/KITTI): pixel (col i, row j) has its centre at (u, v) = (i, j); an image of
  width W covers u in [-0.5, W - 0.5).
* Pixel grids are flattened row-major: flat index = j * W + i.

The MEI projection reproduces kitti360scripts ``CameraFisheye.cam2image`` exactly: the point is put on the
unit sphere, divided by (z + xi), distorted radially by (1 + k1 r^2 + k2 r^4) with r^2 = x^2 + y^2, then mapped
by gamma1/gamma2/u0/v0. The tangential terms p1, p2 are stored but ignored, as the devkit and ViPOcc do.

Lens domain: for xi > 1 the MEI map from the sphere is injective only for z_unit > -1/xi (the normalised
radius rho = sin(t) / (cos(t) + xi) peaks there at rho = 1/sqrt(xi^2 - 1)); the radial distortion is
injective up to the first zero of its derivative. Directions beyond either limit, and pixels whose distorted
radius lies beyond the image of that limit, are invalid.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = [
    "project_pinhole",
    "pinhole_ray_dirs",
    "pixel_grid",
    "MEIParams",
    "project_mei",
    "unproject_mei",
    "mei_ray_dirs",
    "mei_domain",
    "scaled_image_size",
]


def _points_n3(points: np.ndarray, name: str) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"{name}: expected shape [N,3], got {pts.shape}")
    return pts


def _check_K(K: np.ndarray) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"K: expected shape [3,3], got {K.shape}")
    if not np.allclose(K[2], (0.0, 0.0, 1.0)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"K: not a pinhole intrinsic matrix (positive focal lengths, last row 0 0 1): {K.tolist()}")
    return K


def pixel_grid(width: int, height: int) -> np.ndarray:
    """Pixel-centre coordinates [H*W, 2] (u, v) = (i, j), row-major."""
    if int(width) != width or int(height) != height or width <= 0 or height <= 0:
        raise ValueError(f"width/height: expected positive integers, got {width}x{height}")
    jj, ii = np.meshgrid(np.arange(int(height), dtype=np.float64), np.arange(int(width), dtype=np.float64),
                         indexing="ij")
    return np.stack([ii.ravel(), jj.ravel()], axis=1)


def project_pinhole(points_cam: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project camera-frame points [N,3] (m) with intrinsics K [3,3].

    Returns ``uv`` [N,2] (px) and depth ``z`` [N] (m, along the optical axis). ``uv`` is NaN where z <= 0
    (a point behind the camera has no image; mirrored projections must not leak into callers).
    """
    pts = _points_n3(points_cam, "points_cam")
    K = _check_K(K)
    z = pts[:, 2].copy()
    in_front = z > 0
    uvw = pts @ K.T
    uv = np.full((pts.shape[0], 2), np.nan)
    uv[in_front] = uvw[in_front, :2] / uvw[in_front, 2:3]
    return uv, z


def pinhole_ray_dirs(K: np.ndarray, width: int, height: int) -> np.ndarray:
    """Unit ray directions [H*W,3] (camera frame) through every pixel centre, row-major."""
    K = _check_K(K)
    uv = pixel_grid(width, height)
    homog = np.concatenate([uv, np.ones((uv.shape[0], 1))], axis=1)
    dirs = homog @ np.linalg.inv(K).T
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class MEIParams:
    """MEI fisheye calibration (KITTI-360 ``image_0X.yaml``). gamma/u0/v0 in px, size in px."""

    xi: float
    k1: float
    k2: float
    p1: float
    p2: float
    gamma1: float
    gamma2: float
    u0: float
    v0: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not math.isfinite(value):
                raise ValueError(f"MEIParams.{field.name}: must be finite, got {value}")
        if self.xi < 0:
            raise ValueError(f"MEIParams.xi: must be >= 0, got {self.xi}")
        if self.gamma1 <= 0 or self.gamma2 <= 0:
            raise ValueError(f"MEIParams.gamma1/gamma2: must be > 0, got {self.gamma1}, {self.gamma2}")
        if int(self.width) != self.width or int(self.height) != self.height or self.width <= 0 or self.height <= 0:
            raise ValueError(f"MEIParams.width/height: expected positive integers, got {self.width}x{self.height}")

    def scaled(self, s: float) -> "MEIParams":
        """Parameters of the same lens on an image resized by factor ``s`` (pixel-centre convention).

        gamma' = s gamma, c' = s (c + 0.5) - 0.5; the new size round(s W) x round(s H) must be exact.
        """
        width, height = scaled_image_size(self.width, s, "width"), scaled_image_size(self.height, s, "height")
        return dataclasses.replace(
            self, gamma1=s * self.gamma1, gamma2=s * self.gamma2,
            u0=s * (self.u0 + 0.5) - 0.5, v0=s * (self.v0 + 0.5) - 0.5, width=width, height=height)


def scaled_image_size(size: int, s: float, name: str = "size") -> int:
    """round(s * size), requiring it to be an exact integer (else intrinsics and pixels disagree)."""
    if not (s > 0 and math.isfinite(s)):
        raise ValueError(f"resolution scale: must be positive and finite, got {s}")
    scaled = s * size
    out = int(round(scaled))
    if abs(scaled - out) > 1e-9 or out <= 0:
        raise ValueError(f"resolution scale {s}: {name} {size} * {s} = {scaled} is not a positive integer")
    return out


def _distort(rho: np.ndarray, p: MEIParams) -> np.ndarray:
    r2 = rho * rho
    return rho * (1.0 + p.k1 * r2 + p.k2 * r2 * r2)


def _distort_deriv(rho: np.ndarray, p: MEIParams) -> np.ndarray:
    r2 = rho * rho
    return 1.0 + 3.0 * p.k1 * r2 + 5.0 * p.k2 * r2 * r2


def mei_domain(p: MEIParams) -> tuple[float, float, float]:
    """Limits of the injective part of the model.

    Returns ``(z_min, rho_lim, rho_d_lim)``: unit-sphere z must exceed ``z_min``; the undistorted normalised
    radius must stay below ``rho_lim`` and the distorted one below ``rho_d_lim`` (inf when unbounded).
    """
    xi = p.xi
    # z_unit > -xi keeps z + xi > 0; for xi > 1 the sphere->plane map folds back at z_unit = -1/xi.
    z_min = -min(xi, 1.0 / xi) if xi > 0 else 0.0
    rho_mei = 1.0 / math.sqrt(xi * xi - 1.0) if xi > 1.0 else math.inf
    # First positive zero of d/drho [rho (1 + k1 rho^2 + k2 rho^4)] = 1 + 3 k1 q + 5 k2 q^2, q = rho^2.
    q_roots = np.roots([5.0 * p.k2, 3.0 * p.k1, 1.0]) if (p.k2 != 0 or p.k1 != 0) else np.array([])
    q_pos = [q.real for q in np.atleast_1d(q_roots) if abs(q.imag) < 1e-12 and q.real > 0]
    rho_dist = math.sqrt(min(q_pos)) if q_pos else math.inf
    rho_lim = min(rho_mei, rho_dist)
    rho_d_lim = float(_distort(np.array(rho_lim), p)) if math.isfinite(rho_lim) else math.inf
    return z_min, rho_lim, rho_d_lim


def project_mei(points_cam: np.ndarray, p: MEIParams) -> tuple[np.ndarray, np.ndarray]:
    """Project fisheye-camera-frame points [N,3] with the MEI model (kitti360scripts math).

    Returns ``uv`` [N,2] (px) and ``valid`` [N] bool: the point is in the injective lens domain and its
    pixel lies inside the image ([-0.5, W-0.5) x [-0.5, H-0.5)). ``uv`` is NaN for the zero vector and
    otherwise computed even where not valid.
    """
    pts = _points_n3(points_cam, "points_cam")
    norm = np.linalg.norm(pts, axis=1)
    nonzero = norm > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = pts / norm[:, None]
        denom = unit[:, 2] + p.xi
        x = unit[:, 0] / denom
        y = unit[:, 1] / denom
    ro2 = x * x + y * y
    radial = 1.0 + p.k1 * ro2 + p.k2 * ro2 * ro2
    uv = np.stack([p.gamma1 * (x * radial) + p.u0, p.gamma2 * (y * radial) + p.v0], axis=1)
    uv[~nonzero] = np.nan
    z_min, rho_lim, _ = mei_domain(p)
    with np.errstate(invalid="ignore"):
        in_domain = nonzero & (unit[:, 2] > z_min) & (np.sqrt(ro2) < rho_lim)
        in_image = ((uv[:, 0] >= -0.5) & (uv[:, 0] < p.width - 0.5)
                    & (uv[:, 1] >= -0.5) & (uv[:, 1] < p.height - 0.5))
    return uv, in_domain & in_image


def _invert_distortion(rho_d: np.ndarray, p: MEIParams, rho_hi: float) -> np.ndarray:
    """Solve rho (1 + k1 rho^2 + k2 rho^4) = rho_d for rho in [0, rho_hi] (safeguarded Newton)."""
    lo = np.zeros_like(rho_d)
    if math.isfinite(rho_hi):
        hi = np.full_like(rho_d, rho_hi)
    else:
        hi = np.maximum(rho_d, 1.0)
        for _ in range(200):  # doubling until f(hi) >= rho_d; f grows without bound here
            short = _distort(hi, p) < rho_d
            if not short.any():
                break
            hi = np.where(short, 2.0 * hi, hi)
    rho = np.clip(rho_d / (1.0 + p.k1 * rho_d**2 + p.k2 * rho_d**4), lo, hi)
    for _ in range(100):
        residual = _distort(rho, p) - rho_d
        lo = np.where(residual < 0, rho, lo)
        hi = np.where(residual > 0, rho, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = rho - residual / _distort_deriv(rho, p)
        # Fall back to bisection whenever Newton leaves the bracket (flat derivative near the domain edge).
        inside = (newton >= lo) & (newton <= hi)
        new_rho = np.where(residual == 0, rho, np.where(inside, newton, 0.5 * (lo + hi)))
        step = np.abs(new_rho - rho)
        rho = new_rho
        if not np.any(step > 1e-15 * rho):
            break
    return rho


def unproject_mei(uv: np.ndarray, p: MEIParams) -> tuple[np.ndarray, np.ndarray]:
    """Exact inverse of :func:`project_mei` for pixel coordinates ``uv`` [N,2] (px).

    Returns unit directions [N,3] in the fisheye camera frame and ``valid`` [N] (inside the lens domain,
    regardless of the image rectangle). Invalid rows are NaN.
    """
    uv = np.asarray(uv, dtype=np.float64)
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise ValueError(f"uv: expected shape [N,2], got {uv.shape}")
    _, rho_lim, rho_d_lim = mei_domain(p)
    mdx = (uv[:, 0] - p.u0) / p.gamma1
    mdy = (uv[:, 1] - p.v0) / p.gamma2
    rho_d = np.hypot(mdx, mdy)
    valid = np.isfinite(rho_d) & (rho_d < rho_d_lim)
    rho = np.full_like(rho_d, np.nan)
    rho[valid] = _invert_distortion(rho_d[valid], p, rho_lim)
    with np.errstate(invalid="ignore", divide="ignore"):
        shrink = np.where(rho_d > 0, rho / rho_d, 1.0)
    mx, my = mdx * shrink, mdy * shrink
    r2 = rho * rho
    # Closed-form lift of the normalised point (mx, my) onto the unit sphere (root with z_unit > -1/xi).
    with np.errstate(invalid="ignore"):
        lam = (p.xi + np.sqrt(np.maximum(1.0 + (1.0 - p.xi * p.xi) * r2, 0.0))) / (1.0 + r2)
    dirs = np.stack([lam * mx, lam * my, lam - p.xi], axis=1)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    dirs[~valid] = np.nan
    return dirs, valid


def mei_ray_dirs(p: MEIParams) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions [H*W,3] through every pixel centre (row-major) and the lens-domain mask [H*W]."""
    return unproject_mei(pixel_grid(p.width, p.height), p)
