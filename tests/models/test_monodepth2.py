"""Monodepth2 decoder: channel widths, reference-compatible parameter layout, shapes, and an independent forward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vipocc.models.monodepth2 import Decoder, Monodepth2, decoder_channels


def test_decoder_widths_raised_to_d_out() -> None:
    assert decoder_channels([32, 32, 64, 128, 256], 64) == [64, 64, 64, 128, 256]
    assert decoder_channels([16, 32, 64, 128, 256], 1) == [16, 32, 64, 128, 256]
    with pytest.raises(ValueError, match="num_ch_dec"):
        decoder_channels([16, 32, 64], 1)


def test_parameter_layout_follows_reference_module_list() -> None:
    # ResNet-18 encoder widths [64,64,128,256,512], decoder [16,32,64,128,256], d_out 1 (the ViPOcc depth branch).
    # Reference order: upconv(4,0), upconv(4,1), ..., upconv(0,1) at 0..9, dispconv(0) at 10; (out, in) by hand:
    expected = {
        0: (256, 512), 1: (256, 256 + 256), 2: (128, 256), 3: (128, 128 + 128), 4: (64, 128),
        5: (64, 64 + 64), 6: (32, 64), 7: (32, 32 + 64), 8: (16, 32), 9: (16, 16),
    }
    state = Decoder([64, 64, 128, 256, 512], [16, 32, 64, 128, 256], 1).state_dict()
    wanted = {f"decoder.{i}.conv.conv.weight": (o, c, 3, 3) for i, (o, c) in expected.items()}
    wanted |= {f"decoder.{i}.conv.conv.bias": (o,) for i, (o, _) in expected.items()}
    wanted |= {"decoder.10.conv.weight": (1, 16, 3, 3), "decoder.10.conv.bias": (1,)}
    assert {k: tuple(v.shape) for k, v in state.items()} == wanted


def _slow_decoder(decoder: Decoder, features: list[torch.Tensor]) -> torch.Tensor:
    """Independent forward: explicit reflection pad + conv + ELU, nearest x2 by repeat_interleave, crop, concat."""

    def conv(x, module):  # module: Conv3x3
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), module.conv.weight, module.conv.bias)

    x = features[4]
    for stage, level in enumerate([4, 3, 2, 1, 0]):
        x = F.elu(conv(x, decoder.decoder[2 * stage].conv))
        x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        if level > 0:
            skip = features[level - 1]
            x = torch.cat([x[:, :, : skip.shape[2], : skip.shape[3]], skip], dim=1)
        x = F.elu(conv(x, decoder.decoder[2 * stage + 1].conv))
    return conv(x, decoder.decoder[10])


@pytest.mark.parametrize("size", [(64, 96), (70, 100)])
def test_decoder_matches_independent_forward(size: tuple[int, int]) -> None:
    gen = torch.Generator().manual_seed(0)
    height, width = size
    channels = [4, 6, 8, 10, 12]
    sizes = [(height, width)]
    for _ in range(5):  # strided-conv sizes: ceil halving
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    features = [torch.randn(2, c, *hw, generator=gen) for c, hw in zip(channels, sizes[1:])]
    decoder = Decoder(channels, [3, 4, 5, 6, 7], d_out=5)
    with torch.no_grad():
        out = decoder(features)
        expected = _slow_decoder(decoder, features)
    assert out.shape == (2, 5, 2 * sizes[1][0], 2 * sizes[1][1])
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("size", [(64, 96), (70, 100)])
def test_monodepth2_output_is_full_resolution(size: tuple[int, int]) -> None:
    net = Monodepth2(depth=18, d_out=8, num_ch_dec=(4, 4, 8, 8, 8)).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 3, *size))
    assert out.shape == (1, 8, *size)


def test_monodepth2_gradients_reach_encoder_and_decoder() -> None:
    torch.manual_seed(0)
    net = Monodepth2(depth=18, d_out=4, num_ch_dec=(4, 4, 8, 8, 8))
    net(torch.rand(2, 3, 64, 64) * 2 - 1).square().mean().backward()
    for name in ("encoder.encoder.conv1.weight", "encoder.encoder.layer4.1.conv2.weight",
                 "decoder.decoder.0.conv.conv.weight", "decoder.decoder.10.conv.weight"):
        grad = net.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_decoder_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="num_ch_enc"):
        Decoder([64, 64], [16, 32, 64, 128, 256], 1)
    with pytest.raises(ValueError, match="d_out"):
        Decoder([64, 64, 128, 256, 512], [16, 32, 64, 128, 256], 0)
    with pytest.raises(ValueError, match="5 encoder maps"):
        Decoder([64, 64, 128, 256, 512], [16, 32, 64, 128, 256], 1)([torch.zeros(1)])
