"""Throughput of one density-field forward: encode the key view, then render 4096 rays x 64 samples.

Run with ``pytest tests/benchmarks/test_bench_models.py --benchmark-enable``; without it each case runs once as a
plain smoke test. No timing is asserted.
"""

from __future__ import annotations

import pytest
import torch

from vipocc.models.density_field import DensityField
from vipocc.models.renderer import render_rays

CONFIGS = {
    "paper_resnet50_192x640": dict(depth=50, height=192, width=640),
    "small_resnet18_96x320": dict(depth=18, height=96, width=320),
}
N_RAYS, N_SAMPLES = 4096, 64


@pytest.mark.parametrize("name", list(CONFIGS))
def test_bench_density_field_forward(benchmark, name: str) -> None:
    cfg = CONFIGS[name]
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    field = DensityField(depth=cfg["depth"]).eval()
    image = torch.rand(1, 3, cfg["height"], cfg["width"], generator=gen) * 2 - 1
    K_norm = torch.tensor([[[1.8, 0.0, 0.0], [0.0, 5.8, 0.0], [0.0, 0.0, 1.0]]])  # roughly KITTI-360 192x640
    pose = torch.eye(4)[None]
    pixels = torch.rand(1, N_RAYS, 2, generator=gen) * 2 - 1
    rays_d = torch.cat((pixels / K_norm[:, None, [0, 1], [0, 1]], torch.ones(1, N_RAYS, 1)), dim=-1)
    rays_o = torch.zeros(1, N_RAYS, 3)

    def forward():
        with torch.no_grad():
            field.encode(image, K_norm, pose)
            return render_rays(field, rays_o, rays_d, n_samples=N_SAMPLES, generator=torch.Generator().manual_seed(1))

    out = benchmark.pedantic(forward, rounds=3, iterations=1, warmup_rounds=1)
    assert out.depth.shape == (1, N_RAYS)
