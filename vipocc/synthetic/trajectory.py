"""Ego trajectory along a street centerline, as KITTI-360 poses.

A pose is the 4x4 transform from the KITTI-360 "pose" (IMU/GPS) frame to the world frame. The pose frame is
x forward, y right, z DOWN; its origin rides POSE_HEIGHT_M = 0.90 m above the road (so cam0, 0.65 m above the pose
origin in KITTI-360's calib_cam_to_pose, sits ~1.55 m above the road). World frame: z up, road at z = 0.

Motion model (all smooth, bounded, deterministic given the seed):
    step      step_m * (1 + 0.1 u_speed)       per frame along the centerline (+-10 % speed variation)
    lateral   lane_offset + 0.15 u_lat          (m, positive left; default: centre of the right-hand lane)
    yaw       centerline heading + the slope of the lateral wiggle
    pitch     0.6 deg * u_pitch  (positive = nose up)
    roll      0.3 deg * u_roll   (positive = right side down)
(pitch and roll are the usual right-handed angles about the pose frame's y and x axes.)
where every u is a normalised sum of three sinusoids (|u| <= 1) with random phases and periods.
"""
from __future__ import annotations

import numpy as np

from vipocc.synthetic.street import Centerline, StreetParams

POSE_HEIGHT_M = 0.90
SPEED_VARIATION = 0.10
LATERAL_WIGGLE_M = 0.15
PITCH_AMPLITUDE_RAD = np.deg2rad(0.6)
ROLL_AMPLITUDE_RAD = np.deg2rad(0.3)
DEFAULT_LANE_OFFSET_M = -StreetParams().road_width_m / 4.0  # right-hand lane centre (German roads drive right)

# Pose frame (x fwd, y right, z down) expressed in the vehicle's x fwd, y left, z up frame.
_FLU_FROM_POSE = np.diag([1.0, -1.0, -1.0])


def _smooth_unit_noise(rng: np.random.Generator, t: np.ndarray, period: tuple[float, float]) -> np.ndarray:
    """Bounded smooth noise in [-1, 1] at positions t [N]: sum of three sinusoids normalised by their amplitudes."""
    periods = rng.uniform(*period, size=3)
    amplitude = rng.uniform(0.3, 1.0, size=3)
    phase = rng.uniform(0.0, 2 * np.pi, size=3)
    waves = amplitude[:, None] * np.sin(2 * np.pi * t[None] / periods[:, None] + phase[:, None])
    return waves.sum(0) / amplitude.sum()


def trajectory_length_needed(n_frames: int, step_m: float = 1.0) -> float:
    """Street length (m) that always holds n_frames at the largest speed (pass it to generate_street)."""
    return max(0, n_frames - 1) * step_m * (1.0 + SPEED_VARIATION)


def _rotation_pose_to_world(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """R [N, 3, 3]: pose frame -> world, from yaw (about world z), pitch (nose up) and roll (right side down)."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    rz = np.stack([cy, -sy, zero, sy, cy, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    # Nose up = rotation by -pitch about the vehicle's left (y) axis in the x fwd / y left / z up frame.
    ry = np.stack([cp, zero, -sp, zero, one, zero, sp, zero, cp], -1).reshape(-1, 3, 3)
    # Right side down = rotation by +roll about the forward axis (the left side rises).
    rx = np.stack([one, zero, zero, zero, cr, -sr, zero, sr, cr], -1).reshape(-1, 3, 3)
    return rz @ ry @ rx @ _FLU_FROM_POSE


def ego_poses(centerline: Centerline, n_frames: int, seed: int, step_m: float = 1.0,
              lane_offset: float = DEFAULT_LANE_OFFSET_M) -> np.ndarray:
    """Poses [n_frames, 4, 4] float64: KITTI-360 pose frame (x fwd, y right, z down) -> world (z up, metres).

    The trajectory starts at centerline.traj_start_s and drives in the direction of increasing arc length at
    lateral offset lane_offset (m, positive left). Raises ValueError when it would leave
    [traj_start_s, traj_end_s] (make the street with trajectory_length_needed(n_frames, step_m)).
    """
    if n_frames < 1:
        raise ValueError(f"ego_poses: n_frames must be >= 1, got {n_frames}")
    if not step_m > 0:
        raise ValueError(f"ego_poses: step_m must be > 0, got {step_m}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7EA]))
    frame = np.arange(n_frames, dtype=np.float64)
    speed = 1.0 + SPEED_VARIATION * _smooth_unit_noise(rng, frame, (20.0, 80.0))
    s = centerline.traj_start_s + np.r_[0.0, np.cumsum(step_m * speed[:-1])]
    if s[-1] > centerline.traj_end_s + 1e-9:
        raise ValueError(f"ego_poses: {n_frames} frames of ~{step_m} m need {s[-1] - s[0]:.1f} m, the centerline "
                         f"offers {centerline.traj_end_s - centerline.traj_start_s:.1f} m (n_frames too large)")
    # The lateral wiggle is a function of arc length, so its slope gives the extra yaw of the path.
    lat_periods = rng.uniform(40.0, 150.0, size=3)
    lat_amp = rng.uniform(0.3, 1.0, size=3)
    lat_phase = rng.uniform(0.0, 2 * np.pi, size=3)
    arg = 2 * np.pi * s[None] / lat_periods[:, None] + lat_phase[:, None]
    norm = LATERAL_WIGGLE_M / lat_amp.sum()
    lateral = lane_offset + norm * (lat_amp[:, None] * np.sin(arg)).sum(0)
    lateral_slope = norm * (lat_amp[:, None] * 2 * np.pi / lat_periods[:, None] * np.cos(arg)).sum(0)
    yaw = centerline.heading(s) + np.arctan(lateral_slope)
    pitch = PITCH_AMPLITUDE_RAD * _smooth_unit_noise(rng, s, (6.0, 25.0))
    roll = ROLL_AMPLITUDE_RAD * _smooth_unit_noise(rng, s, (8.0, 30.0))
    poses = np.tile(np.eye(4), (n_frames, 1, 1))
    poses[:, :3, :3] = _rotation_pose_to_world(yaw, pitch, roll)
    poses[:, :2, 3] = centerline.point(s, lateral)
    poses[:, 2, 3] = POSE_HEIGHT_M
    return poses


__all__ = ["ego_poses", "trajectory_length_needed", "POSE_HEIGHT_M", "DEFAULT_LANE_OFFSET_M"]
