"""Rigid-transform helpers against numpy.linalg and hand-computed rotations."""

import math

import numpy as np
import pytest

from vipocc.geometry.transforms import (
    apply_transform,
    euler_zyx_from_matrix,
    invert_rigid,
    is_rotation,
    make_transform,
    orthonormalize,
    rot_x,
    rot_y,
    rot_z,
    translation,
)


def _random_rigid(rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    return make_transform(q, rng.normal(size=3) * 10)


def test_hand_rotations():
    np.testing.assert_allclose(rot_z(math.pi / 2) @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(rot_x(math.pi / 2) @ [0, 1, 0], [0, 0, 1], atol=1e-15)
    np.testing.assert_allclose(rot_y(math.pi / 2) @ [0, 0, 1], [1, 0, 0], atol=1e-15)
    np.testing.assert_allclose(apply_transform(translation(1, 2, 3), np.zeros((1, 3))), [[1, 2, 3]])


def test_invert_rigid_matches_linalg_inv_and_batches():
    rng = np.random.default_rng(0)
    Ts = np.stack([_random_rigid(rng) for _ in range(5)])
    np.testing.assert_allclose(invert_rigid(Ts), np.linalg.inv(Ts), atol=1e-12)
    np.testing.assert_allclose(invert_rigid(Ts[0]) @ Ts[0], np.eye(4), atol=1e-12)


def test_apply_transform_equals_homogeneous_product():
    rng = np.random.default_rng(1)
    T = _random_rigid(rng)
    pts = rng.normal(size=(7, 3))
    homog = np.concatenate([pts, np.ones((7, 1))], axis=1) @ T.T
    np.testing.assert_allclose(apply_transform(T, pts), homog[:, :3], atol=1e-12)
    with pytest.raises(ValueError, match="points"):
        apply_transform(T, pts[:, :2])


def test_orthonormalize_cleans_rounded_rotation_and_refuses_reflection():
    R = rot_z(0.3) @ rot_y(-0.2) @ rot_x(0.1)
    noisy = np.round(R, 6)
    clean = orthonormalize(noisy)
    assert is_rotation(clean, atol=1e-14)
    np.testing.assert_allclose(clean, R, atol=2e-6)
    with pytest.raises(ValueError, match="reflection"):
        orthonormalize(np.diag([1.0, 1.0, -1.0]))


@pytest.mark.parametrize("angles", [(0.1, -0.2, 0.3), (-2.5, 1.2, 3.0), (0.0, 0.0, -1.0)])
def test_euler_zyx_round_trip(angles):
    roll, pitch, yaw = angles
    R = rot_z(yaw) @ rot_y(pitch) @ rot_x(roll)
    np.testing.assert_allclose(euler_zyx_from_matrix(R), angles, atol=1e-12)


def test_euler_zyx_gimbal_lock_reconstructs_rotation():
    R = rot_z(0.7) @ rot_y(math.pi / 2) @ rot_x(0.0)
    roll, pitch, yaw = euler_zyx_from_matrix(R)
    np.testing.assert_allclose(rot_z(yaw) @ rot_y(pitch) @ rot_x(roll), R, atol=1e-12)
