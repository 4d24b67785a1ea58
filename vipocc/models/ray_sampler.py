"""Ray samplers for BTS / ViPOcc training and evaluation (vectorized; no loops over patches, pixels or rays).

Frames and units
----------------
* ``poses_c2w [B,V,4,4]`` camera-to-world, where "world" is the key camera's frame after
  :func:`vipocc.models.frame_roles.rebase_poses` (x right, y down, z forward, m).
* ``K_norm [B,V,3,3]`` normalised intrinsics (reference: ``fx' = 2 fx / W``, ``cx' = 2 cx / W - 1``).
* Pixel (column x, row y) is turned into normalised image coordinates by ``pixel_convention``:

  - ``"linspace"`` (default, the reference ``unproj_map``/``gen_rays``): ``x_n = -1 + 2 x / (W - 1)``, i.e.
    ``torch.linspace(-1, 1, W)``; same for y with H. The reference samples colours with
    ``grid_sample(align_corners=False)``, for which pixel x sits at ``(2x + 1)/W - 1``: the two differ by up to
    half a pixel (digest weak point 8). Kept as the default so training matches the reference.
  - ``"align_corners_false"``: ``x_n = (2 x + 1) / W - 1``, the pixel centre under the convention the density
    field's ``grid_sample`` uses (the consistent choice).

  The camera-frame direction of a pixel is ``K_norm^-1 [x_n, y_n, 1]`` (z = 1 for a pinhole K).

Ray layout
----------
Every sampler returns a :class:`RayBatch`. Patch samplers order rays patch-major: ray
``r = (p * ps + dy) * ps + dx`` is pixel ``(x0_p + dx, y0_p + dy)`` of patch ``p``, so ``RayBatch.patches``
reshapes any ``[B,R,...]`` tensor to ``[B,P,ps,ps,...]`` (rows, then columns) for SSIM and smoothness.

Randomness comes only from the ``torch.Generator`` passed to ``sample`` (drawn on the generator's device).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from vipocc.models.frame_roles import PERSPECTIVE_SLOTS

__all__ = [
    "PixelConvention",
    "RayBatch",
    "pixel_to_normalized",
    "rays_at_pixels",
    "gather_pixels",
    "PatchSampler",
    "DepthPatchSampler",
    "SnogSampler",
    "ImageRaySampler",
]

PixelConvention = Literal["linspace", "align_corners_false"]
_CONVENTIONS = ("linspace", "align_corners_false")


@dataclass
class RayBatch:
    """Rays for B batch elements x R rays.

    origins ``[B,R,3]`` camera centres and directions ``[B,R,3]`` unit directions, both in the world (= rebased key
    camera) frame, m; directions_cam ``[B,R,3]`` unnormalised camera-frame direction ``K_norm^-1 [x_n, y_n, 1]``;
    z_factor ``[B,R]`` = ``directions_cam_z / |directions_cam|`` (distance along the ray -> camera z-depth);
    view ``[B,R]`` int64 index into the views passed to the sampler; pixels ``[B,R,2]`` int64 (x column, y row);
    rgb_gt ``[B,R,3]`` target colours gathered from the images (None when no images were given);
    image_size (H, W); patch_size/n_patches for patch samplers (None otherwise).
    """

    origins: torch.Tensor
    directions: torch.Tensor
    directions_cam: torch.Tensor
    z_factor: torch.Tensor
    view: torch.Tensor
    pixels: torch.Tensor
    image_size: tuple[int, int]
    rgb_gt: torch.Tensor | None = None
    patch_size: int | None = None
    n_patches: int | None = None

    @property
    def n_rays(self) -> int:
        return self.origins.shape[1]

    def patches(self, values: torch.Tensor) -> torch.Tensor:
        """Reshape per-ray values ``[B,R,...]`` to ``[B,P,ps,ps,...]`` (patch, row, column)."""
        if self.patch_size is None or self.n_patches is None:
            raise ValueError("RayBatch.patches: these rays were not sampled in patches")
        if values.shape[:2] != self.origins.shape[:2]:
            raise ValueError(
                f"values: expected leading shape {tuple(self.origins.shape[:2])}, got {tuple(values.shape)}"
            )
        ps = self.patch_size
        return values.reshape(values.shape[0], self.n_patches, ps, ps, *values.shape[2:])

    def gather(self, maps: torch.Tensor) -> torch.Tensor:
        """Values of per-view maps at the rays' pixels: maps ``[B,V,C,H,W]`` (or ``[B,C,H,W]`` for one view)
        -> ``[B,R,C]``. E.g. the predicted depth ``[B,1,H,W]`` at the rays of :class:`DepthPatchSampler`."""
        if maps.ndim == 4:
            maps = maps.unsqueeze(1)
        return gather_pixels(maps, self.view, self.pixels)


def _check_convention(pixel_convention: str) -> None:
    if pixel_convention not in _CONVENTIONS:
        raise ValueError(f"pixel_convention={pixel_convention!r}: expected one of {_CONVENTIONS}")


def pixel_to_normalized(index: torch.Tensor, size: int, pixel_convention: PixelConvention = "linspace") -> torch.Tensor:
    """Integer pixel index along an axis of ``size`` pixels -> normalised coordinate (float, see module doc)."""
    _check_convention(pixel_convention)
    index = index.to(torch.get_default_dtype()) if not index.is_floating_point() else index
    if pixel_convention == "linspace":
        return index * (2.0 / (size - 1)) - 1.0 if size > 1 else torch.zeros_like(index)
    return (2.0 * index + 1.0) / size - 1.0


def _check_views(poses_c2w: torch.Tensor, K_norm: torch.Tensor) -> None:
    if poses_c2w.ndim != 4 or poses_c2w.shape[-2:] != (4, 4):
        raise ValueError(f"poses_c2w: expected [B,V,4,4], got {tuple(poses_c2w.shape)}")
    if K_norm.shape != poses_c2w.shape[:2] + (3, 3):
        raise ValueError(f"K_norm: expected {tuple(poses_c2w.shape[:2]) + (3, 3)}, got {tuple(K_norm.shape)}")


def rays_at_pixels(
    poses_c2w: torch.Tensor,
    K_norm: torch.Tensor,
    view: torch.Tensor,
    pixels: torch.Tensor,
    image_size: tuple[int, int],
    pixel_convention: PixelConvention = "linspace",
) -> RayBatch:
    """Rays through given pixels: poses_c2w ``[B,V,4,4]``, K_norm ``[B,V,3,3]``, view ``[B,R]`` int64 view index,
    pixels ``[B,R,2]`` int64 (x, y) in an image of ``image_size`` (H, W) -> :class:`RayBatch` (no rgb_gt)."""
    _check_views(poses_c2w, K_norm)
    height, width = image_size
    batch = poses_c2w.shape[0]
    dtype = poses_c2w.dtype
    x_n = pixel_to_normalized(pixels[..., 0].to(dtype), width, pixel_convention)
    y_n = pixel_to_normalized(pixels[..., 1].to(dtype), height, pixel_convention)
    homogeneous = torch.stack((x_n, y_n, torch.ones_like(x_n)), dim=-1)  # [B,R,3]
    batch_index = torch.arange(batch, device=view.device).unsqueeze(1)
    K_inv = torch.linalg.inv(K_norm)[batch_index, view]  # [B,R,3,3]
    c2w = poses_c2w[batch_index, view]  # [B,R,4,4]
    directions_cam = torch.einsum("brij,brj->bri", K_inv, homogeneous)
    unit_cam = F.normalize(directions_cam, dim=-1)
    return RayBatch(
        origins=c2w[..., :3, 3],
        directions=torch.einsum("brij,brj->bri", c2w[..., :3, :3], unit_cam),
        directions_cam=directions_cam,
        z_factor=unit_cam[..., 2],
        view=view,
        pixels=pixels,
        image_size=(int(height), int(width)),
    )


def gather_pixels(maps: torch.Tensor, view: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """maps ``[B,V,C,H,W]``, view ``[B,R]``, pixels ``[B,R,2]`` (x, y) -> ``[B,R,C]`` (one flat gather)."""
    if maps.ndim != 5:
        raise ValueError(f"maps: expected [B,V,C,H,W], got {tuple(maps.shape)}")
    batch, n_views, channels, height, width = maps.shape
    if view.shape != pixels.shape[:2] or view.shape[0] != batch:
        raise ValueError(f"view {tuple(view.shape)} / pixels {tuple(pixels.shape)} do not match batch {batch}")
    # Index the channel-first storage directly: a channel-last copy of the whole image stack would cost more
    # than the gather itself.
    flat = maps.reshape(batch, -1)
    channel = torch.arange(channels, device=view.device)
    index = ((view.unsqueeze(-1) * channels + channel) * height + pixels[..., 1:2]) * width + pixels[..., 0:1]
    return torch.gather(flat, 1, index.reshape(batch, -1)).reshape(batch, -1, channels)


def _patch_pixels(x0: torch.Tensor, y0: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Top-left corners ``[B,P]`` -> pixels ``[B,P*ps*ps,2]`` (x, y), patch-major, rows then columns."""
    offsets = torch.arange(patch_size, device=x0.device)
    xs = (x0[..., None, None] + offsets.view(1, 1, 1, -1)).expand(-1, -1, patch_size, -1)
    ys = (y0[..., None, None] + offsets.view(1, 1, -1, 1)).expand(-1, -1, -1, patch_size)
    return torch.stack((xs, ys), dim=-1).reshape(x0.shape[0], -1, 2)


def _check_images(images: torch.Tensor, poses_c2w: torch.Tensor, patch_size: int) -> tuple[int, int]:
    if images.ndim != 5 or images.shape[:2] != poses_c2w.shape[:2]:
        raise ValueError(
            f"images: expected [B,V,C,H,W] with B,V = {tuple(poses_c2w.shape[:2])}, got {tuple(images.shape)}"
        )
    return _check_size(tuple(images.shape[-2:]), patch_size)


def _check_size(image_size: Sequence[int], patch_size: int) -> tuple[int, int]:
    if len(image_size) != 2:
        raise ValueError(f"image_size: expected (H, W), got {tuple(image_size)}")
    height, width = int(image_size[0]), int(image_size[1])
    if height < patch_size or width < patch_size:
        raise ValueError(f"image_size {(height, width)} is smaller than patch_size {patch_size}")
    return height, width


def _randint(high: int, size: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Integers uniform in [0, high) drawn on the generator's device, then moved to ``device``."""
    return torch.randint(0, high, size, generator=generator, device=generator.device).to(device)


class PatchSampler:
    """Random ps x ps patches on the loss views (BTS ``PatchRaySampler`` without anchors).

    Each batch element draws its own ``n_patches`` (view, top-left) triples, uniform over the views and over all
    top-left corners ``[0, H-ps] x [0, W-ps]`` (the reference's exclusive ``randint(0, H-ps)`` never uses the
    last row/column of corners; here every corner is possible). ``shared_across_batch=True`` reproduces the
    reference, which uses the same patch positions for every batch element. Defaults: 64 patches of 8x8 = 4096 rays.
    """

    def __init__(
        self,
        patch_size: int = 8,
        n_patches: int = 64,
        shared_across_batch: bool = False,
        pixel_convention: PixelConvention = "linspace",
    ) -> None:
        if patch_size < 1 or n_patches < 1:
            raise ValueError(f"patch_size={patch_size!r}, n_patches={n_patches!r}: both must be >= 1")
        _check_convention(pixel_convention)
        self.patch_size = int(patch_size)
        self.n_patches = int(n_patches)
        self.shared_across_batch = bool(shared_across_batch)
        self.pixel_convention = pixel_convention

    @property
    def n_rays(self) -> int:
        return self.n_patches * self.patch_size**2

    def draw_patches(
        self, batch: int, n_views: int, image_size: tuple[int, int], generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random patches: (view, x0, y0), each int64 ``[B,P]``."""
        height, width = _check_size(image_size, self.patch_size)
        draws = 1 if self.shared_across_batch else batch
        size = (draws, self.n_patches)
        view = _randint(n_views, size, generator, device)
        y0 = _randint(height - self.patch_size + 1, size, generator, device)
        x0 = _randint(width - self.patch_size + 1, size, generator, device)
        return view.expand(batch, -1), x0.expand(batch, -1), y0.expand(batch, -1)

    def _rays_for_patches(
        self,
        view: torch.Tensor,
        x0: torch.Tensor,
        y0: torch.Tensor,
        poses_c2w: torch.Tensor,
        K_norm: torch.Tensor,
        image_size: tuple[int, int],
        images: torch.Tensor | None,
    ) -> RayBatch:
        ps = self.patch_size
        pixels = _patch_pixels(x0, y0, ps)
        ray_view = view.repeat_interleave(ps * ps, dim=1)
        rays = rays_at_pixels(poses_c2w, K_norm, ray_view, pixels, image_size, self.pixel_convention)
        rays.patch_size, rays.n_patches = ps, view.shape[1]
        if images is not None:
            rays.rgb_gt = gather_pixels(images, ray_view, pixels)
        return rays

    def sample(
        self, images: torch.Tensor, poses_c2w: torch.Tensor, K_norm: torch.Tensor, generator: torch.Generator
    ) -> RayBatch:
        """images ``[B,V,3,H,W]`` loss views (colour targets, e.g. in [0,1]), poses_c2w ``[B,V,4,4]``,
        K_norm ``[B,V,3,3]`` -> :class:`RayBatch` of ``n_patches * ps^2`` rays per element, with rgb_gt."""
        _check_views(poses_c2w, K_norm)
        image_size = _check_images(images, poses_c2w, self.patch_size)
        batch, n_views = poses_c2w.shape[:2]
        view, x0, y0 = self.draw_patches(batch, n_views, image_size, generator, images.device)
        return self._rays_for_patches(view, x0, y0, poses_c2w, K_norm, image_size, images)


class DepthPatchSampler(PatchSampler):
    """Random ps x ps patches on the key frame only (reference ``DepthRaySampler``; 32 patches = 2048 rays).

    The returned rays carry ``pixels`` (``RayBatch.gather(pred_depth)`` reads the predicted depth there) and
    ``z_factor`` (rendered distance x z_factor = rendered camera z-depth, comparable with the predicted depth).
    """

    def __init__(
        self,
        patch_size: int = 8,
        n_patches: int = 32,
        shared_across_batch: bool = False,
        pixel_convention: PixelConvention = "linspace",
    ) -> None:
        super().__init__(patch_size, n_patches, shared_across_batch, pixel_convention)

    def sample(  # type: ignore[override]
        self,
        key_pose_c2w: torch.Tensor,
        key_K_norm: torch.Tensor,
        image_size: tuple[int, int],
        generator: torch.Generator,
    ) -> RayBatch:
        """key_pose_c2w ``[B,4,4]`` (identity after rebasing), key_K_norm ``[B,3,3]``, image_size (H, W) of the
        key image -> :class:`RayBatch` (view index 0 everywhere, no rgb_gt)."""
        if key_pose_c2w.ndim != 3 or key_K_norm.ndim != 3:
            raise ValueError(
                f"key_pose_c2w {tuple(key_pose_c2w.shape)} / key_K_norm {tuple(key_K_norm.shape)}: "
                "expected [B,4,4] / [B,3,3]"
            )
        poses, Ks = key_pose_c2w.unsqueeze(1), key_K_norm.unsqueeze(1)
        _check_views(poses, Ks)
        size = _check_size(image_size, self.patch_size)
        view, x0, y0 = self.draw_patches(poses.shape[0], 1, size, generator, poses.device)
        return self._rays_for_patches(view, x0, y0, poses, Ks, size, None)


class SnogSampler(PatchSampler):
    """SNOG anchors on the perspective loss views plus random patches on the other (fisheye) loss views.

    Per batch element and per perspective loss view: one anchor set is drawn uniformly from the S stored sets,
    then ``anchors_per_view`` of its A anchors without replacement; an anchor (x, y) is a patch centre and becomes
    the top-left corner ``(x - ps//2, y - ps//2)`` (-4 px for 8x8). The remaining
    ``n_patches - anchors_per_view * n_perspective_loss_views`` patches are uniform over the non-perspective loss
    views (reference: ``randint(2, 4)`` over the two fisheye loss views). Defaults: 2 x 16 anchors + 32 random.

    Fixes over the reference (tested): every batch element uses its *own* anchors (the reference applies the last
    element's to all), any batch size works (the reference indexes the batch axis with the view id and raises
    IndexError for B < 4), and anchors go to the view slot whose image they were computed on, via
    ``ids_loss`` and ``frame_roles.VIEW_SLOTS`` (the reference attaches them by frame index t/t+1, which puts them
    on the other camera for the swapped role draw ``ids_loss = [1,2,5,6]``).

    Ray order: the anchor patches of each perspective loss view in ``ids_loss`` order, then the random patches.
    """

    def __init__(
        self,
        patch_size: int = 8,
        n_patches: int = 64,
        anchors_per_view: int = 16,
        pixel_convention: PixelConvention = "linspace",
        anchor_slots: Sequence[int] = PERSPECTIVE_SLOTS,
    ) -> None:
        super().__init__(patch_size, n_patches, False, pixel_convention)
        if anchors_per_view < 1:
            raise ValueError(f"anchors_per_view={anchors_per_view!r}: must be >= 1")
        self.anchors_per_view = int(anchors_per_view)
        self.anchor_slots = tuple(int(s) for s in anchor_slots)

    def _anchors_by_slot(self, anchors: torch.Tensor | Mapping[int, torch.Tensor]) -> Mapping[int, torch.Tensor]:
        if isinstance(anchors, torch.Tensor):
            if anchors.ndim != 5 or anchors.shape[1] != len(self.anchor_slots):
                raise ValueError(
                    f"anchors: expected [B,{len(self.anchor_slots)},S,A,2] (axis 1 = view slots {self.anchor_slots}), "
                    f"got {tuple(anchors.shape)}"
                )
            return {slot: anchors[:, i] for i, slot in enumerate(self.anchor_slots)}
        return anchors

    def _corners_on_view(
        self, anchors: torch.Tensor, slot: int, batch: int, image_size: tuple[int, int], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """anchors ``[B,S,A,2]`` (x, y) centres of one view slot -> chosen top-left corners x0, y0 ``[B,k]``."""
        if anchors.ndim != 4 or anchors.shape[0] != batch or anchors.shape[-1] != 2:
            raise ValueError(f"anchors for view slot {slot}: expected [{batch},S,A,2], got {tuple(anchors.shape)}")
        n_sets, n_anchors = anchors.shape[1:3]
        k = self.anchors_per_view
        if n_anchors < k:
            raise ValueError(f"anchors for view slot {slot}: {n_anchors} anchors per set, need {k}")
        corners = anchors.to(torch.int64) - self.patch_size // 2
        height, width = image_size
        inside = (corners[..., 0] >= 0) & (corners[..., 0] <= width - self.patch_size)
        inside &= (corners[..., 1] >= 0) & (corners[..., 1] <= height - self.patch_size)
        if not bool(inside.all()):
            raise ValueError(
                f"anchors for view slot {slot}: some {self.patch_size}x{self.patch_size} patches around the anchors "
                f"leave the {height}x{width} image (anchors must be (x, y) patch centres; a (W, H) swap?)"
            )
        device = anchors.device
        chosen_set = _randint(n_sets, (batch,), generator, device)
        chosen = torch.rand((batch, n_anchors), generator=generator, device=generator.device).argsort(dim=1)[:, :k]
        batch_index = torch.arange(batch, device=device).unsqueeze(1)
        picked = corners[batch_index, chosen_set.unsqueeze(1), chosen.to(device)]  # [B,k,2]
        return picked[..., 0], picked[..., 1]

    def sample(  # type: ignore[override]
        self,
        images: torch.Tensor,
        poses_c2w: torch.Tensor,
        K_norm: torch.Tensor,
        ids_loss: Sequence[int],
        anchors: torch.Tensor | Mapping[int, torch.Tensor],
        generator: torch.Generator,
    ) -> RayBatch:
        """images ``[B,V,3,H,W]``, poses_c2w ``[B,V,4,4]``, K_norm ``[B,V,3,3]``: the loss views, view i being
        dataset slot ``ids_loss[i]``. anchors: per view slot, uint16/int ``[B,S,A,2]`` (x, y) centres, either a
        mapping ``{slot: tensor}`` or one tensor ``[B,n_slots,S,A,2]`` with axis 1 = ``anchor_slots`` order
        (default slots 0..3: key t, key t+1, other t, other t+1). Only the slots present in ``ids_loss`` are read.
        """
        _check_views(poses_c2w, K_norm)
        image_size = _check_images(images, poses_c2w, self.patch_size)
        batch, n_views = poses_c2w.shape[:2]
        if len(ids_loss) != n_views:
            raise ValueError(f"ids_loss {list(ids_loss)}: expected one view slot per loss view ({n_views})")
        by_slot = self._anchors_by_slot(anchors)
        anchor_positions = [i for i, slot in enumerate(ids_loss) if slot in self.anchor_slots]
        random_positions = [i for i, slot in enumerate(ids_loss) if slot not in self.anchor_slots]
        n_random = self.n_patches - self.anchors_per_view * len(anchor_positions)
        if n_random < 0 or (n_random > 0 and not random_positions):
            raise ValueError(
                f"SnogSampler: {self.n_patches} patches cannot hold {self.anchors_per_view} anchors on each of "
                f"{len(anchor_positions)} perspective loss views plus {n_random} random patches on "
                f"{len(random_positions)} other loss views (ids_loss={list(ids_loss)})"
            )
        device = images.device
        views, xs, ys = [], [], []
        for position in anchor_positions:  # at most a handful of views
            slot = int(ids_loss[position])
            if slot not in by_slot:
                raise ValueError(f"anchors: no anchors given for view slot {slot} (ids_loss={list(ids_loss)})")
            x0, y0 = self._corners_on_view(
                by_slot[slot].to(device=device, dtype=torch.int64), slot, batch, image_size, generator
            )
            views.append(torch.full_like(x0, position))
            xs.append(x0)
            ys.append(y0)
        if n_random > 0:
            height, width = image_size
            size = (batch, n_random)
            pick = _randint(len(random_positions), size, generator, device)
            views.append(torch.tensor(random_positions, device=device)[pick])
            ys.append(_randint(height - self.patch_size + 1, size, generator, device))
            xs.append(_randint(width - self.patch_size + 1, size, generator, device))
        view, x0, y0 = torch.cat(views, dim=1), torch.cat(xs, dim=1), torch.cat(ys, dim=1)
        return self._rays_for_patches(view, x0, y0, poses_c2w, K_norm, image_size, images)


class ImageRaySampler:
    """One ray per pixel of every view (evaluation / visualisation); rays ordered (view, row, column)."""

    def __init__(self, pixel_convention: PixelConvention = "linspace") -> None:
        _check_convention(pixel_convention)
        self.pixel_convention = pixel_convention

    def sample(
        self,
        poses_c2w: torch.Tensor,
        K_norm: torch.Tensor,
        image_size: tuple[int, int],
        images: torch.Tensor | None = None,
    ) -> RayBatch:
        """poses_c2w ``[B,V,4,4]``, K_norm ``[B,V,3,3]``, image_size (H, W), optional images ``[B,V,C,H,W]``
        -> :class:`RayBatch` with R = V*H*W rays (``values.reshape(B,V,H,W,...)`` restores the image layout)."""
        _check_views(poses_c2w, K_norm)
        height, width = _check_size(image_size, 1)
        batch, n_views = poses_c2w.shape[:2]
        device = poses_c2w.device
        v, y, x = torch.meshgrid(
            torch.arange(n_views, device=device),
            torch.arange(height, device=device),
            torch.arange(width, device=device),
            indexing="ij",
        )
        view = v.reshape(1, -1).expand(batch, -1)
        pixels = torch.stack((x.reshape(-1), y.reshape(-1)), dim=-1).unsqueeze(0).expand(batch, -1, -1)
        rays = rays_at_pixels(poses_c2w, K_norm, view, pixels, (height, width), self.pixel_convention)
        if images is not None:
            if images.shape[:2] != (batch, n_views) or tuple(images.shape[-2:]) != (height, width):
                raise ValueError(f"images: expected [{batch},{n_views},C,{height},{width}], got {tuple(images.shape)}")
            rays.rgb_gt = images.permute(0, 1, 3, 4, 2).reshape(batch, n_views * height * width, -1)
        return rays
