"""Pose loading and the reference's pose-index semantics on the smoke world (its frame numbers have a gap)."""

import json

import numpy as np
import pytest

from vipocc.data.poses import load_poses
from vipocc.synthetic.rig import kitti360_rig

SEQ = "2013_05_28_drive_0000_sync"  # smoke preset: 28 posed frames from 2, a gap of 3 after index 10


@pytest.fixture(scope="module")
def poses(smoke_world):
    return load_poses(smoke_world / "kitti360", SEQ)


def test_frames_are_the_posed_frames_of_the_world(poses, smoke_world):
    manifest = json.loads((smoke_world / "world.json").read_text())
    np.testing.assert_array_equal(poses.frames, manifest["sequences"][SEQ]["frames"])
    assert len(poses) == 28 and poses.imu_to_world.shape == (28, 4, 4)
    np.testing.assert_array_equal(poses.frames[8:12], [10, 11, 15, 16])  # frames 12-14 have no pose
    np.testing.assert_array_equal(poses.imu_to_world[:, 3], np.tile([0, 0, 0, 1.0], (28, 1)))


def test_poses_agree_with_cam0_to_world(poses, smoke_world):
    """cam0_to_world.txt (written independently: IMU pose @ rectified cam0 -> pose) = imu_to_world @ T_rect_to_pose."""
    table = np.loadtxt(smoke_world / "kitti360" / "data_poses" / SEQ / "cam0_to_world.txt")
    np.testing.assert_array_equal(table[:, 0], poses.frames)
    expected = poses.imu_to_world @ kitti360_rig(0.125).T_rect_to_pose[0]
    np.testing.assert_allclose(table[:, 1:].reshape(-1, 4, 4), expected, atol=1e-9)


def test_ids_index_posed_frames(poses):
    assert poses.index_of(2) == 0
    assert poses.index_of(11) == 9
    assert poses.index_of(15) == 10  # the next posed frame after the gap is id + 1
    np.testing.assert_array_equal(poses.indices_of(np.array([32, 2, 16])), [27, 0, 11])
    for frame in (12, 14, 1, 33):
        with pytest.raises(ValueError, match=r"poses.txt: frame\(s\) \[" + str(frame)):
            poses.index_of(frame)


def test_missing_poses_file_is_an_error(smoke_world):
    with pytest.raises(FileNotFoundError, match=r"data_poses/2013_05_28_drive_0099_sync/poses.txt"):
        load_poses(smoke_world / "kitti360", "2013_05_28_drive_0099_sync")


def _write(tmp_path, text):
    path = tmp_path / "data_poses" / "s" / "poses.txt"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return tmp_path


POSE = " ".join(["1", "0", "0", "5", "0", "1", "0", "6", "0", "0", "1", "7"])


def test_parsed_values(tmp_path):
    poses = load_poses(_write(tmp_path, f"3 {POSE}\n9 {POSE}\n"), "s")
    np.testing.assert_array_equal(poses.frames, [3, 9])
    np.testing.assert_array_equal(poses.imu_to_world[1], [[1, 0, 0, 5], [0, 1, 0, 6], [0, 0, 1, 7], [0, 0, 0, 1]])


@pytest.mark.parametrize("text, message", [
    (f"3 {POSE}\n4 {POSE} 1\n", r"poses.txt:2: expected 13 numbers"),
    (f"3 {POSE}\n4 {POSE.replace('5', 'five')}\n", r"poses.txt:2: malformed line"),
    (f"3 {POSE}\n3 {POSE}\n", r"poses.txt:2: frame numbers must be strictly increasing"),
    (f"3.5 {POSE}\n", r"poses.txt:1: frame number must be a non-negative integer"),
    ("", r"poses.txt: no poses"),
])
def test_malformed_poses_are_named(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_poses(_write(tmp_path, text), "s")
