"""Tests for the vectorized SNOG anchor sampler (vipocc.priors.snog).

Truth comes from hand-computed bounds and weights, analytic Gaussian / uniform statistics, third-party distance
code (scipy), patch rasterisation, and the literal one-candidate-at-a-time loop in ``reference_snog.py``.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.special import erf

from vipocc.priors import snog
from vipocc.priors.snog import (
    anchor_path,
    draw_anchors,
    lattice_nodes,
    load_anchors,
    mixture_weights,
    sample_anchor_sets,
    sample_anchors,
    save_anchors,
    valid_centre_range,
)


def _load_oracle():
    path = Path(__file__).with_name("reference_snog.py")
    spec = importlib.util.spec_from_file_location("reference_snog_oracle", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ORACLE = _load_oracle()

H, W = 192, 640


def _det(label, box, pixel_num, logit=0.5):
    return {"label": label, "logit": logit, "box": list(box), "pixel_num": pixel_num}


# Two cars (one close to the right border, one partly outside the image), plus labels that are not phrases.
STREET = [
    _det("car", [100, 90, 160, 140], 2000),
    _det("car", [600, 120, 660, 190], 1500),
    _det("car", [400, 100, 440, 130], 800),
    _det("road", [0, 100, 640, 192], 40000),
    _det("building", [0, 0, 300, 100], 20000),
]


def _patch_cover_counts(anchors: np.ndarray, image_size: tuple[int, int], ps: int) -> tuple[np.ndarray, int]:
    """Per-pixel count of covering ps x ps patches (top-left = centre - ps//2) in the image, and the total
    number of covered pixels counted without clipping (equal to the in-image sum iff all patches fit)."""
    h, w = image_size
    pad = 2 * ps
    counts = np.zeros((h + 2 * pad, w + 2 * pad), dtype=np.int64)
    dy, dx = np.meshgrid(np.arange(ps), np.arange(ps), indexing="ij")
    rows = (anchors[:, 1, None] - ps // 2 + pad + dy.ravel()[None, :]).ravel()
    cols = (anchors[:, 0, None] - ps // 2 + pad + dx.ravel()[None, :]).ravel()
    np.add.at(counts, (rows, cols), 1)
    return counts[pad:-pad, pad:-pad], counts.sum()


def _assert_valid_draw(anchors: np.ndarray, image_size: tuple[int, int], ps: int) -> None:
    """Strictly inside by ps/2, pairwise distance >= sqrt(2) ps, patches inside the image and disjoint."""
    h, w = image_size
    half = ps / 2
    assert np.all((anchors[:, 0] > half) & (anchors[:, 0] < w - half)), anchors
    assert np.all((anchors[:, 1] > half) & (anchors[:, 1] < h - half)), anchors
    if len(anchors) > 1:
        assert pdist(anchors.astype(np.float64)).min() >= math.sqrt(2) * ps - 1e-9
    inside, total = _patch_cover_counts(anchors, image_size, ps)
    assert inside.max() == 1  # no pixel covered twice
    assert inside.sum() == total == len(anchors) * ps * ps  # every patch pixel lies in the image


# ---------------------------------------------------------------------------------------- geometry / mixture


def test_valid_centre_range_hand_computed():
    # ps = 8: 4 < c < size - 4 -> [5, size - 5]; ps = 7: 3.5 < c < size - 3.5 -> [4, size - 4].
    assert valid_centre_range((192, 640), 8) == (5, 635, 5, 187)
    assert valid_centre_range((192, 640), 7) == (4, 636, 4, 188)
    assert valid_centre_range((10, 11), 8) == (5, 6, 5, 5)
    with pytest.raises(ValueError, match="too small"):
        valid_centre_range((9, 640), 8)


def test_mixture_weights_hand_computed():
    dets = [
        _det("car", [10, 20, 50, 60], 100),
        _det("road", [0, 0, 640, 192], 50000),  # not a phrase
        _det("person", [200, 10, 220, 90], 1000),
        _det("car", [300, 30, 310, 40], 1),  # log(1) = 0: dropped
        _det("cars", [0, 0, 5, 5], 100),  # exact label match only
    ]
    weights, comps = mixture_weights(dets, background_ratio=0.5, phrases=("car", "person"))
    # log 100 : log 1000 = 2 : 3, so the 0.5 left for instances splits 0.2 / 0.3.
    np.testing.assert_allclose(weights, [0.5, 0.2, 0.3])
    np.testing.assert_allclose(comps, [[30, 40, 10, 10], [210, 50, 5, 20]])


def test_mixture_weights_without_gaussians_is_uniform_only():
    for dets in ([], [_det("road", [0, 0, 10, 10], 100)], [_det("car", [0, 0, 10, 10], 0)]):
        weights, comps = mixture_weights(dets, background_ratio=0.3)
        np.testing.assert_array_equal(weights, [1.0])
        assert comps.shape == (0, 4)
    weights, _ = mixture_weights([_det("car", [0, 0, 10, 10], 50)], 0.3, phrases="car")  # bare string phrase
    np.testing.assert_allclose(weights, [0.3, 0.7])


def test_lattice_nodes_are_valid_and_separated():
    nodes = lattice_nodes((H, W), 8)
    _assert_valid_draw(nodes, (H, W), 8)
    assert len(nodes) >= 64
    # 20 x 20 image: centres in [5, 15]^2; two patches at most (any two of the 4 corners of an 11 x 11 square
    # that are not diagonal are only 10 px apart), and the checkerboard lattice finds exactly two.
    small = lattice_nodes((20, 20), 8)
    assert len(small) == 2
    _assert_valid_draw(small, (20, 20), 8)


@pytest.mark.parametrize("attempts", [1, 3])
def test_accept_in_patch_order_matches_sequential_loop(attempts):
    """The vectorized greedy resolution equals a plain loop over candidates in order, where consecutive groups
    of ``attempts`` candidates are tries of one patch (a patch stops at its first accepted try)."""
    rng = np.random.default_rng(3 + attempts)
    min_sq = 128
    n_sets, n_placed, n_cand = 6, 10, 42
    anchors = rng.integers(5, 60, size=(n_sets, n_placed, 2))  # crowded: long conflict chains
    accepted = rng.random((n_sets, n_placed)) < 0.3
    candidates = rng.integers(5, 60, size=(n_sets, n_cand, 2))
    pending = np.repeat(rng.random((n_sets, n_cand // attempts)) < 0.8, attempts, axis=1)
    won = snog._accept_in_patch_order(candidates, pending, anchors, accepted, min_sq, attempts)
    for s in range(n_sets):  # independent slow implementation
        placed = [tuple(a) for a in anchors[s, accepted[s]]]
        expected = np.zeros(n_cand, dtype=bool)
        for i in range(n_cand):
            patch_done = expected[(i // attempts) * attempts : i].any()
            if not pending[s, i] or patch_done:
                continue
            c = candidates[s, i]
            if all((c[0] - p[0]) ** 2 + (c[1] - p[1]) ** 2 >= min_sq for p in placed):
                placed.append(tuple(c))
                expected[i] = True
        np.testing.assert_array_equal(won[s], expected)
    assert won.any() and (pending & ~won).any()  # the case exercises both outcomes


# ------------------------------------------------------------------------------------------------ sampling


def test_anchors_in_bounds_and_non_overlapping():
    draw = draw_anchors(STREET, (H, W), n_sets=25, rng=0)
    assert draw.anchors.shape == (25, 64, 2)
    assert not draw.grid_fallback.any()
    for anchors in draw.anchors:
        _assert_valid_draw(anchors, (H, W), 8)
    # (H, W) is not swapped: x spans the 640 columns, y stays below 188 (the reference bug gave y up to 635).
    assert draw.anchors[..., 0].max() > 500 and draw.anchors[..., 1].max() < 188


def test_odd_patch_size_and_other_counts():
    anchors = sample_anchors(STREET, (H, W), patch_size=7, num_patches=100, rng=1)
    assert anchors.shape == (100, 2)
    _assert_valid_draw(anchors, (H, W), 7)


def test_gaussian_outside_the_image_falls_back_to_uniform():
    # A box entirely right of the image: every Gaussian try misses the valid range, so a uniform sample is used.
    draw = draw_anchors([_det("car", [700, 50, 760, 90], 900)], (H, W), n_sets=10, rng=6)
    assert (draw.assigned == 1).mean() > 0.3
    assert np.all(draw.source == 0)
    for anchors in draw.anchors:
        _assert_valid_draw(anchors, (H, W), 8)


def test_determinism_with_seed():
    a = sample_anchor_sets(STREET, (H, W), rng=42)
    b = sample_anchor_sets(STREET, (H, W), rng=np.random.default_rng(42))
    c = sample_anchor_sets(STREET, (H, W), rng=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.uint16 and a.shape == (25, 64, 2)
    np.testing.assert_array_equal(a, draw_anchors(STREET, (H, W), 25, rng=42).anchors)
    single = sample_anchors(STREET, (H, W), rng=7)
    np.testing.assert_array_equal(single, draw_anchors(STREET, (H, W), 1, rng=7).anchors[0])


def test_no_detection_image_is_uniform():
    draw = draw_anchors([_det("road", [0, 100, 640, 192], 40000)], (H, W), n_sets=100, rng=5)
    assert draw.anchors.shape == (100, 64, 2)
    assert np.all(draw.assigned == 0) and np.all(draw.source == 0)
    for anchors in draw.anchors[:10]:
        _assert_valid_draw(anchors, (H, W), 8)
    xy = draw.anchors.reshape(-1, 2).astype(np.float64)
    # Discrete uniform on [5, 635] x [5, 187]: mean (320, 96), sd (sqrt((631^2 - 1) / 12), sqrt((183^2 - 1) / 12)).
    # Non-overlap only slightly thins the interior, hence the loose 2 % tolerance.
    np.testing.assert_allclose(xy.mean(axis=0), [320, 96], rtol=0.02)
    np.testing.assert_allclose(xy.std(axis=0), [math.sqrt((631**2 - 1) / 12), math.sqrt((183**2 - 1) / 12)], rtol=0.02)


def _gaussian_box_mass(half_width_in_sd: float) -> float:
    """P(|Z| <= k) for a standard normal."""
    return float(erf(half_width_in_sd / math.sqrt(2)))


def test_mixture_proportions_match_weights():
    # Large image, three far-apart boxes with 10^4, 10^5, 10^6 px masks: instance weights 0.5 * (4, 5, 6) / 15.
    size = (1000, 2000)
    boxes = [[100, 100, 500, 500], [700, 300, 1100, 700], [1400, 200, 1900, 700]]
    dets = [_det("car", b, a) for b, a in zip(boxes, [1e4, 1e5, 1e6])]
    expected_w = np.array([0.5, 0.5 * 4 / 15, 0.5 * 5 / 15, 0.5 * 6 / 15])
    draw = draw_anchors(dets, size, n_sets=150, rng=11)
    n = draw.assigned.size
    tol = 4 * np.sqrt(expected_w * (1 - expected_w) / n)
    assigned_frac = np.bincount(draw.assigned.ravel(), minlength=4) / n
    np.testing.assert_array_less(np.abs(assigned_frac - expected_w), tol)
    # The accepted anchors come from their assigned component (sparse scene: fallbacks are rare).
    source_frac = np.bincount(draw.source.ravel(), minlength=4) / n
    np.testing.assert_array_less(np.abs(source_frac - expected_w), tol + 0.01)
    # Positions: expected share of anchors inside each box = Gaussian mass of the box (+-2 sd per axis) +
    # the uniform component's share of that area (the other Gaussians' tails are > 4 sd away).
    xy = draw.anchors.reshape(-1, 2)
    x_lo, x_hi, y_lo, y_hi = valid_centre_range(size, 8)
    valid_area = (x_hi - x_lo + 1) * (y_hi - y_lo + 1)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        inside = np.mean((xy[:, 0] >= x1) & (xy[:, 0] <= x2) & (xy[:, 1] >= y1) & (xy[:, 1] <= y2))
        area = (x2 - x1 + 1) * (y2 - y1 + 1)
        expected = expected_w[k + 1] * _gaussian_box_mass(2.0) ** 2 + expected_w[0] * area / valid_area
        assert abs(inside - expected) < 4 * math.sqrt(expected * (1 - expected) / n) + 0.01, (k, inside, expected)


def test_gaussian_spread_matches_box_over_four():
    # Gaussians only (background 0), one big box: mean = box centre, sd = (w/4, h/4) = (400, 200).
    size = (2000, 4000)
    draw = draw_anchors([_det("car", [1200, 600, 2800, 1400], 5000)], size, n_sets=100, background_ratio=0.0, rng=2)
    assert np.all(draw.assigned == 1)
    xy = draw.anchors.reshape(-1, 2).astype(np.float64)
    se = np.array([400.0, 200.0]) / math.sqrt(len(xy))
    np.testing.assert_array_less(np.abs(xy.mean(axis=0) - [2000, 1000]), 5 * se)
    np.testing.assert_allclose(xy.std(axis=0), [400, 200], rtol=0.05)


def test_agrees_in_distribution_with_reference_loop():
    rng_ref = np.random.default_rng(100)
    ref = [ORACLE.reference_sample_anchors(STREET, (H, W), rng_ref, return_sources=True) for _ in range(30)]
    ref_xy = np.concatenate([r[0] for r in ref]).astype(np.float64)
    ref_uniform = np.mean(np.concatenate([r[1] for r in ref]) == 3)  # oracle: Gaussians 0..2, uniform 3
    draw = draw_anchors(STREET, (H, W), n_sets=150, rng=101)
    xy = draw.anchors.reshape(-1, 2).astype(np.float64)
    n_ref = len(ref_xy)
    # Location and spread of all anchors.
    se_mean = ref_xy.std(axis=0) / math.sqrt(n_ref)
    np.testing.assert_array_less(np.abs(xy.mean(axis=0) - ref_xy.mean(axis=0)), 5 * se_mean + 1.0)
    np.testing.assert_allclose(xy.std(axis=0), ref_xy.std(axis=0), rtol=0.06)
    # Share of anchors inside each car box and share produced by the uniform component.
    for x1, y1, x2, y2 in [d["box"] for d in STREET if d["label"] == "car"]:
        def share(a):
            return np.mean((a[:, 0] >= x1) & (a[:, 0] <= x2) & (a[:, 1] >= y1) & (a[:, 1] <= y2))

        p = share(ref_xy)
        assert abs(share(xy) - p) < 5 * math.sqrt(p * (1 - p) / n_ref) + 0.01, (x1, share(xy), p)
    p = ref_uniform
    assert abs(np.mean(draw.source == 0) - p) < 5 * math.sqrt(p * (1 - p) / n_ref) + 0.01


# ------------------------------------------------------------------------------------- termination guarantee


def test_image_that_cannot_hold_the_patches_raises():
    with pytest.raises(ValueError, match="cannot hold num_patches=3"):
        sample_anchors([], (20, 20), num_patches=3, rng=0)
    with pytest.raises(ValueError, match="too small"):
        sample_anchors([], (8, 640), rng=0)


def test_jammed_draws_fall_back_to_the_lattice():
    # 20 x 20 holds two patches only on opposite corners; a first anchor near the middle jams random placement.
    draw = draw_anchors([_det("car", [5, 5, 15, 15], 50)], (20, 20), n_sets=100, num_patches=2, rng=4)
    assert 0 < draw.grid_fallback.sum() < 100
    nodes = {tuple(p) for p in lattice_nodes((20, 20), 8)}
    for anchors, jammed in zip(draw.anchors, draw.grid_fallback):
        _assert_valid_draw(anchors, (20, 20), 8)
        if jammed:
            assert {tuple(p) for p in anchors} <= nodes
            assert len({tuple(p) for p in anchors}) == 2


def test_dense_requests_terminate():
    # 400 patches reach the free-set stage; 800 exceed random sequential packing (~630) but fit the lattice (909).
    dense = draw_anchors([], (H, W), n_sets=1, num_patches=400, rng=8)
    _assert_valid_draw(dense.anchors[0], (H, W), 8)
    packed = draw_anchors(STREET, (H, W), n_sets=1, num_patches=800, rng=9)
    assert packed.grid_fallback.all()
    _assert_valid_draw(packed.anchors[0], (H, W), 8)


# ------------------------------------------------------------------------------------------------ arguments


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": (640,)}, "image_size"),
        ({"image_size": (192.5, 640)}, "image_size"),
        ({"image_size": (0, 640)}, "image_size"),
        ({"background_ratio": 1.5}, "background_ratio"),
        ({"patch_size": 0}, "patch_size"),
        ({"num_patches": 0}, "num_patches"),
        ({"rng": "seed"}, "rng"),
        ({"detections": [{"label": "car", "box": [1, 2, 3], "pixel_num": 10}]}, r"detections\[0\]\['box'\]"),
        ({"detections": [{"label": "car", "box": [5, 2, 3, 4], "pixel_num": 10}]}, "x2 >= x1"),
        ({"detections": [{"label": "car", "box": [1, 2, 3, 4]}]}, "pixel_num"),
        ({"detections": [{"label": "car", "box": [1, 2, 3, 4], "pixel_num": -3}]}, "pixel_num"),
        ({"detections": [{"box": [1, 2, 3, 4]}]}, "label"),
        ({"detections": {"label": "car"}}, "list of dicts"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    args = {"detections": STREET, "image_size": (H, W), "rng": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        sample_anchors(**args)


# ---------------------------------------------------------------------------------------------------- files


def test_anchor_path_layout(tmp_path):
    p = anchor_path(tmp_path, "2013_05_28_drive_0000_sync", "image_00", "data_192x640", 42)
    assert p == tmp_path / "2013_05_28_drive_0000_sync" / "image_00" / "data_192x640" / "0000000042.npy"
    assert anchor_path("s", "q", "image_01", "f", "0000000007").name == "0000000007.npy"


def test_save_load_round_trip_is_atomic(tmp_path):
    anchors = sample_anchor_sets(STREET, (H, W), rng=3)
    path = save_anchors(anchor_path(tmp_path / "samples", "seq", "image_00", "data_192x640", 5), anchors)
    loaded = load_anchors(path, num_patches=64, n_sets=25)
    assert loaded.dtype == np.uint16
    np.testing.assert_array_equal(loaded, anchors)
    np.testing.assert_array_equal(np.load(path), anchors)  # a plain .npy readable by numpy
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left behind
    save_anchors(path, draw_anchors(STREET, (H, W), 25, rng=4).anchors)  # int64 input, overwrite
    assert load_anchors(path).dtype == np.uint16


def test_save_and_load_reject_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match=r"\[n_sets, num_patches, 2\]"):
        save_anchors(tmp_path / "a.npy", np.zeros((64, 2), dtype=np.uint16))
    with pytest.raises(ValueError, match="uint16 range"):
        save_anchors(tmp_path / "a.npy", -np.ones((1, 4, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="integer"):
        save_anchors(tmp_path / "a.npy", np.zeros((1, 4, 2)))
    with pytest.raises(ValueError, match=r"\.npy"):
        save_anchors(tmp_path / "a.txt", np.zeros((1, 4, 2), dtype=np.uint16))
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        load_anchors(tmp_path / "missing.npy")
    np.save(tmp_path / "f.npy", np.zeros((2, 4, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="uint16"):
        load_anchors(tmp_path / "f.npy")
    np.save(tmp_path / "s.npy", np.zeros((2, 4, 3), dtype=np.uint16))
    with pytest.raises(ValueError, match="shape"):
        load_anchors(tmp_path / "s.npy")
    np.save(tmp_path / "n.npy", np.zeros((2, 4, 2), dtype=np.uint16))
    with pytest.raises(ValueError, match="expected 25 anchor sets"):
        load_anchors(tmp_path / "n.npy", n_sets=25)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="junk.npy"):
        load_anchors(tmp_path / "junk.npy")
