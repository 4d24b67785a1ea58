"""Density field: projection, depth code, feature sampling on a ramp map, flip augmentation, colours, gradients."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from torch import nn

from vipocc.models.density_field import DensityField, RenderViews, inverse_depth_code, project_points
from vipocc.models.renderer import render_rays

H, W = 8, 16
# Normalised intrinsics: x_ndc = 0.5 X/Z, y_ndc = 1.0 Y/Z (principal point at the image centre).
K_NORM = torch.tensor([[0.5, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _pose_c2w() -> torch.Tensor:
    """Camera rotated 90 deg about the world z axis and moved to (1, 2, 3)."""
    c2w = torch.eye(4)
    c2w[:3, :3] = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    c2w[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    return c2w


def _to_world(points_cam: torch.Tensor) -> torch.Tensor:
    c2w = _pose_c2w()
    return points_cam @ c2w[:3, :3].T + c2w[:3, 3]


def _pixel_centre_ndc(index: float, size: int) -> float:
    """align_corners=False: pixel i covers [-1 + 2i/size, -1 + 2(i+1)/size]; its centre is (2i+1)/size - 1."""
    return (2 * index + 1) / size - 1


class RampEncoder(nn.Module):
    """Stand-in encoder: channel 0 = column index + image red channel, channel 1 = row index."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = image.shape
        cols = torch.arange(width, dtype=image.dtype).expand(batch, height, width)
        rows = torch.arange(height, dtype=image.dtype).view(1, height, 1).expand(batch, height, width)
        return torch.stack((cols + image[:, 0], rows), dim=1)


def _ramp_field() -> DensityField:
    field = DensityField(depth=18, d_out=2, num_ch_dec=(2, 2, 2, 2, 2))
    field.encoder = RampEncoder()
    field.encode(torch.zeros(1, 3, H, W), K_NORM[None], torch.linalg.inv(_pose_c2w())[None])
    return field


def test_inverse_depth_code_hand_values() -> None:
    z = torch.tensor([3.0, 80.0, 6.0, 10.0], dtype=torch.float64)
    expected = [1.0, -1.0]
    for depth in (6, 10):
        ratio = (Fraction(1, depth) - Fraction(1, 80)) / (Fraction(1, 3) - Fraction(1, 80))
        expected.append(float(2 * ratio - 1))
    torch.testing.assert_close(inverse_depth_code(z, 3.0, 80.0), torch.tensor(expected, dtype=torch.float64))
    assert expected[2] == pytest.approx(-0.038961, abs=1e-6)


def test_project_points_coordinates_and_invalid_flags() -> None:
    points_cam = torch.tensor(
        [[2.0, -1.0, 4.0], [0.0, 0.0, -1.0], [0.0, 0.0, 5e-4], [9.0, 0.0, 4.0], [0.0, 4.5, 4.0]]
    )
    xy, z, invalid = project_points(_to_world(points_cam)[None], K_NORM[None, None],
                                    torch.linalg.inv(_pose_c2w())[None, None])
    torch.testing.assert_close(xy[0, 0, 0], torch.tensor([0.25, -0.25]))  # (0.5*2/4, -1/4)
    torch.testing.assert_close(z[0, 0], points_cam[:, 2], atol=1e-5, rtol=1e-5)
    assert invalid[0, 0].tolist() == [False, True, True, True, True]
    with pytest.raises(ValueError, match="points_world"):
        project_points(torch.zeros(2, 3), K_NORM[None, None], torch.eye(4)[None, None])


def test_known_point_samples_expected_feature_pixel_and_code() -> None:
    field = _ramp_field()
    depth = 10.0
    # Pixel centre (u=5, v=3) and the midpoint between columns 5 and 6 on row 3.
    x_a, y_a = _pixel_centre_ndc(5, W), _pixel_centre_ndc(3, H)
    x_b = _pixel_centre_ndc(5.5, W)
    points_cam = torch.tensor([[x_a / 0.5 * depth, y_a * depth, depth], [x_b / 0.5 * depth, y_a * depth, depth]])
    features, invalid = field.sample_features(_to_world(points_cam)[None])
    assert features.shape == (1, 2, 2 + 39)
    torch.testing.assert_close(features[0, :, :2], torch.tensor([[5.0, 3.0], [5.5, 3.0]]), atol=1e-4, rtol=0)
    assert not invalid.any()
    z_code = float(2 * (Fraction(1, 10) - Fraction(1, 80)) / (Fraction(1, 3) - Fraction(1, 80)) - 1)
    expected_code = [x_a, y_a, z_code]
    for k in range(6):
        f = 1.5 * 2**k
        expected_code += [math.sin(f * v) for v in (x_a, y_a, z_code)] + [math.cos(f * v) for v in (x_a, y_a, z_code)]
    torch.testing.assert_close(features[0, 0, 2:], torch.tensor(expected_code), atol=2e-4, rtol=0)


def test_outside_point_uses_border_feature_and_is_invalid() -> None:
    field = _ramp_field()
    points_cam = torch.tensor([[100.0, _pixel_centre_ndc(2, H) * 10.0, 10.0]])  # far right of the image
    features, invalid = field.sample_features(_to_world(points_cam)[None])
    torch.testing.assert_close(features[0, 0, :2], torch.tensor([W - 1.0, 2.0]), atol=1e-4, rtol=0)
    assert invalid.tolist() == [[True]]


def test_flip_augmentation_flips_input_and_feature_map_back() -> None:
    field = DensityField(depth=18, d_out=2, num_ch_dec=(2, 2, 2, 2, 2))
    field.encoder = RampEncoder()
    image = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(0))
    pose = torch.eye(4)[None]
    field.encode(image, K_NORM[None], pose, flip=False)
    cols = torch.arange(W, dtype=torch.float32)
    torch.testing.assert_close(field.features[0, 0], image[0, 0] + cols)
    field.encode(image, K_NORM[None], pose, flip=True)
    # The encoder saw flip(image); flipping its output back restores the image alignment and mirrors the ramp.
    torch.testing.assert_close(field.features[0, 0], image[0, 0] + cols.flip(0))


def test_sample_colors_from_two_render_views() -> None:
    gen = torch.Generator().manual_seed(3)
    images = torch.rand(1, 2, 3, H, W, generator=gen)
    c2w_1 = torch.eye(4)
    c2w_1[0, 3] = 5.0  # 5 m to the right: at depth 10 this is 5*0.5/10 = 0.25 ndc = 2 pixels
    w2c = torch.stack((torch.eye(4), torch.linalg.inv(c2w_1)))[None]
    K = K_NORM.expand(1, 2, 3, 3)
    x = _pixel_centre_ndc(6, W) / 0.5 * 10.0
    y = _pixel_centre_ndc(4, H) * 10.0
    points = torch.tensor([[[x, y, 10.0], [0.0, 0.0, -2.0]]])
    rgb, invalid = DensityField.sample_colors(points, images, K, w2c)
    assert rgb.shape == (1, 2, 2, 3) and invalid.shape == (1, 2, 2)
    torch.testing.assert_close(rgb[0, 0, 0], images[0, 0, :, 4, 6])
    torch.testing.assert_close(rgb[0, 0, 1], images[0, 1, :, 4, 4])
    assert invalid.tolist() == [[[False, False], [True, True]]]


def test_density_shapes_init_and_errors() -> None:
    torch.manual_seed(0)
    field = DensityField()  # paper configuration: ResNet-50, d_out 64
    assert tuple(field.mlp_coarse.lin_in.weight.shape) == (64, 103)
    assert tuple(field.mlp_coarse.lin_out.weight.shape) == (1, 64)
    assert field.mlp_coarse.lin_in.bias.abs().sum() == 0 and field.mlp_coarse.lin_out.bias.abs().sum() == 0
    # He-normal (fan-in): std sqrt(2/103).
    assert field.mlp_coarse.lin_in.weight.std().item() == pytest.approx(math.sqrt(2 / 103), rel=0.06)
    keys = field.state_dict().keys()
    assert "encoder.encoder.encoder.conv1.weight" in keys and "encoder.decoder.decoder.10.conv.weight" in keys
    with pytest.raises(RuntimeError, match="encode"):
        field.density(torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="K_norm"):
        field.encode(torch.zeros(1, 3, 64, 64), torch.eye(3), torch.eye(4)[None])
    field.eval()
    with torch.no_grad():
        field.encode(torch.zeros(2, 3, 64, 64), K_NORM.expand(2, 3, 3), torch.eye(4).expand(2, 4, 4))
        sigma, invalid = field.density(torch.rand(2, 7, 3) + torch.tensor([0.0, 0.0, 4.0]))
    assert field.features.shape == (2, 64, 64, 64)
    assert sigma.shape == (2, 7) and invalid.shape == (2, 7) and (sigma > 0).all()


def test_render_pass_gradients_reach_encoder_decoder_and_mlp() -> None:
    torch.manual_seed(0)
    field = DensityField(depth=18, d_out=8, num_ch_dec=(8, 8, 8, 8, 8))
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    field.encode(image, K_NORM[None], torch.eye(4)[None])
    views = RenderViews(images=(image[:, None] + 1) / 2, K=K_NORM[None, None], w2c=torch.eye(4)[None, None])
    rays_d = torch.cat((torch.rand(1, 32, 2) - 0.5, torch.ones(1, 32, 1)), dim=-1)
    out = render_rays(field, torch.zeros(1, 32, 3), rays_d, views, n_samples=16,
                      generator=torch.Generator().manual_seed(0), chunk_size=100)
    (out.depth.mean() / 80 + out.rgb.mean()).backward()
    for name in ("encoder.encoder.encoder.conv1.weight", "encoder.decoder.decoder.0.conv.conv.weight",
                 "encoder.decoder.decoder.10.conv.weight", "mlp_coarse.lin_in.weight", "mlp_coarse.lin_out.weight"):
        grad = field.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
