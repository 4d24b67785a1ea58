"""The Snakemake workflow itself: lint-clean, the DAG builds, and a bad config fails before any job runs."""
import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")


def snakemake(*args, cwd=ROOT):
    # Jobs call the `vipocc` console script: make the one of this interpreter's environment the first found.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([SNAKEMAKE, "-s", str(ROOT / "Snakefile"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env)


def test_lint_is_clean():
    result = snakemake("--lint", "--configfile", str(ROOT / "config.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dry_run_of_default_target_plans_the_world(tmp_path):
    result = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), "--configfile",
                       str(ROOT / "config.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "synthesize_world" in result.stdout


@pytest.mark.parametrize("override, message", [
    ("synthetic={'preset': 'huge'}", "'huge' is not one of"),
    ("dataset={'kind': 'kitti360', 'root': '/no/such/folder'}", "/no/such/folder"),
])
def test_bad_config_stops_before_any_job(tmp_path, override, message):
    result = snakemake("-n", "--cores", "1", "--directory", str(tmp_path), "--configfile",
                       str(ROOT / "config.yaml"), "--config", override)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


SMOKE_OVERRIDES = """
synthetic: {preset: smoke}
preprocess: {image_size: [64, 224], fisheye_rotation: [0, -15]}
priors: {snog: {num_patches: 16, n_sets: 5}}
training: {encoder_depth: 18, batch_size: 1, ray_batch_size: 256, depth_ray_batch_size: 128, max_steps: 3,
           validate_every: 3, validation_frames: 2, checkpoint_every: 3, log_every: 1, n_samples: 16}
evaluation: {demo: {frames: 1}}
"""


def test_default_target_end_to_end_on_the_smoke_world_and_rerun_does_nothing(tmp_path):
    """Every stage of the default target (world, preprocessing, GT, priors, training, evaluation) at smoke size."""
    (tmp_path / "smoke.yaml").write_text(SMOKE_OVERRIDES)
    args = ("--cores", "2", "--directory", str(tmp_path), "--configfile", str(ROOT / "config.yaml"),
            str(tmp_path / "smoke.yaml"))
    first = snakemake(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    results = tmp_path / "results"
    assert (results / "world" / "world.json").is_file()
    assert (results / "logs" / "synthesize_world.log").is_file()
    assert (results / "benchmarks" / "synthesize_world.tsv").is_file()
    assert not list((results / "world").glob(".staging-*"))
    for model in ("bts", "vipocc"):
        card = json.loads((results / "train" / model / "model.json").read_text())
        assert card["steps"] == 3
        for evaluator in ("occupancy_4-20", "occupancy_4-50", "voxel", "depth_rendered"):
            summary = json.loads((results / "eval" / model / evaluator / "summary.json").read_text())
            assert summary["provenance"]["git_commit"] and summary["metrics"]
            assert all(v is None or math.isfinite(v) for v in summary["metrics"].values())
    pseudo = json.loads((results / "eval" / "depth_prior" / "pseudo_depth_median" / "summary.json").read_text())
    assert 0 < pseudo["metrics"]["abs_rel"] < 1
    check_report(results / "report")
    again = snakemake(*args)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    check_one_loss_weight_retrains_one_experiment(args, tmp_path)


def _table(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _finite_reproduced(rows, model, columns):
    row = next(r for r in rows if r["model"] == model and r["quantity"] == "reproduced")
    return all(math.isfinite(float(row[c])) for c in columns)


def check_report(report):
    """The rendered notebooks hold every paper table (expected rows, finite numbers) and every figure."""
    for name in ("tables", "figures"):
        assert (report / f"{name}.ipynb").is_file()
        assert "<html" in (report / f"{name}.html").read_text()[:2000].lower()
    index = json.loads((report / "tables" / "tables.json").read_text())
    assert {t["name"] for t in index["tables"]} >= {"occupancy_4-20", "occupancy_4-50", "depth_kitti360",
                                                    "pseudo_depth", "ablations"}
    occupancy = _table(report / "tables" / "occupancy_4-20.csv")
    scene = ["Scene O_acc", "Scene IE_acc", "Scene IE_rec"]
    for model in ("bts", "vipocc"):
        assert _finite_reproduced(occupancy, model, scene)
        assert any(r["model"] == model and r["quantity"] == "reported" for r in occupancy)
    reported = next(r for r in occupancy if r["model"] == "vipocc" and r["quantity"] == "reported")
    assert float(reported["Scene O_acc"]) == 0.927  # the registry's number, placed next to ours
    depth = _table(report / "tables" / "depth_kitti360.csv")
    assert {(r["model"], r["setting"]) for r in depth if r["quantity"] == "reproduced"} == {
        ("vipocc", "rendered"), ("vipocc", "predicted"), ("bts", "rendered")}
    assert all(_finite_reproduced([r], r["model"], ["Abs Rel", "RMSE"]) for r in depth if r["quantity"] == "reproduced")
    pseudo = _table(report / "tables" / "pseudo_depth.csv")
    assert {r["setting"] for r in pseudo if r["quantity"] == "reproduced"} == {"median", "none"}
    assert (report / "tables" / "occupancy_4-20.tex").read_text().count("\\begin{table") <= 1
    figures = json.loads((report / "figures" / "figures.json").read_text())
    assert {"qualitative", "training_curves", "gt_vs_truth", "snog_vs_random", "occupancy_errors_vipocc"} <= set(
        figures["figures"]), figures.get("skipped")
    for name, files in figures["figures"].items():
        assert (report / "figures" / f"{name}.png").stat().st_size > 1000
        assert (report / "figures" / f"{name}.pdf").is_file()


def check_one_loss_weight_retrains_one_experiment(args, tmp_path):
    """Changing a ViPOcc loss weight plans: train vipocc, its evaluations and the report; BTS stays as it is."""
    (tmp_path / "weight.yaml").write_text("training: {experiments: {vipocc: {lambda_depth_recon: 0.01}}}\n")
    plan = snakemake("-n", *args, str(tmp_path / "weight.yaml"))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    planned = " ".join(line for line in plan.stdout.splitlines() if line.strip().startswith("output:"))
    assert "results/train/vipocc/model.pt" in planned and "results/train/bts/model.pt" not in planned
    assert "results/eval/bts/" not in planned and "results/eval/vipocc/occupancy_4-20/summary.json" in planned
    assert "results/report/tables.html" in planned and "results/report/figures.html" in planned


def test_ablations_target_plans_every_ablation_and_its_report(tmp_path):
    result = snakemake("-n", "ablations", "--cores", "2", "--directory", str(tmp_path), "--configfile",
                       str(ROOT / "config.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    planned = " ".join(line for line in result.stdout.splitlines() if line.strip().startswith("output:"))
    for name in ("vipocc_no_ta", "vipocc_no_rc", "vipocc_res_depth", "vipocc_depth", "vipocc_snog"):
        assert f"results/train/{name}/model.pt" in planned
        assert f"results/eval/{name}/occupancy_4-20/summary.json" in planned
    assert "results/report/ablations.html" in planned


def test_inconsistent_experiment_settings_fail_before_any_job(tmp_path):
    """1024 rays are 16 patches: 2 x 16 SNOG anchors leave none for the fisheye loss views."""
    (tmp_path / "snog.yaml").write_text("training: {experiments: {vipocc_snog: {snog_anchors_per_view: 16}}}\n")
    result = snakemake("-n", "results/train/vipocc_snog/model.pt", "--cores", "2", "--directory", str(tmp_path),
                       "--configfile", str(ROOT / "config.yaml"), str(tmp_path / "snog.yaml"))
    assert result.returncode != 0
    assert "vipocc_snog.snog_anchors_per_view = 16" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()
