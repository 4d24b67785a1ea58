"""Ray samplers: patch layout, gathered colours, ray geometry (reprojection with K), batch independence, and the
SNOG sampler's per-element anchors, any batch size, and slot mapping under both frame-role draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from vipocc.models.ray_sampler import (
    DepthPatchSampler,
    ImageRaySampler,
    PatchSampler,
    RayBatch,
    SnogSampler,
)

DT = torch.float64


def _rig(batch: int, views: int, height: int, width: int, seed: int = 0):
    """Random rebased-looking poses [B,V,4,4], per-view K_norm [B,V,3,3], and images whose channels encode
    (10 b + v, row, column) so a gathered colour tells where it came from."""
    rng = np.random.default_rng(seed)
    poses = np.tile(np.eye(4), (batch, views, 1, 1))
    poses[..., :3, :3] = Rotation.random(batch * views, random_state=rng).as_matrix().reshape(batch, views, 3, 3)
    poses[..., :3, 3] = rng.normal(scale=5.0, size=(batch, views, 3))
    K = np.zeros((batch, views, 3, 3))
    K[..., 0, 0] = rng.uniform(0.7, 0.9, (batch, views))
    K[..., 1, 1] = rng.uniform(2.5, 3.0, (batch, views))
    K[..., 0, 2] = rng.uniform(-0.05, 0.05, (batch, views))
    K[..., 1, 2] = rng.uniform(0.2, 0.3, (batch, views))
    K[..., 2, 2] = 1.0
    b, v, y, x = np.meshgrid(np.arange(batch), np.arange(views), np.arange(height), np.arange(width), indexing="ij")
    images = np.stack((10 * b + v, y, x), axis=2).astype(np.float64)  # [B,V,3,H,W]
    return torch.from_numpy(images), torch.from_numpy(poses), torch.from_numpy(K)


def _reprojected_pixels(rays: RayBatch, poses: torch.Tensor, K: torch.Tensor, convention: str) -> np.ndarray:
    """Independent check: the point 10 m along each ray, projected into the ray's view with K_norm, in pixels."""
    height, width = rays.image_size
    b = np.arange(poses.shape[0])[:, None]
    v = rays.view.numpy()
    points = rays.origins.numpy() + 10.0 * rays.directions.numpy()
    w2c = np.linalg.inv(poses.numpy())[b, v]  # [B,R,4,4]
    cam = np.einsum("brij,brj->bri", w2c[..., :3, :3], points) + w2c[..., :3, 3]
    uvw = np.einsum("brij,brj->bri", K.numpy()[b, v], cam)
    xy_n = uvw[..., :2] / uvw[..., 2:]
    size = np.array([width, height], dtype=np.float64)
    if convention == "linspace":
        return (xy_n + 1.0) * (size - 1.0) / 2.0
    return ((xy_n + 1.0) * size - 1.0) / 2.0


def _check_patch_layout(rays: RayBatch, ps: int) -> None:
    px = rays.patches(rays.pixels)  # [B,P,ps,ps,2]
    offsets = torch.arange(ps)
    assert torch.equal(px[..., 0] - px[..., :1, :1, 0], offsets.view(1, 1, 1, ps).expand_as(px[..., 0]))
    assert torch.equal(px[..., 1] - px[..., :1, :1, 1], offsets.view(1, 1, ps, 1).expand_as(px[..., 1]))
    # one view per patch
    pv = rays.patches(rays.view)
    assert torch.equal(pv, pv[..., :1, :1].expand_as(pv))
    height, width = rays.image_size
    assert px[..., 0].min() >= 0 and px[..., 0].max() < width and px[..., 1].min() >= 0 and px[..., 1].max() < height


@pytest.mark.parametrize("convention", ["linspace", "align_corners_false"])
def test_patch_sampler_shapes_layout_colours_and_geometry(convention: str) -> None:
    images, poses, K = _rig(3, 4, 20, 30)
    sampler = PatchSampler(patch_size=8, n_patches=10, pixel_convention=convention)
    rays = sampler.sample(images, poses, K, torch.Generator().manual_seed(0))
    assert rays.origins.shape == rays.directions.shape == (3, 640, 3) and rays.rgb_gt.shape == (3, 640, 3)
    _check_patch_layout(rays, 8)
    # Colour came from (element, view, row, column) of the ray.
    expected = torch.stack(
        (10 * torch.arange(3).view(3, 1) + rays.view, rays.pixels[..., 1], rays.pixels[..., 0]), dim=-1
    ).to(DT)
    assert torch.equal(rays.rgb_gt, expected)
    # Geometry: unit directions, origin = camera centre, and the ray reprojects onto its own pixel.
    torch.testing.assert_close(rays.directions.norm(dim=-1), torch.ones(3, 640, dtype=DT))
    centres = poses[torch.arange(3).view(3, 1), rays.view][..., :3, 3]
    torch.testing.assert_close(rays.origins, centres)
    np.testing.assert_allclose(_reprojected_pixels(rays, poses, K, convention), rays.pixels.numpy(), atol=1e-8)


def test_z_factor_converts_distance_to_camera_depth() -> None:
    images, poses, K = _rig(2, 4, 16, 24, seed=1)
    rays = PatchSampler(n_patches=4).sample(images, poses, K, torch.Generator().manual_seed(2))
    b = torch.arange(2).view(2, 1)
    w2c = torch.linalg.inv(poses)[b, rays.view]
    points = rays.origins + 7.0 * rays.directions
    z_cam = torch.einsum("brj,brj->br", w2c[..., 2, :3], points) + w2c[..., 2, 3]
    torch.testing.assert_close(7.0 * rays.z_factor, z_cam)


def test_patches_are_independent_across_the_batch_unless_shared() -> None:
    images, poses, K = _rig(4, 4, 40, 60)
    indep = PatchSampler(n_patches=16).sample(images, poses, K, torch.Generator().manual_seed(0))
    shared_sampler = PatchSampler(n_patches=16, shared_across_batch=True)
    shared = shared_sampler.sample(images, poses, K, torch.Generator().manual_seed(0))
    for b in range(1, 4):
        assert not torch.equal(indep.pixels[0], indep.pixels[b])
        assert torch.equal(shared.pixels[0], shared.pixels[b]) and torch.equal(shared.view[0], shared.view[b])
    # Shared positions, but each element's own colours/poses.
    assert not torch.equal(shared.rgb_gt[0], shared.rgb_gt[1])


def test_patch_corners_cover_the_whole_range_and_views_uniformly() -> None:
    images, poses, K = _rig(1, 4, 10, 12)
    rays = PatchSampler(n_patches=4000).sample(images, poses, K, torch.Generator().manual_seed(0))
    corners = rays.patches(rays.pixels)[0, :, 0, 0]  # [P,2]
    assert set(corners[:, 0].tolist()) == set(range(0, 12 - 8 + 1))
    assert set(corners[:, 1].tolist()) == set(range(0, 10 - 8 + 1))
    counts = torch.bincount(rays.patches(rays.view)[0, :, 0, 0], minlength=4)
    assert (counts - 1000).abs().max() < 150  # binomial sd ~27


def test_sampler_is_deterministic_given_the_generator() -> None:
    images, poses, K = _rig(2, 4, 20, 30)
    a = PatchSampler().sample(images, poses, K, torch.Generator().manual_seed(9))
    b = PatchSampler().sample(images, poses, K, torch.Generator().manual_seed(9))
    c = PatchSampler().sample(images, poses, K, torch.Generator().manual_seed(10))
    assert torch.equal(a.pixels, b.pixels) and not torch.equal(a.pixels, c.pixels)


def test_depth_patch_sampler_on_key_frame() -> None:
    _, poses, K = _rig(2, 1, 24, 40, seed=4)
    rays = DepthPatchSampler().sample(poses[:, 0], K[:, 0], (24, 40), torch.Generator().manual_seed(1))
    assert rays.n_rays == 2048 and (rays.view == 0).all()
    _check_patch_layout(rays, 8)
    depth = torch.rand(2, 1, 24, 40, dtype=DT, generator=torch.Generator().manual_seed(0))
    gathered = rays.gather(depth)[..., 0]
    expected = depth[torch.arange(2).view(2, 1), 0, rays.pixels[..., 1], rays.pixels[..., 0]]
    assert torch.equal(gathered, expected)
    np.testing.assert_allclose(_reprojected_pixels(rays, poses, K, "linspace"), rays.pixels.numpy(), atol=1e-8)


def test_image_ray_sampler_covers_every_pixel_in_order() -> None:
    images, poses, K = _rig(2, 3, 5, 7)
    rays = ImageRaySampler().sample(poses, K, (5, 7), images)
    assert rays.n_rays == 3 * 5 * 7
    assert torch.equal(rays.rgb_gt.reshape(2, 3, 5, 7, 3).permute(0, 1, 4, 2, 3), images)
    np.testing.assert_allclose(_reprojected_pixels(rays, poses, K, "linspace"), rays.pixels.numpy(), atol=1e-8)
    # linspace convention: first/last column at x_n = -1 / +1.
    d = rays.directions_cam.reshape(2, 3, 5, 7, 3)
    fx, cx = K[0, 0, 0, 0], K[0, 0, 0, 2]
    torch.testing.assert_close(d[0, 0, 0, 0, 0], (-1 - cx) / fx)
    torch.testing.assert_close(d[0, 0, 0, -1, 0], (1 - cx) / fx)


# ------------------------------------------------------------------------------------------------- SNOG

H, W = 192, 640


def _encoded_anchors(batch: int) -> torch.Tensor:
    """uint16 [B,4,25,64,2] anchors whose position encodes (element b, slot s, set k): x band 50 px wide per
    (b, s), y band 7 px per set; every anchor of a set is distinct."""
    b, s, k, a = np.meshgrid(np.arange(batch), np.arange(4), np.arange(25), np.arange(64), indexing="ij")
    x = 5 + 30 * (4 * b + s) + a % 16
    y = 5 + 7 * k + a // 16
    return torch.from_numpy(np.stack((x, y), axis=-1).astype(np.uint16))


def _decode(centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    band = (centre[..., 0] - 5) // 30
    return band // 4, band % 4, (centre[..., 1] - 5) // 7


@pytest.mark.parametrize("batch", [1, 2, 3, 5])
@pytest.mark.parametrize("ids_loss", [[0, 3, 4, 7], [1, 2, 5, 6]])
def test_snog_uses_each_elements_own_anchors_on_the_right_view(batch: int, ids_loss: list[int]) -> None:
    images, poses, K = _rig(batch, 4, H, W, seed=batch)
    anchors = _encoded_anchors(batch)
    rays = SnogSampler().sample(images, poses, K, ids_loss, anchors, torch.Generator().manual_seed(batch))
    assert rays.n_rays == 4096 and rays.rgb_gt.shape == (batch, 4096, 3)
    _check_patch_layout(rays, 8)
    corners = rays.patches(rays.pixels)[:, :, 0, 0]  # [B,64,2]
    patch_view = rays.patches(rays.view)[:, :, 0, 0]  # [B,64]
    for b in range(batch):
        for position in (0, 1):  # the perspective loss views
            on_view = patch_view[b] == position
            assert int(on_view.sum()) == 16
            elem, slot, chosen_set = _decode(corners[b, on_view] + 4)
            # Bug 1 of the reference: every element got the last element's anchors.
            assert (elem == b).all()
            # Bug 3: anchors of slot ids_loss[position] (same camera and frame), whatever the role draw.
            assert (slot == ids_loss[position]).all()
            assert (chosen_set == chosen_set[0]).all()  # one stored set per view and element
            assert len({tuple(c) for c in corners[b, on_view].tolist()}) == 16  # without replacement
        # The rest: random patches on the two fisheye loss views only.
        assert int(((patch_view[b] == 2) | (patch_view[b] == 3)).sum()) == 32
    # Rays are cast from the camera of their loss view, and colours come from that view's image.
    centres = poses[torch.arange(batch).view(-1, 1), rays.view][..., :3, 3]
    torch.testing.assert_close(rays.origins, centres)
    assert torch.equal(rays.rgb_gt[..., 0], (10 * torch.arange(batch).view(-1, 1) + rays.view).to(DT))
    np.testing.assert_allclose(_reprojected_pixels(rays, poses, K, "linspace"), rays.pixels.numpy(), atol=1e-7)


def test_snog_anchor_sets_and_choices_differ_between_elements_and_draws() -> None:
    batch = 3
    images, poses, K = _rig(batch, 4, H, W)
    same = _encoded_anchors(1).expand(batch, -1, -1, -1, -1)  # identical anchors for every element
    rays = SnogSampler().sample(images, poses, K, [0, 3, 4, 7], same, torch.Generator().manual_seed(0))
    corners = rays.patches(rays.pixels)[:, :16, 0, 0]
    assert not torch.equal(corners[0], corners[1]) and not torch.equal(corners[1], corners[2])
    # Over many draws, every stored set gets used.
    sets = set()
    gen = torch.Generator().manual_seed(1)
    for _ in range(60):
        r = SnogSampler().sample(images[:1], poses[:1], K[:1], [0, 3, 4, 7], same[:1], gen)
        sets.add(int(_decode(r.pixels[0, 0] + 4)[2]))
    assert len(sets) > 15


def test_snog_accepts_a_mapping_of_only_the_needed_slots_and_rejects_bad_anchors() -> None:
    images, poses, K = _rig(2, 4, H, W)
    anchors = _encoded_anchors(2)
    mapping = {1: anchors[:, 1], 2: anchors[:, 2]}
    gen = torch.Generator().manual_seed(0)
    rays = SnogSampler().sample(images, poses, K, [1, 2, 5, 6], mapping, gen)
    _, slot, _ = _decode(rays.patches(rays.pixels)[:, :32, 0, 0] + 4)
    assert (slot[:, :16] == 1).all() and (slot[:, 16:] == 2).all()
    with pytest.raises(ValueError, match="slot 0"):
        SnogSampler().sample(images, poses, K, [0, 3, 4, 7], mapping, gen)
    swapped = anchors.clone()
    swapped[..., 1] = 600  # a (W, H) swap puts y far outside the 192-row image
    with pytest.raises(ValueError, match="leave the 192x640 image"):
        SnogSampler().sample(images, poses, K, [0, 3, 4, 7], swapped, gen)
    with pytest.raises(ValueError, match="ids_loss"):
        SnogSampler().sample(images, poses, K, [0, 3, 4], anchors, gen)
