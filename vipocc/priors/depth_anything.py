"""Depth Anything V2 pseudo-depth prior through Hugging Face transformers (ViPOcc preprocessing, digest 1.6 / 2.3).

Loading (:func:`load_depth_anything`):

* a local folder in HF format (``config.json`` + weights), read offline with ``local_files_only=True``; or
* the original checkpoint of the Depth-Anything-V2 repository that ViPOcc uses
  (``depth_anything_v2_metric_vkitti_vitl.pth``: metric, ViT-L, features 256, out_channels [256, 512, 1024, 1024],
  max depth 80), converted here to the HF module tree (:func:`original_to_hf_state_dict`). The architecture is read
  from the tensor shapes (embedding width, block count, DPT widths); ``encoder`` ("vits", "vitb", "vitl") only
  checks it. The conversion is strict: an original key with no HF counterpart, an HF parameter left unfilled, or
  a shape mismatch raises ``ValueError`` listing every offending key.

Key layout (original -> HF, from the architecture of the public repository and transformers 5.23's model code):
``pretrained.{cls_token, mask_token, pos_embed, patch_embed.proj, norm}`` -> ``backbone.embeddings.*`` /
``backbone.layernorm``; ``pretrained.blocks.i.{norm1, norm2, attn.proj, ls1.gamma, ls2.gamma, mlp.fc1, mlp.fc2}``
-> ``backbone.encoder.layer.i.{norm1, norm2, attention.o_proj, layer_scale1.lambda1, layer_scale2.lambda1,
mlp.fc1, mlp.fc2}``; the fused ``attn.qkv`` (rows [q; k; v]) is split into ``q_proj``/``k_proj``/``v_proj``;
``depth_head.projects.i`` / ``resize_layers.i`` -> ``neck.reassemble_stage.layers.i.{projection, resize}``;
``depth_head.scratch.layer{i+1}_rn`` -> ``neck.convs.i``; ``depth_head.scratch.refinenet{4-j}`` ->
``neck.fusion_stage.layers.j`` (HF fuses deepest first) with ``out_conv`` -> ``projection`` and
``resConfUnit{1,2}.conv{1,2}`` -> ``residual_layer{1,2}.convolution{1,2}``; ``scratch.output_conv1`` ->
``head.conv1``, ``scratch.output_conv2.{0,2}`` -> ``head.conv{2,3}``. The original taps blocks [2, 5, 8, 11]
(vits/vitb) or [4, 11, 17, 23] (vitl), which are HF backbone stages (block + 1).

Position embeddings. The original DINOv2 resizes its 37x37 position grid with ``scale_factor = (n + 0.1) / 37``
(the "interpolate_offset"), transformers 5.23 with ``size = n``; the two sample the grid at slightly different
points for non-square inputs such as 518x1722. With ``reference_pos_interpolation=True`` (default) the loaded model
uses the original rule, so its output follows the reference code; False keeps the transformers behaviour.

Inference (:func:`predict_depth`) reproduces the reference ``infer_image``: keep-aspect "lower_bound" resize so the
short side is ``input_size`` rounded to a multiple of 14 (192x640 -> 518x1722; :func:`network_input_size`),
bicubic (torch's bicubic, within 1e-4 of OpenCV's INTER_CUBIC on [0, 1] images), ImageNet normalisation, forward,
bilinear (align_corners=True) resize back to the input size. Output: metric z-depth in metres, (0, max_depth).
"""
from __future__ import annotations

import contextlib
import math
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # transformers takes seconds to import: only where a model is built
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

__all__ = [
    "ENCODER_PRESETS",
    "EncoderPreset",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PATCH_SIZE",
    "config_from_original_state_dict",
    "load_depth_anything",
    "network_input_size",
    "original_to_hf_state_dict",
    "predict_depth",
    "resolve_device",
    "resolve_dtype",
]

PATCH_SIZE = 14
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_REFERENCE_POS_OFFSET = 0.1  # the original DINOv2 "interpolate_offset"
_FLOAT_IMAGE_TOLERANCE = 1e-3  # float images must lie in [0, 1] up to this slack


@dataclass(frozen=True)
class EncoderPreset:
    """Architecture of one original Depth Anything V2 variant.

    out_indices are HF backbone stages (original block index + 1); features is the DPT fusion width and
    out_channels the four reassemble widths.
    """

    embed_dim: int
    depth: int
    num_heads: int
    out_indices: tuple[int, int, int, int]
    features: int
    out_channels: tuple[int, int, int, int]


ENCODER_PRESETS: dict[str, EncoderPreset] = {
    "vits": EncoderPreset(384, 12, 6, (3, 6, 9, 12), 64, (48, 96, 192, 384)),
    "vitb": EncoderPreset(768, 12, 12, (3, 6, 9, 12), 128, (96, 192, 384, 768)),
    "vitl": EncoderPreset(1024, 24, 16, (5, 12, 18, 24), 256, (256, 512, 1024, 1024)),
}


# ----------------------------------------------------------------------------------------------------------------
# devices and dtypes
# ----------------------------------------------------------------------------------------------------------------

_DTYPE_NAMES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; anything else -> ``torch.device(device)``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device: cannot interpret {device!r} ({error})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} requested but CUDA is not available")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """None stays None; names such as "bf16", "float16", "fp32" or a torch floating dtype -> torch.dtype."""
    if dtype is None or isinstance(dtype, torch.dtype):
        if isinstance(dtype, torch.dtype) and not dtype.is_floating_point:
            raise ValueError(f"dtype: expected a floating dtype, got {dtype}")
        return dtype
    try:
        return _DTYPE_NAMES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"dtype: unknown {dtype!r}; expected one of {sorted(_DTYPE_NAMES)}") from None


def _check_reduced_precision(dtype: torch.dtype | None, device: torch.device, name: str) -> None:
    if dtype not in (None, torch.float32) and device.type != "cuda":
        raise ValueError(f"{name}: {dtype} is only supported on CUDA (device is {device})")


# ----------------------------------------------------------------------------------------------------------------
# original checkpoint -> HF state dict
# ----------------------------------------------------------------------------------------------------------------

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _rule(pattern: str, target: str | Callable[[re.Match[str]], str]) -> _Rule:
    make = target if callable(target) else (lambda match, template=target: match.expand(template))
    return re.compile(pattern), make


_BLOCK = r"pretrained\.blocks\.(\d+)"
_LAYER = r"backbone.encoder.layer.\1"
_WB = r"(weight|bias)"
_KEY_RULES: tuple[_Rule, ...] = (
    _rule(r"pretrained\.cls_token", "backbone.embeddings.cls_token"),
    _rule(r"pretrained\.mask_token", "backbone.embeddings.mask_token"),
    _rule(r"pretrained\.pos_embed", "backbone.embeddings.position_embeddings"),
    _rule(rf"pretrained\.patch_embed\.proj\.{_WB}", r"backbone.embeddings.patch_embeddings.projection.\1"),
    _rule(rf"pretrained\.norm\.{_WB}", r"backbone.layernorm.\1"),
    _rule(rf"{_BLOCK}\.norm([12])\.{_WB}", rf"{_LAYER}.norm\2.\3"),
    _rule(rf"{_BLOCK}\.attn\.proj\.{_WB}", rf"{_LAYER}.attention.o_proj.\2"),
    _rule(rf"{_BLOCK}\.ls([12])\.gamma", rf"{_LAYER}.layer_scale\2.lambda1"),
    _rule(rf"{_BLOCK}\.mlp\.(fc[12])\.{_WB}", rf"{_LAYER}.mlp.\2.\3"),
    _rule(rf"depth_head\.projects\.([0-3])\.{_WB}", r"neck.reassemble_stage.layers.\1.projection.\2"),
    _rule(rf"depth_head\.resize_layers\.([0-3])\.{_WB}", r"neck.reassemble_stage.layers.\1.resize.\2"),
    _rule(r"depth_head\.scratch\.layer([1-4])_rn\.weight", lambda m: f"neck.convs.{int(m[1]) - 1}.weight"),
    # refinenet4 consumes the deepest features first; HF numbers its fusion layers in that processing order
    _rule(rf"depth_head\.scratch\.refinenet([1-4])\.out_conv\.{_WB}",
          lambda m: f"neck.fusion_stage.layers.{4 - int(m[1])}.projection.{m[2]}"),
    _rule(rf"depth_head\.scratch\.refinenet([1-4])\.resConfUnit([12])\.conv([12])\.{_WB}",
          lambda m: f"neck.fusion_stage.layers.{4 - int(m[1])}.residual_layer{m[2]}.convolution{m[3]}.{m[4]}"),
    _rule(rf"depth_head\.scratch\.output_conv1\.{_WB}", r"head.conv1.\1"),
    _rule(rf"depth_head\.scratch\.output_conv2\.0\.{_WB}", r"head.conv2.\1"),
    _rule(rf"depth_head\.scratch\.output_conv2\.2\.{_WB}", r"head.conv3.\1"),
)
_QKV = re.compile(rf"{_BLOCK}\.attn\.qkv\.{_WB}")


def original_to_hf_state_dict(state: Mapping[str, torch.Tensor], source: str = "state_dict") -> dict[str, torch.Tensor]:
    """Rename an original Depth-Anything-V2 state dict (``pretrained.*``, ``depth_head.*``) to HF keys.

    The fused ``attn.qkv`` weight [3D, D] / bias [3D] is split row-wise into q, k, v (in that order).
    Tensors are returned as float32 (shared storage where possible).

    Raises:
        ValueError: listing every key no rule maps (``source`` names the file in the message).
    """
    converted: dict[str, torch.Tensor] = {}
    unmapped: list[str] = []
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{source}: value of {key!r} is {type(tensor).__name__}, not a tensor")
        tensor = tensor.float()
        qkv = _QKV.fullmatch(key)
        if qkv is not None:
            if tensor.shape[0] % 3:
                raise ValueError(f"{source}: {key} has {tensor.shape[0]} rows, not a multiple of 3")
            for name, part in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0)):
                converted[f"backbone.encoder.layer.{qkv[1]}.attention.{name}.{qkv[2]}"] = part
            continue
        for pattern, make in _KEY_RULES:
            match = pattern.fullmatch(key)
            if match is not None:
                converted[make(match)] = tensor
                break
        else:
            unmapped.append(key)
    if unmapped:
        raise ValueError(f"{source}: {len(unmapped)} key(s) have no Depth Anything V2 counterpart: "
                         f"{sorted(unmapped)}")
    return converted


def _require(state: Mapping[str, torch.Tensor], keys: list[str], source: str) -> None:
    missing = [key for key in keys if key not in state]
    if missing:
        raise ValueError(f"{source}: missing key(s) needed to infer the architecture: {missing}")


def config_from_original_state_dict(
    state: Mapping[str, torch.Tensor], source: str = "state_dict", encoder: str | None = None,
    max_depth: int = 80, depth_estimation_type: str = "metric",
) -> DepthAnythingConfig:
    """``DepthAnythingConfig`` matching an original state dict, read from tensor shapes only (meta tensors work).

    Width, block count, patch size and position grid come from the DINOv2 tensors; fusion width, reassemble
    widths and head width from the DPT tensors; head count and tapped blocks from the matching preset in
    :data:`ENCODER_PRESETS` (``encoder`` names it explicitly), otherwise 64-dim heads and evenly spaced taps.
    A "relative" head is not scaled (max_depth 1, as transformers' relative models); "metric" multiplies its
    sigmoid by ``max_depth`` metres.
    """
    from transformers import DepthAnythingConfig, Dinov2Config

    _require(state, ["pretrained.cls_token", "pretrained.pos_embed", "pretrained.patch_embed.proj.weight",
                     "pretrained.blocks.0.mlp.fc1.weight", "depth_head.scratch.layer1_rn.weight",
                     "depth_head.scratch.output_conv2.0.weight"]
             + [f"depth_head.projects.{i}.weight" for i in range(4)], source)
    embed_dim = int(state["pretrained.cls_token"].shape[-1])
    depth = 1 + max(int(m[1]) for key in state if (m := re.match(r"pretrained\.blocks\.(\d+)\.", key)))
    patch = int(state["pretrained.patch_embed.proj.weight"].shape[-1])
    grid = math.isqrt(int(state["pretrained.pos_embed"].shape[1]) - 1)
    preset = _preset_for(embed_dim, depth, encoder, source)
    out_channels = [int(state[f"depth_head.projects.{i}.weight"].shape[0]) for i in range(4)]
    backbone = Dinov2Config(
        image_size=grid * patch, patch_size=patch, hidden_size=embed_dim, num_hidden_layers=depth,
        num_attention_heads=preset.num_heads,
        mlp_ratio=int(state["pretrained.blocks.0.mlp.fc1.weight"].shape[0]) // embed_dim,
        out_indices=list(preset.out_indices), reshape_hidden_states=False,
    )
    return DepthAnythingConfig(
        backbone_config=backbone, patch_size=patch, reassemble_hidden_size=embed_dim,
        neck_hidden_sizes=out_channels, fusion_hidden_size=int(state["depth_head.scratch.layer1_rn.weight"].shape[0]),
        head_hidden_size=int(state["depth_head.scratch.output_conv2.0.weight"].shape[0]),
        depth_estimation_type=depth_estimation_type,
        max_depth=int(max_depth) if depth_estimation_type == "metric" else 1,
    )


def _preset_for(embed_dim: int, depth: int, encoder: str | None, source: str) -> EncoderPreset:
    """The named preset (checked against the shapes), the preset matching the shapes, or a generic one.

    Generic (no preset matches, e.g. the tiny test models): 64-dim heads as every DINOv2, taps at the ends of
    the four equal quarters of the block stack.
    """
    if encoder is not None:
        if encoder not in ENCODER_PRESETS:
            raise ValueError(f"encoder: expected one of {sorted(ENCODER_PRESETS)}, got {encoder!r}")
        preset = ENCODER_PRESETS[encoder]
        if (preset.embed_dim, preset.depth) != (embed_dim, depth):
            raise ValueError(f"{source}: encoder {encoder!r} expects width {preset.embed_dim} and {preset.depth} "
                             f"blocks, the checkpoint has {embed_dim} and {depth}")
        return preset
    for preset in ENCODER_PRESETS.values():
        if (preset.embed_dim, preset.depth) == (embed_dim, depth):
            return preset
    if embed_dim % 64 or depth % 4:
        raise ValueError(f"{source}: unknown encoder (width {embed_dim}, {depth} blocks): cannot infer heads/taps")
    taps = tuple(depth * k // 4 for k in range(1, 5))
    # only heads and taps are read from a preset; the DPT widths always come from the tensor shapes
    return EncoderPreset(embed_dim, depth, embed_dim // 64, taps, features=0, out_channels=(0, 0, 0, 0))


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Plain state dict from a .pth; a {"model": ...} or {"state_dict": ...} wrapper is unwrapped."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for a corrupt/foreign file
        raise ValueError(f"{path}: not a readable torch checkpoint ({error})") from None
    if isinstance(state, Mapping) and not any(str(k).startswith("pretrained.") for k in state):
        for wrapper in ("model", "state_dict"):
            if isinstance(state.get(wrapper), Mapping):
                state = state[wrapper]
                break
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return dict(state)


def _load_strict(model: torch.nn.Module, converted: dict[str, torch.Tensor], source: str) -> None:
    """load_state_dict after listing every missing, unexpected or mis-shaped key in one error."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    mis_shaped = sorted(f"{key}: checkpoint {tuple(converted[key].shape)} vs model {tuple(expected[key].shape)}"
                        for key in set(expected) & set(converted) if converted[key].shape != expected[key].shape)
    problems = [f"{label} ({len(keys)}): {keys}" for label, keys in
                (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mis_shaped)) if keys]
    if problems:
        raise ValueError(f"{source}: checkpoint does not match the Depth Anything V2 model; " + "; ".join(problems))
    model.load_state_dict(converted, strict=True)


def _model_from_original(
    path: Path, encoder: str | None, max_depth: int, depth_estimation_type: str,
) -> DepthAnythingForDepthEstimation:
    from transformers import DepthAnythingForDepthEstimation

    state = _read_checkpoint(path)
    converted = original_to_hf_state_dict(state, source=str(path))
    config = config_from_original_state_dict(state, str(path), encoder, max_depth, depth_estimation_type)
    with torch.device("meta"):  # no random init of a ViT-L that is overwritten right away
        model = DepthAnythingForDepthEstimation(config)
    model = model.to_empty(device="cpu")
    unsaved = sorted(set(dict(model.named_buffers())) - set(model.state_dict()))
    if unsaved:  # to_empty leaves them uninitialised and no checkpoint fills them
        raise RuntimeError(f"Depth Anything model has non-persistent buffers {unsaved}; meta init is unsafe")
    _load_strict(model, converted, str(path))
    return model


# ----------------------------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------------------------

def load_depth_anything(
    path: str | Path,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype | None = None,
    *,
    encoder: str | None = None,
    max_depth: int = 80,
    depth_estimation_type: str = "metric",
    reference_pos_interpolation: bool = True,
) -> DepthAnythingForDepthEstimation:
    """Load Depth Anything V2 from an HF folder or an original ``.pth``/``.pt`` checkpoint, in eval mode.

    Args:
        path: folder with ``config.json`` (HF format, read offline) or the original checkpoint file.
        device: "auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:1", ...
        dtype: weight dtype (None = float32); float16/bfloat16 only on CUDA.
        encoder: original checkpoints only: "vits"/"vitb"/"vitl" to check the shapes against (None = infer).
        max_depth: original checkpoints only: metric head scale in metres (80 for the outdoor VKITTI model).
        depth_estimation_type: original checkpoints only: "metric" (sigmoid head) or "relative" (ReLU head);
            the weights cannot tell, ViPOcc uses metric.
        reference_pos_interpolation: use the original DINOv2 position-grid resize (module docstring).

    Returns:
        ``DepthAnythingForDepthEstimation`` on ``device``.

    Raises:
        FileNotFoundError: ``path`` does not exist, or a folder has no ``config.json``.
        ValueError: bad arguments, or a checkpoint whose keys/shapes do not match (all listed).
    """
    from transformers import DepthAnythingForDepthEstimation

    path = Path(path)
    target = resolve_device(device)
    weight_dtype = resolve_dtype(dtype)
    _check_reduced_precision(weight_dtype, target, "dtype")
    if depth_estimation_type not in ("metric", "relative"):
        raise ValueError(f"depth_estimation_type: expected 'metric' or 'relative', got {depth_estimation_type!r}")
    if not path.exists():
        raise FileNotFoundError(f"Depth Anything weights not found: {path}")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: no config.json, not a Hugging Face model folder")
        model = DepthAnythingForDepthEstimation.from_pretrained(path, local_files_only=True)
        if model.config.model_type != "depth_anything":
            raise ValueError(f"{path}: model_type {model.config.model_type!r}, expected 'depth_anything'")
    elif path.suffix in (".pth", ".pt"):
        model = _model_from_original(path, encoder, max_depth, depth_estimation_type)
    else:
        raise ValueError(f"path: {path} is neither a model folder nor a .pth/.pt checkpoint")
    if reference_pos_interpolation:
        _use_reference_pos_interpolation(model.backbone.embeddings)
    model = model.to(device=target, dtype=weight_dtype or torch.float32)
    return model.eval()


def _use_reference_pos_interpolation(embeddings: torch.nn.Module) -> None:
    """Make one Dinov2Embeddings instance resize its position grid as the original DINOv2 does.

    The original scales the M x M grid by ``(n + 0.1) / M`` per axis (bicubic, no antialias, float32) so that
    the output is n x n; transformers asks for ``size = n``, which places the samples slightly differently.
    """
    def interpolate_pos_encoding(self, embeddings_in: torch.Tensor, height: int, width: int) -> torch.Tensor:
        num_patches = embeddings_in.shape[1] - 1
        positions = self.position_embeddings
        grid = positions.shape[1] - 1
        if num_patches == grid and height == width:
            return positions
        side = math.isqrt(grid)
        patch_height, patch_width = self.patch_embeddings.patch_size
        scale = ((height // patch_height + _REFERENCE_POS_OFFSET) / side,
                 (width // patch_width + _REFERENCE_POS_OFFSET) / side)
        dim = positions.shape[-1]
        patch_grid = positions[:, 1:].float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
        resized = F.interpolate(patch_grid, scale_factor=scale, mode="bicubic", antialias=False)
        if resized.shape[-2:] != (height // patch_height, width // patch_width):
            raise RuntimeError(f"position grid resized to {tuple(resized.shape[-2:])}, expected "
                               f"{(height // patch_height, width // patch_width)}")
        resized = resized.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((positions[:, :1].float(), resized), dim=1).to(embeddings_in.dtype)

    embeddings.interpolate_pos_encoding = types.MethodType(interpolate_pos_encoding, embeddings)


# ----------------------------------------------------------------------------------------------------------------
# inference
# ----------------------------------------------------------------------------------------------------------------

def network_input_size(height: int, width: int, input_size: int = 518, multiple: int = PATCH_SIZE) -> tuple[int, int]:
    """Network input (H, W) of the reference "lower_bound" keep-aspect resize.

    Both sides are scaled by ``max(input_size / H, input_size / W)`` (so the short side becomes ``input_size``),
    rounded half-to-even to a multiple of ``multiple``, and rounded up instead when that falls below
    ``input_size``. 192x640 -> 518x1722; 376x1408 -> 518x1946.
    """
    if min(height, width, input_size, multiple) < 1:
        raise ValueError(f"network_input_size: sizes must be >= 1, got {(height, width, input_size, multiple)}")
    scale = max(input_size / height, input_size / width)

    def constrain(length: float) -> int:
        rounded = int(np.round(length / multiple)) * multiple
        return rounded if rounded >= input_size else int(math.ceil(length / multiple)) * multiple

    return constrain(scale * height), constrain(scale * width)


def _image_batch(images: Any) -> torch.Tensor:
    """Checked [B, H, W, 3] uint8 or float RGB as a CPU tensor of its own dtype (converted chunk by chunk later)."""
    batch = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"images: expected [B, H, W, 3] RGB, got shape {tuple(batch.shape)}")
    if batch.shape[0] == 0:
        raise ValueError("images: empty batch")
    if batch.dtype != torch.uint8 and not batch.is_floating_point():
        raise ValueError(f"images: expected uint8 or float, got {batch.dtype}")
    return batch


def _unit_float(chunk: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 / 255; float -> float32, which must be finite and within [0, 1]."""
    if chunk.dtype == torch.uint8:
        return chunk.float() / 255.0
    chunk = chunk.float()
    if not torch.isfinite(chunk).all():
        raise ValueError("images: contains NaN or inf")
    low, high = float(chunk.min()), float(chunk.max())
    if low < -_FLOAT_IMAGE_TOLERANCE or high > 1 + _FLOAT_IMAGE_TOLERANCE:
        raise ValueError(f"images: float images must be in [0, 1], got range [{low:.3g}, {high:.3g}]")
    return chunk


@torch.no_grad()
def predict_depth(
    model: DepthAnythingForDepthEstimation,
    images: Any,
    input_size: int = 518,
    batch_size: int = 4,
    autocast_dtype: str | torch.dtype | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Metric depth of RGB images with the reference ``infer_image`` input handling (module docstring).

    Args:
        model: a loaded ``DepthAnythingForDepthEstimation`` (its device is used).
        images: [B, H, W, 3] RGB, uint8 0..255 or float in [0, 1] (numpy or torch).
        input_size: target short side before rounding to a multiple of 14 (518 in the reference).
        batch_size: images per forward pass.
        autocast_dtype: None (float32) or "bf16"/"fp16" autocast; CUDA only.
        progress: show a tqdm bar over batches.

    Returns:
        float32 [B, H, W] numpy: z-depth in metres (metric head: in (0, max_depth)), camera frame of the image.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    batch = _image_batch(images)
    device = next(model.parameters()).device
    amp_dtype = resolve_dtype(autocast_dtype)
    _check_reduced_precision(amp_dtype, device, "autocast_dtype")
    height, width = batch.shape[1:3]
    net_size = network_input_size(height, width, input_size)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    reduced = amp_dtype not in (None, torch.float32)
    autocast = torch.autocast(device_type="cuda", dtype=amp_dtype) if reduced else contextlib.nullcontext()
    starts = range(0, batch.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc="depth prior", unit="batch")
    out = []
    for start in starts:
        chunk = _unit_float(batch[start:start + batch_size].to(device)).permute(0, 3, 1, 2)
        pixels = (F.interpolate(chunk, size=net_size, mode="bicubic", align_corners=False) - mean) / std
        with autocast:
            depth = model(pixel_values=pixels).predicted_depth
        depth = F.interpolate(depth.float()[:, None], size=(height, width), mode="bilinear", align_corners=True)
        out.append(depth[:, 0].cpu())
    return torch.cat(out).numpy().astype(np.float32, copy=False)
