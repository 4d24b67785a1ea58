"""Tests of vipocc.evaluation.metrics against hand arithmetic, torch and slow re-implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vipocc.evaluation.metrics import (
    DEPTH_METRIC_KEYS,
    KITTI_RAW_EIGEN,
    depth_metrics,
    far_cut,
    garg_crop,
    lower_median,
    mean_metrics,
    nearest_resize,
    object_region_mask,
    occupancy_extra_scores,
    occupancy_scores,
    scene_and_object_scores,
)

# ------------------------------------------------------------------------------ depth


def test_depth_metrics_hand_computed_2x3():
    gt = np.array([[2.0, 0.0, 4.0], [5.0, 10.0, 8.0]])
    pred = np.array([[1.0, 7.0, 4.0], [6.0, 18.0, 12.0]])  # pixel with gt 0 must be ignored
    # valid pairs (g, p): (2,1) (4,4) (5,6) (10,18) (8,12); ratios 2, 1, 1.2, 1.8, 1.5
    m = depth_metrics(gt, pred)
    assert set(m) == set(DEPTH_METRIC_KEYS)
    assert m["abs_rel"] == pytest.approx((1 / 2 + 0 + 1 / 5 + 8 / 10 + 4 / 8) / 5)  # 0.4
    assert m["sq_rel"] == pytest.approx((1 / 2 + 0 + 1 / 5 + 64 / 10 + 16 / 8) / 5)  # 1.82
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 0 + 1 + 64 + 16) / 5))
    logs = [math.log(2), 0, math.log(1.2), math.log(1.8), math.log(1.5)]
    assert m["rmse_log"] == pytest.approx(math.sqrt(sum(v * v for v in logs) / 5))
    assert m["a1"] == pytest.approx(2 / 5)  # 1, 1.2 < 1.25
    assert m["a2"] == pytest.approx(3 / 5)  # + 1.5 < 1.5625
    assert m["a3"] == pytest.approx(4 / 5)  # + 1.8 < 1.953125
    assert all(type(v) is float for v in m.values())


def test_depth_perfect_prediction_and_torch_input():
    rng = np.random.default_rng(0)
    gt = rng.uniform(1.0, 70.0, size=(6, 9))
    gt[0, :4] = 0.0
    m = depth_metrics(torch.from_numpy(gt), torch.from_numpy(gt)[None, None])
    assert m["abs_rel"] == 0 and m["sq_rel"] == 0 and m["rmse"] == 0 and m["rmse_log"] == 0
    assert m["a1"] == m["a2"] == m["a3"] == 1


def test_depth_clamp_and_no_gt_cap():
    # gt 90 m is kept (no cap on KITTI-360); pred 100 -> 80, pred -5 -> 1e-3
    gt = np.array([[90.0, 2.0]])
    pred = np.array([[100.0, -5.0]])
    m = depth_metrics(gt, pred)
    assert m["abs_rel"] == pytest.approx((10 / 90 + (2 - 1e-3) / 2) / 2)
    assert m["a3"] == pytest.approx(1 / 2)  # 90/80 = 1.125 < 1.25; 2/1e-3 fails


def test_depth_nearest_resize_inside_metrics():
    # [1, 2] prediction upsampled to [2, 4] by nearest -> columns 0,0,1,1
    gt = np.array([[3.0, 3.0, 6.0, 6.0], [3.0, 0.0, 6.0, 6.0]])
    m = depth_metrics(gt, np.array([[3.0, 6.0]]))
    assert m["abs_rel"] == 0 and m["a1"] == 1
    m_swapped = depth_metrics(gt, np.array([[6.0, 3.0]]))
    assert m_swapped["abs_rel"] == pytest.approx((1.0 * 3 + 0.5 * 4) / 7)  # |3-6|/3 on 3 px, |6-3|/6 on 4 px


@pytest.mark.parametrize(
    ("in_hw", "out_hw"),
    [
        ((192, 640), (375, 1242)),
        ((192, 640), (376, 1241)),
        ((7, 5), (3, 13)),
        ((2, 3), (164, 166)),
        ((40, 30), (40, 30)),
    ],
)
def test_nearest_resize_matches_torch_interpolate(in_hw, out_hw):
    image = np.random.default_rng(1).random(in_hw).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(image)[None, None], size=out_hw, mode="nearest")[0, 0].numpy()
    np.testing.assert_array_equal(nearest_resize(image, out_hw), expected)


def test_nearest_resize_matches_torch_on_many_1d_sizes():
    # exact-integer products (e.g. 82 * 2/164) are where float32 and exact rounding part ways
    for in_size in (2, 3, 6, 14, 26, 45, 58):
        column = torch.arange(in_size, dtype=torch.float32).reshape(1, 1, in_size, 1)
        for out_size in range(1, 260, 7):
            expected = F.interpolate(column, size=(out_size, 1), mode="nearest")[0, 0, :, 0].numpy()
            got = nearest_resize(column[0, 0].numpy(), (out_size, 1))[:, 0]
            np.testing.assert_array_equal(got, expected, err_msg=f"{in_size}->{out_size}")


@pytest.mark.parametrize("n", [2, 4, 10, 11, 1000, 1001])
def test_lower_median_matches_torch_median(n):
    rng = np.random.default_rng(n)
    values = rng.integers(0, 7, size=n).astype(np.float32) + rng.random(n).astype(np.float32) * (n % 2)
    assert lower_median(values) == torch.median(torch.from_numpy(values)).item()


def test_lower_median_even_count_is_lower_middle():
    assert lower_median(np.array([4.0, 1.0, 3.0, 2.0])) == 2.0  # numpy's median would be 2.5
    with pytest.raises(ValueError, match="empty"):
        lower_median(np.array([]))


def test_depth_median_scaling_uses_lower_medians_over_valid_pixels():
    gt = np.array([[2.0, 4.0, 6.0, 8.0, 0.0]])
    pred = np.array([[1.0, 3.0, 5.0, 7.0, 1000.0]])  # the 1000 sits on invalid GT: not in the median
    # lower medians: gt 4, pred 3 -> s = 4/3; scaled pred 4/3, 4, 20/3, 28/3
    m = depth_metrics(gt, pred, scaling="median")
    assert m["abs_rel"] == pytest.approx(((2 / 3) / 2 + 0 + (2 / 3) / 6 + (4 / 3) / 8) / 4)  # 11/72
    assert m["abs_rel"] == pytest.approx(11 / 72)


def test_depth_median_scaling_clamps_after_scaling():
    gt = np.array([[50.0, 60.0, 70.0]])
    pred = np.array([[1.0, 1.0, 2.0]])  # s = 60 / 1 -> 60, 60, 120 -> clamp 80
    m = depth_metrics(gt, pred, scaling="median")
    assert m["abs_rel"] == pytest.approx((10 / 50 + 0 + 10 / 70) / 3)


def test_depth_lsq_scaling_hand_computed():
    gt = np.array([[1.0, 2.0, 3.0]])
    pred = np.array([[1.0, 2.0, 4.0]])
    # fit g = a p + b: mean p 7/3, mean g 2, Sxx 42/9, Sxy 3 -> a = 9/14, b = 1/2
    # fitted 8/7, 25/14, 43/14
    m = depth_metrics(gt, pred, scaling="lsq")
    assert m["abs_rel"] == pytest.approx((1 / 7 + (3 / 14) / 2 + (1 / 14) / 3) / 3)  # 23/252
    affine = depth_metrics(gt, 2 * gt + 1, scaling="lsq")
    assert affine["abs_rel"] == pytest.approx(0, abs=1e-12)
    assert depth_metrics(gt, pred, scaling="l2") == m  # the reference's name for the same fit


def _torch_protocol_depth(gt: torch.Tensor, pred: torch.Tensor, median: bool) -> dict[str, float]:
    """The protocol text (section 4.2 / 5) written with torch ops in float32."""
    pred = F.interpolate(pred[None, None], size=gt.shape, mode="nearest")[0, 0]
    valid = gt != 0
    if median:
        pred = pred * (torch.median(gt[valid]) / torch.median(pred[valid]))
    g, p = gt[valid], pred.clamp(1e-3, 80)[valid]
    thresh = torch.maximum(g / p, p / g)
    return {
        "abs_rel": ((g - p).abs() / g).mean().item(),
        "sq_rel": ((g - p) ** 2 / g).mean().item(),
        "rmse": ((g - p) ** 2).mean().sqrt().item(),
        "rmse_log": ((g.log() - p.log()) ** 2).mean().sqrt().item(),
        "a1": (thresh < 1.25).float().mean().item(),
        "a2": (thresh < 1.25**2).float().mean().item(),
        "a3": (thresh < 1.25**3).float().mean().item(),
    }


@pytest.mark.parametrize("median", [False, True])
def test_depth_metrics_match_torch_float32_protocol(median):
    rng = np.random.default_rng(7)
    gt = np.where(rng.random((48, 160)) < 0.3, rng.uniform(2.0, 95.0, (48, 160)), 0.0).astype(np.float32)
    pred = rng.uniform(0.5, 85.0, (19, 37)).astype(np.float32)
    expected = _torch_protocol_depth(torch.from_numpy(gt), torch.from_numpy(pred), median)
    got = depth_metrics(gt, pred, scaling="median" if median else None)
    assert got == pytest.approx(expected, rel=1e-5)


def test_garg_crop_kitti_raw_size():
    mask = garg_crop((375, 1242))
    # int(153.04) = 153, int(371.96) = 371, int(44.65) = 44, int(1197.35) = 1197
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (153, 370, 44, 1196)
    assert mask.sum() == (371 - 153) * (1197 - 44)


def test_depth_kitti_raw_options_crop_and_bounds():
    gt = np.full((10, 10), 10.0)
    pred = np.full((10, 10), 10.0)
    pred[:4, :] = 1.0  # rows 0..3 lie above the crop (int(4.08) = 4)
    pred[:, 9] = 1.0  # column 9 lies right of the crop (int(9.64) = 9)
    gt[5, 5] = 85.0  # beyond max_depth 80 -> dropped by the Eigen bounds, kept otherwise
    eigen = depth_metrics(gt, pred, **KITTI_RAW_EIGEN)
    assert eigen["abs_rel"] == 0 and eigen["a1"] == 1
    default = depth_metrics(gt, pred)
    bad = 4 * 10 + 6  # rows 0..3 plus column 9 of rows 4..9, each |10-1|/10
    assert default["abs_rel"] == pytest.approx((bad * 0.9 + 75 / 85) / 100)
    # an explicit mask works like crop=True
    explicit = depth_metrics(gt, pred, crop=garg_crop((10, 10)), min_depth=1e-3, max_depth=80)
    assert explicit == eigen
    assert depth_metrics(gt, pred, crop=np.True_, min_depth=1e-3, max_depth=80) == eigen


def test_depth_no_valid_pixel_gives_nan():
    m = depth_metrics(np.zeros((3, 4)), np.ones((3, 4)), scaling="median")
    assert all(math.isnan(v) for v in m.values())


def test_depth_bad_input_raises():
    with pytest.raises(ValueError, match="pred"):
        depth_metrics(np.ones((2, 2)), np.array([[1.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="gt"):
        depth_metrics(-np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="scaling"):
        depth_metrics(np.ones((2, 2)), np.ones((2, 2)), scaling="mean")
    with pytest.raises(ValueError, match="scaling"):  # rejected even when no pixel is valid
        depth_metrics(np.zeros((2, 2)), np.ones((2, 2)), scaling="mean")
    with pytest.raises(ValueError, match="median"):
        depth_metrics(np.ones((2, 2)), np.zeros((2, 2)), scaling="median")
    with pytest.raises(ValueError, match="crop"):
        depth_metrics(np.ones((2, 2)), np.ones((2, 2)), crop=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="gt"):
        depth_metrics(np.ones((2, 2, 2)), np.ones((2, 2)))


def test_mean_metrics_skips_nan_per_metric():
    frames = [
        {"a": 1.0, "b": math.nan, "c": math.nan},
        {"a": 3.0, "b": torch.tensor(2.0), "c": math.nan},
        {"a": math.nan, "b": np.float32(4.0), "c": math.nan},
    ]
    result = mean_metrics(frames)
    assert result["a"] == pytest.approx(2.0)  # (1 + 3) / 2, not / 3
    assert result["b"] == pytest.approx(3.0)  # (2 + 4) / 2
    assert math.isnan(result["c"])
    assert list(result) == ["a", "b", "c"]
    assert mean_metrics([]) == {}


# -------------------------------------------------------------------------- occupancy

# 2 x 4 map, row 0 far. Visible cells are free in occ.
OCC = np.array([[1, 0, 0, 0], [1, 1, 0, 0]], bool)
VIS = np.array([[0, 1, 0, 0], [0, 0, 1, 0]], bool)
PRED = np.array([[1, 1, 0, 1], [0, 1, 0, 0]], bool)


def test_occupancy_scores_hand_computed_2x4():
    s = occupancy_scores(OCC, PRED, VIS)
    # correct: row 0 T F T F, row 1 F T T T -> 5 / 8
    assert s["o_acc"] == pytest.approx(5 / 8)
    # invisible cells (0,0)T (0,2)T (0,3)F (1,0)F (1,1)T (1,3)T -> 4 / 6
    assert s["ie_acc"] == pytest.approx(4 / 6)
    # invisible and empty: (0,2) pred 0, (0,3) pred 1, (1,3) pred 0 -> 2 / 3
    assert s["ie_rec"] == pytest.approx(2 / 3)


def test_occupancy_extra_scores_hand_computed_2x4():
    s = occupancy_extra_scores(OCC, PRED, VIS)
    assert s["o_prec"] == pytest.approx(2 / 4)  # predicted (0,0)(0,1)(0,3)(1,1): occupied 2
    assert s["o_rec"] == pytest.approx(2 / 3)  # occupied (0,0)(1,0)(1,1): predicted 2
    assert s["ie_prec"] == pytest.approx(2 / 3)  # pred empty & invisible (0,2)(1,0)(1,3): free 2


def test_occupancy_perfect_empty_and_full_predictions():
    perfect = occupancy_scores(OCC, OCC, VIS)
    assert perfect == {"o_acc": 1.0, "ie_acc": 1.0, "ie_rec": 1.0}
    empty = occupancy_scores(OCC, np.zeros_like(OCC), VIS)
    # 3 of 8 cells occupied; invisible 6 cells of which 3 occupied
    assert empty == pytest.approx({"o_acc": 5 / 8, "ie_acc": 3 / 6, "ie_rec": 1.0})
    full = occupancy_scores(OCC, np.ones_like(OCC), VIS)
    assert full == pytest.approx({"o_acc": 3 / 8, "ie_acc": 3 / 6, "ie_rec": 0.0})


def test_occupancy_empty_denominators_are_nan():
    all_visible = occupancy_scores(np.zeros((2, 2), bool), np.zeros((2, 2), bool), np.ones((2, 2), bool))
    assert all_visible["o_acc"] == 1.0
    assert math.isnan(all_visible["ie_acc"]) and math.isnan(all_visible["ie_rec"])
    no_cells = occupancy_scores(np.zeros((0, 80), bool), np.zeros((0, 80), bool), np.zeros((0, 80), bool))
    assert all(math.isnan(v) for v in no_cells.values())
    assert math.isnan(occupancy_extra_scores(OCC, np.zeros_like(OCC), VIS)["o_prec"])


def test_occupancy_bad_input_raises():
    with pytest.raises(ValueError, match="shapes differ"):
        occupancy_scores(OCC, PRED[:, :3], VIS)
    with pytest.raises(ValueError, match="occupied_pred"):
        occupancy_scores(OCC, PRED.astype(int) * 2, VIS)


def test_far_cut_rows():
    vis = np.zeros((8, 3), bool)
    vis[4, 1] = True
    vis[6, :] = True
    assert far_cut(vis, ppm=1, margin_m=2.0) == slice(2, None)  # row 4 - 2 rows
    assert far_cut(vis, ppm=1, margin_m=5.0) == slice(0, None)  # clamped at the far end
    assert far_cut(vis, ppm=10, margin_m=0.3) == slice(1, None)  # 3 rows, not int(2.99..)
    big = np.zeros((160, 80), bool)
    big[50, 7] = True
    assert far_cut(big) == slice(30, None)  # 2 m * 10 cells per metre
    assert far_cut(np.zeros((160, 80), bool)) == slice(0, 0)


def _slow_object_mask(labels, z, x, ids):
    """Per-instance loop following the reference's described rectangle rule."""
    rows, cols = labels.shape
    mask = np.zeros(labels.shape, bool)
    for obj in ids:
        r, c = np.nonzero(labels == obj)
        r0, r1 = max(r.min() - z, 0), min(r.max() + z, rows)
        c0, c1 = max(c.min() - x, 0), min(c.max() + x, cols)
        mask[r0:r1, c0:c1] = True
    return mask


def test_object_region_mask_expansion_and_border_clipping():
    labels = np.zeros((5, 4), np.uint8)
    labels[0, 0] = 1  # corner object: rows [0, 2), cols [0, 1)
    labels[4, 3] = 2  # opposite corner: rows [2, 5), cols [2, 4)
    expected = np.zeros((5, 4), bool)
    expected[0:2, 0:1] = True
    expected[2:5, 2:4] = True
    np.testing.assert_array_equal(object_region_mask(labels, z_expand_cells=2, x_expand_cells=1), expected)


def test_object_region_mask_interior_rectangle():
    labels = np.full((12, 10), 255, np.uint8)
    labels[:2] = 0
    labels[5:7, 4] = 9  # rows 5..6, col 4; expand 2 rows / 1 col -> rows [3, 8), cols [3, 5)
    expected = np.zeros((12, 10), bool)
    expected[3:8, 3:5] = True
    np.testing.assert_array_equal(object_region_mask(labels, 2, 1), expected)


def test_object_region_mask_matches_slow_loop_on_random_maps():
    rng = np.random.default_rng(3)
    for _ in range(20):
        values = np.array([0, 255, 1, 2, 7, 40], np.uint8)
        labels = rng.choice(values, size=(40, 16), p=[0.5, 0.3, 0.05, 0.05, 0.05, 0.05])
        ids = [v for v in np.unique(labels) if v not in (0, 255)]
        np.testing.assert_array_equal(object_region_mask(labels, 6, 2), _slow_object_mask(labels, 6, 2, ids))


def test_object_region_mask_reference_quirk_without_255_or_0():
    labels = np.zeros((30, 10), np.uint8)
    labels[5, 2] = 1
    labels[20, 7] = 2  # no 255 in this map
    both = _slow_object_mask(labels, 3, 1, [1, 2])
    np.testing.assert_array_equal(object_region_mask(labels, 3, 1), both)
    # the reference keeps unique()[1:-1] = [1]: object 2 is silently dropped
    quirk = object_region_mask(labels, 3, 1, reference_quirk=True)
    np.testing.assert_array_equal(quirk, _slow_object_mask(labels, 3, 1, [1]))
    no_free = np.where(labels == 0, 255, labels).astype(np.uint8)  # no 0: the quirk drops object 1
    quirk_no_free = object_region_mask(no_free, 3, 1, reference_quirk=True)
    np.testing.assert_array_equal(quirk_no_free, _slow_object_mask(labels, 3, 1, [2]))
    np.testing.assert_array_equal(object_region_mask(no_free, 3, 1), both)
    with_both = labels.copy()
    with_both[0, 0] = 255  # 0 and 255 present: quirk and default agree
    np.testing.assert_array_equal(
        object_region_mask(with_both, 3, 1, reference_quirk=True), object_region_mask(with_both, 3, 1)
    )
    assert not object_region_mask(np.array([[0, 255]], np.uint8)).any()


# 8 x 3 frame (row 0 far) used for the combined protocol; ppm 1 and a 2 m margin -> 2 rows.
FRAME_OCC = np.array([[1, 1, 1], [0, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], bool)
FRAME_VIS = np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 1, 0], [1, 1, 1], [1, 1, 1], [1, 1, 1]], bool)
FRAME_PRED = np.array([[0, 0, 0], [0, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]], bool)
FRAME_LABELS = np.zeros((8, 3), np.uint8)
FRAME_LABELS[0] = (255, 255, 3)  # row 0: non-object occupied cells and object 3
FRAME_LABELS[2, 1] = 7


def test_scene_scores_with_far_cut_and_visible_removal():
    s = scene_and_object_scores(FRAME_OCC, FRAME_VIS, FRAME_PRED, far_cut=True, ppm=1, far_margin_m=2.0)
    # (4,0) is occupied but visible -> free. Farthest visible row 4 -> keep rows 2..7 (18 cells);
    # wrong cells (2,0), (3,2) -> 16 / 18
    assert s["scene_o_acc"] == pytest.approx(16 / 18)
    # invisible kept: row 2, row 3, (4,2) = 7 cells, 5 correct
    assert s["scene_ie_acc"] == pytest.approx(5 / 7)
    # invisible & empty: (2,0)x (2,2) (3,0) (3,1) (3,2)x (4,2) -> 4 / 6
    assert s["scene_ie_rec"] == pytest.approx(4 / 6)
    assert all(math.isnan(s[k]) for k in ("object_o_acc", "object_ie_acc", "object_ie_rec"))


def test_scene_scores_without_far_cut():
    s = scene_and_object_scores(FRAME_OCC, FRAME_VIS, FRAME_PRED, far_cut=False)
    # 24 cells, wrong: row 0 (3), (2,0), (3,2) -> 19 / 24
    assert s["scene_o_acc"] == pytest.approx(19 / 24)
    # invisible: rows 0..3 + (4,2) = 13 cells, correct 0 + 3 + 2 + 2 + 1 = 8
    assert s["scene_ie_acc"] == pytest.approx(8 / 13)
    # invisible & empty: row 1 (3), (2,0), (2,2), row 3 (3), (4,2) = 9, predicted empty 7
    assert s["scene_ie_rec"] == pytest.approx(7 / 9)


def test_object_scores_on_full_map_before_far_cut():
    s = scene_and_object_scores(
        FRAME_OCC, FRAME_VIS, FRAME_PRED, FRAME_LABELS, far_cut=True, ppm=1, far_margin_m=2.0,
        z_expand_cells=1, x_expand_cells=1, extras=True,
    )
    # id 7 at (2,1): rows [1,3) cols [0,2) -> (1,0)(1,1)(2,0)(2,1); id 3 at (0,2): rows [0,1) cols [1,3)
    # -> (0,1)(0,2), which the far cut removes from the scene but not from the objects.
    # occ 0 0 0 1 | 1 1 ; pred 0 0 1 1 | 0 0 ; all invisible
    assert s["object_o_acc"] == pytest.approx(3 / 6)
    assert s["object_ie_acc"] == pytest.approx(3 / 6)
    assert s["object_ie_rec"] == pytest.approx(2 / 3)  # free (1,0)(1,1)(2,0): pred empty on 2
    assert s["scene_o_acc"] == pytest.approx(16 / 18)  # scene unchanged by the labels
    # extras on the cut scene: predicted (2,0)(2,1)(3,2), occupied only (2,1)
    assert s["scene_o_prec"] == pytest.approx(1 / 3)
    assert s["scene_o_rec"] == pytest.approx(1 / 1)


def test_no_visible_cell_makes_everything_nan_with_far_cut():
    no_vis = np.zeros_like(FRAME_VIS)
    expand = {"z_expand_cells": 1, "x_expand_cells": 1}
    s = scene_and_object_scores(FRAME_OCC, no_vis, FRAME_PRED, FRAME_LABELS, far_cut=True, **expand)
    assert all(math.isnan(v) for v in s.values())
    kept = scene_and_object_scores(FRAME_OCC, no_vis, FRAME_PRED, FRAME_LABELS, far_cut=False, **expand)
    # nothing visible, so (4,0) stays occupied and its empty prediction is a 6th error
    assert kept["scene_o_acc"] == pytest.approx(18 / 24)
    assert kept["object_o_acc"] == pytest.approx(3 / 6)


def test_perfect_prediction_scores_one_everywhere():
    occ_clean = FRAME_OCC & ~FRAME_VIS
    s = scene_and_object_scores(FRAME_OCC, FRAME_VIS, occ_clean, FRAME_LABELS, far_cut=True)
    assert all(v == 1.0 for v in s.values())


def test_scene_and_object_bad_labels_shape():
    with pytest.raises(ValueError, match="object_labels"):
        scene_and_object_scores(FRAME_OCC, FRAME_VIS, FRAME_PRED, FRAME_LABELS[:4])
    with pytest.raises(ValueError, match="object_labels"):
        object_region_mask(FRAME_LABELS.astype(float))
