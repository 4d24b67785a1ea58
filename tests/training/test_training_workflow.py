"""rules/training.smk: one train job per requested experiment, wildcard limited to the configured names, inputs
per experiment (priors only where needed), default targets; and the `train` command's argument errors."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vipocc.config import validate_config
from vipocc.training.commands import main as train_main

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
RULES = ("common", "synthetic", "preprocess", "priors", "training")


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """A Snakefile that includes the repository's rule files (as the lead's Snakefile will) with a `targets`
    rule for training_targets()."""
    folder = tmp_path_factory.mktemp("workflow")
    includes = "\n".join(f'include: "{ROOT}/rules/{name}.smk"' for name in RULES)
    (folder / "Snakefile").write_text(
        "from snakemake.utils import validate\n"
        f'configfile: "{ROOT}/config.yaml"\n'
        f'import vipocc.config; vipocc.config.merge_builtin_experiments(config); validate(config, schema="{ROOT}/schemas/config.schema.yaml")\n'
        f"{includes}\n"
        "rule targets:\n    input: training_targets()\n")
    return folder


def dry_run(workflow, *targets):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([SNAKEMAKE, "-n", "-p", "--cores", "2", "-s", str(workflow / "Snakefile"),
                           "--directory", str(workflow), *targets], capture_output=True, text=True, timeout=300,
                          env=env)


def planned(result) -> dict[str, int]:
    """job name -> count from the dry run's job stats table."""
    lines = result.stdout.split("Job stats:")[1].splitlines()[3:]
    counts = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def test_one_ablation_target_trains_only_that_experiment(workflow):
    result = dry_run(workflow, "results/train/vipocc_no_ta/model.pt")
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = planned(result)
    assert jobs["train"] == 1 and "depth_prior_sequence" in jobs and "snog_anchors_sequence" not in jobs
    assert "--experiment vipocc_no_ta --out results/train/vipocc_no_ta" in result.stdout
    assert "--experiment bts" not in result.stdout


def test_bts_needs_no_priors_and_snog_needs_anchors(workflow):
    bts = planned(dry_run(workflow, "results/train/bts/model.pt"))
    assert bts["train"] == 1 and "depth_prior_sequence" not in bts
    snog = planned(dry_run(workflow, "results/train/vipocc_snog/model.pt"))
    assert snog["train"] == 1 and "snog_anchors_sequence" in snog


def test_default_training_targets_are_bts_and_vipocc(workflow):
    result = dry_run(workflow, "targets")
    assert result.returncode == 0, result.stdout + result.stderr
    assert planned(result)["train"] == 2
    assert "--experiment bts" in result.stdout and "--experiment vipocc " in result.stdout


def test_unconfigured_experiment_has_no_rule(workflow):
    result = dry_run(workflow, "results/train/vipocc_typo/model.pt")
    assert result.returncode != 0 and "No rule to produce results/train/vipocc_typo/model.pt" in result.stdout + \
        result.stderr


def test_train_command_reports_missing_folders_and_experiments(tmp_path, capsys):
    config = json.dumps(validate_config({"dataset": {"kind": "synthetic"}}))
    args = ["train", "--config-json", config, "--out", str(tmp_path / "out"), "--raw-root", str(tmp_path),
            "--split-dir", str(tmp_path)]
    assert train_main([*args, "--experiment", "vipocc", "--derived-root", str(tmp_path / "none")]) == 2
    assert f"derived root {tmp_path / 'none'} is not a folder" in capsys.readouterr().err
    assert train_main([*args, "--experiment", "nope", "--derived-root", str(tmp_path)]) == 2
    assert "experiment 'nope' is not configured" in capsys.readouterr().err
