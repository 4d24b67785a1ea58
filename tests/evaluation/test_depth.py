"""Depth evaluator: stub networks with known outputs, the real network's determinism, the KITTI Raw protocol."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vipocc.evaluation.depth import DepthFrame, depth_frames, evaluate_depth, protocol_settings
from vipocc.models.network import NetworkConfig, ViPOccNetwork

H, W = 8, 16


class StubNetwork(torch.nn.Module):
    """render_depth_map returns a fixed map; predict_depth returns 2 x prior (or 7 m without prior)."""

    def __init__(self, rendered: np.ndarray, depth_branch: bool = True, ablation: str = "rid"):
        super().__init__()
        self.rendered = torch.from_numpy(rendered.astype(np.float32))
        self.depth_branch = torch.nn.Identity() if depth_branch else None
        self.config = SimpleNamespace(rid_ablation=ablation)
        self.priors_seen = []

    def render_depth_map(self, image, K, pixel_convention="linspace"):
        return self.rendered.expand(image.shape[0], 1, *self.rendered.shape)

    def predict_depth(self, image, prior):
        self.priors_seen.append(prior)
        if prior is None:
            return torch.full((image.shape[0], 1, H, W), 7.0)
        return prior * 2


def _frame(gt, prior=None, seq="s", frame=0):
    return DepthFrame(seq, frame, False, torch.zeros(1, 3, H, W), torch.eye(3)[None], gt, prior)


def _gt(rng):
    gt = rng.uniform(2.0, 60.0, (H, W)).astype(np.float32)
    gt[rng.random((H, W)) < 0.3] = 0.0  # missing LiDAR returns
    return gt


def test_rendered_depth_equal_to_gt_is_perfect():
    rng = np.random.default_rng(0)
    gt = _gt(rng)
    rendered = np.where(gt > 0, gt, 33.0)  # pixels without GT hold anything
    rows = evaluate_depth(StubNetwork(rendered), [_frame(gt)], "rendered", device="cpu")
    assert rows[0]["abs_rel"] == 0 and rows[0]["rmse"] == 0 and rows[0]["a1"] == 1.0
    assert rows[0]["gt_pixels"] == int((gt > 0).sum())
    assert rows[0]["source"] == "rendered" and rows[0]["seq"] == "s"


def test_rendered_depth_off_by_ten_percent():
    gt = np.full((H, W), 10.0, np.float32)
    rows = evaluate_depth(StubNetwork(np.full((H, W), 11.0)), [_frame(gt)], "rendered", device="cpu")
    assert rows[0]["abs_rel"] == pytest.approx(0.1) and rows[0]["rmse"] == pytest.approx(1.0)
    assert rows[0]["sq_rel"] == pytest.approx(0.1) and rows[0]["a1"] == 1.0
    # median scaling removes a global factor entirely
    rows = evaluate_depth(StubNetwork(np.full((H, W), 11.0)), [_frame(gt)], "rendered", scaling="median",
                          device="cpu")
    assert rows[0]["abs_rel"] == pytest.approx(0.0, abs=1e-12)


def test_predicted_depth_uses_the_prior():
    rng = np.random.default_rng(1)
    gt = _gt(rng)
    prior = torch.from_numpy(np.where(gt > 0, gt / 2, 5.0).astype(np.float32))[None, None]
    stub = StubNetwork(np.ones((H, W)))
    rows = evaluate_depth(stub, [_frame(gt, prior)], "predicted", device="cpu")
    assert rows[0]["abs_rel"] == pytest.approx(0.0, abs=1e-7) and rows[0]["a1"] == 1.0
    assert torch.equal(stub.priors_seen[0], prior)
    with pytest.raises(ValueError, match="pseudo depth"):
        evaluate_depth(stub, [_frame(gt, None)], "predicted", device="cpu")


def test_depth_ablation_gets_no_prior():
    gt = np.full((H, W), 7.0, np.float32)
    stub = StubNetwork(np.ones((H, W)), ablation="depth")
    rows = evaluate_depth(stub, [_frame(gt, torch.ones(1, 1, H, W))], "predicted", device="cpu")
    assert stub.priors_seen == [None] and rows[0]["abs_rel"] == 0.0


def test_predicted_on_bts_and_bad_source_are_errors():
    gt = np.full((H, W), 7.0, np.float32)
    with pytest.raises(ValueError, match="no depth branch"):
        evaluate_depth(StubNetwork(np.ones((H, W)), depth_branch=False), [_frame(gt)], "predicted", device="cpu")
    with pytest.raises(ValueError, match="source"):
        evaluate_depth(StubNetwork(np.ones((H, W))), [_frame(gt)], "fine", device="cpu")
    with pytest.raises(ValueError, match="protocol"):
        evaluate_depth(StubNetwork(np.ones((H, W))), [_frame(gt)], "rendered", protocol="nyu", device="cpu")


def test_frame_without_gt_gives_nan_row():
    rows = evaluate_depth(StubNetwork(np.ones((H, W))), [_frame(np.zeros((H, W), np.float32))], "rendered",
                          device="cpu")
    assert math.isnan(rows[0]["abs_rel"]) and rows[0]["gt_pixels"] == 0


def test_kitti_raw_protocol_crops_at_gt_resolution():
    # GT at 4x the prediction size; a wrong value outside the Garg crop must not count.
    gt = np.full((4 * H, 4 * W), 10.0, np.float32)
    gt[:5, :] = 50.0  # top rows: outside the crop (first row 0.408 * 32 = 13)
    rendered = np.full((H, W), 10.0)
    raw = evaluate_depth(StubNetwork(rendered), [_frame(gt)], "rendered", protocol="kitti_raw_eigen", device="cpu")
    full = evaluate_depth(StubNetwork(rendered), [_frame(gt)], "rendered", protocol="kitti360", device="cpu")
    assert raw[0]["abs_rel"] == 0.0 and full[0]["abs_rel"] > 0
    rows, cols = int(0.99189189 * 32) - int(0.40810811 * 32), int(0.96405229 * 64) - int(0.03594771 * 64)
    assert raw[0]["gt_pixels"] == rows * cols
    assert protocol_settings("kitti_raw_eigen", None)["crop"] == "garg"


def test_depth_frames_adapts_dataset_samples():
    sample = {"imgs": [torch.zeros(3, H, W)], "projs": [torch.eye(3)], "depths": [torch.ones(1, H, W)],
              "pseudo_depth": [torch.full((1, H, W), 3.0)], "seq": "a", "img_id": 12, "is_right": True}
    frame = next(depth_frames([sample]))
    assert frame.image.shape == (1, 3, H, W) and frame.gt.shape == (H, W) and frame.prior.shape == (1, 1, H, W)
    assert (frame.seq, frame.frame, frame.is_right) == ("a", 12, True)
    with pytest.raises(ValueError, match="return_gt_depth"):
        next(depth_frames([{**sample, "depths": []}]))


def test_real_network_repeated_evaluation_is_bit_identical():
    torch.manual_seed(0)
    network = ViPOccNetwork(NetworkConfig(encoder_depth=18, n_samples=8, rid_ablation="rid"))
    rng = np.random.default_rng(2)
    frames = [DepthFrame("s", i, False, torch.from_numpy(rng.uniform(-1, 1, (1, 3, 48, 64)).astype(np.float32)),
                         torch.tensor([[[1.0, 0, 0], [0, 3.0, 0], [0, 0, 1]]]),
                         rng.uniform(3, 50, (48, 64)).astype(np.float32),
                         torch.from_numpy(rng.uniform(3, 50, (1, 1, 48, 64)).astype(np.float32))) for i in range(2)]
    for source in ("rendered", "predicted"):
        first = evaluate_depth(network, frames, source, device="cpu")
        second = evaluate_depth(network, frames, source, device="cpu")
        assert first == second
        assert all(0 < row["abs_rel"] < 100 for row in first)
