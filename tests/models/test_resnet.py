"""ResNet: torchvision name/shape compatibility (expected keys built by hand), strict loading, encoder maps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vipocc.models.resnet import Bottleneck, ResnetEncoder, resnet


def _bn(prefix: str, channels: int) -> list[tuple[str, tuple[int, ...]]]:
    return [
        (f"{prefix}.weight", (channels,)),
        (f"{prefix}.bias", (channels,)),
        (f"{prefix}.running_mean", (channels,)),
        (f"{prefix}.running_var", (channels,)),
        (f"{prefix}.num_batches_tracked", ()),
    ]


def torchvision_keys(depth: int) -> list[tuple[str, tuple[int, ...]]]:
    """torchvision's resnet{18,50} state_dict (name, shape) in order, written from the architecture definition:
    stem conv 7x7/2 + BN; stages of (2,2,2,2) BasicBlocks or (3,4,6,3) Bottlenecks with widths 64..512; a 1x1
    projection shortcut (downsample.0 conv + downsample.1 BN) on the first block of a stage when the shape changes;
    fc to 1000 classes."""
    bottleneck = depth == 50
    counts = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3)}[depth]
    expansion = 4 if bottleneck else 1
    keys = [("conv1.weight", (64, 3, 7, 7))] + _bn("bn1", 64)
    in_ch = 64
    for stage, (n_blocks, width) in enumerate(zip(counts, (64, 128, 256, 512)), start=1):
        out_ch = width * expansion
        for b in range(n_blocks):
            p = f"layer{stage}.{b}"
            if bottleneck:
                keys += [(f"{p}.conv1.weight", (width, in_ch, 1, 1))] + _bn(f"{p}.bn1", width)
                keys += [(f"{p}.conv2.weight", (width, width, 3, 3))] + _bn(f"{p}.bn2", width)
                keys += [(f"{p}.conv3.weight", (out_ch, width, 1, 1))] + _bn(f"{p}.bn3", out_ch)
            else:
                keys += [(f"{p}.conv1.weight", (width, in_ch, 3, 3))] + _bn(f"{p}.bn1", width)
                keys += [(f"{p}.conv2.weight", (width, width, 3, 3))] + _bn(f"{p}.bn2", width)
            if b == 0 and (stage > 1 or in_ch != out_ch):
                keys += [(f"{p}.downsample.0.weight", (out_ch, in_ch, 1, 1))] + _bn(f"{p}.downsample.1", out_ch)
            in_ch = out_ch
    keys += [("fc.weight", (1000, 512 * expansion)), ("fc.bias", (1000,))]
    return keys


@pytest.mark.parametrize("depth", [18, 50])
def test_state_dict_names_and_shapes_match_torchvision(depth: int) -> None:
    ours = [(name, tuple(t.shape)) for name, t in resnet(depth).state_dict().items()]
    assert ours == torchvision_keys(depth)


@pytest.mark.parametrize(("depth", "n_params"), [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032)])
def test_parameter_counts_match_torchvision_model_cards(depth: int, n_params: int) -> None:
    # Counts published on torchvision's ResNet model pages.
    assert sum(p.numel() for p in resnet(depth).parameters()) == n_params


def test_bottleneck_strides_on_3x3_conv_v1_5() -> None:
    block = resnet(50).layer2[0]
    assert isinstance(block, Bottleneck)
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)
    assert block.downsample[0].stride == (2, 2)


def test_bottleneck_forward_matches_functional_definition() -> None:
    torch.manual_seed(0)
    block = resnet(50).layer2[0].eval()
    for bn in (block.bn1, block.bn2, block.bn3, block.downsample[1]):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 256, 8, 8)

    def bn(t, m):
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    out = F.relu(bn(F.conv2d(x, block.conv1.weight), block.bn1))
    out = F.relu(bn(F.conv2d(out, block.conv2.weight, stride=2, padding=1), block.bn2))
    out = bn(F.conv2d(out, block.conv3.weight), block.bn3)
    shortcut = bn(F.conv2d(x, block.downsample[0].weight, stride=2), block.downsample[1])
    expected = F.relu(out + shortcut)
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected)


def _random_state(depth: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    state = {}
    for name, shape in torchvision_keys(depth):
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(7)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[name] = torch.randn(shape, generator=gen)
    return state


def test_strict_load_from_local_pth(tmp_path) -> None:
    state = _random_state(18)
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    loaded = resnet(18, pretrained_path=path).state_dict()
    for name, tensor in state.items():
        torch.testing.assert_close(loaded[name], tensor)


def test_load_file_without_num_batches_tracked_like_imagenet_v1(tmp_path) -> None:
    state = {k: v for k, v in _random_state(18).items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pth"
    torch.save(state, path)
    model = resnet(18, pretrained_path=path)
    torch.testing.assert_close(model.layer3[1].bn2.running_var, state["layer3.1.bn2.running_var"])


def test_strict_load_lists_missing_and_unexpected_keys(tmp_path) -> None:
    state = _random_state(18)
    del state["layer4.1.conv2.weight"]
    state["head.extra"] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError) as err:
        resnet(18, pretrained_path=path)
    message = str(err.value)
    assert "layer4.1.conv2.weight" in message and "head.extra" in message and str(path) in message


def test_load_errors_shape_missing_file_and_bad_depth(tmp_path) -> None:
    state = _random_state(18)
    state["fc.weight"] = torch.zeros(10, 512)
    path = tmp_path / "shape.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="fc.weight"):
        resnet(18, pretrained_path=path)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        resnet(18, pretrained_path=tmp_path / "nope.pth")
    torch.save({"model": {"a": torch.zeros(1)}}, tmp_path / "nested.pth")
    with pytest.raises(ValueError, match="plain state_dict"):
        resnet(18, pretrained_path=tmp_path / "nested.pth")
    with pytest.raises(ValueError, match="depth"):
        resnet(101)


@pytest.mark.parametrize(("depth", "channels"), [(18, [64, 64, 128, 256, 512]), (50, [64, 256, 512, 1024, 2048])])
def test_encoder_feature_pyramid(depth: int, channels: list[int]) -> None:
    encoder = ResnetEncoder(depth).eval()
    with torch.no_grad():
        maps = encoder(torch.zeros(2, 3, 64, 96))
    assert [tuple(m.shape) for m in maps] == [(2, c, 64 // 2**i, 96 // 2**i) for i, c in enumerate(channels, 1)]
    assert encoder.num_ch_enc == channels
    assert not any(k.startswith("encoder.fc") for k in encoder.state_dict())


def test_encoder_input_normalisation() -> None:
    torch.manual_seed(0)
    encoder = ResnetEncoder(18).eval()
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    net = encoder.encoder
    normalised = ((image + 1) / 2 - 0.45) / 0.225
    expected = F.relu(
        F.batch_norm(
            F.conv2d(normalised, net.conv1.weight, stride=2, padding=3),
            net.bn1.running_mean, net.bn1.running_var, net.bn1.weight, net.bn1.bias, False, 0.0, net.bn1.eps,
        )
    )
    with torch.no_grad():
        torch.testing.assert_close(encoder(image)[0], expected)
    with pytest.raises(ValueError, match="image"):
        encoder(torch.zeros(1, 1, 32, 32))
