"""Losses against independent arithmetic: SSIM (numpy loops), photometric l1+ssim with min over views and the
weight-guided invalid policy, depth reconstruction v1-v3, temporal alignment (value and the size-scaled validity
threshold), edge-aware smoothness and the total / count-twice bookkeeping. Gradients are finite."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vipocc.models.losses import (
    DEFAULT_MIN_VALID_FRACTION,
    REFERENCE_SSIM_WINDOW,
    VIPOCC_WEIGHTS,
    depth_reconstruction_loss,
    edge_aware_smoothness,
    gaussian_window,
    masked_mean,
    photometric_error,
    photometric_loss,
    ray_invalid_mask,
    ssim,
    temporal_alignment_loss,
    total_loss,
)

DT = torch.float64


# ------------------------------------------------------------------------------------------- independent SSIM


def _np_window() -> np.ndarray:
    g = np.array([math.exp(-1 / (2 * 1.5**2)), 1.0, math.exp(-1 / (2 * 1.5**2))])
    w = np.outer(g, g)
    return w / w.sum()


def _np_ssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Loop implementation for one image [C,h,w], zero padding, C1 = 1e-4, C2 = 9e-4."""
    w = _np_window()
    c, h, wd = x.shape
    xp, yp = np.pad(x, ((0, 0), (1, 1), (1, 1))), np.pad(y, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros_like(x)
    for ch in range(c):
        for i in range(h):
            for j in range(wd):
                wx, wy = xp[ch, i:i + 3, j:j + 3], yp[ch, i:i + 3, j:j + 3]
                mx, my = (w * wx).sum(), (w * wy).sum()
                vx, vy = (w * wx * wx).sum() - mx * mx, (w * wy * wy).sum() - my * my
                cxy = (w * wx * wy).sum() - mx * my
                out[ch, i, j] = ((2 * mx * my + 1e-4) * (2 * cxy + 9e-4)) / ((mx**2 + my**2 + 1e-4) * (vx + vy + 9e-4))
    return out


def _np_error(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    dssim = np.clip(1 - _np_ssim(x, y), 0, 1) / 2
    return 0.85 * dssim.mean(0) + 0.15 * np.abs(x - y).mean(0)


def test_ssim_window_is_the_normalised_gaussian_of_sigma_1_5() -> None:
    window = gaussian_window(dtype=DT)
    assert window.sum().item() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(window.numpy(), np.array(REFERENCE_SSIM_WINDOW), atol=5e-5)  # reference rounding
    np.testing.assert_allclose(window.numpy(), _np_window(), atol=1e-15)
    # Edge/centre ratio of the reference numbers gives sigma = 1.4986 ~ 1.5.
    sigma = math.sqrt(-1 / (2 * math.log(0.1183 / 0.1478)))
    assert sigma == pytest.approx(1.5, abs=0.002)


def test_ssim_of_identical_patches_is_one() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 8, 8, generator=gen, dtype=DT)
    torch.testing.assert_close(ssim(x, x), torch.ones_like(x))
    flat = torch.full((1, 3, 8, 8), 0.3, dtype=DT)
    torch.testing.assert_close(ssim(flat, flat), torch.ones_like(flat))
    assert (photometric_error(x, x) == 0).all()


def test_ssim_and_photometric_error_match_loop_implementation() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.uniform(size=(2, 3, 8, 8)), rng.uniform(size=(2, 3, 8, 8))
    np.testing.assert_allclose(ssim(torch.from_numpy(x), torch.from_numpy(y)).numpy(),
                               np.stack([_np_ssim(x[i], y[i]) for i in range(2)]), atol=1e-12)
    np.testing.assert_allclose(photometric_error(torch.from_numpy(x), torch.from_numpy(y)).numpy(),
                               np.stack([_np_error(x[i], y[i]) for i in range(2)]), atol=1e-12)


# ------------------------------------------------------------------------------------------- photometric loss


def _photometric_case():
    """B=1, two 3x3 patches (18 rays), V=2 render views, K=4 samples; invalid flags chosen per ray group."""
    rng = np.random.default_rng(2)
    rgb = rng.uniform(size=(1, 18, 2, 3))
    gt = rng.uniform(size=(1, 18, 3))
    weights = rng.dirichlet(np.ones(4), size=(1, 18))
    invalid = rng.uniform(size=(1, 18, 4, 2)) < 0.3
    invalid[0, 0:6] = True  # both views fully invalid -> ray dropped
    invalid[0, 6:12, :, 0], invalid[0, 6:12, :, 1] = True, False  # one valid view -> kept
    weights[0, 12] = [0.9, 0.1, 0.0, 0.0]
    invalid[0, 12] = [[True, True], [False, False], [False, False], [False, False]]  # mass exactly 0.9 -> kept
    return rgb, gt, weights, invalid


def test_weight_guided_invalid_mask() -> None:
    _, _, weights, invalid = _photometric_case()
    dropped = ray_invalid_mask(torch.from_numpy(weights), torch.from_numpy(invalid)).numpy()[0]
    mass = (weights[0, :, :, None] * invalid[0]).sum(1)  # [R,V]
    np.testing.assert_array_equal(dropped, (mass > 0.9).all(-1))
    assert dropped[:6].all() and not dropped[6:13].any()


def test_photometric_loss_matches_hand_computation() -> None:
    rgb, gt, weights, invalid = _photometric_case()
    rgb_t = torch.from_numpy(rgb).requires_grad_(True)
    result = photometric_loss(rgb_t, torch.from_numpy(gt), torch.from_numpy(weights), torch.from_numpy(invalid), 3)
    # Independent: per patch and view, the loop SSIM error; min over views; zero dropped rays; mean.
    errors = np.zeros((18, 2))
    for p in range(2):
        rays = slice(9 * p, 9 * p + 9)
        target = gt[0, rays].reshape(3, 3, 3).transpose(2, 0, 1)
        for v in range(2):
            pred = rgb[0, rays, v].reshape(3, 3, 3).transpose(2, 0, 1)
            errors[rays, v] = _np_error(pred, target).reshape(-1)
    mass = (weights[0, :, :, None] * invalid[0]).sum(1)
    dropped = (mass > 0.9).all(-1)
    expected = (errors.min(1) * ~dropped).mean()
    assert result.loss.item() == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(result.error.detach().numpy()[0], errors.min(1), atol=1e-12)
    np.testing.assert_array_equal(result.best_view.numpy()[0], errors.argmin(1))
    assert result.invalid_ratio.item() == pytest.approx(dropped.mean())
    result.loss.backward()
    assert torch.isfinite(rgb_t.grad).all()
    # A fully dropped patch passes no gradient (a dropped pixel inside a kept patch still does, via the SSIM
    # window of its kept neighbours, as in the reference).
    all_invalid = np.ones_like(invalid)
    rgb_t.grad = None
    none = photometric_loss(rgb_t, torch.from_numpy(gt), torch.from_numpy(weights), torch.from_numpy(all_invalid), 3)
    none.loss.backward()
    assert none.loss.item() == 0 and none.invalid_ratio.item() == 1 and rgb_t.grad.abs().sum() == 0


def test_photometric_loss_rejects_non_patch_ray_counts() -> None:
    with pytest.raises(ValueError, match="patches"):
        photometric_loss(torch.zeros(1, 10, 2, 3), torch.zeros(1, 10, 3), torch.zeros(1, 10, 4),
                         torch.zeros(1, 10, 4, 2, dtype=torch.bool), 3)


# ------------------------------------------------------------------------------------------- depth terms


def test_depth_reconstruction_versions_by_hand() -> None:
    pred = torch.tensor([2.0, 4.0, 6.0], dtype=DT, requires_grad=True)
    rendered = torch.tensor([3.0, 4.0, 3.0], dtype=DT, requires_grad=True)
    assert depth_reconstruction_loss(pred, rendered, 1).item() == pytest.approx(4 / 3)
    # v2: n(pred) = [0, .5, 1] -> weights [1, .5, 0]; residuals [1, 0, 3].
    assert depth_reconstruction_loss(pred, rendered, 2).item() == pytest.approx(1 / 3)
    # v3: n(pred) = [0, .5, 1], n(rendered) = [0, 1, 0].
    assert depth_reconstruction_loss(pred, rendered, 3).item() == pytest.approx(0.5)
    for version in (1, 2, 3):
        pred.grad = rendered.grad = None
        depth_reconstruction_loss(pred, rendered, version).backward()
        assert torch.isfinite(pred.grad).all() and torch.isfinite(rendered.grad).all()
        assert pred.grad.abs().sum() > 0 and rendered.grad.abs().sum() > 0  # both branches get gradients
    with pytest.raises(ValueError, match="version"):
        depth_reconstruction_loss(pred, rendered, 4)


def _identity_pose(batch: int = 1) -> torch.Tensor:
    return torch.eye(4, dtype=DT).repeat(batch, 1, 1)


def _K_pixel(batch: int = 1, f: float = 30.0, width: int = 6, height: int = 4) -> torch.Tensor:
    K = torch.tensor([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]], dtype=DT)
    return K.repeat(batch, 1, 1)


def test_temporal_alignment_value_by_hand() -> None:
    rng = np.random.default_rng(3)
    img_t = rng.uniform(-1, 1, size=(1, 3, 4, 6))
    delta = rng.choice([0.25, -0.5, 1.5], size=img_t.shape)  # 1.5 saturates at the clamp
    depth_t = torch.full((1, 1, 4, 6), 10.0, dtype=DT, requires_grad=True)
    depth_t1 = torch.full((1, 1, 4, 6), 12.0, dtype=DT, requires_grad=True)
    out = temporal_alignment_loss(torch.from_numpy(img_t), torch.from_numpy(img_t + delta), depth_t, depth_t1,
                                  _identity_pose(), _K_pixel(), min_valid_fraction=0.0, convention="pixel_centers")
    d = 2.0 / 22.0  # |10 - 12| / (10 + 12)
    expected_photo = (np.minimum(np.abs(delta), 1.0) * (1 - d)).mean()
    assert out.photometric.item() == pytest.approx(expected_photo, rel=1e-6)
    assert out.geometric.item() == pytest.approx(d, rel=1e-6)
    assert out.loss.item() == pytest.approx(expected_photo + d, rel=1e-6)
    out.loss.backward()
    assert torch.isfinite(depth_t.grad).all() and torch.isfinite(depth_t1.grad).all()


def _valid_count_case(n_valid: int, height: int = 192, width: int = 640):
    """Identity warp where exactly n_valid interior pixels (row-major) are valid: the others get a negative depth
    and land behind the camera (border pixels are avoided: their identity projection can round to just outside
    |g| <= 1). depth_t1 = 12 vs depth_t = 10 makes the geometric term non-zero."""
    depth_t = torch.full((1, 1, height, width), -1.0, dtype=DT)
    interior = torch.zeros(height - 2, width - 2, dtype=DT).fill_(-1.0)
    interior.view(-1)[:n_valid] = 10.0
    depth_t[0, 0, 1:-1, 1:-1] = interior
    depth_t = depth_t.requires_grad_(True)
    depth_t1 = torch.full((1, 1, height, width), 12.0, dtype=DT, requires_grad=True)
    img_t = torch.zeros(1, 3, height, width, dtype=DT)
    out = temporal_alignment_loss(img_t, img_t + 0.5, depth_t, depth_t1, _identity_pose(),
                                  _K_pixel(f=300.0, width=width, height=height), convention="pixel_centers")
    return out, depth_t, depth_t1


@pytest.mark.parametrize(
    "n_valid, photo_on, geo_on",
    [(3333, False, False), (3334, True, False), (10000, True, False), (10001, True, True)],
)
def test_temporal_threshold_at_paper_size_is_the_reference_10000(n_valid: int, photo_on: bool, geo_on: bool) -> None:
    # Image term: 3 channels per valid pixel must exceed 10,000; depth term: valid pixels must exceed 10,000.
    out, depth_t, depth_t1 = _valid_count_case(n_valid)
    assert out.thresholds == (10000, 10000)
    assert int(out.valid.sum()) == n_valid
    assert (out.photometric.item() > 0) == photo_on and (out.geometric.item() > 0) == geo_on
    if photo_on:
        assert out.photometric.item() == pytest.approx(0.5 * (1 - 2 / 22), rel=1e-6)
    out.loss.backward()  # a dropped term still backpropagates (zero gradient, no NaN from invalid pixels)
    assert torch.isfinite(depth_t.grad).all() and torch.isfinite(depth_t1.grad).all()


def test_temporal_threshold_scales_with_image_size() -> None:
    # 24x80, B = 1, every pixel valid: 5,760 image elements and 1,920 depth elements, below the fixed 10,000.
    out, _, _ = _valid_count_case(22 * 78, height=24, width=80)
    assert out.thresholds == (156, 156)  # 10,000 * 1920 / 122,880 = 156.25
    assert out.photometric.item() > 0 and out.geometric.item() > 0
    # The reference's fixed threshold would silently drop both terms at this size.
    ones = torch.ones(1, 3, 24, 80, dtype=DT)
    assert masked_mean(ones, torch.ones(1, 1, 24, 80, dtype=torch.bool), 10000).item() == 0.0
    assert DEFAULT_MIN_VALID_FRACTION[0] * 3 * 192 * 640 == pytest.approx(10000)


# ------------------------------------------------------------------------------------------- smoothness


def test_edge_aware_smoothness_by_hand() -> None:
    depth = torch.tensor([[[[1.0, 2.0], [1.0, 1.0]]]], dtype=DT, requires_grad=True)  # [B=1,P=1,2,2]
    flat = torch.zeros(1, 1, 2, 2, 3, dtype=DT)
    # disparity [[1, .5], [1, 1]] / mean .875: one x step (row 0) and one y step (column 1) of .5/.875.
    step = 0.5 / 0.875
    assert edge_aware_smoothness(flat, depth).item() == pytest.approx(2 * step / 4)
    assert edge_aware_smoothness(flat, depth, scale=1).item() == pytest.approx(step / 4)
    edges = torch.tensor([[0.0, 0.5], [0.0, 0.5]], dtype=DT).view(1, 1, 2, 2, 1).expand(-1, -1, -1, -1, 3)
    value = edge_aware_smoothness(edges, depth)  # the x step now crosses an image edge of 0.5
    assert value.item() == pytest.approx((step * math.exp(-0.5) + step) / 4)
    invalid = torch.tensor([[[[True, False], [False, False]]]])
    assert edge_aware_smoothness(edges, depth, invalid).item() == pytest.approx(step / 4)
    value.backward()
    assert torch.isfinite(depth.grad).all()


# ------------------------------------------------------------------------------------------- total


def test_total_loss_counts_rgb_twice_by_default() -> None:
    rgb = torch.tensor(0.2, requires_grad=True)
    terms = {"rgb": rgb, "depth_recon": torch.tensor(3.0), "temp_align": torch.tensor(0.5)}
    twice = total_loss(terms, VIPOCC_WEIGHTS, extras={"invalid_ratio": 0.1})
    assert twice["loss"].item() == pytest.approx(2 * 0.2 + 0.005 * 3.0 + 0.01 * 0.5)
    assert twice["loss_rgb_coarse"].item() == twice["loss_rgb_fine"].item() == pytest.approx(0.2)
    assert twice["loss_depth_recon"].item() == 3.0 and twice["loss_temp_align"].item() == 0.5
    assert twice["loss_invalid_ratio"].item() == pytest.approx(0.1)
    once = total_loss(terms, VIPOCC_WEIGHTS, count_twice=False)
    assert once["loss"].item() == pytest.approx(0.2 + 0.005 * 3.0 + 0.01 * 0.5) and once["loss_rgb_fine"].item() == 0
    twice["loss"].backward()
    assert rgb.grad.item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no weight"):
        total_loss({"rgb": rgb, "other": torch.tensor(1.0)}, {"rgb": 1.0})
    with pytest.raises(ValueError, match="not computed"):
        total_loss({"rgb": rgb}, VIPOCC_WEIGHTS)
