"""Throughput of the ray samplers and losses at the paper configuration (batch 8, 4096 rays, 192x640, 4 loss and
4 render views, 64 samples per ray). No timing assertions.

Run with ``pytest tests/benchmarks/test_bench_losses.py --benchmark-enable``; by default each runs once as a test.
"""

from __future__ import annotations

import torch

from vipocc.models.losses import depth_reconstruction_loss, photometric_loss, temporal_alignment_loss
from vipocc.models.ray_sampler import DepthPatchSampler, PatchSampler, SnogSampler
from vipocc.models.warp import pixel_intrinsics

B, V, H, W, N_SAMPLES, N_RAYS = 8, 4, 192, 640, 64, 4096
K_NORM = torch.tensor([[0.7849, 0.0, -0.0312], [0.0, 2.9391, 0.2701], [0.0, 0.0, 1.0]])


def _views(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(B, V, 3, H, W, generator=gen)
    poses = torch.eye(4).repeat(B, V, 1, 1)
    poses[..., :3, 3] = torch.randn(B, V, 3, generator=gen)
    return images, poses, K_NORM.expand(B, V, 3, 3).clone()


def _render_outputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    rgb = torch.rand(B, N_RAYS, V, 3, generator=gen, requires_grad=True)
    gt = torch.rand(B, N_RAYS, 3, generator=gen)
    weights = torch.softmax(torch.randn(B, N_RAYS, N_SAMPLES, generator=gen), dim=-1)
    invalid = torch.rand(B, N_RAYS, N_SAMPLES, V, generator=gen) < 0.2
    return rgb, gt, weights, invalid


def test_bench_patch_sampler(benchmark):
    images, poses, K = _views()
    sampler, gen = PatchSampler(), torch.Generator().manual_seed(0)
    rays = benchmark(lambda: sampler.sample(images, poses, K, gen))
    assert rays.n_rays == N_RAYS and rays.rgb_gt.shape == (B, N_RAYS, 3)


def test_bench_snog_sampler(benchmark):
    images, poses, K = _views()
    anchors = torch.randint(5, 180, (B, 4, 25, 64, 2), generator=torch.Generator().manual_seed(1)).to(torch.uint16)
    sampler, gen = SnogSampler(), torch.Generator().manual_seed(0)
    rays = benchmark(lambda: sampler.sample(images, poses, K, [1, 2, 5, 6], anchors, gen))
    assert rays.n_rays == N_RAYS


def test_bench_depth_sampler_and_recon_loss(benchmark):
    _, poses, K = _views()
    depth_pred = torch.rand(B, 1, H, W) * 80
    sampler, gen = DepthPatchSampler(), torch.Generator().manual_seed(0)

    def step():
        rays = sampler.sample(poses[:, 0], K[:, 0], (H, W), gen)
        rendered = torch.rand(B, rays.n_rays) * 80 * rays.z_factor
        return depth_reconstruction_loss(rays.gather(depth_pred)[..., 0], rendered)

    assert torch.isfinite(benchmark(step))


def test_bench_photometric_loss_forward_backward(benchmark):
    rgb, gt, weights, invalid = _render_outputs()

    def step():
        rgb.grad = None
        result = photometric_loss(rgb, gt, weights, invalid)
        result.loss.backward()
        return result.loss

    assert torch.isfinite(benchmark(step))


def test_bench_sampler_plus_photometric_loss(benchmark):
    images, poses, K = _views()
    rgb, _, weights, invalid = _render_outputs()
    sampler, gen = PatchSampler(), torch.Generator().manual_seed(0)

    def step():
        rays = sampler.sample(images, poses, K, gen)
        return photometric_loss(rgb, rays.rgb_gt, weights, invalid).loss

    assert torch.isfinite(benchmark(step))


def test_bench_temporal_alignment_forward_backward(benchmark):
    gen = torch.Generator().manual_seed(0)
    img_t, img_t1 = torch.rand(2, B, 3, H, W, generator=gen) * 2 - 1
    depth_t = (torch.rand(B, 1, H, W, generator=gen) * 40 + 5).requires_grad_(True)
    depth_t1 = (torch.rand(B, 1, H, W, generator=gen) * 40 + 5).requires_grad_(True)
    T = torch.eye(4).repeat(B, 1, 1)
    T[:, 2, 3] = -0.8  # ~1 frame of forward motion
    K_pixel = pixel_intrinsics(K_NORM.expand(B, 3, 3), (H, W))

    def step():
        depth_t.grad = depth_t1.grad = None
        out = temporal_alignment_loss(img_t, img_t1, depth_t, depth_t1, T, K_pixel)
        out.loss.backward()
        return out.loss

    assert torch.isfinite(benchmark(step))
