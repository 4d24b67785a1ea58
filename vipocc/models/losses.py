"""BTS / ViPOcc training losses (reference ``models/vipocc/model/loss.py::ReconstructionLoss``), pure torch.

Terms (names used by :func:`total_loss`):

* ``rgb``: photometric reconstruction L_ph on 8x8 patches, ``e = 0.85 mean_c(clamp(1 - SSIM, 0, 1)/2) +
  0.15 mean_c |I^ - I|`` per pixel and render view, minimum over render views, ``weight_guided`` invalid rays
  dropped (as zeros in the mean). The reference counts it twice (coarse + a copied "fine" pass):
  ``total_loss(count_twice=True)``, the default, keeps those numbers; ``count_twice=False`` counts it once.
* ``depth_recon``: depth reconstruction consistency L_rc between the aligned depth and the rendered z-depth
  (weight 0.005).
* ``temp_align``: temporal alignment L_ta (warp t+1 into t; weight 0.01).
* ``edge_smooth``: optional BTS edge-aware smoothness of mean-normalised inverse rendered depth (BTS weight 0.001).

SSIM window: the reference hard-codes ``[[.0947,.1183,.0947],[.1183,.1478,.1183],[.0947,.1183,.0947]]``, which is
a normalised 3x3 Gaussian ``w(dx,dy) ∝ exp(-(dx²+dy²)/(2σ²))``: the edge/centre ratio 0.1183/0.1478 = 0.8004 =
exp(-1/(2σ²)) gives σ = 1.4986 ≈ 1.5 px. Here the window is computed exactly for σ = 1.5 (0.09474 / 0.11832 /
0.14776, sum 1); the reference's 4-decimal rounding sums to 0.9998 (SSIM values differ by ~1e-4 at most).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from vipocc.models.warp import WarpConvention, warp_to_target

__all__ = [
    "SSIM_C1",
    "SSIM_C2",
    "SSIM_SIGMA",
    "REFERENCE_SSIM_WINDOW",
    "DEFAULT_MIN_VALID_FRACTION",
    "VIPOCC_WEIGHTS",
    "BTS_WEIGHTS",
    "gaussian_window",
    "ssim",
    "photometric_error",
    "patch_photometric_error",
    "ray_invalid_mask",
    "PhotometricLoss",
    "photometric_loss",
    "depth_reconstruction_loss",
    "masked_mean",
    "TemporalAlignment",
    "temporal_alignment_loss",
    "edge_aware_smoothness",
    "total_loss",
]

SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2
SSIM_SIGMA = 1.5  # px, the Gaussian behind the reference's 3x3 window (see module doc)
REFERENCE_SSIM_WINDOW = ((0.0947, 0.1183, 0.0947), (0.1183, 0.1478, 0.1183), (0.0947, 0.1183, 0.0947))
SSIM_WEIGHT = 0.85  # share of the SSIM term in the photometric error; L1 gets the rest
INVALID_MASS_THRESHOLD = 0.9  # weight_guided: a view is invalid for a ray above this invalid weight mass

# Reference: each temporal mean is dropped (set to 0) unless it has > 10,000 valid elements, counted over the whole
# batch; the image term counts 3 channels per pixel. As a fraction of one image's element count (3 H W for the image
# term, H W for the depth term) the threshold scales with the image size and equals 10,000 at 192x640.
DEFAULT_MIN_VALID_FRACTION = (10_000 / (192 * 640 * 3), 10_000 / (192 * 640))

VIPOCC_WEIGHTS: dict[str, float] = {"rgb": 1.0, "depth_recon": 0.005, "temp_align": 0.01}
BTS_WEIGHTS: dict[str, float] = {"rgb": 1.0, "edge_smooth": 0.001}

InvalidPolicy = Literal["weight_guided", "strict", "none"]


# ----------------------------------------------------------------------------------------------------- SSIM


def gaussian_window(
    sigma: float = SSIM_SIGMA, size: int = 3, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> torch.Tensor:
    """Normalised 2D Gaussian window ``[size,size]`` (sums to 1); ``sigma`` in pixels."""
    if sigma <= 0 or size < 1 or size % 2 == 0:
        raise ValueError(f"sigma={sigma!r}, size={size!r}: need sigma > 0 and an odd size")
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(offsets**2) / (2.0 * sigma**2))
    window = torch.outer(g, g)
    return (window / window.sum()).to(dtype=dtype, device=device)


def ssim(
    x: torch.Tensor, y: torch.Tensor, window: torch.Tensor | None = None, c1: float = SSIM_C1, c2: float = SSIM_C2
) -> torch.Tensor:
    """SSIM map of two images ``[N,C,h,w]`` -> ``[N,C,h,w]`` (per channel).

    Local statistics use the (default Gaussian, σ = 1.5) window with zero padding of each image (each 8x8 patch
    is padded on its own, as the reference),
    ``SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))``.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"x {tuple(x.shape)} and y {tuple(y.shape)}: expected equal shapes [N,C,h,w]")
    if window is None:
        window = gaussian_window(dtype=x.dtype, device=x.device)
    channels = x.shape[1]
    # One depthwise convolution for all five local means (fewer kernel launches for thousands of 8x8 patches).
    stacked = torch.cat((x, y, x * x, y * y, x * y), dim=1)
    kernel = window.to(dtype=x.dtype, device=x.device).expand(5 * channels, 1, -1, -1)
    means = F.conv2d(stacked, kernel, padding=window.shape[-1] // 2, groups=5 * channels)
    mu_x, mu_y, mean_xx, mean_yy, mean_xy = means.split(channels, dim=1)
    var_x = mean_xx - mu_x**2
    var_y = mean_yy - mu_y**2
    cov_xy = mean_xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return numerator / denominator


# ------------------------------------------------------------------------------------------------- photometric


def photometric_error(pred: torch.Tensor, target: torch.Tensor, window: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel l1+ssim error ``[N,C,h,w] x2 -> [N,h,w]``:
    ``0.85 mean_c(clamp(1 - SSIM, 0, 1) / 2) + 0.15 mean_c |pred - target|``."""
    dssim = torch.clamp(1.0 - ssim(pred, target, window), 0.0, 1.0) / 2.0
    return SSIM_WEIGHT * dssim.mean(dim=1) + (1.0 - SSIM_WEIGHT) * (pred - target).abs().mean(dim=1)


def patch_photometric_error(
    rgb_patches: torch.Tensor, gt_patches: torch.Tensor, window: torch.Tensor | None = None
) -> torch.Tensor:
    """rgb_patches ``[B,P,ps,ps,V,3]`` rendered colours per render view, gt_patches ``[B,P,ps,ps,3]`` targets ->
    error ``[B,P,ps,ps,V]`` (SSIM computed inside each patch)."""
    if rgb_patches.ndim != 6 or gt_patches.shape != rgb_patches.shape[:4] + rgb_patches.shape[5:]:
        raise ValueError(
            f"rgb_patches {tuple(rgb_patches.shape)} / gt_patches {tuple(gt_patches.shape)}: "
            "expected [B,P,ps,ps,V,C] and [B,P,ps,ps,C]"
        )
    b, p, h, w, v, c = rgb_patches.shape
    pred = rgb_patches.permute(0, 1, 4, 5, 2, 3).reshape(b * p * v, c, h, w)
    target = gt_patches.unsqueeze(4).expand(-1, -1, -1, -1, v, -1).permute(0, 1, 4, 5, 2, 3).reshape(b * p * v, c, h, w)
    error = photometric_error(pred, target, window)
    return error.reshape(b, p, v, h, w).permute(0, 1, 3, 4, 2)


def ray_invalid_mask(
    weights: torch.Tensor, invalid: torch.Tensor, policy: InvalidPolicy = "weight_guided"
) -> torch.Tensor:
    """Which rays to drop: weights ``[B,R,K]`` compositing weights, invalid ``[B,R,K,V]`` per sample and render
    view -> ``[B,R]`` bool.

    ``weight_guided``: view v is invalid for a ray if ``sum_k w_k invalid_kv > 0.9``; the ray is dropped only if
    every view is invalid. ``strict``: dropped if every view has at least one invalid sample. ``none``: nothing.
    """
    if invalid.ndim != 4 or weights.shape != invalid.shape[:3]:
        raise ValueError(
            f"weights {tuple(weights.shape)} / invalid {tuple(invalid.shape)}: expected [B,R,K] / [B,R,K,V]"
        )
    if policy == "weight_guided":
        invalid_mass = (invalid.to(weights.dtype) * weights.unsqueeze(-1)).sum(dim=2)
        return (invalid_mass > INVALID_MASS_THRESHOLD).all(dim=-1)
    if policy == "strict":
        return invalid.any(dim=2).all(dim=-1)
    if policy == "none":
        return torch.zeros(weights.shape[:2], dtype=torch.bool, device=weights.device)
    raise ValueError(f"invalid policy {policy!r}: expected 'weight_guided', 'strict' or 'none'")


@dataclass
class PhotometricLoss:
    """loss: scalar L_ph (counted once); error ``[B,R]`` min-over-views error before masking; best_view ``[B,R]``
    argmin view; ray_invalid ``[B,R]`` dropped rays; invalid_ratio scalar share of dropped rays."""

    loss: torch.Tensor
    error: torch.Tensor
    best_view: torch.Tensor
    ray_invalid: torch.Tensor
    invalid_ratio: torch.Tensor


def photometric_loss(
    rgb: torch.Tensor,
    rgb_gt: torch.Tensor,
    weights: torch.Tensor,
    invalid: torch.Tensor,
    patch_size: int = 8,
    invalid_policy: InvalidPolicy = "weight_guided",
    window: torch.Tensor | None = None,
) -> PhotometricLoss:
    """L_ph for patch-ordered rays (:class:`vipocc.models.ray_sampler.RayBatch` layout).

    rgb ``[B,R,V,3]`` rendered colour per render view, rgb_gt ``[B,R,3]`` targets (same range, e.g. [0,1]),
    weights ``[B,R,K]``, invalid ``[B,R,K,V]`` (the renderer's ``RenderOutput`` fields); R = P * ps².
    ``L = mean_rays(min_v e_v * (1 - dropped))``, dropped rays counted as zeros (reference).
    """
    if rgb.ndim != 4 or rgb_gt.shape != rgb.shape[:2] + rgb.shape[3:]:
        raise ValueError(f"rgb {tuple(rgb.shape)} / rgb_gt {tuple(rgb_gt.shape)}: expected [B,R,V,C] / [B,R,C]")
    batch, n_rays = rgb.shape[:2]
    if n_rays % (patch_size * patch_size):
        raise ValueError(f"rgb: {n_rays} rays are not a whole number of {patch_size}x{patch_size} patches")
    shape = (batch, n_rays // patch_size**2, patch_size, patch_size)
    error_views = patch_photometric_error(rgb.reshape(*shape, *rgb.shape[2:]), rgb_gt.reshape(*shape, -1), window)
    error, best_view = error_views.reshape(batch, n_rays, -1).min(dim=-1)
    dropped = ray_invalid_mask(weights, invalid, invalid_policy)
    loss = (error * (1.0 - dropped.to(error.dtype))).mean()
    return PhotometricLoss(loss, error, best_view, dropped, dropped.to(error.dtype).mean())


# ------------------------------------------------------------------------------------------------- depth terms


def _min_max_normalise(t: torch.Tensor) -> torch.Tensor:
    # Global min/max over the whole batch, not detached (reference). A constant tensor maps to 0, not NaN.
    return (t - t.min()) / (t.max() - t.min()).clamp_min(torch.finfo(t.dtype).tiny)


def depth_reconstruction_loss(pred_depth_z: torch.Tensor, rendered_z: torch.Tensor, version: int = 1) -> torch.Tensor:
    """L_rc between the depth branch's z-depth and the rendered z-depth at the same pixels (any equal shapes, m).

    version 1 (default): ``mean |D - z|``. version 2: ``mean((1 - n(D)) |D - z|)`` with ``n`` min-max
    normalisation over the whole batch (near pixels weigh more). version 3: ``mean |n(D) - n(z)|``. Both inputs
    receive gradients (nothing is detached, as the reference).
    """
    if pred_depth_z.shape != rendered_z.shape:
        raise ValueError(f"pred_depth_z {tuple(pred_depth_z.shape)} and rendered_z {tuple(rendered_z.shape)} differ")
    if version == 1:
        return (pred_depth_z - rendered_z).abs().mean()
    if version == 2:
        return ((1.0 - _min_max_normalise(pred_depth_z)) * (pred_depth_z - rendered_z).abs()).mean()
    if version == 3:
        return (_min_max_normalise(pred_depth_z) - _min_max_normalise(rendered_z)).abs().mean()
    raise ValueError(f"version={version!r}: expected 1, 2 or 3")


def masked_mean(values: torch.Tensor, valid: torch.Tensor, min_count: float) -> torch.Tensor:
    """Mean of ``values`` over ``valid`` (broadcast to values' shape), or 0 if at most ``min_count`` elements are
    valid (reference ``mean_on_mask``). Invalid elements are excluded with ``where`` (no NaN leaks); the zero keeps
    the autograd graph (zero gradient), so every parameter still sees a gradient (DDP)."""
    mask = valid.expand_as(values)
    selected = torch.where(mask, values, torch.zeros_like(values))
    count = int(mask.sum())
    if count <= min_count:
        return selected.sum() * 0.0
    return selected.sum() / count


def _min_valid_count(fraction: float, n_elements: int) -> int:
    # Integer threshold t with "count > t" <=> "count > fraction * n_elements" for integer counts; the 1e-6 keeps
    # the paper size's exact 10,000 from rounding down to 9,999.
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"min_valid_fraction {fraction!r}: must lie in [0, 1]")
    return math.floor(fraction * n_elements + 1e-6)


@dataclass
class TemporalAlignment:
    """loss = photometric + geometric (scalars); valid ``[B,1,H,W]``; depth_inconsistency d ``[B,1,H,W]``;
    thresholds (image, depth) element counts a mean needed to exceed to count."""

    loss: torch.Tensor
    photometric: torch.Tensor
    geometric: torch.Tensor
    valid: torch.Tensor
    depth_inconsistency: torch.Tensor
    thresholds: tuple[int, int]


def temporal_alignment_loss(
    img_t: torch.Tensor,
    img_t1: torch.Tensor,
    depth_t: torch.Tensor,
    depth_t1: torch.Tensor,
    T_t_to_t1: torch.Tensor,
    K_pixel: torch.Tensor,
    min_valid_fraction: float | tuple[float, float] = DEFAULT_MIN_VALID_FRACTION,
    convention: WarpConvention = "reference",
) -> TemporalAlignment:
    """L_ta: warp frame t+1 into frame t with the predicted depth of t and the GT relative pose.

    img_t, img_t1 ``[B,3,H,W]`` in [-1,1] (the reference compares the dataset tensors); depth_t, depth_t1
    ``[B,1,H,W]`` predicted z-depths (m); T_t_to_t1 ``[B,4,4]`` = ``inv(P_{t+1}) @ P_t`` (camera-to-world poses);
    K_pixel ``[B,3,3]`` (:func:`vipocc.models.warp.pixel_intrinsics`).

    ``d = clamp(|D_comp - D_proj| / (D_comp + D_proj), 0, 1)``;
    ``L = mean_valid(clamp(|I_t - I^_t|, 0, 1) (1 - d)) + mean_valid(d)``, plain L1, no SSIM.

    ``min_valid_fraction`` (image term, depth term), or one value for both: a mean counts only if its valid
    element count over the batch exceeds ``fraction x`` one image's element count (3HW resp. HW). The defaults give
    the reference's fixed 10,000 at 192x640 and scale it with the image area, so small images are not silently
    left without the term (at 48x160 the fixed 10,000 would need more valid pixels than one image has when B = 1).
    """
    if img_t.shape != img_t1.shape or img_t.ndim != 4:
        raise ValueError(f"img_t {tuple(img_t.shape)} / img_t1 {tuple(img_t1.shape)}: expected equal [B,C,H,W]")
    if isinstance(min_valid_fraction, float | int):
        fractions: tuple[float, ...] | list[float] = (min_valid_fraction, min_valid_fraction)
    else:
        fractions = min_valid_fraction
    if len(fractions) != 2:
        raise ValueError(f"min_valid_fraction {min_valid_fraction!r}: expected a float or (image, depth)")
    _, channels, height, width = img_t.shape
    thresholds = (
        _min_valid_count(float(fractions[0]), channels * height * width),
        _min_valid_count(float(fractions[1]), height * width),
    )
    warped = warp_to_target(img_t1, depth_t, depth_t1, T_t_to_t1, K_pixel, convention)
    valid = warped.valid
    # Safe denominator: outside `valid` the sum can be <= 0 (zero padding, points behind the camera).
    depth_sum = torch.where(valid, warped.computed_depth + warped.depth, torch.ones_like(warped.depth))
    inconsistency = ((warped.computed_depth - warped.depth).abs() / depth_sum).clamp(0.0, 1.0)
    image_error = (img_t - warped.image).abs().clamp(0.0, 1.0) * (1.0 - inconsistency)
    photometric = masked_mean(image_error, valid, thresholds[0])
    geometric = masked_mean(inconsistency, valid, thresholds[1])
    return TemporalAlignment(photometric + geometric, photometric, geometric, valid, inconsistency, thresholds)


# ------------------------------------------------------------------------------------------------- smoothness


def edge_aware_smoothness(
    rgb_patches: torch.Tensor,
    depth_patches: torch.Tensor,
    ray_invalid: torch.Tensor | None = None,
    scale: int = 0,
) -> torch.Tensor:
    """BTS edge-aware smoothness of rendered depth patches (scalar, already divided by ``2**scale``).

    rgb_patches ``[B,P,h,w,3]`` target colours, depth_patches ``[B,P,h,w]`` rendered depth (m), ray_invalid
    ``[B,P,h,w]`` dropped rays or None. Inverse depth ``1/clamp(D, 1e-3, 80)`` is divided by its per-patch mean;
    its absolute x and y differences are weighted by ``exp(-mean_c |grad I|)``; the per-pixel sum (zero where a
    difference has no right / lower neighbour) is masked with the valid rays and averaged over all pixels.
    BTS weights it by 0.001 (``BTS_WEIGHTS``).
    """
    if depth_patches.ndim != 4 or rgb_patches.shape[:4] != depth_patches.shape:
        raise ValueError(
            f"rgb_patches {tuple(rgb_patches.shape)} / depth_patches {tuple(depth_patches.shape)}: "
            "expected [B,P,h,w,C] / [B,P,h,w]"
        )
    disparity = 1.0 / depth_patches.clamp(1e-3, 80.0)
    disparity = disparity / disparity.mean(dim=(-2, -1), keepdim=True)
    d_dx = (disparity[..., :, :-1] - disparity[..., :, 1:]).abs()
    d_dy = (disparity[..., :-1, :] - disparity[..., 1:, :]).abs()
    i_dx = (rgb_patches[..., :, :-1, :] - rgb_patches[..., :, 1:, :]).abs().mean(dim=-1)
    i_dy = (rgb_patches[..., :-1, :, :] - rgb_patches[..., 1:, :, :]).abs().mean(dim=-1)
    errors = F.pad(d_dx * torch.exp(-i_dx), (0, 1)) + F.pad(d_dy * torch.exp(-i_dy), (0, 0, 0, 1))
    if ray_invalid is not None:
        errors = errors * (1.0 - ray_invalid.to(errors.dtype))
    return errors.mean() / (2**scale)


# ------------------------------------------------------------------------------------------------- total


def total_loss(
    terms: Mapping[str, torch.Tensor],
    weights: Mapping[str, float],
    count_twice: bool = True,
    extras: Mapping[str, torch.Tensor | float] | None = None,
) -> dict[str, torch.Tensor]:
    """Weighted sum of scalar loss terms plus a log dict (keys as the reference ``loss_dict``).

    terms ``{name: scalar}`` (e.g. ``rgb``, ``depth_recon``, ``temp_align``, ``edge_smooth``); weights
    ``{name: lambda}``. Every term needs a weight, and a non-zero weight needs its term. ``rgb`` is logged as
    ``loss_rgb_coarse`` and ``loss_rgb_fine``: with ``count_twice`` (default, reference numbers) the fine entry
    equals the coarse one and both are added (2 lambda L_ph); otherwise the fine entry is 0 and L_ph counts once.
    Other terms are logged as ``loss_<name>`` (unweighted), ``extras`` (e.g. ``invalid_ratio``) as ``loss_<name>``
    without entering the sum. Returns ``loss`` (with autograd graph) and the detached log entries.
    """
    missing = sorted(set(terms) - set(weights))
    if missing:
        raise ValueError(f"weights: no weight for loss terms {missing}")
    absent = sorted(name for name, w in weights.items() if w != 0 and name not in terms)
    if absent:
        raise ValueError(f"terms: {absent} have non-zero weights but were not computed")
    total: torch.Tensor | None = None
    log: dict[str, torch.Tensor] = {}
    for name, value in terms.items():
        value = torch.as_tensor(value)
        multiplicity = 2.0 if name == "rgb" and count_twice else 1.0
        contribution = value * (float(weights[name]) * multiplicity)
        total = contribution if total is None else total + contribution
        if name == "rgb":
            log["loss_rgb_coarse"] = value.detach()
            log["loss_rgb_fine"] = value.detach() if count_twice else torch.zeros_like(value).detach()
        else:
            log[f"loss_{name}"] = value.detach()
    for name, value in (extras or {}).items():
        log[f"loss_{name}"] = torch.as_tensor(value).detach()
    if total is None:
        raise ValueError("terms: empty")
    log["loss"] = total
    return log
