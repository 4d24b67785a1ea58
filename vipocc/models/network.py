"""The assembled BTS / ViPOcc network: the BTS density field plus, for ViPOcc, the metric depth branch.

One ``forward`` runs every learned part a training step needs (encode the key view, render the photometric rays,
render the depth-consistency rays, predict the depth of frames t and t+1), so the whole step goes through a single
module call, which is what DistributedDataParallel needs to synchronise gradients. Ray sampling and the losses stay
outside: they have no parameters.

Frames and units: the world frame is the key camera's frame after :func:`vipocc.models.frame_roles.rebase_poses`
(x right, y down, z forward, m); K are normalised intrinsics; images are in [-1, 1] for the encoders and in [0, 1]
for the colour (render) views; depths are camera z-depths in m unless called "distance" (along a unit ray).

Submodule names: ``field`` (:class:`~vipocc.models.density_field.DensityField`, the reference's ``renderer.net``)
and ``depth_branch`` (:class:`~vipocc.models.depth_branch.DepthBranch`, whose ``res_inv_depth`` /
``res_depth`` / ``depth_model`` child is the reference's wrapper attribute of the same name). A key map from the
official checkpoints therefore replaces the prefixes ``renderer.net.`` -> ``field.`` and ``res_inv_depth.`` ->
``depth_branch.res_inv_depth.``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vipocc.models.density_field import DensityField, RenderViews
from vipocc.models.depth_branch import ABLATIONS, DepthBranch
from vipocc.models.ray_sampler import ImageRaySampler, RayBatch
from vipocc.models.renderer import RenderOutput, render_rays

__all__ = ["NetworkConfig", "NetworkInputs", "NetworkOutputs", "ViPOccNetwork"]


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of :class:`ViPOccNetwork`. Defaults are the paper's ViPOcc (ResNet-50 field, ResNet-18 ``rid``
    depth branch, 64 samples per ray between 3 and 80 m); ``use_depth_branch=False`` is BTS."""

    encoder_depth: int = 50
    d_out: int = 64
    use_depth_branch: bool = True
    rid_ablation: str = "rid"
    depth_encoder_depth: int = 18
    encoder_weights: str | Path | None = None
    depth_encoder_weights: str | Path | None = None
    z_near: float = 3.0
    z_far: float = 80.0
    n_samples: int = 64

    def __post_init__(self) -> None:
        if self.rid_ablation not in ABLATIONS:
            raise ValueError(f"rid_ablation={self.rid_ablation!r}: expected one of {ABLATIONS}")
        if self.n_samples < 2:
            raise ValueError(f"n_samples={self.n_samples!r}: need at least 2 samples per ray")


@dataclass
class NetworkInputs:
    """One training step's inputs to :meth:`ViPOccNetwork.forward`.

    key_image ``[B,3,H,W]`` in [-1,1], key_K ``[B,3,3]``, key_w2c ``[B,4,4]`` (the encoded view; identity after
    rebasing); flip: horizontal-flip augmentation of the encoder input; rays: photometric rays (patch layout);
    render_views: colour sources ([0,1] images); depth_rays: key-frame rays of the depth-consistency term or None;
    depth_images ``[N,3,H,W]`` in [-1,1] and depth_priors ``[N,1,H,W]`` (m, or None for the ``depth`` ablation):
    the frames the depth branch predicts (frames t then t+1 of every element, N = 2B) or None; generator: the
    stratified-sampling jitter (None = torch's global generator); jitter: False = bin-centre samples.
    """

    key_image: torch.Tensor
    key_K: torch.Tensor
    key_w2c: torch.Tensor
    rays: RayBatch
    render_views: RenderViews
    flip: bool = False
    depth_rays: RayBatch | None = None
    depth_images: torch.Tensor | None = None
    depth_priors: torch.Tensor | None = None
    generator: torch.Generator | None = None
    jitter: bool = True


@dataclass
class NetworkOutputs:
    """render: photometric rays (:class:`~vipocc.models.renderer.RenderOutput`, rgb per render view);
    depth_render: depth-consistency rays (no colours) or None; pred_depth ``[N,1,H,W]`` z-depth (m) or None."""

    render: RenderOutput
    depth_render: RenderOutput | None = None
    pred_depth: torch.Tensor | None = None


class ViPOccNetwork(nn.Module):
    """BTS density field + optional ViPOcc depth branch (see the module docstring)."""

    def __init__(self, config: NetworkConfig | None = None) -> None:
        super().__init__()
        self.config = config or NetworkConfig()
        cfg = self.config
        self.field = DensityField(depth=cfg.encoder_depth, d_out=cfg.d_out, pretrained_path=cfg.encoder_weights,
                                  z_near=cfg.z_near, z_far=cfg.z_far)
        self.depth_branch: DepthBranch | None = None
        if cfg.use_depth_branch:
            self.depth_branch = DepthBranch(cfg.rid_ablation, cfg.depth_encoder_depth, cfg.depth_encoder_weights)

    def _render(self, rays: RayBatch, views: RenderViews | None, generator: torch.Generator | None,
                jitter: bool) -> RenderOutput:
        cfg = self.config
        return render_rays(self.field, rays.origins, rays.directions, views, n_samples=cfg.n_samples,
                           near=cfg.z_near, far=cfg.z_far, jitter=jitter, generator=generator)

    def forward(self, inputs: NetworkInputs) -> NetworkOutputs:
        self.field.encode(inputs.key_image, inputs.key_K, inputs.key_w2c, flip=inputs.flip)
        render = self._render(inputs.rays, inputs.render_views, inputs.generator, inputs.jitter)
        depth_render = None
        if inputs.depth_rays is not None:
            depth_render = self._render(inputs.depth_rays, None, inputs.generator, inputs.jitter)
        pred_depth = None
        if inputs.depth_images is not None:
            pred_depth = self.predict_depth(inputs.depth_images, inputs.depth_priors)
        return NetworkOutputs(render=render, depth_render=depth_render, pred_depth=pred_depth)

    def predict_depth(self, image: torch.Tensor, prior_depth: torch.Tensor | None) -> torch.Tensor:
        """Depth branch: image ``[B,3,H,W]`` in [-1,1], prior ``[B,1,H,W]`` (m; None for ``depth``) -> ``[B,1,H,W]``
        z-depth (m). ValueError for a BTS network (no depth branch)."""
        if self.depth_branch is None:
            raise ValueError("predict_depth: this network has no depth branch (use_depth_branch is false)")
        return self.depth_branch(image, prior_depth)

    @torch.no_grad()
    def render_depth_map(self, image: torch.Tensor, K_norm: torch.Tensor, chunk_rays: int = 32768,
                         pixel_convention: str = "linspace") -> torch.Tensor:
        """Volume-rendered z-depth of every pixel of the key view (validation / evaluation of BTS).

        image ``[B,3,H,W]`` in [-1,1], K_norm ``[B,3,3]``; the view is its own world frame (pose = identity).
        Samples sit at the bin centres (no jitter), so the result is deterministic. Rays are rendered in chunks of
        ``chunk_rays`` per element to bound memory. Returns ``[B,1,H,W]`` z-depth (m).
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image: expected [B,3,H,W], got {tuple(image.shape)}")
        if chunk_rays < 1:
            raise ValueError(f"chunk_rays={chunk_rays!r}: must be >= 1")
        batch, _, height, width = image.shape
        identity = torch.eye(4, dtype=image.dtype, device=image.device).expand(batch, 4, 4)
        self.field.encode(image, K_norm, identity, flip=False)
        rays = ImageRaySampler(pixel_convention).sample(identity.unsqueeze(1), K_norm.unsqueeze(1), (height, width))
        depths = []
        # A handful of chunks: bounds the [rays, samples, features] working set of a full image.
        for start in range(0, rays.n_rays, chunk_rays):
            stop = min(start + chunk_rays, rays.n_rays)
            out = render_rays(self.field, rays.origins[:, start:stop], rays.directions[:, start:stop], None,
                              n_samples=self.config.n_samples, near=self.config.z_near, far=self.config.z_far,
                              jitter=False)
            depths.append(out.depth * rays.z_factor[:, start:stop])
        return torch.cat(depths, dim=1).reshape(batch, 1, height, width)
