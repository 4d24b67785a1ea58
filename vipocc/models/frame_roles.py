"""Frame roles of a KITTI-360 training sample (``frame_sample_mode: kitti360-mono``) and pose re-basing.

A sample holds V = 8 views in fixed *slots* (reference ``Kitti360Dataset.__getitem__``; "key" is the camera whose
image is encoded, left or right, "other" the opposite side)::

    slot 0: key perspective t        slot 4: key-side fisheye t+fo        (fo = fisheye offset, 10)
    slot 1: key perspective t+1      slot 5: key-side fisheye t+fo+1
    slot 2: other perspective t      slot 6: other-side fisheye t+fo
    slot 3: other perspective t+1    slot 7: other-side fisheye t+fo+1

The encoder always sees slot 0. In training, rays are cast from the *loss* views (their pixels are the colour
targets) and coloured from the *render* views (image-based rendering): with probability 0.5 loss = {0,3,4,7} and
render = {1,2,5,6}, otherwise swapped. In evaluation every view is a loss view and slot 0 is the only render view.

``VIEW_SLOTS`` makes the slot -> (camera, frame) mapping explicit; SNOG anchors are computed per image, i.e. per
(camera, frame), and :class:`vipocc.models.ray_sampler.SnogSampler` uses this table to put them on the view they
were computed on (the reference attaches them by frame index and lands on the wrong camera for the swapped draw).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "ViewSlot",
    "VIEW_SLOTS",
    "PERSPECTIVE_SLOTS",
    "LOSS_VIEWS_FIRST",
    "RENDER_VIEWS_FIRST",
    "kitti360_mono_roles",
    "eval_roles",
    "rebase_poses",
]


@dataclass(frozen=True)
class ViewSlot:
    """What a view slot holds: ``side`` "key"/"other" camera side, ``kind`` "perspective"/"fisheye", ``frame``
    0 or 1 (t or t+1 for perspective views, t+fo or t+fo+1 for fisheye views)."""

    side: str
    kind: str
    frame: int


VIEW_SLOTS: dict[int, ViewSlot] = {
    0: ViewSlot("key", "perspective", 0),
    1: ViewSlot("key", "perspective", 1),
    2: ViewSlot("other", "perspective", 0),
    3: ViewSlot("other", "perspective", 1),
    4: ViewSlot("key", "fisheye", 0),
    5: ViewSlot("key", "fisheye", 1),
    6: ViewSlot("other", "fisheye", 0),
    7: ViewSlot("other", "fisheye", 1),
}
PERSPECTIVE_SLOTS: tuple[int, ...] = tuple(s for s, v in VIEW_SLOTS.items() if v.kind == "perspective")

LOSS_VIEWS_FIRST: tuple[int, ...] = (0, 3, 4, 7)
RENDER_VIEWS_FIRST: tuple[int, ...] = (1, 2, 5, 6)


def kitti360_mono_roles(generator: torch.Generator, p_first: float = 0.5) -> tuple[list[int], list[int]]:
    """Draw the training roles: ``(ids_loss, ids_render)`` lists of view slots.

    With probability ``p_first`` (one ``torch.rand`` draw from ``generator``) loss = [0,3,4,7] and
    render = [1,2,5,6]; otherwise the two are swapped (loss = [1,2,5,6], render = [0,3,4,7]).
    """
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    if not 0.0 <= p_first <= 1.0:
        raise ValueError(f"p_first={p_first!r}: must lie in [0, 1]")
    first = torch.rand((), generator=generator).item() < p_first
    loss, render = (LOSS_VIEWS_FIRST, RENDER_VIEWS_FIRST) if first else (RENDER_VIEWS_FIRST, LOSS_VIEWS_FIRST)
    return list(loss), list(render)


def eval_roles(n_views: int = 8) -> tuple[list[int], list[int]]:
    """Evaluation roles: every view is a loss view, slot 0 (the key view) is the only render view."""
    if n_views < 1:
        raise ValueError(f"n_views={n_views!r}: must be >= 1")
    return list(range(n_views)), [0]


def rebase_poses(poses_c2w: torch.Tensor) -> torch.Tensor:
    """Express camera-to-world poses relative to view 0: ``inv(P_0) @ P_v``.

    poses_c2w ``[B,V,4,4]`` (any world frame, m) -> ``[B,V,4,4]`` camera-to-"key camera" poses; view 0 becomes the
    identity, so the world frame of everything downstream is the key camera's frame (x right, y down, z forward).
    Solved as a linear system (no explicit inverse).
    """
    if poses_c2w.ndim != 4 or poses_c2w.shape[-2:] != (4, 4) or poses_c2w.shape[1] < 1:
        raise ValueError(f"poses_c2w: expected [B,V,4,4] with V >= 1, got {tuple(poses_c2w.shape)}")
    key = poses_c2w[:, :1].expand_as(poses_c2w)
    return torch.linalg.solve(key, poses_c2w)
