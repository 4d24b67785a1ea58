"""The bird's-eye occupancy evaluator: a stub field that returns the GT (scores 1), an empty field (hand-computed
scores), the 4-20 m row crop of 4-50 m files, the exact-oracle columns, bit-identical reruns with a real tiny
network, and the whole path on the smoke world (GT stage + dataset + evaluator)."""
import json
import math

import numpy as np
import pytest
import torch

from vipocc.evaluation.occupancy import OccupancySettings, evaluate_occupancy, protocol_name

SEQ = "2013_05_28_drive_0004_sync"
COS5, SIN5 = math.cos(math.radians(5)), math.sin(math.radians(5))  # the reference rounds to 0.9961947 / 0.0871557


# --------------------------------------------------------------------------------------------------- fixtures


def _maps_160() -> dict[str, np.ndarray]:
    """Hand-made 160 x 80 maps of the 4-20 m grid (row 0 = 20 m).

    visible: rows 100..159; occupied (invisible): rows 85..94 x cols 30..49 (instance 7) and rows 40..49 (beyond
    the far cut, label 255). Far cut: farthest visible row 100 - 20 -> rows 80..159 kept (80 x 80 cells).
    """
    occupied = np.zeros((160, 80), bool)
    occupied[85:95, 30:50] = True
    occupied[40:50] = True
    visible = np.zeros((160, 80), bool)
    visible[100:] = True
    labels = np.zeros((160, 80), np.uint8)
    labels[occupied] = 255
    labels[85:95, 30:50] = 7
    return {"occupied": occupied, "visible": visible, "labels": labels}


def _write_frame(root, frame: int, maps: dict[str, np.ndarray], rows_460: bool, rng) -> dict[str, np.ndarray]:
    """Write KYN files of one frame. rows_460: embed the 160 rows as file rows 300..459 of a 4-50 m file whose
    other rows are random (the reference's crop must drop them). Returns the written 2-D arrays."""
    from vipocc.data.occupancy_gt import save_occupancy_gt
    from vipocc.data.occupancy_labels import save_object_labels
    from vipocc.io import save_npy

    def full(array):
        if not rows_460:
            return array
        noise = rng.integers(0, 2, (460, 80))
        big = (noise * 7).astype(np.uint8) if array.dtype == np.uint8 else noise.astype(bool)
        big[300:] = array
        return big

    written = {key: full(value) for key, value in maps.items()}
    save_occupancy_gt(root / "GT_Occ", SEQ, frame, written["occupied"], written["visible"])
    save_object_labels(root / "Object_Label", SEQ, frame, written["labels"])
    exact = maps["occupied"].copy()
    exact[81, 0] = True  # one invisible cell inside the far-cut window, outside the object rectangle
    save_npy(root / "Exact_Occ" / f"{SEQ}_{frame:010d}_occ.npy", full(exact))
    return written


class GridLookupField(torch.nn.Module):
    """Stub density field: sigma = 1 where a per-frame bird's-eye map is True, else 0.

    encode() reads the frame number from pixel [0, 0, 0, 0] of the image. density() moves the cam0 points to the
    inclination-corrected frame with an independently written rotation and looks up the nearest grid cell.
    """

    def __init__(self, maps: dict[int, np.ndarray], z_range=(20.0, 4.0)) -> None:
        super().__init__()
        self.maps, self.z_range, self.frame = maps, z_range, None

    def encode(self, image, K, w2c, flip=False):
        assert torch.equal(w2c[0], torch.eye(4)) and not flip
        self.frame = int(image[0, 0, 0, 0].item())

    def density(self, points):
        cam = points[0].double().numpy()
        # corrected = A cam with A = [[1,0,0],[0,c,s],[0,-s,c]] (cam0 pitched up by 5 deg)
        y = COS5 * cam[:, 1] + SIN5 * cam[:, 2]
        z = -SIN5 * cam[:, 1] + COS5 * cam[:, 2]
        assert np.allclose(y, 0.375, atol=1e-5)
        grid = self.maps[self.frame]
        rows, cols = grid.shape
        far, near = self.z_range
        row = np.rint((far - z) * (rows - 1) / (far - near)).astype(int)
        col = np.rint((cam[:, 0] + 4.0) * (cols - 1) / 8.0).astype(int)
        sigma = grid[row, col].astype(np.float32)
        return torch.from_numpy(sigma)[None], torch.zeros(1, len(sigma), dtype=torch.bool)


def _dataset(frames):
    K = torch.tensor([[0.8, 0.0, 0.0], [0.0, 2.4, 0.0], [0.0, 0.0, 1.0]])
    return [{"imgs": [torch.full((3, 8, 16), float(f))], "projs": [K], "seq": SEQ, "img_id": f, "is_right": False}
            for f in frames]


@pytest.fixture()
def gt_root(tmp_path):
    rng = np.random.default_rng(0)
    maps = _maps_160()
    files = {f: _write_frame(tmp_path, f, maps, rows_460=True, rng=rng) for f in (3, 5)}
    return tmp_path, maps, files


def _settings(**kw):
    return OccupancySettings(device="cpu", **kw)


# ------------------------------------------------------------------------------------------------------ tests


def test_perfect_prediction_scores_one_and_exact_columns_see_the_extra_cell(gt_root):
    root, maps, _ = gt_root
    truth = maps["occupied"] & ~maps["visible"]
    rows, summary = evaluate_occupancy(GridLookupField({3: truth, 5: truth}), _dataset([3, 5]), root, _settings(),
                                       progress=False)
    assert [(r["seq"], r["frame"]) for r in rows] == [(SEQ, 3), (SEQ, 5)]
    for key in ("scene_o_acc", "scene_ie_acc", "scene_ie_rec", "object_o_acc", "object_ie_acc", "object_ie_rec",
                "scene_o_prec", "scene_o_rec", "scene_ie_prec"):
        assert summary["metrics"][key] == 1.0, key
    # the exact map has one more occupied invisible cell (row 81, col 0) among the 80 x 80 scene cells
    assert summary["metrics"]["exact_scene_o_acc"] == pytest.approx(1 - 1 / 6400, abs=0)
    assert summary["metrics"]["exact_scene_ie_acc"] == pytest.approx(1 - 1 / 1600, abs=0)
    assert summary["metrics"]["exact_object_o_acc"] == 1.0
    assert summary["frames"] == 2 and summary["protocol"]["protocol"] == "4-20"


def test_empty_prediction_hand_computed_scores(gt_root):
    root, _, _ = gt_root
    empty = np.zeros((160, 80), bool)
    rows, summary = evaluate_occupancy(GridLookupField({3: empty, 5: empty}), _dataset([3, 5]), root,
                                       _settings(exact="off"), progress=False)
    m = summary["metrics"]
    # scene: 6400 cells after the far cut, 200 occupied, 1600 invisible (rows 80..99)
    assert m["scene_o_acc"] == 6200 / 6400
    assert m["scene_ie_acc"] == 1400 / 1600
    assert m["scene_ie_rec"] == 1.0
    assert math.isnan(m["scene_o_prec"]) and m["scene_o_rec"] == 0.0
    # object rectangle: rows [85-20, 94+20) x cols [30-5, 49+5) = 49 x 29 cells; invisible rows 65..99 -> 35 x 29
    assert m["object_o_acc"] == (1421 - 200) / 1421
    assert m["object_ie_acc"] == (1015 - 200) / 1015
    assert m["object_ie_rec"] == 1.0
    assert "exact_scene_o_acc" not in rows[0]


def test_4_50_uses_the_whole_file_and_a_wrong_crop_would_fail(gt_root):
    root, _, files = gt_root
    truth = {f: files[f]["occupied"] & ~files[f]["visible"] for f in files}
    settings = _settings(z_range=(50.0, 4.0))
    _, summary = evaluate_occupancy(GridLookupField(truth, z_range=(50.0, 4.0)), _dataset([3, 5]), root, settings,
                                    progress=False)
    assert summary["metrics"]["scene_o_acc"] == 1.0 and summary["metrics"]["object_o_acc"] == 1.0
    assert protocol_name(settings.z_range) == "4-50"
    # the 4-50 m truth evaluated at 4-20 m is wrong (file rows 300.. are what 4-20 m must compare with)
    _, summary = evaluate_occupancy(GridLookupField({f: t[:160] for f, t in truth.items()}), _dataset([3, 5]),
                                    root, _settings(), progress=False)
    assert summary["metrics"]["scene_o_acc"] < 1.0


def test_crop_offset_quirk_of_the_4_20_rows():
    """GT rows of a 4-20 m crop sit up to 0.065 m nearer than the prediction rows (documented quirk)."""
    from vipocc.data.occupancy_gt import gt_crop_rows, query_grid

    gt_z = query_grid((50.0, 4.0))[gt_crop_rows((20.0, 4.0)), 0, 2]
    pred_z = OccupancySettings().grid()[:, 0, 2]
    assert len(gt_z) == len(pred_z) == 160
    offset = pred_z - gt_z
    assert offset.max() == pytest.approx(0.065, abs=1e-3) and offset.min() >= -1e-6


def test_missing_files_and_bad_settings_are_errors(gt_root):
    root, maps, _ = gt_root
    field = GridLookupField({4: maps["occupied"]})
    with pytest.raises(FileNotFoundError, match="0000000004_occgt.npy"):
        evaluate_occupancy(field, _dataset([4]), root, _settings(), progress=False)
    (root / "Exact_Occ" / f"{SEQ}_{3:010d}_occ.npy").unlink()
    with pytest.raises(FileNotFoundError, match="Exact_Occ"):
        evaluate_occupancy(GridLookupField({3: maps["occupied"]}), _dataset([3]), root, _settings(exact="require"),
                           progress=False)
    with pytest.raises(ValueError, match="z_range"):
        OccupancySettings(z_range=(60.0, 4.0))
    with pytest.raises(ValueError, match="exact"):
        OccupancySettings(exact="maybe")


def _tiny_network():
    from vipocc.models.network import NetworkConfig, ViPOccNetwork

    torch.manual_seed(0)
    return ViPOccNetwork(NetworkConfig(encoder_depth=18, use_depth_branch=False))


def test_repeated_evaluation_with_a_real_network_is_bit_identical(gt_root, tmp_path):
    from vipocc.evaluation.records import write_results

    root, _, _ = gt_root
    network = _tiny_network()
    K = torch.tensor([[0.8, 0.0, 0.0], [0.0, 2.4, 0.0], [0.0, 0.0, 1.0]])
    gen = torch.Generator().manual_seed(1)
    data = [{"imgs": [torch.rand(3, 64, 192, generator=gen) * 2 - 1], "projs": [K], "seq": SEQ, "img_id": f}
            for f in (3, 5)]
    first = evaluate_occupancy(network, data, root, _settings(), progress=False)
    second = evaluate_occupancy(network, data, root, _settings(), progress=False)
    a = write_results(tmp_path / "a", *first, provenance={})
    b = write_results(tmp_path / "b", *second, provenance={})
    assert a["per_frame"].read_bytes() == b["per_frame"].read_bytes()
    assert a["summary"].read_bytes() == b["summary"].read_bytes()
    assert json.loads(a["summary"].read_text())["frames"] == 2


def test_smoke_world_end_to_end_has_exact_columns(smoke_world, tmp_path):
    """GT stage (with the oracle's Exact_Occ files) -> Kitti360Dataset(eval_occupancy) -> evaluator."""
    import argparse

    from vipocc.config import validate_config
    from vipocc.data.gt_commands import register
    from vipocc.data.kitti360 import Kitti360Dataset

    config_json = json.dumps({"dataset": {"kind": "synthetic"}, "synthetic": {"preset": "smoke"},
                              "occupancy_gt": {"aggregate_scans": 4}})
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["occupancy-gt", "--config-json", config_json, "--seq", SEQ, "--out", str(tmp_path),
                              "--raw-root", str(smoke_world / "kitti360"), "--split-dir",
                              str(smoke_world / "splits" / "kitti360"), "--no-progress"])
    assert args.func(args) == 0
    config = validate_config({"dataset": {"kind": "synthetic"}, "synthetic": {"preset": "smoke"}})
    options = dict(config["datasets"]["eval_occupancy"], is_preprocessed=False)
    pre = config["preprocess"]
    dataset = Kitti360Dataset(smoke_world / "kitti360", tmp_path, smoke_world / "splits" / "kitti360", options,
                              pre["image_size"], pre["fisheye_rotation"])
    rows, summary = evaluate_occupancy(_tiny_network(), [dataset[0]], tmp_path, _settings(), progress=False)
    assert len(rows) == 1 and rows[0]["seq"] == SEQ and rows[0]["frame"] == dataset[0]["img_id"]
    for key in ("exact_scene_o_acc", "exact_scene_ie_acc", "exact_scene_ie_rec", "exact_object_o_acc"):
        assert key in rows[0] and key in summary["metrics"]
    assert 0.0 <= summary["metrics"]["scene_o_acc"] <= 1.0


# ------------------------------------------------------------------------------------------- saved grids.npz


def test_saved_grids_hold_the_scored_maps_and_rescore_to_the_csv_values(gt_root, tmp_path):
    """grids.npz: the stub's maps come back as ``predicted``, the GT as written (4-20 m rows of the 4-50 m files),
    and occupancy_scores on the saved maps (hand-made far cut) gives the per-frame CSV values."""
    from vipocc.evaluation.metrics import occupancy_scores
    from vipocc.evaluation.occupancy import GRIDS_NPZ, load_occupancy_grids
    from vipocc.evaluation.records import read_per_frame, write_results

    root, maps, files = gt_root
    rng = np.random.default_rng(7)
    predictions = {f: rng.random((160, 80)) < 0.3 for f in (3, 5)}
    out = tmp_path / "result"
    rows, summary = evaluate_occupancy(GridLookupField(predictions), _dataset([3, 5]), root, _settings(),
                                       progress=False, grids_dir=out)
    write_results(out, rows, summary, provenance={})
    grids = load_occupancy_grids(out / GRIDS_NPZ)
    assert grids["seq"].tolist() == [SEQ, SEQ] and grids["frame"].tolist() == [3, 5]
    assert grids["predicted"].dtype == bool and grids["predicted"].shape == (2, 160, 80)
    assert np.allclose(grids["z_m"][[0, -1]], [20.0, 4.0]) and np.allclose(grids["x_m"][[0, -1]], [-4.0, 4.0])
    exact = maps["occupied"].copy()
    exact[81, 0] = True
    for i, f in enumerate((3, 5)):
        np.testing.assert_array_equal(grids["predicted"][i], predictions[f])
        np.testing.assert_array_equal(grids["gt_occupied"][i], files[f]["occupied"][300:])
        np.testing.assert_array_equal(grids["gt_visible"][i], files[f]["visible"][300:])
        np.testing.assert_array_equal(grids["exact_occupied"][i], exact)
    assert grids["has_exact"].tolist() == [True, True]

    csv_rows = read_per_frame(out / "per_frame.csv")
    for i, csv_row in enumerate(csv_rows):
        vis = grids["gt_visible"][i]
        first_visible_row = int(np.flatnonzero(vis.any(axis=1))[0])
        kept = slice(max(first_visible_row - 20, 0), None)  # far cut: 2 m = 20 rows beyond the farthest visible
        for prefix, occupied in (("", grids["gt_occupied"][i]), ("exact_", grids["exact_occupied"][i])):
            scores = occupancy_scores((occupied & ~vis)[kept], grids["predicted"][i][kept], vis[kept])
            for key, value in scores.items():
                assert float(csv_row[f"{prefix}scene_{key}"]) == value, (i, prefix, key)


def test_grids_are_optional_and_change_no_metric(gt_root, tmp_path):
    from vipocc.evaluation.occupancy import GRIDS_NPZ, load_occupancy_grids

    root, maps, _ = gt_root
    field = GridLookupField({3: maps["occupied"], 5: ~maps["occupied"]})
    plain = evaluate_occupancy(field, _dataset([3, 5]), root, _settings(exact="off"), progress=False)
    off = evaluate_occupancy(field, _dataset([3, 5]), root, _settings(exact="off"), progress=False,
                             save_grids=False, grids_dir=tmp_path / "off")
    on = evaluate_occupancy(field, _dataset([3, 5]), root, _settings(exact="off"), progress=False,
                            grids_dir=tmp_path / "on")
    assert not (tmp_path / "off").exists()
    assert plain == off == on  # NaN-free here, so == compares every value
    grids = load_occupancy_grids(tmp_path / "on" / GRIDS_NPZ)
    assert "exact_occupied" not in grids and "has_exact" not in grids  # exact="off": no exact maps saved
    with pytest.raises(FileNotFoundError, match="grids.npz"):
        load_occupancy_grids(tmp_path / "off" / GRIDS_NPZ)
