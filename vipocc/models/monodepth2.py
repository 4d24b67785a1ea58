"""Monodepth2-style U-Net decoder and the encoder+decoder backbone used by BTS and the ViPOcc depth branch.

Parameter names follow the reference checkpoints where that costs nothing:

* ``Decoder.decoder`` is a ``ModuleList`` in the reference order ``upconv(4,0), upconv(4,1), upconv(3,0), ...,
  upconv(0,1)`` at indices 0..9 and the scale-0 output conv ``dispconv(0)`` at index 10. Each upconv is a
  ``ConvBlock`` (``.conv.conv.weight/bias``), the output conv a ``Conv3x3`` (``.conv.weight/bias``).
  The reference also builds ``dispconv`` 1-3 at indices 11-13 and computes them for nothing; they are not built
  here, so a key map must drop ``decoder.decoder.11..13.*`` from the official checkpoints.
* ``Monodepth2`` holds ``encoder`` (``ResnetEncoder``: ``encoder.encoder.<torchvision names>`` without ``fc``) and
  ``decoder`` (``Decoder``), as the reference's ``Monodepth2`` and ``RID`` modules do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vipocc.models.resnet import ResnetEncoder

__all__ = ["Conv3x3", "ConvBlock", "Decoder", "Monodepth2", "decoder_channels"]

# Monodepth2's default decoder widths (used by the reference when no widths are configured).
DEFAULT_NUM_CH_DEC: tuple[int, ...] = (128, 128, 256, 256, 512)


class Conv3x3(nn.Module):
    """Reflection-padded 3x3 conv, stride 1: ``[B,C_in,H,W] -> [B,C_out,H,W]``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(int(in_channels), int(out_channels), 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class ConvBlock(nn.Module):
    """``Conv3x3`` followed by ELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = Conv3x3(in_channels, out_channels)
        self.nonlin = nn.ELU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlin(self.conv(x))


def decoder_channels(num_ch_dec: Sequence[int], d_out: int) -> list[int]:
    """Decoder widths raised elementwise to at least ``d_out`` (so the last block is never narrower than the output)."""
    if len(num_ch_dec) != 5 or any(int(c) <= 0 for c in num_ch_dec):
        raise ValueError(f"num_ch_dec={list(num_ch_dec)!r}: need 5 positive channel counts")
    return [max(int(d_out), int(c)) for c in num_ch_dec]


class Decoder(nn.Module):
    """U-Net decoder over 5 encoder maps; returns only the full-resolution (scale-0) output.

    For stage i = 4..0: ConvBlock, nearest x2 upsampling, concatenation with encoder map i-1 (for i > 0), ConvBlock.
    The final ``Conv3x3`` maps ``num_ch_dec[0]`` channels to ``d_out`` with no activation.

    Sizes: the output is ``2x`` the first encoder map, i.e. the input image size when H and W are multiples of 32.
    For other sizes the encoder maps round up (strided convs use ceil), the upsampled map can be one pixel larger
    than the next skip map, and it is cropped at the bottom/right to the skip map, as the reference does. The
    output is then ``2 * ceil(H/2) x 2 * ceil(W/2)``; ``Monodepth2`` crops it to ``H x W``. Reflection padding
    needs every map to be at least 2 pixels, so images must be larger than 32 pixels in both directions.
    """

    def __init__(
        self, num_ch_enc: Sequence[int], num_ch_dec: Sequence[int] = DEFAULT_NUM_CH_DEC, d_out: int = 1
    ) -> None:
        super().__init__()
        if len(num_ch_enc) != 5:
            raise ValueError(f"num_ch_enc={list(num_ch_enc)!r}: need 5 encoder channel counts")
        if int(d_out) <= 0:
            raise ValueError(f"d_out={d_out!r}: must be positive")
        self.num_ch_enc = [int(c) for c in num_ch_enc]
        self.num_ch_dec = decoder_channels(num_ch_dec, d_out)
        self.d_out = int(d_out)
        blocks: list[nn.Module] = []
        for i in range(4, -1, -1):
            in_first = self.num_ch_enc[-1] if i == 4 else self.num_ch_dec[i + 1]
            blocks.append(ConvBlock(in_first, self.num_ch_dec[i]))
            in_second = self.num_ch_dec[i] + (self.num_ch_enc[i - 1] if i > 0 else 0)
            blocks.append(ConvBlock(in_second, self.num_ch_dec[i]))
        blocks.append(Conv3x3(self.num_ch_dec[0], self.d_out))  # reference index 10 = ("dispconv", 0)
        self.decoder = nn.ModuleList(blocks)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """5 encoder maps (finest first) -> ``[B,d_out,2*h0,2*w0]`` where ``h0 x w0`` is the size of ``features[0]``."""
        if len(features) != 5:
            raise ValueError(f"features: expected 5 encoder maps, got {len(features)}")
        x = features[-1]
        for stage, i in enumerate(range(4, -1, -1)):
            x = self.decoder[2 * stage](x)
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            if i > 0:
                skip = features[i - 1]
                x = torch.cat([x[:, :, : skip.shape[2], : skip.shape[3]], skip], dim=1)
            x = self.decoder[2 * stage + 1](x)
        return self.decoder[10](x)


class Monodepth2(nn.Module):
    """ResNet encoder + Monodepth2 decoder: image ``[B,3,H,W]`` in ``[-1,1]`` -> map ``[B,d_out,H,W]``.

    ``depth`` selects ResNet-18/34/50; ``pretrained_path`` is an optional local torchvision ImageNet ``.pth``.
    The output is cropped to ``H x W`` when H or W is not a multiple of 32 (see ``Decoder``).
    """

    def __init__(
        self,
        depth: int = 50,
        d_out: int = 64,
        num_ch_dec: Sequence[int] = (32, 32, 64, 128, 256),
        pretrained_path: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.encoder = ResnetEncoder(depth, pretrained_path)
        self.decoder = Decoder(self.encoder.num_ch_enc, num_ch_dec, d_out)
        self.d_out = int(d_out)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        if height <= 32 or width <= 32:
            raise ValueError(f"image: height and width must exceed 32 pixels, got {height}x{width}")
        out = self.decoder(self.encoder(image))
        return out[:, :, :height, :width]
