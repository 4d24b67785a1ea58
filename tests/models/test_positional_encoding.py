"""Positional code against hand-computed values and the documented ordering."""

from __future__ import annotations

import math

import pytest
import torch

from vipocc.models.positional_encoding import PositionalEncoding


def _hand_code(point: tuple[float, ...], num_freqs: int = 6, factor: float = 1.5) -> list[float]:
    """[x, y, z, sin(f0 x), sin(f0 y), sin(f0 z), cos(f0 x), cos(f0 y), cos(f0 z), sin(f1 x), ...], f_k = 1.5 2^k."""
    values = list(point)
    for k in range(num_freqs):
        f = factor * 2**k
        values += [math.sin(f * v) for v in point]
        values += [math.cos(f * v) for v in point]
    return values


def test_code_matches_hand_computed_values() -> None:
    point = (0.1, -0.2, 0.7)
    code = PositionalEncoding()(torch.tensor([point], dtype=torch.float64))
    assert code.shape == (1, 39)
    torch.testing.assert_close(code[0], torch.tensor(_hand_code(point), dtype=torch.float64))


def test_spot_values_and_frequencies() -> None:
    encoding = PositionalEncoding()
    assert encoding.freqs.tolist() == [1.5, 3.0, 6.0, 12.0, 24.0, 48.0]
    code = encoding(torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))[0]
    assert code[3].item() == pytest.approx(math.sin(1.5))  # sin(f0 x)
    assert code[6].item() == pytest.approx(math.cos(1.5))  # cos(f0 x)
    assert code[7].item() == pytest.approx(1.0)  # cos(f0 y) with y = 0
    assert code[33].item() == pytest.approx(math.sin(48.0))  # sin(f5 x)


def test_batch_shapes_without_input_and_bad_dim() -> None:
    encoding = PositionalEncoding(num_freqs=2, d_in=3, freq_factor=1.5, include_input=False)
    assert encoding.d_out == 12
    x = torch.rand(2, 5, 3)
    code = encoding(x)
    assert code.shape == (2, 5, 12)
    torch.testing.assert_close(code[1, 4], torch.tensor(_hand_code(tuple(x[1, 4].tolist()), 2)[3:]))
    assert "freqs" not in encoding.state_dict()
    with pytest.raises(ValueError, match="d_in"):
        encoding(torch.zeros(4, 2))
