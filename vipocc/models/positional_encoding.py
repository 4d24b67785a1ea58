"""NeRF positional code as configured in BTS/ViPOcc (6 frequencies 1.5 * 2^k, input included)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PositionalEncoding"]


class PositionalEncoding(nn.Module):
    """NeRF code ``[x, sin(f0 x), cos(f0 x), sin(f1 x), cos(f1 x), ...]`` with ``f_k = freq_factor * 2^k``.

    For ``x = (x1..xd)`` each ``sin(f_k x)``/``cos(f_k x)`` is a block of ``d_in`` values, so with d_in 3 the layout
    is ``[x, y, z, sin(f0 x), sin(f0 y), sin(f0 z), cos(f0 x), cos(f0 y), cos(f0 z), sin(f1 x), ...]``:
    ``d_out = d_in * (2 * num_freqs + include_input)`` = 39 for the defaults. This is the reference ordering.

    The frequencies are a non-persistent buffer: the reference stores ``_freqs``/``_phases`` buffers in its
    checkpoints (``code_xyz._freqs``, ``code_xyz._phases``), which are constants; a key map should drop them.
    """

    def __init__(self, num_freqs: int = 6, d_in: int = 3, freq_factor: float = 1.5, include_input: bool = True) -> None:
        super().__init__()
        if num_freqs < 0 or d_in <= 0:
            raise ValueError(f"num_freqs={num_freqs!r}, d_in={d_in!r}: need num_freqs >= 0 and d_in > 0")
        self.num_freqs = int(num_freqs)
        self.d_in = int(d_in)
        self.include_input = bool(include_input)
        self.d_out = self.d_in * (2 * self.num_freqs + int(self.include_input))
        freqs = float(freq_factor) * 2.0 ** torch.arange(self.num_freqs, dtype=torch.float32)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., d_in]`` -> code ``[..., d_out]``."""
        if x.shape[-1] != self.d_in:
            raise ValueError(f"x: last dimension must be d_in={self.d_in}, got shape {tuple(x.shape)}")
        scaled = x.unsqueeze(-2) * self.freqs.to(x.dtype).unsqueeze(-1)  # [..., F, d_in]
        code = torch.stack((torch.sin(scaled), torch.cos(scaled)), dim=-2)  # [..., F, 2, d_in]
        code = code.flatten(-3)
        return torch.cat((x, code), dim=-1) if self.include_input else code
