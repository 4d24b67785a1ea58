"""Warp: intrinsics conversion, back-projection, identity warp, x translation by f t / z, the reference's
half-pixel sampling convention, and validity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vipocc.models.warp import backproject_depth, pixel_intrinsics, warp_to_target

DT = torch.float64


def _K(fx: float = 20.0, fy: float = 18.0, cx: float = 9.5, cy: float = 5.0, batch: int = 1) -> torch.Tensor:
    return torch.tensor([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=DT).expand(batch, 3, 3).clone()


def _translation(tx: float = 0.0, ty: float = 0.0, tz: float = 0.0, batch: int = 1) -> torch.Tensor:
    T = torch.eye(4, dtype=DT).repeat(batch, 1, 1)
    T[:, :3, 3] = torch.tensor([tx, ty, tz], dtype=DT)
    return T


def test_pixel_intrinsics_undo_the_dataset_normalisation() -> None:
    # KITTI-360 perspective camera (digest 1.2): normalised with the original 1408x376 size.
    fx, fy, cx, cy, w, h = 552.554261, 552.554261, 682.049453, 238.769549, 1408, 376
    K_norm = torch.tensor([[2 * fx / w, 0, 2 * cx / w - 1], [0, 2 * fy / h, 2 * cy / h - 1], [0, 0, 1]], dtype=DT)
    torch.testing.assert_close(pixel_intrinsics(K_norm[None], (h, w))[0], _K(fx, fy, cx, cy)[0])
    # At 192x640 the same normalised K gives the resized pinhole.
    torch.testing.assert_close(pixel_intrinsics(K_norm, (192, 640))[0, 0], torch.tensor(fx * 640 / w, dtype=DT))


def test_backprojection_matches_pinhole_formula() -> None:
    depth = torch.arange(1, 13, dtype=DT).reshape(1, 1, 3, 4)
    K = _K()
    points = backproject_depth(depth, K)[0].numpy()  # [3, 12]
    v, u = np.meshgrid(np.arange(3), np.arange(4), indexing="ij")
    z = depth.numpy().reshape(-1)
    expected = np.stack(((u.reshape(-1) - 9.5) / 20.0 * z, (v.reshape(-1) - 5.0) / 18.0 * z, z))
    np.testing.assert_allclose(points, expected, atol=1e-12)


def test_identity_warp_is_identity_with_pixel_centres() -> None:
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 6, 10, generator=gen, dtype=DT)
    depth_src = torch.rand(2, 1, 6, 10, generator=gen, dtype=DT) + 5.0
    depth_tgt = torch.full((2, 1, 6, 10), 7.0, dtype=DT)
    out = warp_to_target(image, depth_tgt, depth_src, _translation(batch=2), _K(batch=2), "pixel_centers")
    # The reference's 1e-7 in the projective divisor moves samples by < 1e-6 px.
    torch.testing.assert_close(out.image, image, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.depth, depth_src, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.computed_depth, depth_tgt)
    assert out.valid.all()
    # Grid normalised by (W - 1), (H - 1) as the reference.
    u = torch.arange(10, dtype=DT)
    torch.testing.assert_close(out.grid[0, 0, :, 0], 2 * u / 9 - 1)


def test_reference_convention_samples_half_a_pixel_off() -> None:
    # Ramp image I(x) = x: with g = 2u/(W-1) - 1 and align_corners=False, pixel u samples x = u W/(W-1) - 1/2.
    width = 10
    image = torch.arange(width, dtype=DT).expand(1, 1, 4, width).clone()
    depth = torch.full((1, 1, 4, width), 3.0, dtype=DT)
    out = warp_to_target(image, depth, depth, _translation(), _K(), "reference")
    u = torch.arange(width, dtype=DT)
    expected = u * width / (width - 1) - 0.5
    interior = (expected >= 0) & (expected <= width - 1)
    torch.testing.assert_close(out.image[0, 0, 1, interior], expected[interior])
    # Row 0 samples y = -1/2: half of it is the zero padding above the image.
    torch.testing.assert_close(out.image[0, 0, 0, interior], expected[interior] * 0.5)
    assert out.valid.all()  # the reference mask still calls every pixel valid


@pytest.mark.parametrize("depth_m", [4.0, 10.0])
def test_x_translation_shifts_by_f_t_over_z(depth_m: float) -> None:
    width, height, fx = 16, 5, 20.0
    image = torch.arange(width, dtype=DT).expand(1, 1, height, width).clone()  # I(x) = x
    depth = torch.full((1, 1, height, width), depth_m, dtype=DT)
    tx = 0.6  # target point X goes to X + tx in the source camera
    out = warp_to_target(image, depth, depth, _translation(tx), _K(fx), "pixel_centers")
    shift = fx * tx / depth_m  # 3 px and 1.2 px
    u = torch.arange(width, dtype=DT)
    expected_valid = u + shift <= width - 1
    assert torch.equal(out.valid[0, 0, 0], expected_valid)
    torch.testing.assert_close(out.image[0, 0, 0, expected_valid], (u + shift)[expected_valid])
    torch.testing.assert_close(out.computed_depth, depth)  # a sideways move keeps z


def test_points_behind_the_source_camera_are_invalid() -> None:
    depth = torch.full((1, 1, 4, 6), 10.0, dtype=DT)
    image = torch.rand(1, 3, 4, 6, dtype=DT)
    out = warp_to_target(image, depth, depth, _translation(tz=-20.0), _K(), "reference")
    assert not out.valid.any()
    torch.testing.assert_close(out.computed_depth, torch.full_like(depth, -10.0))


def test_warp_input_checks() -> None:
    depth = torch.ones(1, 1, 4, 6)
    with pytest.raises(ValueError, match="convention"):
        warp_to_target(torch.ones(1, 3, 4, 6), depth, depth, torch.eye(4)[None], torch.eye(3)[None], "bogus")
    with pytest.raises(ValueError, match="source_depth"):
        warp_to_target(torch.ones(1, 3, 4, 6), depth, torch.ones(1, 1, 4, 5), torch.eye(4)[None], torch.eye(3)[None])
