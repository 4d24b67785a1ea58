"""Tests of vipocc.synthetic.appearance: ranges, determinism, view independence, shading law, band limit."""
from __future__ import annotations

import numpy as np
import pytest

from vipocc.synthetic.appearance import (AMBIENT, DIFFUSE, SKY_BELOW_HORIZON, SKY_HORIZON, SKY_ZENITH, SUN_DIRECTION,
                                         albedo, fbm, hash01, lattice_hash, lidar_intensity, shade, sky_color, value_noise)
from vipocc.synthetic.raycast import Raycaster
from vipocc.synthetic.scene import Material, Scene, box_solid
from vipocc.synthetic.street import generate_street


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def material_boxes() -> Scene:
    """One 10 m cube per material, 30 m apart along x, bottom at z = 0; cars get an instance id."""
    solids = [box_solid([30.0 * m, 0, 5], [10, 10, 10], 0.2 * m, semantic=26 if m in (3, 4) else 11, material=m,
                        instance=7 if m in (3, 4) else 0, object_id=m + 1) for m in map(int, Material)]
    return Scene.from_solids(solids, car_yaw={7: 0.6})


def _targets(scene: Scene, rng: np.random.Generator, per_box: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Points on the top face (normal +z) and on the face towards -y' of every box, with those normals."""
    pts, normals = [], []
    for m in range(scene.n_solids):
        origin, axes = scene.frame_origin[m], scene.frame_axes[m]
        top = rng.uniform(-4.5, 4.5, size=(per_box, 3)) * [1, 1, 0] + [0, 0, 5]
        side = rng.uniform(-4.5, 4.5, size=(per_box, 3)) * [1, 0, 1] + [0, -5, 0]
        pts.append(origin + np.concatenate([top, side]) @ axes.T)
        normals.append(np.concatenate([np.tile([0, 0, 1.0], (per_box, 1)), np.tile(-axes[:, 1], (per_box, 1))]))
    return np.concatenate(pts), np.concatenate(normals)


def _tilted(normal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random unit directions arriving at faces with outward `normal` (incidence < ~75 deg)."""
    d = -normal + rng.uniform(-1.0, 1.0, size=normal.shape) * 0.9
    d = _unit(d)
    return np.where((np.einsum("ij,ij->i", d, normal) < -0.25)[:, None], d, -normal)


def test_same_point_same_colour_from_different_rays(material_boxes):
    scene, caster = material_boxes, Raycaster(material_boxes)
    rng = np.random.default_rng(0)
    target, normal = _targets(scene, rng)
    colours = []
    for _ in range(2):
        d = _tilted(normal, rng)
        hits = caster.cast(target - 3.0 * d, d)
        assert np.allclose(hits.points, target, atol=1e-9)
        colours.append(shade(scene, hits, d))
    assert np.abs(colours[0] - colours[1]).max() < 1e-6
    assert colours[0].std(axis=0).min() > 0.02  # the colours do vary across points: the check is not vacuous


def test_lambertian_shading_law(material_boxes):
    scene, caster = material_boxes, Raycaster(material_boxes)
    rng = np.random.default_rng(1)
    target, normal = _targets(scene, rng)
    d = _tilted(normal, rng)
    hits = caster.cast(target - 3.0 * d, d)
    base = albedo(scene, hits.solid, hits.points, hits.normal)
    light = AMBIENT + DIFFUSE * np.clip(normal @ SUN_DIRECTION, 0, None)
    assert np.allclose(shade(scene, hits, d), base * light[:, None], atol=1e-6)
    # A face turned away from the sun is lit by the ambient term only.
    assert (normal @ SUN_DIRECTION < 0).any()


def test_lidar_intensity_scales_with_incidence(material_boxes):
    scene, caster = material_boxes, Raycaster(material_boxes)
    rng = np.random.default_rng(2)
    target, normal = _targets(scene, rng)
    top = normal[:, 2] == 1
    target = target[top]
    steep = np.tile([0, 0, -1.0], (len(target), 1))
    oblique = _unit(np.column_stack([rng.uniform(-1, 1, size=(len(target), 2)), -np.ones(len(target))]))
    i_steep = lidar_intensity(scene, caster.cast(target + [0, 0, 3.0], steep), steep)
    i_obl = lidar_intensity(scene, caster.cast(target - 3 * oblique, oblique), oblique)
    assert i_steep.dtype == np.float32 and (i_steep > 0).all() and (i_steep <= 1).all()
    assert np.allclose(i_obl, i_steep * np.abs(oblique[:, 2]), rtol=1e-5, atol=1e-7)
    miss = np.tile([0, 0, 1.0], (3, 1))
    assert (lidar_intensity(scene, caster.cast(np.array([0, 0, 20.0]), miss), miss) == 0).all()


def test_street_render_range_determinism_and_sky():
    scene, line = generate_street(seed=2, length_m=40.0)
    rng = np.random.default_rng(3)
    d = _unit(rng.normal(size=(20000, 3)))
    origin = np.r_[line.point(line.traj_start_s + 10, -1.875), 1.55]
    hits = Raycaster(scene).cast(origin, d)
    rgb = shade(scene, hits, d)
    assert rgb.dtype == np.float32 and rgb.shape == (20000, 3)
    assert rgb.min() >= 0 and rgb.max() <= 1
    again = shade(scene, Raycaster(scene).cast(origin, d), d)
    assert np.array_equal(rgb, again)
    miss = ~hits.hit
    assert miss.any() and np.array_equal(rgb[miss], sky_color(d[miss]))
    intensity = lidar_intensity(scene, hits, d)
    assert intensity.dtype == np.float32 and intensity.min() >= 0 and intensity.max() <= 1
    assert (intensity[miss] == 0).all() and (intensity[hits.hit] > 0).mean() > 0.99


def test_street_patterns():
    scene, line = generate_street(seed=2, length_m=40.0)
    up = np.tile([0, 0, 1.0], (200, 1))
    s = 9.0 * np.arange(2, 202) % 180.0 + 9.0 + np.linspace(-1.2, 1.2, 200)  # in the 3 m dashes centred on 9 m
    road_solid = lambda xy: scene.solid_at(np.column_stack([xy, np.full(len(xy), -1e-3)]))  # noqa: E731
    dash_xy, plain_xy = line.point(s, 0.0), line.point(s, 1.0)
    lum = lambda xy: albedo(scene, road_solid(xy), np.column_stack([xy, np.zeros(len(xy))]), up).mean(1)  # noqa: E731
    assert lum(dash_xy).min() > 0.65 and lum(plain_xy).max() < 0.5  # white centre dashes on dark asphalt
    edge_xy = line.point(s + 4.5, -3.75)  # solid lane edge line, also between dashes
    assert lum(edge_xy).min() > 0.65
    # Cars: one paint per instance, several paints overall.
    body = np.flatnonzero((scene.solid_semantic == 26) & (scene.solid_material == int(Material.CAR_BODY)))
    paint = albedo(scene, body, scene.aabb[body].mean(axis=1) * [1, 1, 0] + scene.aabb[body, 1] * [0, 0, 1],
                   np.tile([0, 0, 1.0], (len(body), 1)))
    assert len(np.unique(np.round(paint, 1), axis=0)) >= 3


@pytest.mark.parametrize("face", ["top", "wall"])
def test_band_limited_with_real_detail(material_boxes, face):
    scene = material_boxes
    n = 4096
    run = np.linspace(-4.5, 4.5, n)  # one straight 9 m run across the face at ~2 mm spacing
    for m in range(scene.n_solids):
        origin, axes = scene.frame_origin[m], scene.frame_axes[m]
        if face == "top":
            local, normal = np.column_stack([run, np.full(n, 0.3), np.full(n, 5.0)]), [0, 0, 1.0]
        else:
            local, normal = np.column_stack([run, np.full(n, -5.0), np.full(n, 1.3)]), -axes[:, 1]
        a = albedo(scene, np.full(n, m), origin + local @ axes.T, np.tile(normal, (n, 1))).mean(axis=1)
        a = a - a.mean()
        if a.std() < 1e-3:
            continue  # a flat colour (e.g. a roof, a car's glass) has no spectrum to check
        power = np.abs(np.fft.rfft(a * np.hanning(n))) ** 2
        freq = np.fft.rfftfreq(n, d=run[1] - run[0])  # cycles per metre
        assert power[freq > 10].sum() / power[1:].sum() < 0.05, Material(m)  # wavelengths < 0.1 m: < 5 %
    # Real high-frequency content: asphalt varies at the 0.2-0.5 m scale.
    pts = np.column_stack([np.linspace(0, 9, 901), np.full(901, 1.0), np.zeros(901)])
    grey = fbm(pts, (0.2,), seed=0)
    assert np.abs(np.diff(grey[::10])).mean() > 0.05


def test_sky_gradient():
    elev = np.deg2rad([90, 60, 30, 5, 0, -10, -90])
    d = np.column_stack([np.cos(elev), np.zeros(len(elev)), np.sin(elev)])
    sky = sky_color(d)
    assert sky.dtype == np.float32
    assert np.allclose(sky[0], SKY_ZENITH, atol=1e-6) and np.allclose(sky[4], SKY_HORIZON, atol=1e-6)
    assert np.allclose(sky[5:], SKY_BELOW_HORIZON, atol=1e-6)
    assert (np.diff(sky[:5, 0]) > 0).all()  # redder (paler) towards the horizon
    assert (sky[:5, 2] > sky[:5, 0]).all()  # blue


def test_noise_primitives():
    rng = np.random.default_rng(4)
    lattice = rng.integers(-1000, 1000, size=(100, 3))
    lam = 0.5
    assert np.allclose(value_noise(lattice * lam, lam, seed=3), lattice_hash(*lattice.T, seed=3))
    grid = lattice_hash(*np.indices((16, 16, 16)).reshape(3, -1), seed=3)
    assert abs(grid.mean() - 0.5) < 0.03 and len(np.unique(grid)) > 0.6 * len(grid)
    p = rng.uniform(-100, 100, size=(5000, 3))
    v = value_noise(p, lam, seed=3)
    assert v.min() >= 0 and v.max() <= 1 and v.std() > 0.1
    # Smooth: slope bounded by the quintic fade's 15/8 per lattice unit along each axis.
    step = rng.normal(size=(5000, 3)) * 1e-4
    slope = np.abs(value_noise(p + step, lam, seed=3) - v) / np.linalg.norm(step, axis=1)
    assert slope.max() <= 15 / 8 * np.sqrt(3) / lam
    assert not np.allclose(value_noise(p, lam, seed=4), v)
    h = hash01(np.arange(100000), seed=1)
    assert abs(h.mean() - 0.5) < 0.01 and len(np.unique(h)) == 100000
    with pytest.raises(ValueError, match="wavelength"):
        fbm(p, (0.1, 1.0))
