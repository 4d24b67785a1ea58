"""Paper tables on a fake results folder (written with the real result writer): tidy collection, exact cells,
delta sign, tolerance flag, missing evaluations make no row, captions, and the CSV / LaTeX writers."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from vipocc.report.expected import load_expected
from vipocc.report.tables import (ablation_table, caption, collect_results, depth_table, format_cells,
                                  occupancy_table, publish_table, pseudo_depth_table, write_index, write_table)

_spec = importlib.util.spec_from_file_location("fake_eval_results", Path(__file__).with_name("fake_eval_results.py"))
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)

REGISTRY = load_expected(Path(__file__).resolve().parents[2] / "expected_results.yaml")
OCC = ["Scene O_acc", "Scene IE_acc", "Scene IE_rec", "Object O_acc", "Object IE_acc", "Object IE_rec"]
DEPTH = ["Abs Rel", "Sq Rel", "RMSE", "RMSE log", "d1", "d2", "d3"]


@pytest.fixture
def results(tmp_path):
    return collect_results(fake.build(tmp_path / "eval"))


@pytest.fixture
def synthetic(tmp_path):
    return collect_results(fake.build(tmp_path / "eval", kind="synthetic"))


def _cells(table, key, columns):
    return [table.loc[key, c] for c in columns]


def test_collect_results_is_tidy_with_provenance(results):
    # metrics per summary: 7 + 6 + 6 (occupancy) + 7 + 7 (depth) + 7 (prior) + 6 + 7 (ablation); demo and the
    # folder without summary.json give none
    assert len(results) == 53
    assert set(results["model"]) == {"vipocc_official", "vipocc", "bts", "depth_prior", "vipocc_no_ta"}
    row = results[(results["model"] == "vipocc") & (results["metric"] == "object_ie_rec")].iloc[0]
    assert (row["evaluator"], row["protocol"], row["range"], row["frames"]) == ("occupancy", "4-20", "4-20 m", 3)
    assert math.isnan(row["value"])  # JSON null
    assert (row["model_source"], row["dataset_kind"], row["split"], row["git_commit"]) == \
        ("model", "kitti360", "test", fake.COMMIT)
    prior = results[(results["model"] == "depth_prior")].iloc[0]
    assert (prior["evaluator"], prior["protocol"], prior["scaling"], prior["benchmark"]) == \
        ("pseudo_depth", "median", "median", "kitti360")
    assert (prior["prior_backend"], prior["prior_simulated"]) == ("depth_anything", False)
    rendered = results[(results["model"] == "vipocc") & (results["protocol"] == "rendered")
                       & (results["metric"] == "rmse")].iloc[0]
    assert (rendered["value"], rendered["scaling"]) == (3.5, "none")


def test_malformed_summaries_are_errors_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        collect_results(tmp_path / "no_such_folder")
    assert collect_results(tmp_path).empty  # an existing folder without results: no rows, no error
    bad = tmp_path / "m" / "occupancy_4-20" / "summary.json"
    bad.parent.mkdir(parents=True)
    for text, message in [("{not json", "not valid JSON"), ("[1]", "expected a JSON object"),
                          ('{"metrics": {}}', "'evaluator' missing"),
                          ('{"evaluator": "occupancy", "metrics": {"o_acc": "high"}}', "metrics.o_acc is not a number"),
                          ('{"evaluator": "depth", "metrics": {}}', "does not match the summary's evaluator")]:
        bad.write_text(text)
        with pytest.raises(ValueError, match=message) as info:
            collect_results(tmp_path)
        assert str(bad) in str(info.value)


def test_occupancy_table_cells_delta_and_tolerance(results):
    table = occupancy_table(results, REGISTRY, "4-20")
    assert list(table.columns) == [*OCC, "Frames"]
    # bts has no 4-20 result and no official checkpoint was evaluated: no BTS row at all
    assert list(table.index) == [("ViPOcc", model, "4-20", q) for model in ("vipocc_official", "vipocc")
                                 for q in ("reproduced", "reported", "delta", "within_tolerance")]
    official = ("ViPOcc", "vipocc_official", "4-20")
    assert _cells(table, (*official, "reproduced"), OCC) == [0.930, 0.710, 0.690, 0.785, 0.680, 0.650]
    assert _cells(table, (*official, "reported"), OCC) == [0.927, 0.713, 0.686, 0.790, 0.685, 0.643]
    assert _cells(table, (*official, "delta"), OCC) == pytest.approx([0.003, -0.003, 0.004, -0.005, -0.005, 0.007])
    assert _cells(table, (*official, "within_tolerance"), OCC) == [True] * 6
    assert table.loc[(*official, "reproduced"), "Frames"] == 3 and table.loc[(*official, "reported"), "Frames"] == 446
    trained = ("ViPOcc", "vipocc", "4-20")
    assert table.loc[(*trained, "delta"), "Scene O_acc"] == pytest.approx(-0.027)  # 0.900 - 0.927: below the paper
    assert table.loc[(*trained, "within_tolerance"), "Scene O_acc"] is False
    assert table.loc[(*trained, "delta"), "Scene IE_acc"] == 0.0 and table.loc[(*trained, "within_tolerance"),
                                                                              "Scene IE_acc"] is True
    assert math.isnan(table.loc[(*trained, "delta"), "Object IE_rec"])  # reproduced NaN ...
    assert table.loc[(*trained, "within_tolerance"), "Object IE_rec"] is False  # ... is not a match


def test_occupancy_4_50_has_no_reported_rows(results):
    table = occupancy_table(results, REGISTRY, "4-50")
    assert list(table.index) == [("BTS", "bts", "4-50", "reproduced")]
    assert _cells(table, ("BTS", "bts", "4-50", "reproduced"), OCC) == [0.88, 0.6, 0.55, 0.7, 0.65, 0.5]
    text = caption(table, {"scans": 300})
    assert "4-50 m" in text and "300 aggregated lidar scans" in text and "Reported:" not in text


def test_depth_and_pseudo_depth_tables(results):
    table = depth_table(results, REGISTRY)
    assert list(table.columns) == [*DEPTH, "Frames"]
    assert [key[1:] for key in table.index if key[3] == "reproduced"] == \
        [("vipocc", "rendered", "reproduced"), ("vipocc", "predicted", "reproduced")]  # bts: folder but no summary
    rendered = ("ViPOcc", "vipocc", "rendered")
    assert _cells(table, (*rendered, "reported"), DEPTH) == [0.097, 0.446, 3.383, 0.188, 0.886, 0.956, 0.980]
    assert _cells(table, (*rendered, "delta"), DEPTH) == pytest.approx([0.003, 0.054, 0.117, 0.002, -0.006, -0.006,
                                                                       0.0])
    # tolerances 0.005 / 0.03 / 0.1 / 0.005 / 0.01: Sq Rel and RMSE are out
    assert _cells(table, (*rendered, "within_tolerance"), DEPTH) == [True, False, False, True, True, True, True]
    prior = pseudo_depth_table(results, REGISTRY)
    assert list(prior.index)[0] == ("Depth Anything V2", "depth_prior", "median", "reproduced")
    assert len(prior) == 4  # the unscaled prior was not evaluated: no row
    assert prior.loc[("Depth Anything V2", "depth_prior", "median", "within_tolerance"), "Abs Rel"] is False
    text = caption(prior)
    assert "per-image median scaling" in text and "real model, backend depth_anything" in text
    assert "Dataset: kitti360" in text and "SYNTHETIC" not in text


def test_synthetic_world_rows_and_captions(synthetic):
    table = occupancy_table(synthetic, REGISTRY, "4-20")
    exact = table.loc[("ViPOcc", "vipocc_official", "4-20", "reproduced_exact"), OCC].tolist()
    assert exact == pytest.approx([v - 0.1 for v in (0.930, 0.710, 0.690, 0.785, 0.680, 0.650)])
    text = caption(table, {"scans": 300})
    assert "SYNTHETIC" in text and "NOT comparable" in text and "reproduced_exact" in text
    assert "SIMULATED stand-in" in text and "as recorded by the depth evaluations" in text
    prior = pseudo_depth_table(synthetic, REGISTRY)
    assert prior.index[0][0] == "Depth Anything V2 (simulated prior)"


def test_caption_states_protocol(results):
    text = caption(occupancy_table(results, REGISTRY, "4-20"), {"scans": 300})
    for part in ("3D occupancy on KITTI-360, 4-20 m", "Range z = 4-20 m", "300 aggregated lidar scans",
                 "Split: test (splits/test_files.txt), 3 frames evaluated (reported: 446)", "Dataset: kitti360",
                 "fengyi233/ViPOcc scripts/eval.sh @ de0ff2c", f"Git commit: {fake.COMMIT}",
                 "Scaling: not applicable", "Depth prior: real model, backend depth_anything"):
        assert part in text, part
    assert "count not recorded" in caption(occupancy_table(results, REGISTRY, "4-20"))
    depth_text = caption(depth_table(results, REGISTRY))
    assert "metric depth, no scaling" in depth_text and "one lidar scan" in depth_text


def test_ablation_table(results, tmp_path):
    table = ablation_table(results)
    assert list(table.index) == [("vipocc (full model)", "vipocc", "4-20", "reproduced"),
                                 ("vipocc_no_ta", "vipocc_no_ta", "4-20", "reproduced"),
                                 ("vipocc_no_ta", "vipocc_no_ta", "4-20", "delta_vs_vipocc")]
    delta = table.loc[("vipocc_no_ta", "vipocc_no_ta", "4-20", "delta_vs_vipocc")]
    assert delta["Scene O_acc"] == pytest.approx(0.85 - 0.90) and delta["Abs Rel (rendered)"] == pytest.approx(0.02)
    assert math.isnan(delta["Abs Rel (predicted)"])  # the ablation has no predicted-depth result
    assert "no reported ablation numbers" in caption(table)
    empty = ablation_table(collect_results(fake.build(tmp_path / "plain", ablation=False)))
    assert empty.empty and "No ablation was run" in caption(empty)
    assert list(ablation_table(results, experiments=["bts", "vipocc"]).index) == []  # main rows are not ablations


def test_write_table_csv_and_latex(results, tmp_path):
    table = occupancy_table(results, REGISTRY, "4-20")
    paths = write_table(table, "Caption with 50% & under_score", tmp_path / "out", "occupancy_4-20")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["occupancy_4-20.csv", "occupancy_4-20.tex"]
    back = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False)  # the cells as written
    assert list(back.columns) == ["method", "model", "setting", "quantity", *OCC, "Frames"]
    assert float(back.loc[2, "Scene O_acc"]) == table.iloc[2]["Scene O_acc"]  # the raw delta, bit for bit
    assert back.loc[7].tolist()[3:] == ["within_tolerance", "False", "True", "True", "True", "True", "False", ""]
    assert back.loc[4, "Object IE_rec"] == "" and back.loc[4, "Frames"] == "3"  # NaN -> empty cell
    tex = paths["tex"].read_text()
    assert r"\caption{Caption with 50\% \& under\_score}" in tex and r"\label{tab:occupancy_4-20}" in tex
    assert r"ViPOcc & vipocc\_official & 4-20 & reproduced & 0.930 & 0.710" in tex
    assert r" &  & 4-20 & delta & +0.003 & -0.003 & +0.004 & -0.005 & -0.005 & +0.007 & - \\" in tex
    assert r"within\_tolerance & no & yes" in tex and "Scene O\\_acc" in tex
    cells = format_cells(table)
    assert cells.loc[1, "method"] == "" and cells.loc[4, "model"] == "vipocc"  # repeated labels blanked
    with pytest.raises(ValueError, match="name"):
        write_table(table, "", tmp_path, "a/b")


def test_publish_and_index(results, tmp_path):
    first = publish_table(occupancy_table(results, REGISTRY, "4-20"), tmp_path, "occupancy_4-20", {"scans": 300})
    second = publish_table(ablation_table(results), tmp_path, "ablations")
    index = json.loads(write_index(tmp_path, [first, second], eval_root="x").read_text())
    assert index["eval_root"] == "x"
    assert [(t["name"], t["csv"], t["tex"], t["models"]) for t in index["tables"]] == [
        ("occupancy_4-20", "occupancy_4-20.csv", "occupancy_4-20.tex", ["vipocc_official", "vipocc"]),
        ("ablations", "ablations.csv", "ablations.tex", ["vipocc", "vipocc_no_ta"])]
    assert index["tables"][0]["caption"] == first.caption and "300 aggregated" in first.caption
    assert "<caption" in first.styler.to_html()
    with pytest.raises(ValueError, match="duplicate"):
        write_index(tmp_path, [first, first])


def test_no_results_make_empty_tables(tmp_path):
    empty = collect_results(tmp_path)
    for table in (occupancy_table(empty, REGISTRY), depth_table(empty, REGISTRY), pseudo_depth_table(empty, REGISTRY)):
        assert table.empty and "No evaluation results" in caption(table)
