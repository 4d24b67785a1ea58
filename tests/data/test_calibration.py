"""KITTI-360 calibration loader against the synthetic rig that wrote the files (independent truth: the rig's own
transforms) and hand-computed normalisations; clear errors for broken files."""

import shutil

import numpy as np
import pytest

from vipocc.data.calibration import fisheye_rotation_matrices, load_calibration
from vipocc.geometry.transforms import invert_rigid, rot_x, rot_y
from vipocc.synthetic.rig import kitti360_rig


@pytest.fixture(scope="module")
def rig():
    return kitti360_rig(0.125)  # the smoke preset's resolution


@pytest.fixture(scope="module")
def calib(smoke_world):
    return load_calibration(smoke_world / "kitti360", (0, -15))


def test_perspective_intrinsics_are_normalised_by_hand(calib, rig):
    W, H = rig.perspective_size
    K = rig.K_rect[0]
    expected = np.array([[2 * K[0, 0] / W, 0, 2 * K[0, 2] / W - 1],
                         [0, 2 * K[1, 1] / H, 2 * K[1, 2] / H - 1],
                         [0, 0, 1]])
    np.testing.assert_allclose(calib.K_perspective, expected, rtol=0, atol=1e-15)
    assert calib.K_fisheye is calib.K_perspective
    assert calib.raw_size == (H, W) == (47, 176)
    np.testing.assert_array_equal(calib.P_rect[0], rig.P_rect_00)
    np.testing.assert_array_equal(calib.P_rect[1], rig.P_rect_01)
    np.testing.assert_array_equal(calib.R_rect[0], rig.R_rect_00)
    np.testing.assert_array_equal(calib.R_rect[1], rig.R_rect_01)


def test_full_resolution_K_is_the_reference_matrix(tmp_path):
    """The digest quotes K' ~ [[0.7849, 0, -0.0312], [0, 2.9391, 0.2701]] for KITTI-360 (evaluator_demo.py)."""
    from vipocc.synthetic.kitti360_export import write_calibration

    write_calibration(tmp_path, kitti360_rig(1.0))
    K = load_calibration(tmp_path).K_perspective
    np.testing.assert_allclose(K, [[0.7849, 0, -0.0312], [0, 2.9391, 0.2701], [0, 0, 1]], atol=1e-4)


def test_transforms_equal_the_rig(calib, rig):
    for cam in range(4):
        np.testing.assert_allclose(calib.T_cam_to_pose[cam], rig.T_cam_to_pose[cam], atol=1e-15)
    for cam in (0, 1):
        np.testing.assert_allclose(calib.T_rect_to_pose[cam], rig.T_rect_to_pose[cam], atol=1e-12)
        np.testing.assert_allclose(calib.view_to_pose(cam), rig.T_rect_to_pose[cam], atol=1e-12)
        expected = invert_rigid(rig.T_rect_to_pose[cam]) @ rig.T_velo_to_pose
        np.testing.assert_allclose(calib.T_velo_to_rect[cam], expected, atol=1e-12)
    np.testing.assert_allclose(calib.T_cam0_to_velo, rig.T_cam0_to_velo, atol=1e-15)
    np.testing.assert_allclose(calib.T_velo_to_pose, rig.T_velo_to_pose, atol=1e-12)
    # The stereo pair: right rectified camera = left one shifted by the baseline along x.
    right_in_left = invert_rigid(calib.T_rect_to_pose[0]) @ calib.T_rect_to_pose[1]
    np.testing.assert_allclose(right_in_left[:3, 3], [rig.baseline, 0, 0], atol=1e-12)


def test_fisheye_parameters(calib, rig):
    for cam in (2, 3):
        p = rig.mei[cam]
        assert calib.mei[cam] == p
        assert calib.fisheye_size[cam] == (p.height, p.width) == (175, 175)
        n = calib.mei_normalized[cam]
        assert n == pytest.approx({"xi": p.xi, "k1": p.k1, "k2": p.k2, "gamma1": p.gamma1 / 87.5,
                                   "gamma2": p.gamma2 / 87.5, "u0": p.u0 / 87.5 - 1, "v0": p.v0 / 87.5 - 1},
                                  rel=1e-14, abs=1e-15)


def test_fisheye_rotation_is_a_downward_pitch(calib):
    for cam in (2, 3):
        np.testing.assert_allclose(calib.R_fisheye[cam], rot_x(np.radians(-15)), atol=1e-15)
        # the virtual optical axis, seen from the raw fisheye, points 15 deg down (camera y is down)
        np.testing.assert_allclose(calib.R_fisheye[cam] @ [0, 0, 1], [0, np.sin(np.radians(15)),
                                                                      np.cos(np.radians(15))], atol=1e-15)
        np.testing.assert_allclose(calib.T_virtual_to_pose[cam][:3, :3],
                                   calib.T_cam_to_pose[cam][:3, :3] @ calib.R_fisheye[cam], atol=1e-15)
        np.testing.assert_array_equal(calib.T_virtual_to_pose[cam][:3, 3], calib.T_cam_to_pose[cam][:3, 3])
        np.testing.assert_array_equal(calib.view_to_pose(cam), calib.T_virtual_to_pose[cam])


def test_yaw_is_mirrored_for_the_right_fisheye():
    """scipy 'xy' = extrinsic x then y: R = R_y(yaw) R_x(pitch); image_03 uses -yaw (reference 1.2)."""
    R = fisheye_rotation_matrices((10.0, -15.0))
    np.testing.assert_allclose(R[2], rot_y(np.radians(10)) @ rot_x(np.radians(-15)), atol=1e-15)
    np.testing.assert_allclose(R[3], rot_y(np.radians(-10)) @ rot_x(np.radians(-15)), atol=1e-15)
    scalar = fisheye_rotation_matrices(-15)  # the reference's scalar form = (0, pitch)
    np.testing.assert_allclose(scalar[2], rot_x(np.radians(-15)), atol=1e-15)


def test_arrays_are_read_only(calib):
    with pytest.raises(ValueError):
        calib.K_perspective[0, 0] = 1.0
    with pytest.raises(ValueError):
        calib.T_cam_to_pose[0][0, 3] = 1.0


@pytest.fixture()
def calib_copy(smoke_world, tmp_path):
    shutil.copytree(smoke_world / "kitti360" / "calibration", tmp_path / "calibration")
    return tmp_path


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_missing_file_is_named(calib_copy):
    (calib_copy / "calibration" / "perspective.txt").unlink()
    with pytest.raises(FileNotFoundError, match="perspective.txt"):
        load_calibration(calib_copy)


def test_malformed_line_is_named_with_its_number(calib_copy):
    path = calib_copy / "calibration" / "calib_cam_to_pose.txt"
    lines = path.read_text().splitlines()
    tokens = lines[1].split()
    lines[1] = " ".join(tokens[:3] + ["abc"] + tokens[4:])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"calib_cam_to_pose.txt:2: malformed"):
        load_calibration(calib_copy)


def test_wrong_value_count_and_missing_key(calib_copy):
    velo = calib_copy / "calibration" / "calib_cam_to_velo.txt"
    velo.write_text(" ".join(velo.read_text().split()[:11]) + "\n")
    with pytest.raises(ValueError, match=r"calib_cam_to_velo.txt:1: expected 12 numbers, got 11"):
        load_calibration(calib_copy)


def test_missing_perspective_key(calib_copy):
    path = calib_copy / "calibration" / "perspective.txt"
    path.write_text("\n".join(line for line in path.read_text().splitlines() if not line.startswith("P_rect_01")))
    with pytest.raises(ValueError, match=r"perspective.txt: missing P_rect_01"):
        load_calibration(calib_copy)


def test_broken_yaml_is_named(calib_copy):
    _edit(calib_copy / "calibration" / "image_03.yaml", "   xi:", "   chi:")
    with pytest.raises(ValueError, match=r"image_03.yaml: missing or malformed MEI parameter"):
        load_calibration(calib_copy)


def test_bad_fisheye_rotation(calib_copy):
    with pytest.raises(ValueError, match="fisheye_rotation"):
        load_calibration(calib_copy, (0, 1, 2))
