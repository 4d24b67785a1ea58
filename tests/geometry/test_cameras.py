"""Camera models: pinhole projection/rays and the MEI fisheye model (against hand values, analytic special
cases of the model and a scalar re-derivation). The comparison with kitti360scripts itself lives in
tests/synthetic/test_kitti360_export.py (it needs the written calibration files)."""

import math

import numpy as np
import pytest

from vipocc.geometry.cameras import (
    MEIParams,
    mei_domain,
    mei_ray_dirs,
    pinhole_ray_dirs,
    pixel_grid,
    project_mei,
    project_pinhole,
    unproject_mei,
)

# KITTI-360 image_02.yaml / image_03.yaml (published values).
MEI_02 = MEIParams(xi=2.2134047507854890, k1=0.016798235660113681, k2=1.6548773243373522,
                   p1=4.2223943394772046e-4, p2=4.2462134260997584e-4, gamma1=1336.3220825849971,
                   gamma2=1335.7883350012958, u0=716.94323510126321, v0=705.76498308221585, width=1400, height=1400)
MEI_03 = MEIParams(xi=2.5535139132482758, k1=0.049370396274089505, k2=4.5068455478645308,
                   p1=1.3477698472982495e-3, p2=-7.0340482615055284e-4, gamma1=1485.4388981875156,
                   gamma2=1484.9477411748708, u0=698.88316784030962, v0=698.14541887723055, width=1400, height=1400)


def _random_dirs(rng: np.random.Generator, n: int) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------ pinhole


def test_project_pinhole_hand_values_and_points_behind():
    K = np.array([[100.0, 0.0, 50.0], [0.0, 200.0, 40.0], [0.0, 0.0, 1.0]])
    pts = np.array([[1.0, 2.0, 4.0], [0.0, 0.0, 2.0], [1.0, 1.0, -3.0], [1.0, 1.0, 0.0]])
    uv, z = project_pinhole(pts, K)
    np.testing.assert_allclose(uv[0], [100 * 1 / 4 + 50, 200 * 2 / 4 + 40])
    np.testing.assert_allclose(uv[1], [50.0, 40.0])
    np.testing.assert_array_equal(z, [4.0, 2.0, -3.0, 0.0])
    assert np.isnan(uv[2:]).all()


def test_pixel_grid_is_row_major_with_integer_centres():
    uv = pixel_grid(4, 3)
    assert uv.shape == (12, 2)
    np.testing.assert_array_equal(uv[1], [1, 0])  # next column first
    np.testing.assert_array_equal(uv[4], [0, 1])  # then next row
    np.testing.assert_array_equal(uv[11], [3, 2])


def test_pinhole_ray_dirs_point_through_pixel_centres():
    K = np.array([[100.0, 0.0, 1.5], [0.0, 80.0, 1.0], [0.0, 0.0, 1.0]])
    dirs = pinhole_ray_dirs(K, 4, 3)
    assert dirs.shape == (12, 3)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0, atol=1e-15)
    # Pixel (i=3, j=2) is row-major index 11: direction ~ ((3 - 1.5)/100, (2 - 1)/80, 1).
    expected = np.array([1.5 / 100, 1.0 / 80, 1.0])
    np.testing.assert_allclose(dirs[11], expected / np.linalg.norm(expected), atol=1e-15)
    uv, _ = project_pinhole(dirs, K)
    np.testing.assert_allclose(uv, pixel_grid(4, 3), atol=1e-12)


def test_pinhole_rejects_bad_input():
    K = np.eye(3)
    with pytest.raises(ValueError, match="points_cam"):
        project_pinhole(np.zeros((3, 2)), K)
    with pytest.raises(ValueError, match="K"):
        project_pinhole(np.zeros((3, 3)), np.zeros((3, 4)))


# ---------------------------------------------------------------------------------------------------- MEI


def _scalar_mei(point, p: MEIParams) -> tuple[float, float]:
    """The published MEI projection, one point at a time in plain Python (independent slow oracle)."""
    x, y, z = point
    n = math.sqrt(x * x + y * y + z * z)
    mx, my = (x / n) / (z / n + p.xi), (y / n) / (z / n + p.xi)
    r2 = mx * mx + my * my
    d = 1 + p.k1 * r2 + p.k2 * r2 * r2
    return p.gamma1 * mx * d + p.u0, p.gamma2 * my * d + p.v0


@pytest.mark.parametrize("p", [MEI_02, MEI_03])
def test_project_mei_matches_scalar_formula(p):
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(50, 3)) * 4
    uv, _ = project_mei(pts, p)
    expected = np.array([_scalar_mei(q, p) for q in pts])
    np.testing.assert_allclose(uv, expected, rtol=0, atol=1e-9)


def test_project_mei_optical_axis_hits_principal_point_and_scale_invariance():
    uv, valid = project_mei(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 7.5]]), MEI_02)
    np.testing.assert_allclose(uv, [[MEI_02.u0, MEI_02.v0]] * 2, atol=1e-12)
    assert valid.all()


def test_project_mei_validity_domain_and_image():
    p = MEI_02
    z_fold = -1.0 / p.xi  # the sphere->plane map folds back there for xi > 1
    eps = 1e-3
    dirs = np.array([[math.sqrt(1 - (z_fold - eps) ** 2), 0.0, z_fold - eps],  # beyond the fold
                     [math.sqrt(1 - (z_fold + eps) ** 2), 0.0, z_fold + eps],  # just inside the fold
                     [0.0, 0.0, 0.0],                                         # no direction
                     [0.1, -0.2, 1.0]])                                       # straight ahead
    uv, valid = project_mei(dirs, p)
    assert not valid[0]
    assert valid[1] == (-0.5 <= uv[1, 0] < p.width - 0.5)  # in the domain: valid iff inside the image
    assert not valid[2] and np.isnan(uv[2]).all()
    assert valid[3]
    # A small image: the same in-domain direction becomes invalid once its pixel leaves the image.
    small = MEIParams(**{**p.__dict__, "width": 100, "height": 100})
    uv_small, valid_small = project_mei(dirs[3:], small)
    assert uv_small[0, 0] > 99.5 or uv_small[0, 1] < -0.5 or uv_small[0, 1] > 99.5
    assert not valid_small[0]


def test_mei_domain_analytic_limits():
    z_min, rho_lim, rho_d_lim = mei_domain(MEI_02)
    xi = MEI_02.xi
    assert z_min == pytest.approx(-1 / xi, abs=1e-15)
    assert rho_lim == pytest.approx(1 / math.sqrt(xi * xi - 1), rel=1e-15)
    r2 = rho_lim**2
    assert rho_d_lim == pytest.approx(rho_lim * (1 + MEI_02.k1 * r2 + MEI_02.k2 * r2 * r2), rel=1e-15)


@pytest.mark.parametrize("p", [MEI_02, MEI_03])
def test_unproject_mei_boundary_pixels(p):
    _, _, rho_d_lim = mei_domain(p)
    r_px = rho_d_lim * p.gamma1  # distorted-radius limit along the +u axis, in pixels
    uv = np.array([[p.u0 + r_px - 0.01, p.v0], [p.u0 + r_px + 0.01, p.v0], [p.u0, p.v0], [0.0, 0.0]])
    dirs, valid = unproject_mei(uv, p)
    np.testing.assert_array_equal(valid, [True, False, True, False])  # image corner is beyond the lens
    assert np.isnan(dirs[~valid]).all()
    np.testing.assert_allclose(dirs[2], [0.0, 0.0, 1.0], atol=1e-15)


@pytest.mark.parametrize("p", [MEI_02, MEI_03])
def test_mei_round_trip_directions(p):
    dirs = _random_dirs(np.random.default_rng(2), 4000)
    uv, valid = project_mei(dirs, p)
    assert valid.sum() > 1000
    back, ok = unproject_mei(uv[valid], p)
    assert ok.all()
    np.testing.assert_allclose(back, dirs[valid], atol=1e-9)


@pytest.mark.parametrize("p", [MEI_02.scaled(0.25), MEI_03.scaled(0.25)])
def test_mei_round_trip_all_pixels(p):
    dirs, valid = mei_ray_dirs(p)
    assert dirs.shape == (p.width * p.height, 3) and valid.shape == (p.width * p.height,)
    assert 0.5 < valid.mean() < 1.0  # the image corners lie outside the lens domain
    np.testing.assert_allclose(np.linalg.norm(dirs[valid], axis=1), 1.0, atol=1e-12)
    uv, in_image = project_mei(dirs[valid], p)
    assert in_image.all()
    assert np.abs(uv - pixel_grid(p.width, p.height)[valid]).max() < 1e-6


def test_unproject_mei_special_cases_have_closed_forms():
    base = dict(k1=0.0, k2=0.0, p1=0.0, p2=0.0, gamma1=300.0, gamma2=280.0, u0=100.0, v0=90.0,
                width=200, height=180)
    # xi = 0, no distortion: a pinhole camera with fx = gamma1, fy = gamma2.
    pin = MEIParams(xi=0.0, **base)
    K = np.array([[300.0, 0.0, 100.0], [0.0, 280.0, 90.0], [0.0, 0.0, 1.0]])
    dirs, valid = mei_ray_dirs(pin)
    assert valid.all()
    np.testing.assert_allclose(dirs, pinhole_ray_dirs(K, 200, 180), atol=1e-12)
    # xi = 1, no distortion: stereographic, a pixel at normalised radius r sees angle 2 atan(r) off-axis.
    stereo = MEIParams(xi=1.0, **base)
    uv = np.array([[100.0 + 300.0 * 0.7, 90.0], [100.0, 90.0 + 280.0 * 3.0]])
    dirs, valid = unproject_mei(uv, stereo)
    assert valid.all()
    np.testing.assert_allclose(np.arccos(dirs[:, 2]), [2 * math.atan(0.7), 2 * math.atan(3.0)], atol=1e-12)


def test_mei_params_scaled_follows_pixel_centre_convention():
    s = 0.5
    q = MEI_02.scaled(s)
    assert (q.width, q.height) == (700, 700)
    assert q.gamma1 == pytest.approx(0.5 * MEI_02.gamma1) and q.gamma2 == pytest.approx(0.5 * MEI_02.gamma2)
    assert q.u0 == pytest.approx(0.5 * (MEI_02.u0 + 0.5) - 0.5) and q.v0 == pytest.approx(0.5 * (MEI_02.v0 + 0.5) - 0.5)
    assert (q.xi, q.k1, q.k2, q.p1, q.p2) == (MEI_02.xi, MEI_02.k1, MEI_02.k2, MEI_02.p1, MEI_02.p2)
    pts = np.random.default_rng(3).normal(size=(20, 3)) + [0, 0, 3]
    uv, _ = project_mei(pts, MEI_02)
    uv_s, _ = project_mei(pts, q)
    np.testing.assert_allclose(uv_s, s * (uv + 0.5) - 0.5, atol=1e-9)
    with pytest.raises(ValueError, match="not a positive integer"):
        MEI_02.scaled(0.3333)


def test_mei_params_validation():
    with pytest.raises(ValueError, match="gamma"):
        MEIParams(xi=1.0, k1=0, k2=0, p1=0, p2=0, gamma1=-1.0, gamma2=1.0, u0=0, v0=0, width=10, height=10)
    with pytest.raises(ValueError, match="xi"):
        MEIParams(xi=-0.1, k1=0, k2=0, p1=0, p2=0, gamma1=1.0, gamma2=1.0, u0=0, v0=0, width=10, height=10)
    with pytest.raises(ValueError, match="uv"):
        unproject_mei(np.zeros((3, 3)), MEI_02)
