"""Depth Anything V2 backend: HF folder loading, original .pth conversion, reference input handling.

Truths used: hand-computed resize sizes; an inverse key map (HF -> original) and a functional forward pass of the
ORIGINAL architecture, both written here from the architecture description (independent of the module's
conversion table); OpenCV's INTER_CUBIC as third-party bicubic; a numpy align_corners bilinear resize.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vipocc.priors import depth_anything as da
from vipocc.priors import tiny_models

TAPS_TINY = (0, 1, 2, 3)  # original 0-based blocks tapped by the tiny model (HF stages 1..4)


@pytest.fixture(scope="module")
def tiny_hf_model():
    """In-memory tiny HF model with every parameter random (biases and layer scales included)."""
    from transformers import DepthAnythingForDepthEstimation

    generator = torch.Generator().manual_seed(123)
    model = DepthAnythingForDepthEstimation(tiny_models.tiny_depth_anything_config()).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return model


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return tiny_models.build_tiny_depth_anything(tmp_path_factory.mktemp("da") / "tiny_da")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(7).integers(0, 256, size=(3, 192, 640, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# independent truth: HF -> original key map and the original forward pass
# ---------------------------------------------------------------------------------------------------------------

def hf_to_original(hf: dict[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """Rename an HF Depth Anything state dict to the original repository layout; every HF key must be used."""
    src = dict(hf)
    out: dict[str, torch.Tensor] = {}

    def move(hf_key: str, original_key: str) -> None:
        out[original_key] = src.pop(hf_key)

    move("backbone.embeddings.cls_token", "pretrained.cls_token")
    move("backbone.embeddings.mask_token", "pretrained.mask_token")
    move("backbone.embeddings.position_embeddings", "pretrained.pos_embed")
    for wb in ("weight", "bias"):
        move(f"backbone.embeddings.patch_embeddings.projection.{wb}", f"pretrained.patch_embed.proj.{wb}")
        move(f"backbone.layernorm.{wb}", f"pretrained.norm.{wb}")
    for i in range(depth):
        hf_layer, block = f"backbone.encoder.layer.{i}", f"pretrained.blocks.{i}"
        for wb in ("weight", "bias"):
            out[f"{block}.attn.qkv.{wb}"] = torch.cat(
                [src.pop(f"{hf_layer}.attention.{p}_proj.{wb}") for p in ("q", "k", "v")], dim=0)
            move(f"{hf_layer}.attention.o_proj.{wb}", f"{block}.attn.proj.{wb}")
            for norm in ("norm1", "norm2"):
                move(f"{hf_layer}.{norm}.{wb}", f"{block}.{norm}.{wb}")
            for fc in ("fc1", "fc2"):
                move(f"{hf_layer}.mlp.{fc}.{wb}", f"{block}.mlp.{fc}.{wb}")
        move(f"{hf_layer}.layer_scale1.lambda1", f"{block}.ls1.gamma")
        move(f"{hf_layer}.layer_scale2.lambda1", f"{block}.ls2.gamma")
    for i in range(4):
        for wb in ("weight", "bias"):
            move(f"neck.reassemble_stage.layers.{i}.projection.{wb}", f"depth_head.projects.{i}.{wb}")
            if i != 2:
                move(f"neck.reassemble_stage.layers.{i}.resize.{wb}", f"depth_head.resize_layers.{i}.{wb}")
        move(f"neck.convs.{i}.weight", f"depth_head.scratch.layer{i + 1}_rn.weight")
    for j in range(4):  # HF fusion layer j runs j-th from the deepest: refinenet4, 3, 2, 1
        hf_fuse, refine = f"neck.fusion_stage.layers.{j}", f"depth_head.scratch.refinenet{4 - j}"
        for wb in ("weight", "bias"):
            move(f"{hf_fuse}.projection.{wb}", f"{refine}.out_conv.{wb}")
            for unit in (1, 2):
                for conv in (1, 2):
                    move(f"{hf_fuse}.residual_layer{unit}.convolution{conv}.{wb}",
                         f"{refine}.resConfUnit{unit}.conv{conv}.{wb}")
    for wb in ("weight", "bias"):
        move(f"head.conv1.{wb}", f"depth_head.scratch.output_conv1.{wb}")
        move(f"head.conv2.{wb}", f"depth_head.scratch.output_conv2.0.{wb}")
        move(f"head.conv3.{wb}", f"depth_head.scratch.output_conv2.2.{wb}")
    assert not src, f"HF keys left unmapped by the test's inverse map: {sorted(src)}"
    return out


def original_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, taps, heads: int, max_depth: float):
    """Functional forward pass of the original DepthAnythingV2 (metric) on normalised pixels [B, 3, H, W]."""
    batch, _, height, width = x.shape
    ph, pw = height // 14, width // 14
    dim = sd["pretrained.cls_token"].shape[-1]
    tokens = F.conv2d(x, sd["pretrained.patch_embed.proj.weight"], sd["pretrained.patch_embed.proj.bias"],
                      stride=14).flatten(2).transpose(1, 2)
    tokens = torch.cat([sd["pretrained.cls_token"].expand(batch, -1, -1), tokens], dim=1)
    pos = sd["pretrained.pos_embed"]
    side = math.isqrt(pos.shape[1] - 1)
    if not (ph * pw == side * side and height == width):
        grid = pos[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((ph + 0.1) / side, (pw + 0.1) / side), mode="bicubic",
                             antialias=False)
        pos = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, dim)], dim=1)
    tokens = tokens + pos
    n_tok = tokens.shape[1]

    def ln(t, name):
        return F.layer_norm(t, (dim,), sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-6)

    feats = []
    depth = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("pretrained.blocks."))
    for i in range(depth):
        b = f"pretrained.blocks.{i}"
        qkv = F.linear(ln(tokens, f"{b}.norm1"), sd[f"{b}.attn.qkv.weight"], sd[f"{b}.attn.qkv.bias"])
        q, k, v = qkv.reshape(batch, n_tok, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax((q * (dim // heads) ** -0.5) @ k.transpose(-2, -1), dim=-1)
        mixed = (attn @ v).transpose(1, 2).reshape(batch, n_tok, dim)
        tokens = tokens + sd[f"{b}.ls1.gamma"] * F.linear(mixed, sd[f"{b}.attn.proj.weight"], sd[f"{b}.attn.proj.bias"])
        hidden = F.gelu(F.linear(ln(tokens, f"{b}.norm2"), sd[f"{b}.mlp.fc1.weight"], sd[f"{b}.mlp.fc1.bias"]))
        tokens = tokens + sd[f"{b}.ls2.gamma"] * F.linear(hidden, sd[f"{b}.mlp.fc2.weight"], sd[f"{b}.mlp.fc2.bias"])
        if i in taps:
            feats.append(ln(tokens, "pretrained.norm")[:, 1:])

    h = "depth_head"
    layers = []
    for i, feat in enumerate(feats):
        f = feat.permute(0, 2, 1).reshape(batch, dim, ph, pw)
        f = F.conv2d(f, sd[f"{h}.projects.{i}.weight"], sd[f"{h}.projects.{i}.bias"])
        if i == 0:
            f = F.conv_transpose2d(f, sd[f"{h}.resize_layers.0.weight"], sd[f"{h}.resize_layers.0.bias"], stride=4)
        elif i == 1:
            f = F.conv_transpose2d(f, sd[f"{h}.resize_layers.1.weight"], sd[f"{h}.resize_layers.1.bias"], stride=2)
        elif i == 3:
            f = F.conv2d(f, sd[f"{h}.resize_layers.3.weight"], sd[f"{h}.resize_layers.3.bias"], stride=2, padding=1)
        layers.append(F.conv2d(f, sd[f"{h}.scratch.layer{i + 1}_rn.weight"], padding=1))

    def rcu(t, name):
        out = F.conv2d(F.relu(t), sd[f"{name}.conv1.weight"], sd[f"{name}.conv1.bias"], padding=1)
        out = F.conv2d(F.relu(out), sd[f"{name}.conv2.weight"], sd[f"{name}.conv2.bias"], padding=1)
        return out + t

    def fuse(index, inputs, size):
        name = f"{h}.scratch.refinenet{index}"
        out = inputs[0]
        if len(inputs) == 2:
            out = out + rcu(inputs[1], f"{name}.resConfUnit1")
        out = rcu(out, f"{name}.resConfUnit2")
        resize = {"size": size} if size is not None else {"scale_factor": 2}
        out = F.interpolate(out, **resize, mode="bilinear", align_corners=True)
        return F.conv2d(out, sd[f"{name}.out_conv.weight"], sd[f"{name}.out_conv.bias"])

    l1, l2, l3, l4 = layers
    p4 = fuse(4, [l4], l3.shape[2:])
    p3 = fuse(3, [p4, l3], l2.shape[2:])
    p2 = fuse(2, [p3, l2], l1.shape[2:])
    p1 = fuse(1, [p2, l1], None)
    out = F.conv2d(p1, sd[f"{h}.scratch.output_conv1.weight"], sd[f"{h}.scratch.output_conv1.bias"], padding=1)
    out = F.interpolate(out, (ph * 14, pw * 14), mode="bilinear", align_corners=True)
    out = F.relu(F.conv2d(out, sd[f"{h}.scratch.output_conv2.0.weight"], sd[f"{h}.scratch.output_conv2.0.bias"],
                          padding=1))
    out = torch.sigmoid(F.conv2d(out, sd[f"{h}.scratch.output_conv2.2.weight"], sd[f"{h}.scratch.output_conv2.2.bias"]))
    return (out * max_depth)[:, 0]


def bilinear_align_corners(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Separable numpy bilinear resize with align_corners=True (corner pixels map onto corner pixels)."""
    in_h, in_w = image.shape
    ys, xs = np.linspace(0, in_h - 1, out_h), np.linspace(0, in_w - 1, out_w)
    rows = np.stack([np.interp(xs, np.arange(in_w), row) for row in image.astype(np.float64)])
    return np.stack([np.interp(ys, np.arange(in_h), col) for col in rows.T], axis=1)


# ---------------------------------------------------------------------------------------------------------------
# resize rule
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "kwargs", "expected"), [
    ((192, 640), {}, (518, 1722)),      # 640 * 518/192 = 1726.7 -> 123.33 patches -> 123 -> 1722
    ((376, 1408), {}, (518, 1946)),     # 1408 * 518/376 = 1939.7 -> 138.55 -> 139 -> 1946
    ((640, 192), {}, (1722, 518)),
    ((20, 20), {"input_size": 20}, (28, 28)),  # round(20/14)=1 -> 14 < 20 -> ceil -> 2 patches
    ((192, 640), {"input_size": 140}, (140, 462)),  # 640 * 140/192 = 466.7 -> 33.33 patches -> 33 -> 462
])
def test_network_input_size_hand_values(size, kwargs, expected):
    assert da.network_input_size(*size, **kwargs) == expected


# ---------------------------------------------------------------------------------------------------------------
# HF folder
# ---------------------------------------------------------------------------------------------------------------

def test_hf_folder_roundtrip_offline_is_bit_identical(tiny_hf_model, tmp_path, images):
    tiny_hf_model.save_pretrained(tmp_path / "m")
    loaded = da.load_depth_anything(tmp_path / "m", device="cpu", reference_pos_interpolation=False)
    reference = tiny_hf_model.state_dict()
    assert set(loaded.state_dict()) == set(reference)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, reference[key]), key
    pixels = torch.randn(1, 3, 98, 322, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(pixel_values=pixels).predicted_depth,
                           tiny_hf_model(pixel_values=pixels).predicted_depth)


class _StopForward(Exception):
    pass


def test_reference_input_size_is_518x1722(tiny_folder, images):
    model = da.load_depth_anything(tiny_folder, device="cpu")
    seen = []

    def record_and_stop(module, args, kwargs):  # the shape is all we need: skip the 4551-token forward
        seen.append(tuple(kwargs["pixel_values"].shape))
        raise _StopForward

    model.register_forward_pre_hook(record_and_stop, with_kwargs=True)
    with pytest.raises(_StopForward):
        da.predict_depth(model, images[:2], batch_size=2)
    assert seen == [(2, 3, 518, 1722)]


def test_predict_depth_shape_dtype_metric_range(tiny_folder, images):
    model = da.load_depth_anything(tiny_folder, device="cpu")
    depth = da.predict_depth(model, images, input_size=70, batch_size=2)
    assert depth.shape == (3, 192, 640) and depth.dtype == np.float32
    assert np.all(depth > 0) and np.all(depth < 80)  # sigmoid head x max_depth 80


def test_batch_matches_one_by_one(tiny_folder, images):
    model = da.load_depth_anything(tiny_folder, device="cpu")
    batched = da.predict_depth(model, images, input_size=70, batch_size=2)  # batches of 2 and 1
    single = np.concatenate([da.predict_depth(model, images[i:i + 1], input_size=70) for i in range(3)])
    # CPU kernels block differently per batch size: equal up to float32 rounding
    np.testing.assert_allclose(batched, single, rtol=1e-6, atol=0)
    assert not np.allclose(batched[0], batched[1], rtol=1e-7, atol=0)  # images differ -> outputs differ


def test_preprocessing_and_output_resize_follow_reference(tiny_folder, images):
    """Network input = OpenCV bicubic of image/255 then ImageNet norm; output = align_corners bilinear back."""
    model = da.load_depth_anything(tiny_folder, device="cpu")
    captured = {}
    model.register_forward_pre_hook(
        lambda module, args, kwargs: captured.update(pixels=kwargs["pixel_values"].clone()), with_kwargs=True)
    model.register_forward_hook(lambda module, args, output: captured.update(raw=output.predicted_depth.clone()))
    depth = da.predict_depth(model, images[:1], input_size=70)  # 640 * 70/192 = 233.3 -> 16.67 patches -> 238
    expected = cv2.resize(images[0] / 255.0, (238, 70), interpolation=cv2.INTER_CUBIC)
    expected = (expected - np.array(da.IMAGENET_MEAN)) / np.array(da.IMAGENET_STD)
    got = captured["pixels"][0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-3)  # torch vs OpenCV bicubic, in normalised units
    resized = bilinear_align_corners(captured["raw"][0].numpy(), 192, 640)
    np.testing.assert_allclose(depth[0], resized, rtol=1e-5)


def test_float_input_equals_uint8_input(tiny_folder, images):
    model = da.load_depth_anything(tiny_folder, device="cpu")
    as_uint8 = da.predict_depth(model, images[:1], input_size=70)
    as_float = da.predict_depth(model, images[:1].astype(np.float32) / 255.0, input_size=70)
    np.testing.assert_array_equal(as_uint8, as_float)


def test_bad_inputs_raise(tiny_folder, images, tmp_path):
    model = da.load_depth_anything(tiny_folder, device="cpu")
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
        da.predict_depth(model, images[0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        da.predict_depth(model, images[:1].astype(np.float32))
    with pytest.raises(ValueError, match="batch_size"):
        da.predict_depth(model, images[:1], batch_size=0)
    with pytest.raises(ValueError, match="CUDA"):
        da.predict_depth(model, images[:1], autocast_dtype="bf16")
    with pytest.raises(ValueError, match="CUDA"):
        da.load_depth_anything(tiny_folder, device="cpu", dtype="fp16")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        da.load_depth_anything(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        da.load_depth_anything(tmp_path / "empty")


# ---------------------------------------------------------------------------------------------------------------
# original .pth conversion
# ---------------------------------------------------------------------------------------------------------------

def test_pth_roundtrip_is_bit_identical(tiny_hf_model, tmp_path):
    original = hf_to_original(tiny_hf_model.state_dict(), depth=4)
    torch.save(original, tmp_path / "tiny.pth")
    loaded = da.load_depth_anything(tmp_path / "tiny.pth", device="cpu", reference_pos_interpolation=False)
    assert loaded.config.backbone_config.out_indices == [1, 2, 3, 4]
    assert loaded.config.backbone_config.num_attention_heads == 2
    reference = tiny_hf_model.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, reference[key]), key
    pixels = torch.randn(1, 3, 98, 322, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(loaded(pixel_values=pixels).predicted_depth,
                           tiny_hf_model(pixel_values=pixels).predicted_depth)


def test_pth_matches_independent_original_forward(tmp_path):
    path = tiny_models.build_tiny_depth_anything_pth(tmp_path / "orig.pth")
    state = torch.load(path)
    pixels = torch.randn(1, 3, 98, 322, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        truth = original_forward(state, pixels, TAPS_TINY, heads=2, max_depth=80.0)
        reference_pos = da.load_depth_anything(path, device="cpu")(pixel_values=pixels).predicted_depth
        hf_pos = da.load_depth_anything(path, device="cpu", reference_pos_interpolation=False)(
            pixel_values=pixels).predicted_depth
    assert reference_pos.shape == truth.shape == (1, 98, 322)
    err_reference = (reference_pos - truth).abs().max().item()
    err_hf = (hf_pos - truth).abs().max().item()
    assert err_reference < 1e-4
    assert err_hf > 10 * err_reference  # the offset matters; the patched model follows the original rule


def _vitl_hf_state_on_meta():
    """State dict (meta tensors, no memory) of an HF ViT-L metric model built from the published numbers."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    config = DepthAnythingConfig(
        backbone_config=Dinov2Config(image_size=518, patch_size=14, hidden_size=1024, num_hidden_layers=24,
                                     num_attention_heads=16, out_indices=[5, 12, 18, 24], reshape_hidden_states=False),
        reassemble_hidden_size=1024, neck_hidden_sizes=[256, 512, 1024, 1024], fusion_hidden_size=256,
        head_hidden_size=32, depth_estimation_type="metric", max_depth=80)
    with torch.device("meta"):
        return DepthAnythingForDepthEstimation(config).state_dict()


def test_vitl_layout_converts_completely_and_config_is_inferred():
    hf_state = _vitl_hf_state_on_meta()
    original = hf_to_original(hf_state, depth=24)
    converted = da.original_to_hf_state_dict(original)
    assert set(converted) == set(hf_state)
    assert all(converted[k].shape == hf_state[k].shape for k in hf_state)
    config = da.config_from_original_state_dict(original)
    backbone = config.backbone_config
    assert (backbone.hidden_size, backbone.num_hidden_layers, backbone.num_attention_heads) == (1024, 24, 16)
    assert backbone.out_indices == [5, 12, 18, 24]  # original blocks [4, 11, 17, 23]
    assert list(config.neck_hidden_sizes) == [256, 512, 1024, 1024]
    assert (config.fusion_hidden_size, config.head_hidden_size, config.max_depth) == (256, 32, 80)
    assert config.depth_estimation_type == "metric"
    assert da.config_from_original_state_dict(original, depth_estimation_type="relative").max_depth == 1
    with pytest.raises(ValueError, match="vits"):
        da.config_from_original_state_dict(original, encoder="vits")


def test_pth_strict_errors_list_keys(tmp_path):
    state = torch.load(tiny_models.build_tiny_depth_anything_pth(tmp_path / "t.pth"))

    def load(modified, name):
        torch.save(modified, tmp_path / name)
        return da.load_depth_anything(tmp_path / name, device="cpu")

    extra = dict(state) | {"pretrained.register_tokens": torch.zeros(1, 4, 128),
                           "depth_head.foo.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"2 key\(s\).*depth_head\.foo\.weight.*pretrained\.register_tokens"):
        load(extra, "extra.pth")
    missing = {k: v for k, v in state.items()
               if k not in ("pretrained.blocks.1.ls2.gamma", "depth_head.scratch.refinenet2.out_conv.bias")}
    with pytest.raises(ValueError, match=r"missing \(2\).*encoder\.layer\.1\.layer_scale2\.lambda1"
                                         r".*fusion_stage\.layers\.2\.projection\.bias"):
        load(missing, "missing.pth")
    bad_shape = dict(state) | {"depth_head.scratch.output_conv1.bias": torch.zeros(5)}
    with pytest.raises(ValueError, match=r"shape mismatch.*head\.conv1\.bias"):
        load(bad_shape, "shape.pth")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        (tmp_path / "junk.pth").write_text("not a checkpoint")
        da.load_depth_anything(tmp_path / "junk.pth")
