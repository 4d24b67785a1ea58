"""Simulated priors: error levels against analytic street depth maps, the corruption's components, instances.

Truths: depth maps of a pinhole camera over a ground plane, two side walls and car-sized boxes computed here in
closed form; hand-placed label rectangles with known extents and areas; the authors' reported error levels
(AbsRel 0.586 unscaled / 0.142 median-scaled) as the target band; vipocc.evaluation.metrics for the metrics.
"""
from __future__ import annotations

import numpy as np
import pytest

from vipocc.evaluation.metrics import depth_metrics
from vipocc.priors import simulated as sim

H, W = 192, 640
FX, FY, CX, CY = 251.2, 282.2, 310.0, 121.9  # KITTI-360 perspective intrinsics scaled to 640x192


def street_depth(cam_height=1.55, half_width=8.0, cars=((-3.0, 10.0), (2.5, 18.0), (-3.2, 30.0)), far_wall=None):
    """Analytic z-depth [H, W]: ground plane, walls at x = +-half_width up to 10 m, 1.8x1.5 m boxes; inf = sky."""
    v, u = np.mgrid[0:H, 0:W] + 0.5
    dx, dy = (u - CX) / FX, (v - CY) / FY  # ray direction with z = 1
    depth = np.full((H, W), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.minimum(depth, np.where(dy > 0, cam_height / dy, np.inf))
        for wall_x in (-half_width, half_width):
            z = wall_x / dx
            depth = np.where((z > 0) & (dy * z > -10.0) & (dy * z < cam_height), np.minimum(depth, z), depth)
        if far_wall is not None:
            depth = np.where(dy * far_wall > -10.0, np.minimum(depth, far_wall), depth)
        for x0, z0 in cars:
            inside = (np.abs(dx * z0 - x0) < 0.9) & (dy * z0 > cam_height - 1.5) & (dy * z0 < cam_height)
            depth = np.where(inside, np.minimum(depth, z0), depth)
    return depth


def lidar_like_gt(depth):
    """GT as the evaluation sees it: 0 for sky and beyond 80 m."""
    return np.where(np.isfinite(depth) & (depth <= 80), depth, 0.0)


@pytest.mark.parametrize("scene", [
    {},
    {"far_wall": 45.0},
    {"half_width": 5.0, "cars": ((-2.5, 6.0), (2.0, 12.0))},
])
def test_error_levels_match_the_real_prior(scene):
    depth = street_depth(**scene)
    gt = lidar_like_gt(depth)
    unscaled, scaled = [], []
    for seed in range(16):
        prior = sim.simulate_depth_prior(depth, seed)
        unscaled.append(depth_metrics(gt, prior)["abs_rel"])
        scaled.append(depth_metrics(gt, prior, "median")["abs_rel"])
    assert 0.4 <= np.mean(unscaled) <= 0.6, np.mean(unscaled)
    assert 0.1 <= np.mean(scaled) <= 0.2, np.mean(scaled)
    assert all(s < u for s, u in zip(scaled, unscaled))  # the per-image scale is the dominant error


def test_output_contract_sky_and_nan():
    depth = street_depth()
    depth[:5, :5] = np.nan  # "outside the lens" pixels are handled like sky
    prior = sim.simulate_depth_prior(depth, np.random.default_rng(0))
    params = sim.DepthPriorParams()
    assert prior.dtype == np.float32 and prior.shape == (H, W)
    assert np.isfinite(prior).all()
    assert prior.min() >= params.min_depth and prior.max() <= params.max_depth
    assert np.all(prior[~np.isfinite(depth)] == params.max_depth)


def test_deterministic_given_seed():
    depth = street_depth()
    np.testing.assert_array_equal(sim.simulate_depth_prior(depth, 5), sim.simulate_depth_prior(depth, 5))
    np.testing.assert_array_equal(sim.simulate_depth_prior(depth, np.random.default_rng(5)),
                                  sim.simulate_depth_prior(depth, 5))
    assert not np.array_equal(sim.simulate_depth_prior(depth, 5), sim.simulate_depth_prior(depth, 6))
    generator = np.random.default_rng(1)
    first, second = sim.simulate_depth_prior(depth, generator), sim.simulate_depth_prior(depth, generator)
    assert not np.array_equal(first, second)  # the generator is consumed, frames differ


def _only(**kwargs):
    """Params with every corruption switched off except those given."""
    base = dict(edge_blur_px=0.0, scale_log_mean=0.0, scale_log_sd=0.0, shift_sd=0.0, noise_near=0.0,
                noise_far=0.0, noise_white=0.0)
    return sim.DepthPriorParams(**(base | kwargs))


def test_pure_scale_is_exact():
    depth = street_depth()
    prior = sim.simulate_depth_prior(depth, 0, _only(scale_log_mean=float(np.log(2.0))))
    expected = np.clip(2.0 * np.minimum(depth, 80.0), 0.5, 80.0)
    np.testing.assert_allclose(prior, expected, rtol=1e-6)


def test_shift_is_affine_in_inverse_depth():
    depth = street_depth(far_wall=45.0)
    prior = sim.simulate_depth_prior(depth, 3, _only(shift_sd=0.01)).astype(np.float64)
    valid = np.isfinite(depth) & (prior > 0.5) & (prior < 80) & (depth < 80)
    offset = 1.0 / prior[valid] - 1.0 / depth[valid]
    assert abs(offset.mean()) > 1e-4  # a shift happened
    np.testing.assert_allclose(offset, offset.mean(), atol=1e-6)  # ... and the same 1/m everywhere


def test_edge_blur_smooths_only_across_discontinuities():
    depth = np.full((64, 64), 10.0)
    depth[:, 32:] = 40.0
    prior = sim.simulate_depth_prior(depth, 0, _only(edge_blur_px=2.0))
    np.testing.assert_allclose(prior[:, :20], 10.0, rtol=1e-6)  # > 6 sigma from the edge: untouched
    np.testing.assert_allclose(prior[:, 45:], 40.0, rtol=1e-6)
    edge = prior[32, 28:36]
    assert np.all(np.diff(edge) > 0) and 10.0 < edge[2] and edge[-3] < 40.0  # intermediate "flying" depths


def test_noise_grows_with_depth():
    depth = np.full((128, 256), 5.0)
    depth[:, 128:] = 60.0
    params = _only(noise_near=0.05, noise_far=0.25, noise_corr_px=4.0)
    logs = np.stack([np.log(sim.simulate_depth_prior(depth, seed, params) / depth) for seed in range(4)])
    near_sd, far_sd = logs[..., 8:120].std(), logs[..., 136:248].std()
    np.testing.assert_allclose(near_sd, 0.05 + 0.20 * 5 / 80, rtol=0.15)
    np.testing.assert_allclose(far_sd, 0.05 + 0.20 * 60 / 80, rtol=0.15)


def test_depth_bad_inputs_raise():
    with pytest.raises(ValueError, match="> 0"):
        sim.simulate_depth_prior(-np.ones((4, 4)), 0)
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        sim.simulate_depth_prior(np.ones((2, 4, 4)), 0)
    with pytest.raises(ValueError, match="rng"):
        sim.simulate_depth_prior(np.ones((4, 4)), None)
    with pytest.raises(ValueError, match="min_depth"):
        sim.DepthPriorParams(min_depth=90.0)
    with pytest.raises(ValueError, match="noise_far"):
        sim.DepthPriorParams(noise_far=-1.0)


# ---------------------------------------------------------------------------------------------------------------
# instances
# ---------------------------------------------------------------------------------------------------------------

ROAD, BUILDING, VEGETATION, SKY, CAR = 7, 11, 21, 23, 26
CARS = {3: [(120, 150, 100, 160)], 7: [(100, 130, 300, 340)], 12: [(110, 140, 500, 520), (130, 150, 520, 560)]}


def oracle_maps():
    """Semantic/instance maps with known regions: rows/cols are half-open (v0, v1, u0, u1) rectangles."""
    semantic = np.zeros((H, W), np.uint8)
    semantic[:60] = SKY
    semantic[60:110, :200] = BUILDING
    semantic[60:110, 400:] = VEGETATION
    semantic[110:] = ROAD
    instance = np.zeros((H, W), np.uint16)
    for car_id, rects in CARS.items():
        for v0, v1, u0, u1 in rects:
            instance[v0:v1, u0:u1] = car_id
            semantic[v0:v1, u0:u1] = CAR
    return instance, semantic


def test_exact_boxes_areas_and_mask_without_jitter():
    instance, semantic = oracle_maps()
    detections, mask = sim.simulate_instances(instance, semantic, 0, drop_prob=0.0, box_jitter_px=0.0)
    assert [d["label"] for d in detections] == ["road", "building", "vegetation", "sky", "car", "car", "car"]
    expected_car_boxes = [[100, 120, 160, 150], [300, 100, 340, 130], [500, 110, 560, 150]]
    assert [d["box"] for d in detections[4:]] == expected_car_boxes
    assert [d["pixel_num"] for d in detections[4:]] == [30 * 60, 30 * 40, 30 * 20 + 20 * 40]
    assert detections[3]["box"] == [0, 0, W, 60] and detections[3]["pixel_num"] == 60 * W
    assert detections[1]["box"] == [0, 60, 200, 110]
    assert mask.dtype == np.int32 and mask.shape == (H, W)
    for k, det in enumerate(detections, start=1):
        region = mask == k
        assert region.sum() == det["pixel_num"]
        rows, cols = np.nonzero(region)
        x1, y1, x2, y2 = det["box"]
        # pixel centres of the region lie inside the box
        assert np.all((cols + 0.5 > x1) & (cols + 0.5 < x2) & (rows + 0.5 > y1) & (rows + 0.5 < y2))
        assert 0.5 <= det["logit"] <= 0.9
    for k, car_id in enumerate(CARS, start=5):
        np.testing.assert_array_equal(mask == k, instance == car_id)


def test_jitter_and_drop_statistics():
    rng = np.random.default_rng(42)
    instance = np.zeros((H, W), np.uint16)
    semantic = np.full((H, W), ROAD, np.uint8)
    ids = np.arange(1, 401, dtype=np.uint16)
    rows, cols = np.divmod(np.arange(400), 40)
    for car_id, r, c in zip(ids, rows, cols):  # 400 cars of 4x4 px, one per 16x16 cell of a 10 x 40 grid
        instance[r * 16 + 4:r * 16 + 8, c * 16 + 4:c * 16 + 8] = car_id
    detections, mask = sim.simulate_instances(instance, semantic, rng, drop_prob=0.3, box_jitter_px=1.5,
                                              min_car_pixels=0)
    cars = [(k, d) for k, d in enumerate(detections, start=1) if d["label"] == "car"]
    assert abs(len(cars) / 400 - 0.7) < 4 * np.sqrt(0.3 * 0.7 / 400)
    deviations = []
    for k, det in cars:
        (car_id,) = np.unique(instance[mask == k])  # the mask of detection k is exactly one car
        r, c = divmod(int(car_id) - 1, 40)
        x1, y1, x2, y2 = det["box"]
        assert 0 <= x1 and x2 <= W and 0 <= y1 and y2 <= H and x2 - x1 >= 1 and y2 - y1 >= 1
        deviations.append(np.subtract(det["box"], [c * 16 + 4, r * 16 + 4, c * 16 + 8, r * 16 + 8]))
    # mean |N(0, s)| = s * sqrt(2 / pi)
    np.testing.assert_allclose(np.abs(deviations).mean(), 1.5 * np.sqrt(2 / np.pi), rtol=0.1)


def test_instances_deterministic_and_extreme_drop():
    instance, semantic = oracle_maps()
    first = sim.simulate_instances(instance, semantic, 9)
    second = sim.simulate_instances(instance, semantic, np.random.default_rng(9))
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    assert sim.simulate_instances(instance, semantic, 10)[0] != first[0]
    detections, mask = sim.simulate_instances(instance, semantic, 0, drop_prob=1.0)
    assert [d["label"] for d in detections] == ["road", "building", "vegetation", "sky"]
    assert not mask[instance > 0].any()  # dropped cars leave no mask
    # car 7 has 30 x 40 = 1200 px, car 3 1800 px, car 12 1400 px: a 1300 px floor keeps cars 3 and 12 only
    detections, mask = sim.simulate_instances(instance, semantic, 0, drop_prob=0.0, min_car_pixels=1300)
    assert [d["pixel_num"] for d in detections if d["label"] == "car"] == [1800, 1400]
    assert not mask[instance == 7].any()


def test_empty_scene_and_bad_inputs():
    detections, mask = sim.simulate_instances(np.zeros((8, 8), np.uint16), np.zeros((8, 8), np.uint8), 0)
    assert detections == [] and mask.dtype == np.int32 and not mask.any()
    with pytest.raises(ValueError, match="shape"):
        sim.simulate_instances(np.zeros((8, 8), np.uint16), np.zeros((8, 9), np.uint8), 0)
    with pytest.raises(ValueError, match="drop_prob"):
        sim.simulate_instances(np.zeros((8, 8), np.uint16), np.zeros((8, 8), np.uint8), 0, drop_prob=2.0)
    with pytest.raises(ValueError, match="integer"):
        sim.simulate_instances(np.zeros((8, 8)), np.zeros((8, 8), np.uint8), 0)
