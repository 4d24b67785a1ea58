"""Depth branch: inverse depth alignment (reference check, no mutation, guard), ablation heads, module."""

from __future__ import annotations

import pytest
import torch

from vipocc.models.depth_branch import DepthBranch, align_inverse_depth, disparity_to_depth, residual_depth


def test_reference_numeric_check() -> None:
    # 1 / (1/10 + 0.5/10) = 1/0.15
    depth = align_inverse_depth(torch.tensor([[[[10.0]]]]), torch.tensor([[[[0.5]]]]))
    assert depth.item() == pytest.approx(6.6667, abs=1e-4)


def test_prior_is_clipped_to_0p1_and_80() -> None:
    prior = torch.tensor([0.01, 1000.0, 5.0], dtype=torch.float64)
    depth = align_inverse_depth(prior, torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(depth, 1 / (1 / torch.tensor([0.1, 80.0, 5.0], dtype=torch.float64) + 1e-8))


@pytest.mark.parametrize("reference", [False, True])
def test_inputs_are_not_mutated(reference: bool) -> None:
    prior = torch.tensor([0.05, 10.0, 200.0])
    residual = torch.tensor([0.5, -0.3, 2.0], requires_grad=True)
    prior_copy, residual_copy = prior.clone(), residual.detach().clone()
    align_inverse_depth(prior, residual, reference=reference).sum().backward()
    assert torch.equal(prior, prior_copy) and torch.equal(residual.detach(), residual_copy)


def test_guard_caps_depth_where_reference_goes_negative_or_infinite() -> None:
    prior = torch.full((3,), 10.0, dtype=torch.float64)
    residual = torch.tensor([-5.0, -1.0, -0.95], dtype=torch.float64)
    # Inverse depths 0.1 - 0.5 = -0.4, 0.1 - 0.1 = 0 and 0.1 - 0.095 = 0.005 < 1/80.
    unguarded = align_inverse_depth(prior, residual, reference=True)
    torch.testing.assert_close(unguarded, 1 / (torch.tensor([-0.4, 0.0, 0.005], dtype=torch.float64) + 1e-8))
    assert unguarded[0] < 0 and unguarded[1] > 1e7
    guarded = align_inverse_depth(prior, residual)
    torch.testing.assert_close(guarded, torch.full((3,), 1 / (1 / 80 + 1e-8), dtype=torch.float64))


def test_guard_is_exact_and_differentiable_where_inactive() -> None:
    gen = torch.Generator().manual_seed(0)
    # Priors in [1, 20] m and residuals in [-0.1, 0.9]: inverse depth >= 1/20 - 0.01 > 1/80, guard inactive.
    prior = torch.rand(2, 1, 4, 5, generator=gen) * 19 + 1
    residual = (torch.rand(2, 1, 4, 5, generator=gen) - 0.1).requires_grad_(True)
    guarded = align_inverse_depth(prior, residual)
    assert torch.equal(guarded, align_inverse_depth(prior, residual, reference=True))
    guarded.sum().backward()
    # d/dr 1/(a + r/10) = -1/10 D^2
    torch.testing.assert_close(residual.grad, -(guarded.detach() ** 2) / 10)
    blocked = torch.tensor([-50.0], requires_grad=True)
    align_inverse_depth(torch.tensor([10.0]), blocked).sum().backward()
    assert blocked.grad.item() == 0.0  # the clamp passes no gradient where active


def test_alignment_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="broadcast"):
        align_inverse_depth(torch.ones(2, 3), torch.ones(4))
    with pytest.raises(ValueError, match="tensors"):
        align_inverse_depth(10.0, torch.ones(1))


def test_ablation_heads_hand_values() -> None:
    prior = torch.tensor([10.0])
    assert residual_depth(prior, torch.tensor([0.0]), torch.tensor(80.0), torch.tensor(0.5)).item() == 50.5
    assert disparity_to_depth(torch.tensor(0.0)).item() == pytest.approx(1 / (1 / 80 + (10 - 1 / 80) * 0.5))
    assert disparity_to_depth(torch.tensor(-50.0)).item() == pytest.approx(80.0)
    assert disparity_to_depth(torch.tensor(50.0)).item() == pytest.approx(0.1)


def test_rid_branch_layout_zero_residual_and_gradients() -> None:
    torch.manual_seed(0)
    branch = DepthBranch("rid")
    head = branch.get_parameter("res_inv_depth.decoder.decoder.10.conv.weight")
    assert tuple(head.shape) == (1, 16, 3, 3)  # decoder widths [16,32,64,128,256], d_out 1
    image = torch.rand(2, 3, 64, 96) * 2 - 1
    prior = torch.rand(2, 1, 64, 96) * 30 + 2
    depth = branch(image, prior)
    assert depth.shape == (2, 1, 64, 96) and (depth > 0).all() and (depth <= 80).all()
    depth.mean().backward()
    for name in ("res_inv_depth.encoder.encoder.conv1.weight", "res_inv_depth.decoder.decoder.0.conv.conv.weight",
                 "res_inv_depth.decoder.decoder.10.conv.weight"):
        grad = branch.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    with torch.no_grad():
        head.zero_()
        branch.get_parameter("res_inv_depth.decoder.decoder.10.conv.bias").zero_()
        torch.testing.assert_close(branch(image, prior), 1 / (1 / prior + 1e-8))


def test_ablation_modules() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    prior = torch.full((1, 1, 64, 64), 10.0)
    res = DepthBranch("res_depth")
    assert res.res_depth_alpha.item() == 80.0 and res.res_depth_beta.item() == 0.5
    out = res(image, prior)
    assert ((out >= 10.5) & (out <= 90.5)).all()
    direct = DepthBranch("depth")
    assert tuple(direct.get_parameter("depth_model.decoder.decoder.10.conv.weight").shape) == (1, 128, 3, 3)
    out = direct(image)
    assert out.shape == (1, 1, 64, 64) and ((out >= 0.1) & (out <= 80)).all()
    out.mean().backward()
    grad = direct.get_parameter("depth_model.encoder.encoder.conv1.weight").grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    with pytest.raises(ValueError, match="mode"):
        DepthBranch("nope")
    with pytest.raises(ValueError, match="prior_depth"):
        DepthBranch("rid")(image)
    with pytest.raises(ValueError, match="prior_depth"):
        res(image, prior[..., :32])
