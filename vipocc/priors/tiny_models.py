"""Tiny random-weight stand-ins for the real VFM checkpoints (Depth Anything V2, Grounding DINO, SAM).

There are no real weights on this machine or in CI. These builders write folders with the *same layout* as the
real Hugging Face checkpoints (``config.json``, ``model.safetensors``, processor/tokenizer files) so the real
loading and inference code paths run end to end, offline, in a fraction of a second. The outputs carry no
structure (a random metric head outputs about ``max_depth / 2`` everywhere; random detectors find random boxes).

Every builder seeds torch with :data:`TINY_SEED` inside a forked RNG state, so the same folder is written on
every call and the caller's global torch RNG is left untouched. The architectures follow the configurations
known to work offline with transformers 5.23 (``dependencies.md`` section 3), with two deliberate changes for
Depth Anything: hidden size 128 with 2 heads (head dim 64, as every DINOv2 encoder) so the original-layout
``.pth`` can be read back without being told the head count, and a 32-channel head (fixed in the original DPT
head) so the ``.pth`` layout matches the original architecture exactly.
"""
from __future__ import annotations

from pathlib import Path

import torch

__all__ = [
    "TINY_SEED",
    "TINY_GDINO_VOCAB",
    "tiny_depth_anything_config",
    "build_tiny_depth_anything",
    "build_tiny_depth_anything_pth",
    "build_tiny_grounding_dino",
    "build_tiny_sam",
]

TINY_SEED = 0
TINY_SAM_IMAGE_SIZE = 256
TINY_GDINO_VOCAB = (
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",",
    "road", "building", "vegetation", "sky", "car", "person", "a", "the",
)


def _folder(folder: str | Path) -> Path:
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ValueError(f"folder: {path} exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path


def tiny_depth_anything_config(max_depth: int = 80):
    """DepthAnythingConfig of a 4-block, 128-wide metric Depth Anything V2 (about 1 M parameters).

    Mirrors the original ViT-L metric layout at small size: features (fusion width) 16, reassemble widths
    [16, 32, 48, 64], head width 32, sigmoid head scaled by ``max_depth`` (metres), out_indices = blocks 1..4.
    """
    from transformers import DepthAnythingConfig, Dinov2Config

    backbone = Dinov2Config(
        image_size=518, patch_size=14, hidden_size=128, num_hidden_layers=4, num_attention_heads=2,
        mlp_ratio=4, out_indices=[1, 2, 3, 4], reshape_hidden_states=False,
    )
    return DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=128, neck_hidden_sizes=[16, 32, 48, 64],
        fusion_hidden_size=16, head_hidden_size=32, depth_estimation_type="metric", max_depth=int(max_depth),
    )


def _tiny_depth_anything_model():
    from transformers import DepthAnythingForDepthEstimation

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model = DepthAnythingForDepthEstimation(tiny_depth_anything_config())
        # post_init leaves layer scales at 1 and biases at 0; randomise them too so that a conversion that
        # drops or swaps any of them cannot go unnoticed in a round-trip test.
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.data.uniform_(-0.1, 0.1)
            elif name.endswith("lambda1"):
                param.data.uniform_(0.5, 1.5)
    return model.eval()


def build_tiny_depth_anything(folder: str | Path) -> Path:
    """Save a tiny random metric Depth Anything V2 (HF format) plus a DPT image processor into ``folder``.

    Returns:
        The folder path; load it with ``vipocc.priors.depth_anything.load_depth_anything(folder)``.
    """
    # the PIL processors: the default ones want torchvision, which this project does not install
    from transformers import DPTImageProcessorPil

    path = _folder(folder)
    _tiny_depth_anything_model().save_pretrained(path)
    DPTImageProcessorPil(
        do_resize=True, size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14,
        resize_method="lower_bound", do_normalize=True, image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(path)
    return path


def build_tiny_depth_anything_pth(path: str | Path) -> Path:
    """Write a tiny random Depth Anything V2 checkpoint in the ORIGINAL repository layout to ``path`` (.pth).

    The state dict has the key names and tensor shapes of ``DepthAnythingV2(encoder, features=16,
    out_channels=[16, 32, 48, 64])`` with a 4-block, 128-wide DINOv2 (``pretrained.*`` and ``depth_head.*``),
    filled with seeded random numbers; it is generated from the architecture description, not converted from
    the HF model, so it exercises ``load_depth_anything``'s conversion independently.
    """
    path = Path(path)
    if path.suffix not in (".pth", ".pt"):
        raise ValueError(f"path: expected a .pth/.pt file name, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        state = _original_layout_state_dict(embed_dim=128, depth=4, features=16, out_channels=(16, 32, 48, 64))
    torch.save(state, path)
    return path


def _original_layout_state_dict(
    embed_dim: int, depth: int, features: int, out_channels: tuple[int, ...], head_features: int = 32,
    patch: int = 14, grid: int = 37,
) -> dict[str, torch.Tensor]:
    """Random tensors named and shaped as the original DepthAnythingV2 module tree (global torch RNG)."""
    def rand(*shape: int, scale: float = 0.05) -> torch.Tensor:
        return torch.randn(*shape) * scale

    d = embed_dim
    state = {
        "pretrained.cls_token": rand(1, 1, d, scale=0.02),
        "pretrained.pos_embed": rand(1, grid * grid + 1, d, scale=0.02),
        "pretrained.mask_token": rand(1, d),
        "pretrained.patch_embed.proj.weight": rand(d, 3, patch, patch),
        "pretrained.patch_embed.proj.bias": rand(d),
        "pretrained.norm.weight": 1 + rand(d),
        "pretrained.norm.bias": rand(d),
    }
    for i in range(depth):
        block = f"pretrained.blocks.{i}"
        state |= {
            f"{block}.norm1.weight": 1 + rand(d), f"{block}.norm1.bias": rand(d),
            f"{block}.attn.qkv.weight": rand(3 * d, d), f"{block}.attn.qkv.bias": rand(3 * d),
            f"{block}.attn.proj.weight": rand(d, d), f"{block}.attn.proj.bias": rand(d),
            f"{block}.ls1.gamma": 1 + rand(d, scale=0.2),
            f"{block}.norm2.weight": 1 + rand(d), f"{block}.norm2.bias": rand(d),
            f"{block}.mlp.fc1.weight": rand(4 * d, d), f"{block}.mlp.fc1.bias": rand(4 * d),
            f"{block}.mlp.fc2.weight": rand(d, 4 * d), f"{block}.mlp.fc2.bias": rand(d),
            f"{block}.ls2.gamma": 1 + rand(d, scale=0.2),
        }
    head = "depth_head"
    resize_kernels = {0: (4, True), 1: (2, True), 3: (3, False)}  # index -> (kernel, transposed); 2 is Identity
    for i, channels in enumerate(out_channels):
        state[f"{head}.projects.{i}.weight"] = rand(channels, d, 1, 1)
        state[f"{head}.projects.{i}.bias"] = rand(channels)
        if i in resize_kernels:
            k, _ = resize_kernels[i]
            state[f"{head}.resize_layers.{i}.weight"] = rand(channels, channels, k, k)
            state[f"{head}.resize_layers.{i}.bias"] = rand(channels)
        state[f"{head}.scratch.layer{i + 1}_rn.weight"] = rand(features, channels, 3, 3)
    for r in range(1, 5):
        block = f"{head}.scratch.refinenet{r}"
        state[f"{block}.out_conv.weight"] = rand(features, features, 1, 1)
        state[f"{block}.out_conv.bias"] = rand(features)
        for unit in ("resConfUnit1", "resConfUnit2"):
            for conv in ("conv1", "conv2"):
                state[f"{block}.{unit}.{conv}.weight"] = rand(features, features, 3, 3)
                state[f"{block}.{unit}.{conv}.bias"] = rand(features)
    state |= {
        f"{head}.scratch.output_conv1.weight": rand(features // 2, features, 3, 3),
        f"{head}.scratch.output_conv1.bias": rand(features // 2),
        f"{head}.scratch.output_conv2.0.weight": rand(head_features, features // 2, 3, 3),
        f"{head}.scratch.output_conv2.0.bias": rand(head_features),
        f"{head}.scratch.output_conv2.2.weight": rand(1, head_features, 1, 1),
        f"{head}.scratch.output_conv2.2.bias": rand(1),
    }
    return state


def build_tiny_sam(folder: str | Path) -> Path:
    """Save a tiny random SAM (256 px input, about 0.2 M parameters) and its SamProcessor into ``folder``."""
    from transformers import (SamConfig, SamImageProcessorPil, SamMaskDecoderConfig, SamModel, SamProcessor,
                              SamPromptEncoderConfig, SamVisionConfig)

    size, channels = TINY_SAM_IMAGE_SIZE, 32
    config = SamConfig(
        vision_config=SamVisionConfig(
            hidden_size=64, output_channels=channels, num_hidden_layers=2, num_attention_heads=2,
            image_size=size, patch_size=16, window_size=4, global_attn_indexes=[1], num_pos_feats=channels // 2,
            mlp_dim=128),
        prompt_encoder_config=SamPromptEncoderConfig(
            hidden_size=channels, image_size=size, patch_size=16, mask_input_channels=4),
        mask_decoder_config=SamMaskDecoderConfig(
            hidden_size=channels, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2, iou_head_hidden_dim=32),
    )
    path = _folder(folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        SamModel(config).eval().save_pretrained(path)
    processor = SamProcessor(image_processor=SamImageProcessorPil(
        size={"longest_edge": size}, pad_size={"height": size, "width": size},
        mask_size={"longest_edge": size // 4}, mask_pad_size={"height": size // 4, "width": size // 4}))
    processor.save_pretrained(path)
    return path


def build_tiny_grounding_dino(folder: str | Path) -> Path:
    """Save a tiny random Grounding DINO (Swin + 1-layer BERT, about 0.8 M parameters) and its processor.

    The BERT tokenizer is built offline from :data:`TINY_GDINO_VOCAB` (transformers 5 ignores
    ``vocab_file=``; a vocab dict works). The image processor keeps a 192x640 image at its size.
    """
    from transformers import (BertConfig, BertTokenizerFast, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessorPil, GroundingDinoProcessor, SwinConfig)

    vocab = {word: i for i, word in enumerate(TINY_GDINO_VOCAB)}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(image_size=224, embed_dim=24, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                                   window_size=7, out_features=["stage2", "stage3", "stage4"]),
        text_config=BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=64),
        d_model=32, num_queries=30, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        encoder_attention_heads=2, decoder_attention_heads=2, num_feature_levels=4, max_text_len=32,
        disable_custom_kernels=True,
    )
    path = _folder(folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        GroundingDinoForObjectDetection(config).eval().save_pretrained(path)
    image_processor = GroundingDinoImageProcessorPil(size={"shortest_edge": 192, "longest_edge": 640})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path
