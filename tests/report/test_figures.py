"""vipocc.report.figures on a small fake result tree (tiny PNGs, CSVs, npz) built here with the real writers.

Truth: every demo PNG is one flat colour that encodes (model, kind, frame), so a cell of the qualitative figure
shows the right file; error-map colours are hand-computed from the documented palette; curves and bars are compared
with the CSV values written here; SNOG patches are checked against the anchor sets they must come from.

``build_fake_results`` is also used by test_figures_notebook.py (loaded by path).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from vipocc.report import figures as F

SEQ = "2013_05_28_drive_0000_sync"
SEQ_B = "2013_05_28_drive_0003_sync"
MODEL_CODE = {"bts": 40, "vipocc": 80}
KIND_CODE = {"rgb": 1, "disp_r": 2, "disp_p": 3, "disp_pseudo": 4, "bev": 5}
IMAGE_HW = {"rgb": (12, 40), "disp_r": (12, 40), "disp_p": (12, 40), "disp_pseudo": (12, 40), "bev": (17, 9)}
DEMO_FILES = {"bts": ("rgb", "disp_r", "bev"), "vipocc": ("rgb", "disp_r", "disp_p", "disp_pseudo", "bev")}
DEMO_FRAMES = {"bts": (10, 20), "vipocc": (10, 20, 30)}
ANCHOR_HW = (24, 80)


def demo_colour(model: str, kind: str, frame: int) -> tuple[int, int, int]:
    """RGB of the flat demo picture (model, kind, frame)."""
    return MODEL_CODE[model], 10 * KIND_CODE[kind], frame


def _write_demo(eval_root: Path) -> None:
    from vipocc.io import write_png

    for model, kinds in DEMO_FILES.items():
        for frame in DEMO_FRAMES[model]:
            for kind in kinds:
                rgb = np.empty((*IMAGE_HW[kind], 3), np.uint8)
                rgb[:] = demo_colour(model, kind, frame)
                write_png(eval_root / model / "demo" / f"{SEQ}_{frame:010d}_{kind}.png", rgb[..., ::-1])


def fake_grids(n_frames: int = 3, seed: int = 0) -> list[dict]:
    """Per-frame 160 x 80 maps: random prediction and truths; visible = the near rows 100.. (far cut at row 80)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_frames):
        visible = np.zeros((160, 80), bool)
        visible[100:] = True
        frames.append({"seq": SEQ, "frame": 100 + i, "is_right": False, "predicted": rng.random((160, 80)) < 0.3,
                       "gt_occupied": rng.random((160, 80)) < 0.2, "gt_visible": visible,
                       "exact_occupied": rng.random((160, 80)) < 0.2})
    return frames


def _write_occupancy(eval_root: Path) -> list[dict]:
    from vipocc.evaluation.occupancy import OccupancySettings, save_occupancy_grids
    from vipocc.evaluation.records import write_results

    frames = fake_grids()
    folder = eval_root / "vipocc" / "occupancy_4-20"
    save_occupancy_grids(folder / "grids.npz", frames, OccupancySettings())
    rows = [{"seq": f["seq"], "frame": f["frame"], "is_right": False, "scene_o_acc": 0.5 + 0.1 * i,
             "scene_ie_acc": 0.25, "exact_scene_o_acc": 0.125, "exact_scene_ie_acc": 0.375}
            for i, f in enumerate(frames)]
    write_results(folder, rows, {"evaluator": "occupancy", "frames": 3, "metrics": {}}, {})
    return frames


LOSS_HEADER = "step,epoch,loss,loss_rgb_coarse,loss_rgb_fine,loss_depth_recon,loss_temp_align,loss_edge_smooth," \
              "loss_invalid_ratio,lr,seconds_per_step"


def _write_training(train_root: Path) -> None:
    bts = train_root / "bts" / "work"
    bts.mkdir(parents=True)
    (bts / "losses.csv").write_text(LOSS_HEADER + "\n1,0,0.9,0.8,,,,,0.1,0.0001,0.5\n2,0,0.7,0.6,,,,,0.1,0.0001,0.5\n"
                                    "3,0,0.6,0.5,,,,,0.0,0.0001,0.5\n")
    (bts / "validation.csv").write_text("step,abs_rel,sq_rel,rmse,rmse_log,a1,a2,a3,frames,seconds\n"
                                        "2,0.3,1.0,5.0,0.4,0.6,0.8,0.9,4,1.0\n"
                                        "3,0.25,0.9,4.5,0.35,0.65,0.85,0.95,4,1.0\n")
    vipocc = train_root / "vipocc"  # only the final copy (training finished, work/ cleaned)
    vipocc.mkdir(parents=True)
    (vipocc / "losses.csv").write_text(LOSS_HEADER + "\n1,0,1.2,0.9,,0.3,0.2,,0.1,0.0001,0.7\n"
                                       "2,0,1.0,0.8,,0.2,0.1,,0.1,0.0001,0.7\n")


def _write_gt_vs_truth(path: Path) -> None:
    from vipocc.data.occupancy_stage import report_csv, truth_counts, truth_report

    rng = np.random.default_rng(3)
    occupied, visible, exact = (rng.random((460, 80)) < p for p in (0.3, 0.4, 0.3))
    z = np.linspace(50.0, 4.0, 460)
    visible[:300] = False  # nothing visible beyond ~20 m: the 20-30 and 30-50 m bands have no visible cell
    report = truth_report([truth_counts(occupied, visible, exact, z)], {"sequences": [SEQ], "frames": 1})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_csv(report))
    path.with_suffix(".json").write_text(json.dumps(report))


def fake_anchors(seed: int = 0) -> np.ndarray:
    """uint16 [3 sets, 20 anchors, 2] distinct (x, y) centres valid for 8x8 patches in a 24 x 80 image; sets
    disjoint (set s has x in [5 + 24 s, 24 + 24 s], y in [5, 19])."""
    rng = np.random.default_rng(seed)
    sets = []
    for s in range(3):
        cells = rng.choice(20 * 15, 20, replace=False)
        sets.append(np.stack([5 + 24 * s + cells % 20, 5 + cells // 20], axis=-1))
    return np.stack(sets).astype(np.uint16)


def _write_priors(derived: Path) -> None:
    from vipocc.io import write_png, write_text
    from vipocc.priors.snog import anchor_path, save_anchors

    for seq, frame in ((SEQ_B, 2), (SEQ, 9), (SEQ, 7)):  # first by (seq, frame): SEQ frame 7
        save_anchors(anchor_path(derived / "samples", seq, "image_00", "data_24x80", frame), fake_anchors(frame))
        image = np.full((*ANCHOR_HW, 3), 90, np.uint8)
        write_png(derived / "data_2d_raw" / seq / "image_00" / "data_24x80" / f"{frame:010d}.png", image)
    detections = [{"label": "car", "logit": 0.9, "box": [10, 4, 30, 18], "pixel_num": 200}]
    write_text(derived / "samples" / SEQ / "image_00" / "data_24x80" / "0000000007.json", json.dumps(detections))
    (derived / "samples" / SEQ / "image_00" / "data_24x80" / "0000000007_mask.npy").write_bytes(b"")  # not read


def build_fake_results(root: Path) -> dict[str, str]:
    """Write the fake tree under root; returns the notebook parameters that point at it."""
    eval_root, train_root, derived = root / "eval", root / "train", root / "derived"
    _write_demo(eval_root)
    _write_occupancy(eval_root)
    _write_training(train_root)
    gt_csv = root / "data" / "occupancy_gt_vs_truth.csv"
    _write_gt_vs_truth(gt_csv)
    _write_priors(derived)
    return {"eval_root": str(eval_root), "train_root": str(train_root), "derived_root": str(derived),
            "gt_vs_truth_csv": str(gt_csv)}


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fake_results")
    return {key: Path(value) for key, value in build_fake_results(root).items()}


def _n_images(fig: Figure) -> int:
    return sum(len(ax.images) for ax in fig.axes)


# ------------------------------------------------------------------------------------------------ saving


def test_save_figure_writes_png_and_pdf_reproducibly(tmp_path):
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1], [1, 0])
    paths = F.save_figure(fig, tmp_path / "out", "curve")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["pdf"].read_bytes()[:5] == b"%PDF-"
    first = paths["pdf"].read_bytes()
    F.save_figure(fig, tmp_path / "out", "curve")
    assert paths["pdf"].read_bytes() == first  # no creation date: same bytes
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["curve.pdf", "curve.png"]  # no temp files
    with pytest.raises(ValueError, match="name"):
        F.save_figure(fig, tmp_path, "a/b")


def test_figure_set_skips_absent_inputs_and_lists_files(tmp_path, capsys):
    def missing():
        raise F.MissingInputs("results/eval/x: nothing here")

    def ok():
        fig = Figure()
        fig.add_subplot()
        return fig

    figures = F.FigureSet(tmp_path / "figs")
    assert figures.make("absent", missing) is None
    assert "skipped figure absent: results/eval/x: nothing here" in capsys.readouterr().out
    assert figures.make("present", ok) == tmp_path / "figs" / "present.png"
    manifest = json.loads(figures.write_manifest().read_text())
    assert manifest["figures"] == {"present": {"png": "present.png", "pdf": "present.pdf"}}
    assert manifest["skipped"] == {"absent": "results/eval/x: nothing here"}
    with pytest.raises(ZeroDivisionError):  # only absent inputs are skipped
        figures.make("broken", lambda: 1 / 0)


# ------------------------------------------------------------------------------------------- qualitative


def test_qualitative_figure_columns_rows_and_cell_contents(fake):
    fig = F.qualitative_figure(fake["eval_root"], ["bts", "vipocc"])
    titles = ["Input", "BTS rendered depth", "ViPOcc rendered depth", "ViPOcc predicted depth", "Pseudo depth prior",
              "BTS BEV", "ViPOcc BEV"]  # BTS has no predicted depth: that column is dropped
    kinds = [("bts", "rgb"), ("bts", "disp_r"), ("vipocc", "disp_r"), ("vipocc", "disp_p"),
             ("vipocc", "disp_pseudo"), ("bts", "bev"), ("vipocc", "bev")]
    frames = (10, 20)  # the frames both models rendered
    assert isinstance(fig, Figure) and len(fig.axes) == 14 and _n_images(fig) == 14
    by_position = {(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start): ax for ax in fig.axes}
    for col, ((model, kind), title) in enumerate(zip(kinds, titles)):
        assert by_position[(0, col)].get_title() == title
        for row, frame in enumerate(frames):
            shown = np.asarray(by_position[(row, col)].images[0].get_array())
            assert shown.shape == (*IMAGE_HW[kind], 3)
            assert (shown == demo_colour(model, kind, frame)).all(), (row, col)
    assert by_position[(1, 0)].get_ylabel() == "0000 / 20"


def test_qualitative_figure_drops_a_missing_model_and_fails_without_demos(fake, tmp_path):
    fig = F.qualitative_figure(fake["eval_root"], ["bts_official", "vipocc"])  # no bts_official renders
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["Input", "ViPOcc rendered depth", "ViPOcc predicted depth", "Pseudo depth prior",
                      "ViPOcc BEV"]
    assert len(fig.axes) == 3 * 5  # all three vipocc frames
    fig = F.qualitative_figure(fake["eval_root"], ["vipocc"], max_frames=2)
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()] == ["0000 / 10", "0000 / 30"]
    with pytest.raises(F.MissingInputs, match="no demo PNG"):
        F.qualitative_figure(fake["eval_root"], ["vipocc"], frames=[(SEQ, 99)])
    with pytest.raises(F.MissingInputs, match="no demo renders"):
        F.qualitative_figure(tmp_path, ["bts"])
    assert F.qualitative_models(["vipocc_no_ta", "vipocc", "bts", "bts_official"]) == ["bts", "vipocc"]
    assert F.qualitative_models(["vipocc_official", "bts_official"]) == ["bts_official", "vipocc_official"]
    assert F.qualitative_models(["bts", "vipocc"], fake["eval_root"]) == ["bts", "vipocc"]


# ----------------------------------------------------------------------------------------------- error maps


def test_error_map_colours_of_a_hand_made_case():
    # row 0 visible, row 1 invisible; columns TN, FP, FN, TP
    predicted = np.array([[0, 1, 0, 1], [0, 1, 0, 1]], bool)
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 1]], bool)
    invisible = np.array([[0, 0, 0, 0], [1, 1, 1, 1]], bool)
    rgb = F.error_map_rgb(predicted, truth, invisible)
    expected_visible = [(1.0, 1.0, 1.0), (0.84, 0.15, 0.16), (0.12, 0.47, 0.71), (0.17, 0.63, 0.17)]
    # greyed by hand: 0.55 * colour + 0.45 * 0.5
    expected_invisible = [(0.775, 0.775, 0.775), (0.687, 0.3075, 0.313), (0.291, 0.4835, 0.6155),
                          (0.3185, 0.5715, 0.3185)]
    np.testing.assert_allclose(rgb, np.array([expected_visible, expected_invisible]), atol=1e-12)
    np.testing.assert_allclose(F.error_map_rgb(predicted, truth, invisible, grey_weight=0.0)[1], expected_visible)
    with pytest.raises(ValueError, match="shapes"):
        F.error_map_rgb(predicted, truth[:, :3], invisible)


def test_occupancy_error_maps_show_the_scored_truths(fake):
    frames = fake_grids()
    fig = F.occupancy_error_maps(fake["eval_root"], "vipocc", "4-20", n_frames=2)
    assert len(fig.axes) == 4 and _n_images(fig) == 4  # (exact, lidar) x frames 100 and 102
    grid = {(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start): ax for ax in fig.axes}
    for col, index in enumerate((0, 2)):
        frame = frames[index]
        vis = frame["gt_visible"]
        for row, key in enumerate(("exact_occupied", "gt_occupied")):
            shown = np.asarray(grid[(row, col)].images[0].get_array())
            truth = frame[key] & ~vis  # visible cells are free, as scored
            np.testing.assert_array_equal(shown, F.error_map_rgb(frame["predicted"], truth, ~vis))
            # cell centres x = linspace(-4, 4, 80), z = linspace(20, 4, 160): edges half a spacing beyond
            half_x, half_z = 4 / 79, 8 / 159
            assert grid[(row, col)].images[0].get_extent() == pytest.approx(
                [-4 - half_x, 4 + half_x, 4 - half_z, 20 + half_z], abs=1e-6)
        # a visible cell that occgt marks occupied is free for the scores: TN (white) when not predicted
        visible_occupied = np.argwhere(vis & frame["gt_occupied"] & ~frame["predicted"])[0]
        assert tuple(np.asarray(grid[(1, col)].images[0].get_array())[tuple(visible_occupied)]) == (1.0, 1.0, 1.0)
    assert "vs exact truth\nO_acc 0.125  IE_acc 0.375" in grid[(0, 0)].get_title()
    assert "vs lidar GT\nO_acc 0.700  IE_acc 0.250" in grid[(1, 1)].get_title()
    # far cut: farthest visible row 100 - 20 rows -> line between rows 79 and 80
    line = [ln for ln in grid[(0, 0)].lines][0]
    assert line.get_ydata()[0] == pytest.approx(20.0 - 79.5 * 16 / 159, abs=1e-5)


def test_occupancy_error_maps_without_exact_or_grids(fake, tmp_path):
    from vipocc.evaluation.occupancy import OccupancySettings, save_occupancy_grids

    frames = [{k: v for k, v in f.items() if k != "exact_occupied"} | {"exact_occupied": None} for f in fake_grids()]
    save_occupancy_grids(tmp_path / "bts" / "occupancy_4-50" / "grids.npz", [
        f | {k: np.zeros((460, 80), bool) for k in ("predicted", "gt_occupied", "gt_visible")} for f in frames],
        OccupancySettings(z_range=(50.0, 4.0)))
    fig = F.occupancy_error_maps(tmp_path, "bts", "4-50", n_frames=None)
    assert len(fig.axes) == 3 and all("vs lidar GT" in ax.get_title() for ax in fig.axes)
    fig = F.occupancy_error_maps(tmp_path, "bts", "4-50", frames=[(SEQ, 101)])
    assert len(fig.axes) == 1
    with pytest.raises(F.MissingInputs, match="grids.npz"):
        F.occupancy_error_maps(tmp_path, "bts", "4-20")
    with pytest.raises(F.MissingInputs, match="none of the requested frames"):
        F.occupancy_error_maps(tmp_path, "bts", "4-50", frames=[(SEQ, 5)])


# ------------------------------------------------------------------------------------------ training curves


def test_training_curves_one_panel_per_logged_quantity(fake, tmp_path):
    from vipocc.training.trainer import LOSS_COLUMNS

    assert LOSS_HEADER.split(",") == ["step", "epoch", *LOSS_COLUMNS, "lr", "seconds_per_step"]  # fake = real log
    fig = F.training_curves(fake["train_root"], ["bts", "vipocc", "vipocc_no_ta"])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["train: loss", "train: loss_rgb_coarse", "train: loss_depth_recon", "train: loss_temp_align",
                      "train: loss_invalid_ratio", "validation: abs_rel", "validation: sq_rel", "validation: rmse",
                      "validation: rmse_log", "validation: a1 (higher better)", "validation: a2 (higher better)",
                      "validation: a3 (higher better)"]  # empty columns (rgb_fine, edge_smooth) have no panel
    loss = fig.axes[0]
    curves = sorted(line.get_xydata().tolist() for line in loss.lines)
    assert curves == [[[1, 0.9], [2, 0.7], [3, 0.6]], [[1, 1.2], [2, 1.0]]]  # bts (work/), vipocc (final copy)
    assert fig.axes[5].lines[0].get_xydata().tolist() == [[2, 0.3], [3, 0.25]]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["bts", "vipocc"]
    fig = F.training_curves(fake["train_root"], ["bts"], loss_columns=["loss"], validation_metrics=["a1"])
    assert [ax.get_title() for ax in fig.axes] == ["train: loss", "validation: a1 (higher better)"]
    with pytest.raises(F.MissingInputs, match="no losses.csv"):
        F.training_curves(tmp_path, ["bts"])
    with pytest.raises(F.MissingInputs, match="train_root"):
        F.training_curves(None, ["bts"])


# ---------------------------------------------------------------------------------------------- GT vs truth


def test_gt_vs_truth_bars_are_the_csv_fractions(fake, tmp_path):
    import csv

    fig = F.gt_vs_truth_figure(fake["gt_vs_truth_csv"])
    assert len(fig.axes) == 2
    with open(fake["gt_vs_truth_csv"]) as handle:
        rows = list(csv.DictReader(handle))
    assert [r["band"] for r in rows] == ["4-10", "10-20", "20-30", "30-50", "all"]
    left = fig.axes[0]
    assert [t.get_text() for t in left.get_xticklabels()] == ["4-10", "10-20", "20-30", "30-50", "all"]
    assert len(left.containers) == len(F.FRACTION_LABELS)
    for container, column in zip(left.containers, F.FRACTION_LABELS):
        expected = {band: float(r[column]) for band, r in enumerate(rows) if r[column]}
        # bar centres sit at band index +- the hue offset (< 0.5): round to the band
        drawn = {round(bar.get_x() + bar.get_width() / 2): bar.get_height() for bar in container}
        assert drawn == pytest.approx(expected, abs=0), column
    assert rows[2]["visible_truly_free"] == ""  # 20-30 m: no visible cell, so no bar there
    assert 2 not in {round(bar.get_x() + bar.get_width() / 2) for bar in left.containers[0]}
    right = fig.axes[1]
    counts = [[int(r[c]) for r in rows[:4]] for c in ("exact_occupied", "lidar_occupied", "lidar_and_exact_occupied")]
    assert [list(c.datavalues) for c in right.containers] == counts
    with pytest.raises(F.MissingInputs, match="synthetic world"):
        F.gt_vs_truth_figure(None)
    with pytest.raises(F.MissingInputs, match="not found"):
        F.gt_vs_truth_figure(tmp_path / "absent.csv")


# ------------------------------------------------------------------------------------------------------ SNOG


def test_snog_patches_come_from_one_anchor_set_and_random_ones_cover_the_image():
    anchors = fake_anchors(0)
    for seed in range(5):
        snog, uniform = F.snog_and_random_patches(anchors, ANCHOR_HW, patch_size=8, n_patches=16, seed=seed)
        assert snog.shape == uniform.shape == (16, 2)
        centres = snog + 4  # corner = centre - ps // 2
        sets = {s for s in range(3) for c in centres.tolist() if c in anchors[s].astype(int).tolist()}
        assert len(sets) == 1  # one stored set per view
        assert len({tuple(c) for c in centres.tolist()}) == 16  # 16 of the set's 20 anchors, without replacement
        assert uniform[:, 0].min() >= 0 and uniform[:, 0].max() <= 80 - 8
        assert uniform[:, 1].min() >= 0 and uniform[:, 1].max() <= 24 - 8
    a = F.snog_and_random_patches(anchors, ANCHOR_HW, seed=3)
    b = F.snog_and_random_patches(anchors, ANCHOR_HW, seed=3)
    c = F.snog_and_random_patches(anchors, ANCHOR_HW, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])


def test_snog_figure_draws_the_first_training_frame(fake, tmp_path):
    from matplotlib.patches import Rectangle

    assert F.first_anchor_frame(fake["derived_root"]) == (SEQ, 7, "data_24x80")
    assert F.first_anchor_frame(fake["derived_root"], seq=SEQ_B) == (SEQ_B, 2, "data_24x80")
    fig = F.snog_vs_random_figure(fake["derived_root"], n_patches=16, seed=1)
    assert len(fig.axes) == 2 and _n_images(fig) == 2
    snog, uniform = F.snog_and_random_patches(fake_anchors(7), ANCHOR_HW, n_patches=16, seed=1)
    for ax, corners in zip(fig.axes, (snog, uniform)):
        rectangles = [p for p in ax.patches if isinstance(p, Rectangle)]
        dashed = [p for p in rectangles if p.get_linestyle() == "--"]
        assert [p.get_xy() for p in dashed] == [(10.0, 4.0)]  # the car box
        drawn = sorted((p.get_x() + 0.5, p.get_y() + 0.5) for p in rectangles if p.get_linestyle() != "--")
        assert drawn == sorted(map(tuple, corners.astype(float).tolist()))
    assert fig.axes[0].collections[0].get_offsets().shape == (60, 2)  # every stored anchor as a dot
    fig = F.snog_vs_random_figure(fake["derived_root"], SEQ, 9)
    assert "0000000009" in fig._suptitle.get_text()
    with pytest.raises(F.MissingInputs, match="no SNOG anchor file"):
        F.snog_vs_random_figure(tmp_path)
    with pytest.raises(F.MissingInputs, match="0000000004"):
        F.snog_vs_random_figure(fake["derived_root"], SEQ, 4)
