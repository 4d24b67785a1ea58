"""Tests of vipocc.synthetic.trajectory: KITTI-360 pose conventions and motion invariants."""
from __future__ import annotations

import numpy as np
import pytest

from vipocc.synthetic.street import StreetParams, generate_street
from vipocc.synthetic.trajectory import POSE_HEIGHT_M, ego_poses, trajectory_length_needed

N = 150


@pytest.fixture(scope="module")
def setup():
    scene, line = generate_street(seed=4, length_m=trajectory_length_needed(N))
    return scene, line, ego_poses(line, N, seed=4)


def test_rotations_are_proper(setup):
    _, _, poses = setup
    assert poses.shape == (N, 4, 4) and poses.dtype == np.float64
    rot = poses[:, :3, :3]
    assert np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max() < 1e-12
    assert np.allclose(np.linalg.det(rot), 1.0, atol=1e-12)
    assert np.array_equal(poses[:, 3], np.tile([0, 0, 0, 1.0], (N, 1)))


def test_pose_frame_is_forward_right_down(setup):
    _, line, poses = setup
    rot, pos = poses[:, :3, :3], poses[:, :3, 3]
    motion = np.diff(pos, axis=0)
    motion /= np.linalg.norm(motion, axis=1, keepdims=True)
    # x forward: along the direction of travel (small yaw from the lane wiggle, pitch/roll below a degree).
    cos_fwd = np.einsum("ij,ij->i", rot[:-1, :, 0], motion)
    assert cos_fwd.min() > np.cos(np.deg2rad(1.5))
    s, _ = line.to_local(pos[:, :2])
    assert (np.diff(s) > 0).all()  # drives towards increasing arc length
    # y right: opposite to the centerline's left normal; z down: opposite to world up.
    assert (np.einsum("ij,ij->i", rot[:, :2, 1], line.left(s)) < -0.99).all()
    assert (rot[:, 2, 2] < -0.99).all()


def test_pitch_and_roll_are_gentle_but_present(setup):
    _, _, poses = setup
    rot = poses[:, :3, :3]
    pitch = np.rad2deg(np.arcsin(rot[:, 2, 0]))    # forward axis rising above the horizon = nose up
    roll = np.rad2deg(np.arcsin(-rot[:, 2, 1]))    # right axis dipping (world z of y_right < 0) = right side down
    assert np.abs(pitch).max() <= 0.6 + 1e-9 and np.abs(roll).max() <= 0.3 + 1e-9
    assert np.abs(pitch).max() > 0.15 and np.abs(roll).max() > 0.07
    assert (pitch > 0).any() and (pitch < 0).any() and (roll > 0).any() and (roll < 0).any()


def test_height_step_and_lane(setup):
    _, line, poses = setup
    pos = poses[:, :3, 3]
    assert np.array_equal(pos[:, 2], np.full(N, POSE_HEIGHT_M))  # road is z = 0: origin 0.90 m above it
    step = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    assert step.min() >= 0.9 - 1e-3 and step.max() <= 1.1 + 1e-3
    assert abs(step.mean() - 1.0) < 0.05 and step.std() > 0.01  # ~1 m per frame, varying speed
    s, lateral = line.to_local(pos[:, :2])
    lane_centre = -StreetParams().road_width_m / 4
    assert np.abs(lateral - lane_centre).max() < 0.2  # right-hand lane, wiggle below 0.2 m
    assert np.ptp(lateral) > 0.02
    assert s[0] == pytest.approx(line.traj_start_s) and s[-1] <= line.traj_end_s


def test_trajectory_stays_in_free_space_above_the_road(setup):
    scene, _, poses = setup
    pos = poses[:, :3, 3]
    assert not scene.occupied(pos).any()
    assert (scene.semantic_at(pos - [0, 0, POSE_HEIGHT_M + 0.01]) == 7).all()  # road (id 7) under the ego


def test_determinism_and_seed_dependence(setup):
    _, line, poses = setup
    assert np.array_equal(ego_poses(line, N, seed=4), poses)
    assert not np.allclose(ego_poses(line, N, seed=5), poses)


def test_lane_offset_and_errors(setup):
    _, line, _ = setup
    left_lane = ego_poses(line, 20, seed=1, lane_offset=1.875)
    _, lateral = line.to_local(left_lane[:, :2, 3])
    assert np.abs(lateral - 1.875).max() < 0.2
    with pytest.raises(ValueError, match="n_frames"):
        ego_poses(line, 10 * N, seed=1)
    with pytest.raises(ValueError, match="n_frames"):
        ego_poses(line, 0, seed=1)
    with pytest.raises(ValueError, match="step_m"):
        ego_poses(line, 5, seed=1, step_m=0.0)
