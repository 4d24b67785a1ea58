"""The assembled network: full-image rendered depth against analytic geometry, flags, seeded initialisation."""
import math

import pytest
import torch

from vipocc.config import validate_config
from vipocc.models.network import NetworkConfig, ViPOccNetwork
from vipocc.training.experiments import training_settings
from vipocc.training.trainer import build_network

SMALL = NetworkConfig(encoder_depth=18, n_samples=16, use_depth_branch=False)


def test_rendered_depth_map_of_an_opaque_field_is_the_first_sample_in_z(monkeypatch):
    """With a huge density everywhere every ray stops at its first sample, at distance z_0 (bin centre of the first
    disparity-linear stratum); its camera z is z_0 / |K^-1 [x, y, 1]| with x, y = linspace(-1, 1) pixel coords."""
    net = ViPOccNetwork(SMALL).eval()
    monkeypatch.setattr(net.field, "density", lambda points: (torch.full(points.shape[:2], 1e6),
                                                               torch.zeros(points.shape[:2], dtype=torch.bool)))
    height, width, (fx, fy, cx, cy) = 40, 48, (0.8, 2.9, -0.05, 0.25)
    K = torch.tensor([[[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]]])
    depth = net.render_depth_map(torch.zeros(1, 3, height, width), K, chunk_rays=500)
    t0 = 0.5 / 16
    z0 = 1.0 / ((1 - t0) / 3.0 + t0 / 80.0)
    y = torch.linspace(-1, 1, height).view(-1, 1)
    x = torch.linspace(-1, 1, width).view(1, -1)
    expected = z0 / torch.sqrt(((x - cx) / fx) ** 2 + ((y - cy) / fy) ** 2 + 1)
    assert depth.shape == (1, 1, height, width)
    torch.testing.assert_close(depth[0, 0], expected, rtol=1e-5, atol=1e-5)


def test_rendered_depth_map_does_not_depend_on_the_chunk_size():
    net = ViPOccNetwork(SMALL).eval()
    image = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(1)) * 2 - 1
    K = torch.tensor([[0.8, 0, 0.0], [0, 2.9, 0.2], [0, 0, 1.0]]).expand(2, 3, 3)
    whole = net.render_depth_map(image, K, chunk_rays=10**6)
    chunked = net.render_depth_map(image, K, chunk_rays=333)
    torch.testing.assert_close(whole, chunked, rtol=1e-6, atol=1e-5)
    assert bool(((whole >= 3.0 * 0.5) & (whole <= 80.0)).all())  # inside [near, far] up to the ray angle


def test_flags_and_errors():
    assert ViPOccNetwork(SMALL).depth_branch is None
    with pytest.raises(ValueError, match="no depth branch"):
        ViPOccNetwork(SMALL).predict_depth(torch.zeros(1, 3, 64, 64), torch.ones(1, 1, 64, 64))
    with pytest.raises(ValueError, match="rid_ablation='inverse'"):
        NetworkConfig(rid_ablation="inverse")
    net = ViPOccNetwork(NetworkConfig(encoder_depth=18, rid_ablation="res_depth"))
    assert net.depth_branch.mode == "res_depth"
    assert any(name.startswith("depth_branch.res_depth.") for name, _ in net.named_parameters())


def test_initial_weights_depend_on_the_seed_only():
    config = validate_config({"dataset": {"kind": "synthetic"}, "training": {"encoder_depth": 18}})
    settings = training_settings(config, "vipocc")
    first = build_network(settings).state_dict()
    torch.rand(1000)  # the global RNG state must not matter
    second = build_network(settings).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = validate_config({"dataset": {"kind": "synthetic"}, "training": {"encoder_depth": 18, "seed": 1}})
    third = build_network(training_settings(other, "vipocc")).state_dict()
    key = "field.mlp_coarse.lin_in.weight"
    assert not torch.equal(first[key], third[key]) and not math.isnan(float(third[key].sum()))
