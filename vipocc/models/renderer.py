"""NeRF-style volume rendering of a density field along camera rays (the reference ``NeRFRenderer``, coarse only).

Rays have unit directions, so sample positions and the rendered depth are Euclidean distances along the ray (m);
``distance_to_z`` converts them to camera z-depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from vipocc.models.density_field import RenderViews

__all__ = [
    "Composite",
    "DensityFieldLike",
    "RenderOutput",
    "composite",
    "distance_to_z",
    "render_rays",
    "stratified_depths",
    "LAST_DELTA",
]

# Length given to the last sample's interval: "infinite", so that sample absorbs whatever light is left.
LAST_DELTA = 1e10


def stratified_depths(
    n_rays: int,
    n_samples: int = 64,
    near: float = 3.0,
    far: float = 80.0,
    lindisp: bool = True,
    generator: torch.Generator | None = None,
    jitter: bool = True,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Stratified sample distances ``[n_rays, n_samples]`` (m), increasing along each ray.

    ``t_k = (k + u_k) / K`` with ``u_k ~ U(0,1)`` drawn from ``generator`` (``u_k = 0.5``, bin centres, if
    ``jitter`` is False). With ``lindisp`` the distance is linear in disparity,
    ``z = 1 / ((1 - t)/near + t/far)`` (the reference setting; z spans about [3.0, 78.7] m for 64 samples),
    otherwise linear in depth, ``z = near (1 - t) + far t``.
    """
    if n_rays < 0 or n_samples < 1:
        raise ValueError(f"n_rays={n_rays!r}, n_samples={n_samples!r}: need n_rays >= 0, n_samples >= 1")
    if not 0 < near < far:
        raise ValueError(f"near={near!r}, far={far!r}: need 0 < near < far")
    k = torch.arange(n_samples, device=device, dtype=dtype)
    if jitter:
        noise_device = generator.device if generator is not None else device
        u = torch.rand((n_rays, n_samples), generator=generator, device=noise_device, dtype=dtype).to(k.device)
    else:
        u = torch.full((n_rays, n_samples), 0.5, device=device, dtype=dtype)
    t = (k + u) / n_samples
    if lindisp:
        return 1.0 / ((1.0 - t) / near + t / far)
    return near * (1.0 - t) + far * t


@dataclass
class Composite:
    """Alpha-compositing result. ``weights``/``alphas`` ``[..., K]``; ``depth`` ``[...]``; ``rgb`` ``[..., *C]``."""

    weights: torch.Tensor
    alphas: torch.Tensor
    depth: torch.Tensor
    rgb: torch.Tensor | None


def composite(
    sigma: torch.Tensor,
    depths: torch.Tensor,
    colors: torch.Tensor | None = None,
    hard_alpha_cap: bool = True,
) -> Composite:
    """Alpha-composite samples along rays.

    sigma ``[..., K]`` (1/m), depths ``[..., K]`` (m, increasing), colors ``[..., K, *C]`` (any trailing shape,
    e.g. ``[V,3]`` per render view) or None.

    ``delta_k = z_{k+1} - z_k`` (``delta_last = 1e10``), ``alpha_k = 1 - exp(-|delta_k| relu(sigma_k))``, the last
    alpha forced to 1 with ``hard_alpha_cap`` (every ray terminates, weights sum to 1),
    ``T_k = prod_{j<k} (1 - alpha_j + 1e-10)``, ``w_k = alpha_k T_k``; ``depth = sum_k w_k z_k`` (expected
    distance) and ``rgb = sum_k w_k c_k``.
    """
    if sigma.shape != depths.shape:
        raise ValueError(f"sigma {tuple(sigma.shape)} and depths {tuple(depths.shape)} must have the same shape")
    deltas = torch.cat((depths[..., 1:] - depths[..., :-1], torch.full_like(depths[..., :1], LAST_DELTA)), dim=-1)
    alphas = 1.0 - torch.exp(-deltas.abs() * torch.relu(sigma))
    if hard_alpha_cap:
        alphas = torch.cat((alphas[..., :-1], torch.ones_like(alphas[..., -1:])), dim=-1)
    transmittance = torch.cumprod(1.0 - alphas + 1e-10, dim=-1)
    transmittance = torch.cat((torch.ones_like(transmittance[..., :1]), transmittance[..., :-1]), dim=-1)
    weights = alphas * transmittance
    depth = (weights * depths).sum(dim=-1)
    rgb = None
    if colors is not None:
        if colors.shape[: sigma.ndim] != sigma.shape:
            raise ValueError(f"colors {tuple(colors.shape)} must start with the sigma shape {tuple(sigma.shape)}")
        extra = colors.ndim - sigma.ndim
        rgb = (weights.reshape(weights.shape + (1,) * extra) * colors).sum(dim=sigma.ndim - 1)
    return Composite(weights=weights, alphas=alphas, depth=depth, rgb=rgb)


def distance_to_z(distance: torch.Tensor, ray_dirs_cam: torch.Tensor) -> torch.Tensor:
    """Distance along a ray -> camera z-depth: ``z = distance * d_z / |d|``.

    distance ``[...]`` (m); ray_dirs_cam ``[..., 3]`` ray directions in the camera frame (any length; for pixel
    ``(x, y)`` in normalised coordinates it is ``K_norm^-1 [x, y, 1]``).
    """
    if ray_dirs_cam.shape[:-1] != distance.shape or ray_dirs_cam.shape[-1] != 3:
        raise ValueError(
            f"ray_dirs_cam {tuple(ray_dirs_cam.shape)} must be distance's shape {tuple(distance.shape)} + (3,)"
        )
    return distance * ray_dirs_cam[..., 2] / ray_dirs_cam.norm(dim=-1)


class DensityFieldLike(Protocol):
    """What ``render_rays`` needs from a field (``DensityField`` satisfies it)."""

    def density(self, points_world: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def sample_colors(
        self, points_world: torch.Tensor, images: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class RenderOutput:
    """Per-ray rendering results for B batch elements x R rays x K samples (x V render views).

    depth ``[B,R]`` expected distance (m); weights, alphas, z_samples ``[B,R,K]``; invalid_features ``[B,R,K]``;
    with render views also rgb ``[B,R,V,3]``, rgb_samples ``[B,R,K,V,3]`` and invalid ``[B,R,K,V]``
    (sample outside the key view OR outside render view v).
    """

    depth: torch.Tensor
    weights: torch.Tensor
    alphas: torch.Tensor
    z_samples: torch.Tensor
    invalid_features: torch.Tensor
    rgb: torch.Tensor | None = None
    rgb_samples: torch.Tensor | None = None
    invalid: torch.Tensor | None = None


def render_rays(
    field: DensityFieldLike,
    rays_o: torch.Tensor,
    rays_d: torch.Tensor,
    render_views: RenderViews | None = None,
    n_samples: int = 64,
    near: float = 3.0,
    far: float = 80.0,
    lindisp: bool = True,
    jitter: bool = True,
    generator: torch.Generator | None = None,
    chunk_size: int = 100_000,
    hard_alpha_cap: bool = True,
) -> RenderOutput:
    """Render rays through an encoded field.

    rays_o ``[B,R,3]`` origins and rays_d ``[B,R,3]`` directions in the world frame (directions are normalised
    here, so depths are distances). Samples come from ``stratified_depths``; the field is evaluated on at most
    ``chunk_size`` points per call (summed over the batch) to bound peak memory. Colours are sampled only when
    ``render_views`` is given. For a reproducible evaluation pass a ``torch.Generator`` with a fixed seed, or
    ``jitter=False`` for fixed bin-centre samples.
    """
    if rays_o.ndim != 3 or rays_o.shape[-1] != 3 or rays_d.shape != rays_o.shape:
        raise ValueError(f"rays_o {tuple(rays_o.shape)} and rays_d {tuple(rays_d.shape)} must both be [B,R,3]")
    if chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r}: must be >= 1")
    batch, n_rays, _ = rays_o.shape
    directions = F.normalize(rays_d, dim=-1)
    z_samples = stratified_depths(
        batch * n_rays, n_samples, near, far, lindisp, generator, jitter, rays_o.device, rays_o.dtype
    ).reshape(batch, n_rays, n_samples)
    points = (rays_o.unsqueeze(2) + z_samples.unsqueeze(-1) * directions.unsqueeze(2)).reshape(batch, -1, 3)

    per_chunk = max(1, chunk_size // max(batch, 1))
    sigmas, invalid_f, colours, invalid_c = [], [], [], []
    for chunk in torch.split(points, per_chunk, dim=1):
        sigma, invalid = field.density(chunk)
        sigmas.append(sigma)
        invalid_f.append(invalid)
        if render_views is not None:
            rgb, invalid_rgb = field.sample_colors(chunk, render_views.images, render_views.K, render_views.w2c)
            colours.append(rgb)
            invalid_c.append(invalid_rgb)
    sigma = torch.cat(sigmas, dim=1).reshape(batch, n_rays, n_samples)
    invalid_features = torch.cat(invalid_f, dim=1).reshape(batch, n_rays, n_samples)

    rgb_samples = invalid = None
    if render_views is not None:
        n_views = render_views.images.shape[1]
        rgb_samples = torch.cat(colours, dim=1).reshape(batch, n_rays, n_samples, n_views, -1)
        invalid_views = torch.cat(invalid_c, dim=1).reshape(batch, n_rays, n_samples, n_views)
        invalid = invalid_views | invalid_features.unsqueeze(-1)
    result = composite(sigma, z_samples, rgb_samples, hard_alpha_cap)
    return RenderOutput(
        depth=result.depth,
        weights=result.weights,
        alphas=result.alphas,
        z_samples=z_samples,
        invalid_features=invalid_features,
        rgb=result.rgb,
        rgb_samples=rgb_samples,
        invalid=invalid,
    )
