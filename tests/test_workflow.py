"""The Snakemake workflow itself: lint-clean, the DAG builds, and a bad config fails before any job runs."""
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


def test_smoke_world_end_to_end_and_rerun_does_nothing(tmp_path):
    args = ("--cores", "2", "--directory", str(tmp_path), "--configfile", str(ROOT / "config.yaml"),
            "--config", "synthetic={'preset': 'smoke'}")
    first = snakemake(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    world = tmp_path / "results" / "world"
    assert (world / "world.json").is_file() and (world / "kitti360" / "calibration" / "perspective.txt").is_file()
    assert (tmp_path / "results" / "logs" / "synthesize_world.log").is_file()
    assert (tmp_path / "results" / "benchmarks" / "synthesize_world.tsv").is_file()
    assert not list(world.glob(".staging-*"))
    again = snakemake(*args)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
