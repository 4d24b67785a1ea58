"""ViPOcc metric depth branch: a ResNet-18 Monodepth2 network corrects the VFM depth prior in inverse-depth space.

Default (``rid``): the network predicts a residual inverse depth r and
``D = 1 / (1/clip(D_prior, 0.1, 80) + r/10 + 1e-8)`` (``align_inverse_depth``). Ablations: ``res_depth``
(additive metric residual) and ``depth`` (the network predicts depth directly). Depths are camera z-depths in m.

Submodule names follow the reference ``BTSWrapper`` attributes so the ViPOcc checkpoint maps by prefix:
``res_inv_depth.*`` (rid), ``res_depth.*`` (res_depth; the reference keeps alpha/beta as ``res_depth.decoder.alpha
/beta`` and names its decoder convs ``upconvs0/upconvs1/dispconvs``, so that ablation needs a renaming map; here they
are ``res_depth_alpha``/``res_depth_beta``) and ``depth_model.*`` (depth).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from vipocc.models.monodepth2 import DEFAULT_NUM_CH_DEC, Monodepth2

__all__ = [
    "DepthBranch",
    "align_inverse_depth",
    "residual_depth",
    "disparity_to_depth",
    "MIN_DEPTH",
    "MAX_DEPTH",
    "RESIDUAL_SCALE",
    "ABLATIONS",
]

MIN_DEPTH = 0.1  # m, lower clip of the prior (reference DepthRefinement.min_depth)
MAX_DEPTH = 80.0  # m, upper clip of the prior and, with the guard, of the aligned depth
RESIDUAL_SCALE = 10.0  # the network's residual is divided by this before it is added to the inverse depth
ABLATIONS = ("rid", "res_depth", "depth")
RID_NUM_CH_DEC: tuple[int, ...] = (16, 32, 64, 128, 256)


def align_inverse_depth(
    prior_depth: torch.Tensor, residual_inv_depth: torch.Tensor, reference: bool = False
) -> torch.Tensor:
    """Inverse depth alignment: ``D = 1 / (1/clip(D_prior, 0.1, 80) + r/10 + 1e-8)``.

    prior_depth ``[B,1,H,W]`` metric VFM depth (m); residual_inv_depth ``[B,1,H,W]`` raw network output r
    (broadcastable shapes are accepted) -> aligned depth (m), same shape. Inputs are never modified (the reference
    divides r in place on the caller's tensor).

    Guard (default): the aligned inverse depth is clamped to ``>= 1/80``, i.e. ``0 < D <= 80`` m. Without it a
    negative enough r makes the inverse depth zero or negative and D infinite or negative, which no loss or
    projection can use (negative depths flip warped points behind the camera). 80 m is the prior's own upper clip,
    the renderer's far plane and the evaluation cap (predictions are clamped to [1e-3, 80] at test time): for an
    inverse depth in (0, 1/80) the evaluated value is 80 m with or without the guard; only where the reference's
    inverse depth is <= 0 do they differ (the reference's negative D is clamped to 1e-3 m by the evaluation, the
    guard gives 80 m, the physically sensible "very far"). It is a hard clamp: where it is active the
    pixel passes no gradient to r (other pixels still train the shared weights); where it is inactive the result
    is bit-identical to the reference. ``reference=True`` reproduces the unguarded reference formula.
    """
    if not isinstance(prior_depth, torch.Tensor) or not isinstance(residual_inv_depth, torch.Tensor):
        raise ValueError("prior_depth and residual_inv_depth must be torch tensors")
    try:
        torch.broadcast_shapes(prior_depth.shape, residual_inv_depth.shape)
    except RuntimeError as err:
        raise ValueError(
            f"prior_depth {tuple(prior_depth.shape)} and residual_inv_depth {tuple(residual_inv_depth.shape)} "
            "do not broadcast"
        ) from err
    inverse = 1.0 / prior_depth.clamp(MIN_DEPTH, MAX_DEPTH) + residual_inv_depth / RESIDUAL_SCALE
    if not reference:
        inverse = inverse.clamp_min(1.0 / MAX_DEPTH)
    return 1.0 / (inverse + 1e-8)


def residual_depth(
    prior_depth: torch.Tensor, raw: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor
) -> torch.Tensor:
    """``res_depth`` ablation: ``D = D_prior + alpha * sigmoid(raw) + beta`` (prior not clipped, as the reference)."""
    return prior_depth + alpha * torch.sigmoid(raw) + beta


def disparity_to_depth(raw: torch.Tensor, min_depth: float = MIN_DEPTH, max_depth: float = MAX_DEPTH) -> torch.Tensor:
    """Monodepth2's bounded depth head ``1 / (1/max + (1/min - 1/max) sigmoid(raw))``, in ``[min, max]`` m."""
    return 1.0 / (1.0 / max_depth + (1.0 / min_depth - 1.0 / max_depth) * torch.sigmoid(raw))


class DepthBranch(nn.Module):
    """Metric depth from an image and its VFM depth prior.

    ``mode``:

    * ``rid`` (default): ResNet-18 + Monodepth2 decoder ``[16,32,64,128,256]``, ``d_out=1``, no output activation
      -> residual inverse depth r -> ``align_inverse_depth``;
    * ``res_depth``: same network, ``D = D_prior + alpha sigmoid(x) + beta`` with learnable alpha (init 80) and
      beta (init 0.5), as the reference ``ResidualDepth``;
    * ``depth``: ResNet-18 + Monodepth2 decoder with Monodepth2's default widths ``[128,128,256,256,512]`` (what the
      reference builds), no prior. The reference crashes here (it unpacks a tuple from the 4-scale output list) and
      never defines how the output becomes a depth; we use Monodepth2's bounded sigmoid-disparity head
      (``disparity_to_depth``, depth in [0.1, 80] m) so that the prediction is always a valid positive depth.

    ``num_ch_dec`` overrides the per-mode decoder widths.
    """

    def __init__(
        self,
        mode: str = "rid",
        depth: int = 18,
        pretrained_path: str | Path | None = None,
        num_ch_dec: Sequence[int] | None = None,
        reference_alignment: bool = False,
    ) -> None:
        super().__init__()
        if mode not in ABLATIONS:
            raise ValueError(f"mode={mode!r}: must be one of {ABLATIONS}")
        self.mode = mode
        self.reference_alignment = bool(reference_alignment)
        if num_ch_dec is None:
            num_ch_dec = DEFAULT_NUM_CH_DEC if mode == "depth" else RID_NUM_CH_DEC
        net = Monodepth2(depth, d_out=1, num_ch_dec=num_ch_dec, pretrained_path=pretrained_path)
        if mode == "rid":
            self.res_inv_depth = net
        elif mode == "res_depth":
            self.res_depth = net
            self.res_depth_alpha = nn.Parameter(torch.tensor(80.0))
            self.res_depth_beta = nn.Parameter(torch.tensor(0.5))
        else:
            self.depth_model = net

    def forward(self, image: torch.Tensor, prior_depth: torch.Tensor | None = None) -> torch.Tensor:
        """image ``[B,3,H,W]`` in ``[-1,1]``, prior_depth ``[B,1,H,W]`` (m; unused by ``depth``) -> depth ``[B,1,H,W]``.
        """
        if self.mode == "depth":
            return disparity_to_depth(self.depth_model(image))
        if prior_depth is None:
            raise ValueError(f"prior_depth: required for mode {self.mode!r}")
        if prior_depth.ndim != 4 or prior_depth.shape[1] != 1 or prior_depth.shape[-2:] != image.shape[-2:]:
            raise ValueError(
                f"prior_depth: expected [B,1,{image.shape[-2]},{image.shape[-1]}], got {tuple(prior_depth.shape)}"
            )
        if self.mode == "rid":
            return align_inverse_depth(prior_depth, self.res_inv_depth(image), reference=self.reference_alignment)
        return residual_depth(prior_depth, self.res_depth(image), self.res_depth_alpha, self.res_depth_beta)
