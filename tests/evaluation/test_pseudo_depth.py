"""Pseudo-depth evaluator: hand-checked metrics, median scaling, the simulated flag from the prior manifests."""
import json

import numpy as np
import pytest
import torch

from vipocc.evaluation.depth import DepthFrame
from vipocc.evaluation.pseudo_depth import evaluate_pseudo_depth, prior_backends, summarize_prior_backends


def _frame(seq, gt, prior):
    h, w = gt.shape
    return DepthFrame(seq, 3, False, torch.zeros(1, 3, h, w), torch.eye(3)[None], gt,
                      None if prior is None else torch.from_numpy(prior.astype(np.float32))[None, None])


def _manifest(derived, seq, simulated, backend):
    path = derived / "manifests" / "depth_prior" / f"{seq}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stage": "depth_prior", "seq": seq, "prior": {"backend": backend,
                                                                              "simulated": simulated}}))


def test_raw_and_median_scaled_prior_against_hand_values():
    gt = np.array([[10.0, 20.0], [40.0, 0.0]], np.float32)
    prior = np.array([[5.0, 10.0], [20.0, 99.0]], np.float32)  # exactly half the GT (last pixel has no GT)
    raw, = evaluate_pseudo_depth([_frame("a", gt, prior)], None)
    assert raw["abs_rel"] == pytest.approx(0.5)
    assert raw["rmse"] == pytest.approx(np.sqrt((25 + 100 + 400) / 3))
    assert raw["a1"] == 0.0 and raw["scaling"] == "none"
    median, = evaluate_pseudo_depth([_frame("a", gt, prior)], "median")
    assert median["abs_rel"] == pytest.approx(0.0, abs=1e-12) and median["a1"] == 1.0


def test_simulated_flag_propagates_from_the_manifest(tmp_path):
    _manifest(tmp_path, "seq_a", True, "simulated")
    _manifest(tmp_path, "seq_b", False, "depth_anything")
    backends = prior_backends(tmp_path, ["seq_a", "seq_b"])
    gt = np.full((4, 4), 10.0, np.float32)
    rows = evaluate_pseudo_depth([_frame("seq_a", gt, gt), _frame("seq_b", gt, gt)], "median", backends=backends)
    assert [r["prior_simulated"] for r in rows] == [True, False]
    assert [r["prior_backend"] for r in rows] == ["simulated", "depth_anything"]
    summary = summarize_prior_backends(backends)
    assert summary["simulated"] == "mixed" and summary["backends"] == ["depth_anything", "simulated"]
    assert summarize_prior_backends({"seq_a": backends["seq_a"]})["simulated"] is True


def test_missing_or_bad_manifest_and_missing_prior(tmp_path):
    with pytest.raises(FileNotFoundError, match="depth_prior/seq_x.json"):
        prior_backends(tmp_path, ["seq_x"])
    bad = tmp_path / "manifests" / "depth_prior" / "seq_y.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{}")
    with pytest.raises(ValueError, match="seq_y.json"):
        prior_backends(tmp_path, ["seq_y"])
    gt = np.full((4, 4), 10.0, np.float32)
    with pytest.raises(ValueError, match="no pseudo depth"):
        evaluate_pseudo_depth([_frame("a", gt, None)], None)
    with pytest.raises(ValueError, match="no prior manifest entry"):
        evaluate_pseudo_depth([_frame("a", gt, gt)], None, backends={})
