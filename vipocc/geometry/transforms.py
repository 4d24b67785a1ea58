"""Rigid-transform helpers (numpy, float64).

Conventions: a 4x4 matrix ``T_a_to_b`` maps homogeneous points expressed in frame ``a`` to frame ``b``
(``p_b = T_a_to_b @ p_a``). Rotations are 3x3, angles are in radians.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "make_transform",
    "translation",
    "invert_rigid",
    "orthonormalize",
    "apply_transform",
    "rot_x",
    "rot_y",
    "rot_z",
    "euler_zyx_from_matrix",
    "is_rotation",
]


def _as_matrix(a: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Return ``a`` as float64 with trailing dims ``shape``; raise ValueError naming ``name`` otherwise."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape[arr.ndim - len(shape):] != shape or arr.ndim < len(shape):
        raise ValueError(f"{name}: expected trailing shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite values")
    return arr


def make_transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Build a 4x4 rigid transform from rotation ``R`` [3,3] and translation ``t`` [3]."""
    R = _as_matrix(R, (3, 3), "R")
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    if t.shape != (3,):
        raise ValueError(f"t: expected 3 values, got shape {np.shape(t)}")
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def translation(x: float, y: float, z: float) -> np.ndarray:
    """4x4 pure translation by (x, y, z) metres."""
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


def invert_rigid(T: np.ndarray) -> np.ndarray:
    """Inverse of rigid transform(s) ``T`` [...,4,4] using R^T (exact for orthonormal R, no matrix inverse)."""
    T = _as_matrix(T, (4, 4), "T")
    R_inv = np.swapaxes(T[..., :3, :3], -1, -2)
    out = np.zeros_like(T)
    out[..., :3, :3] = R_inv
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", R_inv, T[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def orthonormalize(R: np.ndarray) -> np.ndarray:
    """Nearest rotation matrix (Frobenius norm) to ``R`` [...,3,3] via SVD, with det = +1.

    Calibration files print rotations with 6-10 digits; cleaning them makes products and inverses exact
    rigid motions again.
    """
    R = _as_matrix(R, (3, 3), "R")
    U, _, Vt = np.linalg.svd(R)
    det = np.linalg.det(U @ Vt)
    if np.any(det <= 0):
        # A reflection (det -1) is not a noisy rotation: refuse rather than silently flip an axis.
        raise ValueError("R: matrix is closer to a reflection than to a rotation (det <= 0)")
    return U @ Vt


def is_rotation(R: np.ndarray, atol: float = 1e-9) -> bool:
    """True if ``R`` [3,3] is orthonormal with det +1 within ``atol``."""
    R = np.asarray(R, dtype=np.float64)
    return bool(np.allclose(R @ R.T, np.eye(3), atol=atol) and abs(np.linalg.det(R) - 1.0) < atol)


def apply_transform(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply 4x4 ``T`` to points [N,3]; returns [N,3] float64."""
    T = _as_matrix(T, (4, 4), "T")
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points: expected shape [N,3], got {pts.shape}")
    return pts @ T[:3, :3].T + T[:3, 3]


def rot_x(angle: float) -> np.ndarray:
    """Rotation by ``angle`` rad about the x axis (right-handed)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(angle: float) -> np.ndarray:
    """Rotation by ``angle`` rad about the y axis (right-handed)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(angle: float) -> np.ndarray:
    """Rotation by ``angle`` rad about the z axis (right-handed)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def euler_zyx_from_matrix(R: np.ndarray) -> tuple[float, float, float]:
    """(roll, pitch, yaw) in rad with ``R = rot_z(yaw) @ rot_y(pitch) @ rot_x(roll)`` (the OXTS convention).

    Pitch is in [-pi/2, pi/2]; at |pitch| = pi/2 (gimbal lock) roll is set to 0.
    """
    R = _as_matrix(R, (3, 3), "R")
    pitch = float(np.arcsin(np.clip(-R[2, 0], -1.0, 1.0)))
    if abs(abs(R[2, 0]) - 1.0) < 1e-12:
        return 0.0, pitch, float(np.arctan2(-R[0, 1], R[1, 1]))
    roll = float(np.arctan2(R[2, 1], R[2, 2]))
    yaw = float(np.arctan2(R[1, 0], R[0, 0]))
    return roll, pitch, yaw
