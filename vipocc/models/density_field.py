"""BTS density field: a pixel-aligned feature map of the key view decoded into volume density by a small MLP.

Frames and units:

* points are in the world frame in metres (in practice the key camera's frame, since the trainer expresses poses
  relative to the key frame);
* ``pose_w2c`` maps world to camera coordinates (OpenCV camera: x right, y down, z forward);
* ``K_norm`` is the normalised intrinsic matrix: ``K_norm @ p_cam / z`` gives image coordinates in ``[-1,1]``
  (-1 = left/top image border, +1 = right/bottom border), the convention of ``grid_sample(align_corners=False)``.

Parameter names follow the reference ``BTSNet`` (``encoder.encoder.encoder.*``, ``encoder.decoder.decoder.*``,
``mlp_coarse.lin_in/lin_out``) so that a key map onto the official BTS checkpoint only has to drop keys
(``encoder.encoder.encoder.fc.*``, ``encoder.decoder.decoder.11..13.*``, ``code_xyz._freqs/_phases``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vipocc.models.monodepth2 import Monodepth2
from vipocc.models.positional_encoding import PositionalEncoding

__all__ = [
    "DensityField",
    "DensityMLP",
    "RenderViews",
    "project_points",
    "inverse_depth_code",
    "PROJECTION_EPS",
]

# Smallest camera depth (m) treated as in front of the camera; also the clamp of the perspective division.
PROJECTION_EPS = 1e-3


@dataclass(frozen=True)
class RenderViews:
    """Views whose pixels colour the 3D samples (image-based rendering).

    images ``[B,V,3,H,W]`` in ``[0,1]``; K ``[B,V,3,3]`` normalised intrinsics; w2c ``[B,V,4,4]`` world-to-camera.
    """

    images: torch.Tensor
    K: torch.Tensor
    w2c: torch.Tensor


def project_points(
    points_world: torch.Tensor, K_norm: torch.Tensor, w2c: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Project world points into V cameras.

    points_world ``[B,P,3]``, K_norm ``[B,V,3,3]``, w2c ``[B,V,4,4]`` ->
    ``xy [B,V,P,2]`` normalised image coordinates, ``z [B,V,P]`` camera depth (m), ``invalid [B,V,P]`` bool
    (behind/at the camera: ``z <= 1e-3``, or outside the image: ``|x| > 1`` or ``|y| > 1``).
    """
    if points_world.ndim != 3 or points_world.shape[-1] != 3:
        raise ValueError(f"points_world: expected [B,P,3], got {tuple(points_world.shape)}")
    batch = points_world.shape[0]
    if K_norm.shape[0] != batch or K_norm.shape[-2:] != (3, 3) or K_norm.ndim != 4:
        raise ValueError(f"K_norm: expected [{batch},V,3,3], got {tuple(K_norm.shape)}")
    if w2c.shape[:2] != K_norm.shape[:2] or w2c.shape[-2:] != (4, 4):
        raise ValueError(f"w2c: expected {tuple(K_norm.shape[:2]) + (4, 4)}, got {tuple(w2c.shape)}")
    rotation, translation = w2c[..., :3, :3], w2c[..., :3, 3]
    points_cam = torch.einsum("bvij,bpj->bvpi", rotation, points_world) + translation.unsqueeze(2)
    projected = torch.einsum("bvij,bvpj->bvpi", K_norm, points_cam)
    z = projected[..., 2]
    xy = projected[..., :2] / z.clamp_min(PROJECTION_EPS).unsqueeze(-1)
    invalid = (z <= PROJECTION_EPS) | (xy.abs() > 1).any(dim=-1)
    return xy, z, invalid


def inverse_depth_code(z: torch.Tensor, z_near: float, z_far: float) -> torch.Tensor:
    """Map camera depth to ``[-1,1]`` linearly in inverse depth: ``z_near -> +1``, ``z_far -> -1``.

    ``2 (1/z - 1/z_far) / (1/z_near - 1/z_far) - 1``; z is clamped to ``>= 1e-3`` first (points behind the camera
    get a large finite code; they are flagged invalid anyway).
    """
    inv = 1.0 / z.clamp_min(PROJECTION_EPS)
    return 2.0 * (inv - 1.0 / z_far) / (1.0 / z_near - 1.0 / z_far) - 1.0


class DensityMLP(nn.Module):
    """``Linear(d_in, d_hidden) -> ReLU -> Linear(d_hidden, 1)``; the reference ``ResnetFC`` with ``n_blocks=0``.

    Both layers use He-normal (fan-in) weights and zero biases, as the reference.
    """

    def __init__(self, d_in: int, d_hidden: int = 64) -> None:
        super().__init__()
        self.lin_in = nn.Linear(d_in, d_hidden)
        self.lin_out = nn.Linear(d_hidden, 1)
        self.activation = nn.ReLU()
        for layer in (self.lin_in, self.lin_out):
            nn.init.kaiming_normal_(layer.weight, a=0, mode="fan_in")
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., d_in] -> [..., 1]`` raw (pre-softplus) density."""
        return self.lin_out(self.activation(self.lin_in(x)))


class DensityField(nn.Module):
    """BTS density field conditioned on one encoded key view.

    Usage: ``encode(image, K_norm, pose_w2c, flip)`` once per batch, then ``density(points)`` any number of times
    (and ``sample_colors`` for the photometric loss). Defaults are the paper configuration: ResNet-50, decoder
    widths ``[32,32,64,128,256]`` raised to ``d_out = 64``, 6 frequencies x 1.5, MLP 103 -> 64 -> 1, depth code
    between ``z_near = 3`` and ``z_far = 80`` m.
    """

    def __init__(
        self,
        depth: int = 50,
        d_out: int = 64,
        num_ch_dec: Sequence[int] = (32, 32, 64, 128, 256),
        pretrained_path: str | Path | None = None,
        z_near: float = 3.0,
        z_far: float = 80.0,
        num_freqs: int = 6,
        freq_factor: float = 1.5,
        d_hidden: int = 64,
    ) -> None:
        super().__init__()
        if not 0 < z_near < z_far:
            raise ValueError(f"z_near={z_near!r}, z_far={z_far!r}: need 0 < z_near < z_far")
        self.z_near = float(z_near)
        self.z_far = float(z_far)
        self.encoder = Monodepth2(depth, d_out, num_ch_dec, pretrained_path)
        self.code_xyz = PositionalEncoding(num_freqs, 3, freq_factor, include_input=True)
        self.mlp_coarse = DensityMLP(d_out + self.code_xyz.d_out, d_hidden)
        self._features: torch.Tensor | None = None
        self._K: torch.Tensor | None = None
        self._w2c: torch.Tensor | None = None

    @property
    def features(self) -> torch.Tensor:
        """Feature map of the encoded key view ``[B,d_out,H,W]`` (after ``encode``)."""
        if self._features is None:
            raise RuntimeError("DensityField: call encode(...) before querying the field")
        return self._features

    def encode(self, image: torch.Tensor, K_norm: torch.Tensor, pose_w2c: torch.Tensor, flip: bool = False) -> None:
        """Encode the key view and keep its full-resolution feature map.

        image ``[B,3,H,W]`` in ``[-1,1]``; K_norm ``[B,3,3]`` normalised intrinsics; pose_w2c ``[B,4,4]``.
        ``flip`` (augmentation; the caller draws it from its own generator) mirrors the encoder input horizontally
        and mirrors the feature map back, so geometry is unchanged and only the encoder sees a flipped image.
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image: expected [B,3,H,W], got {tuple(image.shape)}")
        batch = image.shape[0]
        if K_norm.shape != (batch, 3, 3):
            raise ValueError(f"K_norm: expected ({batch}, 3, 3), got {tuple(K_norm.shape)}")
        if pose_w2c.shape != (batch, 4, 4):
            raise ValueError(f"pose_w2c: expected ({batch}, 4, 4), got {tuple(pose_w2c.shape)}")
        encoder_input = torch.flip(image, dims=(-1,)) if flip else image
        features = self.encoder(encoder_input)
        self._features = torch.flip(features, dims=(-1,)) if flip else features
        self._K = K_norm
        self._w2c = pose_w2c

    def sample_features(self, points_world: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MLP input at world points: bilinear key-view feature + positional code of ``(x, y, z_n)``.

        points_world ``[B,P,3]`` (m) -> ``features [B,P,d_out + 39]`` (feature first, code last) and
        ``invalid [B,P]`` bool (the point does not project into the key view; its feature then comes from the
        nearest border pixel, as in the reference, which keeps no learned "empty" feature: ``learn_empty: false``).
        """
        features = self.features
        xy, z, invalid = project_points(points_world, self._K.unsqueeze(1), self._w2c.unsqueeze(1))
        xy, z, invalid = xy[:, 0], z[:, 0], invalid[:, 0]
        code = self.code_xyz(torch.cat((xy, inverse_depth_code(z, self.z_near, self.z_far).unsqueeze(-1)), dim=-1))
        sampled = F.grid_sample(
            features, xy.unsqueeze(1), mode="bilinear", padding_mode="border", align_corners=False
        )  # [B,C,1,P]
        return torch.cat((sampled[:, :, 0].transpose(1, 2), code), dim=-1), invalid

    def density(self, points_world: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Volume density at world points.

        points_world ``[B,P,3]`` (m) -> ``sigma [B,P]`` (1/m, softplus of the MLP output, > 0) and
        ``invalid [B,P]`` bool (outside the key view's frustum, see ``sample_features``).
        """
        mlp_input, invalid = self.sample_features(points_world)
        return F.softplus(self.mlp_coarse(mlp_input)[..., 0]), invalid

    @staticmethod
    def sample_colors(
        points_world: torch.Tensor, images: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Colours of world points seen from V render views (bilinear, border padding, ``align_corners=False``).

        points_world ``[B,P,3]``; images ``[B,V,3,H,W]`` in ``[0,1]``; K ``[B,V,3,3]`` normalised; w2c ``[B,V,4,4]``
        -> ``rgb [B,P,V,3]`` and ``invalid [B,P,V]`` (behind the camera or outside the image).
        """
        if images.ndim != 5 or images.shape[:2] != K.shape[:2]:
            raise ValueError(f"images: expected [B,V,C,H,W] matching K {tuple(K.shape[:2])}, got {tuple(images.shape)}")
        batch, n_views, channels, height, width = images.shape
        xy, _, invalid = project_points(points_world, K, w2c)  # [B,V,P,2], [B,V,P]
        sampled = F.grid_sample(
            images.reshape(batch * n_views, channels, height, width),
            xy.reshape(batch * n_views, 1, -1, 2),
            mode="bilinear",
            padding_mode="border",
            align_corners=False,
        )  # [B*V,C,1,P]
        rgb = sampled.reshape(batch, n_views, channels, -1).permute(0, 3, 1, 2)
        return rgb, invalid.transpose(1, 2)
