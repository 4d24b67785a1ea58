"""Renderer: sample placement, analytic compositing, step densities, determinism, chunking, z conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vipocc.models.density_field import RenderViews
from vipocc.models.renderer import composite, distance_to_z, render_rays, stratified_depths


def test_lindisp_bin_centres_are_equally_spaced_in_disparity() -> None:
    z = stratified_depths(2, n_samples=8, near=3.0, far=80.0, jitter=False).double()
    disparity = 1.0 / z
    steps = disparity[:, 1:] - disparity[:, :-1]
    torch.testing.assert_close(steps, torch.full_like(steps, (1 / 80 - 1 / 3) / 8), rtol=1e-5, atol=0)
    # First centre at t = 1/16: 1 / (15/16 / 3 + 1/16 / 80).
    assert z[0, 0].item() == pytest.approx(1 / (15 / 16 / 3 + 1 / 16 / 80), rel=1e-6)


def test_jittered_samples_stay_in_their_bins() -> None:
    n = 64
    z = stratified_depths(500, n_samples=n, generator=torch.Generator().manual_seed(0)).double()
    t = (1 / z - 1 / 3) / (1 / 80 - 1 / 3)  # invert z = 1/((1-t)/near + t/far)
    k = torch.arange(n, dtype=torch.float64)
    assert ((t >= k / n - 1e-6) & (t <= (k + 1) / n + 1e-6)).all()
    assert (z[:, 1:] > z[:, :-1]).all() and z.min() >= 3.0 and z.max() <= 80.0
    # The offsets inside the bins look uniform (mean 0.5, var 1/12).
    u = (t * n - k).flatten()
    assert u.mean().item() == pytest.approx(0.5, abs=0.01) and u.var().item() == pytest.approx(1 / 12, abs=0.005)


def test_linear_depth_spacing_and_argument_checks() -> None:
    z = stratified_depths(1, n_samples=4, near=2.0, far=10.0, lindisp=False, jitter=False)
    torch.testing.assert_close(z, torch.tensor([[3.0, 5.0, 7.0, 9.0]]))
    with pytest.raises(ValueError, match="near"):
        stratified_depths(1, near=5.0, far=1.0)
    with pytest.raises(ValueError, match="n_samples"):
        stratified_depths(1, n_samples=0)


def test_generator_makes_samples_reproducible() -> None:
    a = stratified_depths(8, generator=torch.Generator().manual_seed(42))
    b = stratified_depths(8, generator=torch.Generator().manual_seed(42))
    c = stratified_depths(8, generator=torch.Generator().manual_seed(43))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_constant_density_matches_closed_form() -> None:
    sigma_value, delta, z0, n = 0.3, 0.5, 3.0, 20
    depths = torch.tensor(z0 + delta * np.arange(n), dtype=torch.float64)[None]
    out = composite(torch.full_like(depths, sigma_value), depths)
    # Geometric series: w_k = (1 - q) q^k for k < n-1, the capped last sample takes the remainder q^(n-1).
    q = np.exp(-sigma_value * delta)
    k = np.arange(n)
    expected_w = np.where(k < n - 1, (1 - q) * q**k, q ** (n - 1))
    torch.testing.assert_close(out.weights[0], torch.tensor(expected_w), rtol=1e-8, atol=1e-12)
    expected_depth = float((expected_w * (z0 + delta * k)).sum())
    assert out.depth.item() == pytest.approx(expected_depth, rel=1e-8)
    assert out.alphas[0, -1].item() == 1.0


def test_step_density_puts_depth_at_the_surface() -> None:
    depths = torch.linspace(3.0, 30.0, 271)[None]  # 0.1 m spacing
    surface = 12.34
    sigma = torch.where(depths >= surface, torch.tensor(1e3), torch.tensor(0.0))
    out = composite(sigma, depths)
    first_solid = depths[depths >= surface].min().item()
    assert out.depth.item() == pytest.approx(first_solid, abs=1e-3)
    assert abs(out.depth.item() - surface) < 0.1


def test_weights_sum_to_one_with_hard_cap_and_colours() -> None:
    gen = torch.Generator().manual_seed(0)
    sigma = torch.rand(5, 7, 16, generator=gen) * 3 - 1  # some negative: relu'd
    depths = torch.sort(torch.rand(5, 7, 16, generator=gen) * 50 + 3, dim=-1).values
    colours = torch.rand(5, 7, 16, 2, 3, generator=gen)
    out = composite(sigma, depths, colours)
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(5, 7))
    assert out.rgb.shape == (5, 7, 2, 3)
    torch.testing.assert_close(out.rgb, torch.einsum("abk,abkvc->abvc", out.weights, colours))
    grey = composite(sigma, depths, torch.full((5, 7, 16, 2, 3), 0.25)).rgb
    torch.testing.assert_close(grey, torch.full((5, 7, 2, 3), 0.25))
    # Without the cap, empty space transmits everything: all weights are zero.
    assert composite(torch.zeros(1, 16), depths[0, :1], hard_alpha_cap=False).weights.abs().sum() == 0
    with pytest.raises(ValueError, match="same shape"):
        composite(sigma, depths[..., :-1])


def test_distance_to_z() -> None:
    dirs = torch.tensor([[3.0, 4.0, 12.0], [0.0, 0.0, 2.0]])
    torch.testing.assert_close(distance_to_z(torch.tensor([13.0, 5.0]), dirs), torch.tensor([12.0, 5.0]))
    with pytest.raises(ValueError, match="ray_dirs_cam"):
        distance_to_z(torch.ones(3), dirs)


class WallField:
    """Analytic field: opaque half-space z >= wall (world frame); colour = (x, y, z) of the point, one view."""

    def __init__(self, wall: float) -> None:
        self.wall = wall
        self.calls = 0

    def density(self, points):
        self.calls += 1
        return torch.where(points[..., 2] >= self.wall, 1e4, 0.0), points[..., 0] > 100

    def sample_colors(self, points, images, K, w2c):
        return points.unsqueeze(2), torch.zeros(points.shape[:2] + (1,), dtype=torch.bool)


def test_render_rays_against_a_wall_and_chunking() -> None:
    wall = 20.0
    rays_d = torch.tensor([[[0.0, 0.0, 1.0], [3.0, 0.0, 4.0], [0.0, -1.0, 1.0]]])  # not unit: normalised inside
    rays_o = torch.zeros(1, 3, 3)
    views = RenderViews(images=torch.zeros(1, 1, 3, 4, 4), K=torch.eye(3)[None, None], w2c=torch.eye(4)[None, None])
    field = WallField(wall)
    out = render_rays(field, rays_o, rays_d, views, n_samples=512, jitter=False, chunk_size=10**6)
    distance_to_wall = wall * rays_d.norm(dim=-1) / rays_d[..., 2]
    # The opaque sample is the first one past the wall; it lies within one lindisp bin (< 0.5 m here) of it.
    cos_z = (rays_d[..., 2] / rays_d.norm(dim=-1)).unsqueeze(-1)
    first_inside = torch.where(out.z_samples * cos_z >= wall, out.z_samples, torch.inf).min(dim=-1).values
    torch.testing.assert_close(out.depth, first_inside, rtol=1e-5, atol=0)
    torch.testing.assert_close(out.depth, distance_to_wall, rtol=0.02, atol=0)
    torch.testing.assert_close(distance_to_z(out.depth, rays_d), torch.full((1, 3), wall), rtol=0.02, atol=0)
    # The composited colour is the hit point itself.
    hit = distance_to_wall[..., None] * rays_d / rays_d.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(out.rgb[:, :, 0], hit, rtol=0.02, atol=0.02)
    assert out.weights.shape == (1, 3, 512) and out.invalid.shape == (1, 3, 512, 1)
    assert out.rgb_samples.shape == (1, 3, 512, 1, 3)
    chunked_field = WallField(wall)
    chunked = render_rays(chunked_field, rays_o, rays_d, views, n_samples=512, jitter=False, chunk_size=100)
    assert chunked_field.calls == 16  # ceil(3 * 512 / 100)
    torch.testing.assert_close(chunked.depth, out.depth)


def test_render_rays_seeded_generator_is_deterministic() -> None:
    rays_d = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]]])
    rays_o = torch.zeros(1, 2, 3)

    def render(seed):
        return render_rays(WallField(10.0), rays_o, rays_d, generator=torch.Generator().manual_seed(seed)).depth

    assert torch.equal(render(5), render(5)) and not torch.equal(render(5), render(6))
    with pytest.raises(ValueError, match="rays_o"):
        render_rays(WallField(1.0), rays_o[0], rays_d[0])
