"""Frame roles (kitti360-mono draw, eval roles), the slot -> (camera, frame) table, and pose re-basing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from vipocc.models.frame_roles import (
    PERSPECTIVE_SLOTS,
    VIEW_SLOTS,
    eval_roles,
    kitti360_mono_roles,
    rebase_poses,
)


def test_roles_are_the_two_reference_splits_with_probability_one_half() -> None:
    generator = torch.Generator().manual_seed(0)
    draws = [kitti360_mono_roles(generator) for _ in range(2000)]
    first = [d for d in draws if d[0] == [0, 3, 4, 7]]
    for loss, render in draws:
        assert sorted(loss + render) == list(range(8))
        assert (loss, render) in (([0, 3, 4, 7], [1, 2, 5, 6]), ([1, 2, 5, 6], [0, 3, 4, 7]))
    # Binomial(2000, 0.5): sd = 22.4, so +-100 is more than 4 sd.
    assert abs(len(first) - 1000) < 100


def test_roles_are_reproducible_and_respect_p_first() -> None:
    a = [kitti360_mono_roles(torch.Generator().manual_seed(5)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    g = torch.Generator().manual_seed(1)
    assert all(kitti360_mono_roles(g, p_first=1.0)[0] == [0, 3, 4, 7] for _ in range(20))
    assert all(kitti360_mono_roles(g, p_first=0.0)[0] == [1, 2, 5, 6] for _ in range(20))
    with pytest.raises(ValueError, match="generator"):
        kitti360_mono_roles(np.random.default_rng(0))  # type: ignore[arg-type]


def test_eval_roles() -> None:
    assert eval_roles() == (list(range(8)), [0])
    assert eval_roles(2) == ([0, 1], [0])


def test_slot_table_matches_the_dataset_view_order() -> None:
    # Dataset order (digest 1.11): key persp t, t+1; other persp t, t+1; key fisheye t+fo, t+fo+1; other fisheye.
    expected = [("key", "perspective", 0), ("key", "perspective", 1), ("other", "perspective", 0),
                ("other", "perspective", 1), ("key", "fisheye", 0), ("key", "fisheye", 1),
                ("other", "fisheye", 0), ("other", "fisheye", 1)]
    assert [(VIEW_SLOTS[s].side, VIEW_SLOTS[s].kind, VIEW_SLOTS[s].frame) for s in range(8)] == expected
    assert PERSPECTIVE_SLOTS == (0, 1, 2, 3)
    # Each role draw has one perspective loss view per camera side, at different frames.
    for loss in ([0, 3, 4, 7], [1, 2, 5, 6]):
        persp = [VIEW_SLOTS[s] for s in loss if s in PERSPECTIVE_SLOTS]
        assert {v.side for v in persp} == {"key", "other"} and {v.frame for v in persp} == {0, 1}


def _random_poses(rng: np.random.Generator, batch: int, views: int) -> np.ndarray:
    poses = np.tile(np.eye(4), (batch, views, 1, 1))
    poses[..., :3, :3] = Rotation.random(batch * views, random_state=rng).as_matrix().reshape(batch, views, 3, 3)
    poses[..., :3, 3] = rng.normal(scale=20.0, size=(batch, views, 3))
    return poses


def test_rebase_poses_matches_numpy_and_keeps_relative_poses() -> None:
    rng = np.random.default_rng(3)
    poses = _random_poses(rng, 3, 8)
    rebased = rebase_poses(torch.from_numpy(poses)).numpy()
    for b in range(3):
        np.testing.assert_allclose(rebased[b], np.linalg.inv(poses[b, 0]) @ poses[b], atol=1e-10)
        np.testing.assert_allclose(rebased[b, 0], np.eye(4), atol=1e-12)
        # Relative pose between any two views is unchanged.
        rel = np.linalg.inv(poses[b, 2]) @ poses[b, 5]
        np.testing.assert_allclose(np.linalg.inv(rebased[b, 2]) @ rebased[b, 5], rel, atol=1e-9)
    with pytest.raises(ValueError, match="poses_c2w"):
        rebase_poses(torch.eye(4).expand(2, 4, 4))
