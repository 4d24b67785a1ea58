"""The priors stage end to end: the `vipocc` subcommands (simulated and real backends) and the Snakemake rules.

Truths: the reference layout written by hand; the oracle's car ids; tiny random-weight Depth Anything V2,
Grounding DINO and SAM built from configs (vipocc.priors.tiny_models) run directly through the library for the
expected outputs; hashlib for the weights' sha256; the PNG decoder for the figure; Snakemake's own dry run / run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from vipocc.data.poses import load_poses
from vipocc.data.preprocess import preprocess_sequence
from vipocc.priors import commands
from vipocc.priors.stage import View, depth_prior_path, detections_path, instance_mask_path, snog_anchor_path

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
SEQ = "2013_05_28_drive_0004_sync"
SIZE = [64, 192]
FOLDER = "data_64x192"
SMALL_SNOG = {"num_patches": 16, "n_sets": 5}


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def config_json(priors: dict | None = None) -> str:
    return json.dumps({"dataset": {"kind": "synthetic"}, "preprocess": {"image_size": SIZE},
                       "priors": {"snog": SMALL_SNOG, **(priors or {})}})


@pytest.fixture(scope="module")
def prepared(smoke_world, tmp_path_factory):
    """SEQ preprocessed at SIZE: (raw root, derived root, posed frames)."""
    raw = smoke_world / "kitti360"
    derived = tmp_path_factory.mktemp("derived")
    preprocess_sequence(raw, derived, SEQ, image_size=SIZE, progress=False)
    return raw, derived, [int(f) for f in load_poses(raw, SEQ).frames]


def _fresh_root(derived: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    (target / "data_2d_raw").symlink_to(derived / "data_2d_raw", target_is_directory=True)
    return target


def _manifest(root: Path, stage: str) -> dict:
    return json.loads((root / "manifests" / stage / f"{SEQ}.json").read_text())


def _views(frames, cameras=("image_00", "image_01")):
    return [View(SEQ, cam, FOLDER, frame) for cam in cameras for frame in frames]


# --------------------------------------------------------------------------------------------- simulated


def test_cli_simulated_priors_end_to_end(prepared, tmp_path):
    raw, derived, frames = prepared
    root = _fresh_root(derived, tmp_path / "derived")
    common = ("--seq", SEQ, "--out", str(root), "--raw-root", str(raw), "--no-progress")
    for command in ("depth-prior", "instance-prior", "snog-anchors"):
        assert run_cli(command, "--config-json", config_json(), *common) == 0
    figure = tmp_path / "figures" / f"{SEQ}_depth_prior.png"
    assert run_cli("depth-prior-figure", "--config-json", config_json(), "--seq", SEQ, "--out", str(root),
                   "--raw-root", str(raw), "--figure", str(figure)) == 0

    views = _views(frames)
    for stage in ("depth_prior", "instance_prior", "snog_anchors"):
        manifest = _manifest(root, stage)
        assert manifest["prior"]["backend"] == "simulated" and manifest["prior"]["simulated"] is True
        assert "SIMULATED" in manifest["prior"]["note"]
        assert (manifest["images"], manifest["written"], manifest["skipped"]) == (len(views), len(views), 0)
        assert manifest["images_per_second"] > 0
    assert _manifest(root, "depth_prior")["files"] == sorted(
        f"depth/{SEQ}/{v.camera}/{FOLDER}/{v.frame:010d}.npy" for v in views)
    for view in views:
        assert np.load(depth_prior_path(root, view)).shape == tuple(SIZE)
        assert detections_path(root, view).is_file() and instance_mask_path(root, view).is_file()
        assert np.load(snog_anchor_path(root, view)).shape == (5, 16, 2)
    image = cv2.imread(str(figure))
    assert image is not None and image.shape[1] > 3 * SIZE[1]

    # a rerun finds everything done; a changed seed redoes the depth maps (and only those)
    before = np.load(depth_prior_path(root, views[0]))
    assert run_cli("depth-prior", "--config-json", config_json(), *common) == 0
    assert _manifest(root, "depth_prior")["written"] == 0
    changed = config_json({"depth": {"seed": 5}})
    assert run_cli("depth-prior", "--config-json", changed, *common) == 0
    assert _manifest(root, "depth_prior")["written"] == len(views)
    assert not np.array_equal(np.load(depth_prior_path(root, views[0])), before)
    assert run_cli("snog-anchors", "--config-json", changed, *common) == 0  # snog settings unchanged
    assert _manifest(root, "snog_anchors")["written"] == 0


def test_cli_refuses_real_backends_without_weights_and_simulation_of_real_data(prepared, tmp_path):
    raw, derived, _ = prepared
    common = ("--seq", SEQ, "--out", str(tmp_path), "--raw-root", str(raw), "--no-progress")
    from vipocc.config import ConfigError

    with pytest.raises(ConfigError, match="priors.depth.model_path"):
        run_cli("depth-prior", "--config-json", config_json({"depth": {"backend": "depth_anything"}}), *common)
    with pytest.raises(ConfigError, match="dino_path and sam_path"):
        run_cli("instance-prior", "--config-json", config_json({"instances": {"backend": "grounded_sam"}}), *common)
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        run_cli("depth-prior", "--config-json", config_json(
            {"depth": {"backend": "depth_anything", "model_path": str(tmp_path / "no_such_model")}}), *common)
    real = json.dumps({"dataset": {"kind": "kitti360", "root": str(raw)}, "preprocess": {"image_size": SIZE},
                       "priors": {"depth": {"backend": "simulated"}}})
    with pytest.raises(ValueError, match="oracle"):
        run_cli("depth-prior", "--config-json", real, *common)


# ----------------------------------------------------------------------------------------- real backends


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from vipocc.priors.tiny_models import (build_tiny_depth_anything, build_tiny_depth_anything_pth,
                                           build_tiny_grounding_dino, build_tiny_sam)

    folder = tmp_path_factory.mktemp("models")
    return {"depth": build_tiny_depth_anything(folder / "depth_anything"),
            "pth": build_tiny_depth_anything_pth(folder / "depth_anything_v2_tiny.pth"),
            "dino": build_tiny_grounding_dino(folder / "grounding_dino"), "sam": build_tiny_sam(folder / "sam")}


def _read_images(root: Path, views) -> np.ndarray:
    return np.stack([cv2.imread(str(v.image_path(root)))[..., ::-1] for v in views])


def test_cli_real_backends_with_tiny_models(prepared, tiny_models, tmp_path):
    from vipocc.priors.depth_anything import load_depth_anything, predict_depth
    from vipocc.priors.grounded_sam import detect_instances, load_grounded_sam

    raw, derived, frames = prepared
    root = _fresh_root(derived, tmp_path / "derived")
    picked = frames[:1]
    priors = {"depth": {"backend": "depth_anything", "model_path": str(tiny_models["depth"]), "input_size": 56,
                        "batch_size": 2},
              "instances": {"backend": "grounded_sam", "dino_path": str(tiny_models["dino"]),
                            "sam_path": str(tiny_models["sam"]), "box_threshold": 0.05, "text_threshold": 0.05,
                            "batch_size": 2}}
    common = ("--config-json", config_json(priors), "--seq", SEQ, "--out", str(root), "--raw-root", str(raw),
              "--frames", ",".join(map(str, picked)), "--no-progress", "--device", "cpu")
    assert run_cli("depth-prior", *common) == 0
    assert run_cli("instance-prior", *common) == 0
    assert run_cli("snog-anchors", *common[:-2]) == 0

    views = _views(picked)
    images = _read_images(root, views)
    expected = predict_depth(load_depth_anything(tiny_models["depth"], "cpu"), images, input_size=56)
    written = np.stack([np.load(depth_prior_path(root, v)) for v in views])
    assert written.dtype == np.float32 and written.shape == (len(views), *SIZE)
    np.testing.assert_allclose(written, expected, rtol=1e-5, atol=1e-5)
    assert 0 < written.min() and written.max() < 80

    manifest = _manifest(root, "depth_prior")
    weights = tiny_models["depth"] / "model.safetensors"
    assert manifest["prior"]["simulated"] is False and "note" not in manifest["prior"]
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert manifest["prior"]["weights_sha256"] == {"model.safetensors": digest}
    assert manifest["prior"]["model_path"] == str(tiny_models["depth"])

    models = load_grounded_sam(tiny_models["dino"], tiny_models["sam"], "cpu")
    reference = detect_instances(models, images, box_threshold=0.05, text_threshold=0.05)
    total = 0
    for view, (detections, mask) in zip(views, reference):
        stored = json.loads(detections_path(root, view).read_text())
        assert [d["label"] for d in stored] == [d["label"] for d in detections]
        np.testing.assert_allclose([d["box"] for d in stored], [d["box"] for d in detections], atol=1e-3)
        stored_mask = np.load(instance_mask_path(root, view))
        assert stored_mask.dtype == np.uint8 and np.array_equal(stored_mask, mask)
        assert np.load(snog_anchor_path(root, view)).shape == (5, 16, 2)
        total += len(stored)
    assert total > 0  # the low thresholds make the random detector report boxes
    instances = _manifest(root, "instance_prior")
    assert instances["prior"]["backend"] == "grounded_sam" and set(instances["prior"]["weights_sha256"]) == {
        "dino_path", "sam_path"}
    assert _manifest(root, "snog_anchors")["prior"]["backend"] == "grounded_sam"


def test_cli_reads_the_original_checkpoint(prepared, tiny_models, tmp_path):
    from vipocc.priors.depth_anything import load_depth_anything, predict_depth

    raw, derived, frames = prepared
    root = _fresh_root(derived, tmp_path / "derived")
    priors = {"depth": {"backend": "depth_anything", "model_path": str(tiny_models["pth"]), "input_size": 56,
                        "cameras": ["image_00"]}}
    assert run_cli("depth-prior", "--config-json", config_json(priors), "--seq", SEQ, "--out", str(root),
                   "--raw-root", str(raw), "--frames", str(frames[5]), "--no-progress", "--device", "cpu") == 0
    view = View(SEQ, "image_00", FOLDER, frames[5])
    expected = predict_depth(load_depth_anything(tiny_models["pth"], "cpu"), _read_images(root, [view]), 56)[0]
    np.testing.assert_allclose(np.load(depth_prior_path(root, view)), expected, rtol=1e-5, atol=1e-5)
    assert list(_manifest(root, "depth_prior")["prior"]["weights_sha256"]) == ["depth_anything_v2_tiny.pth"]


# ------------------------------------------------------------------------------------------------ snakemake

SNAKEFILE = f"""
import os
from snakemake.utils import validate

REPO = {str(ROOT)!r}
import vipocc.config; vipocc.config.merge_builtin_experiments(config); validate(config, schema=os.path.join(REPO, "schemas", "config.schema.yaml"))


include: os.path.join(REPO, "rules", "common.smk")
include: os.path.join(REPO, "rules", "synthetic.smk")
include: os.path.join(REPO, "rules", "preprocess.smk")
include: os.path.join(REPO, "rules", "priors.smk")


rule all:
    input:
        priors_targets(),
"""

def _workflow(tmp_path: Path, priors: dict | None = None) -> tuple[Path, dict]:
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    config = {"dataset": {"kind": "synthetic"}, "synthetic": {"preset": "smoke"}, "preprocess": {"image_size": SIZE},
              "priors": {"snog": SMALL_SNOG, **(priors or {})}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    # Rules call the `vipocc` console script of this interpreter's environment.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return tmp_path, {**os.environ, "PATH": path}


def snakemake(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SNAKEMAKE, "-s", str(workdir / "Snakefile"), "--directory", str(workdir),
                           "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args],
                          cwd=workdir, capture_output=True, text=True, timeout=600, env=env)


def _job_counts(output: str) -> dict[str, int]:
    """Rule -> job count from Snakemake's job stats table."""
    counts = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def test_priors_rules_are_lint_clean(tmp_path):
    workdir, env = _workflow(tmp_path)
    result = subprocess.run([SNAKEMAKE, "-s", str(workdir / "Snakefile"), "--configfile", str(workdir / "config.yaml"),
                             "--lint"], cwd=workdir, capture_output=True, text=True, timeout=120, env=env)
    output = result.stdout + result.stderr
    assert "Lints for" in output or result.returncode == 0  # the linter ran (the test Snakefile has its own lints)
    for name in ("priors.smk", "priors_helpers.smk", "depth_prior_sequence", "instance_prior_sequence",
                 "snog_anchors_sequence", "depth_prior_figure"):
        assert name not in output, output


def test_snakemake_plans_one_job_per_sequence(tmp_path):
    workdir, env = _workflow(tmp_path)
    result = snakemake(workdir, env, "-n")
    assert result.returncode == 0, result.stdout + result.stderr
    counts = _job_counts(result.stdout)
    for rule in ("depth_prior_sequence", "instance_prior_sequence", "snog_anchors_sequence", "depth_prior_figure"):
        assert counts.get(rule) == 3, (rule, counts)
    assert counts.get("preprocess_sequence") == 3 and "depth_gt_sequence" not in counts  # the oracle is the reference


def test_snakemake_needs_the_weights_of_a_real_backend(tmp_path):
    workdir, env = _workflow(tmp_path, {"depth": {"backend": "depth_anything"}})
    result = snakemake(workdir, env, "-n")
    assert result.returncode != 0 and "priors.depth.model_path" in result.stdout + result.stderr
    model = tmp_path / "model"
    model.mkdir()
    workdir, env = _workflow(tmp_path, {"depth": {"backend": "depth_anything", "model_path": str(model)}})
    result = snakemake(workdir, env, "-n")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_snakemake_makes_the_priors_of_the_smoke_world(smoke_world, tmp_path):
    workdir, env = _workflow(tmp_path)
    shutil.copytree(smoke_world, workdir / "results" / "world")  # the world the workflow would synthesize
    first = snakemake(workdir, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "synthesize_world" not in _job_counts(first.stdout)
    derived = workdir / "results" / "data" / "kitti360"
    for seq in ("2013_05_28_drive_0000_sync", "2013_05_28_drive_0003_sync", SEQ):
        frames = load_poses(workdir / "results" / "world" / "kitti360", seq).frames
        for stage in ("depth_prior", "instance_prior", "snog_anchors"):
            manifest = json.loads((derived / "manifests" / stage / f"{seq}.json").read_text())
            assert manifest["images"] == 2 * len(frames) and manifest["prior"]["simulated"] is True
        assert (workdir / "results" / "priors" / "figures" / f"{seq}_depth_prior.png").is_file()
        assert (workdir / "results" / "logs" / "depth_prior_sequence" / f"{seq}.log").is_file()
        assert (workdir / "results" / "benchmarks" / "depth_prior_sequence" / f"{seq}.tsv").is_file()
        views = [View(seq, cam, FOLDER, int(f)) for cam in ("image_00", "image_01") for f in frames]
        assert all(depth_prior_path(derived, v).is_file() and snog_anchor_path(derived, v).is_file() for v in views)
    again = snakemake(workdir, env)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_snakemake_runs_the_real_depth_backend_with_a_tiny_model(smoke_world, tiny_models, tmp_path):
    """The rule itself drives the real Depth Anything code path (a tiny random model from a local folder)."""
    priors = {"depth": {"backend": "depth_anything", "model_path": str(tiny_models["depth"]), "input_size": 56}}
    workdir, env = _workflow(tmp_path, priors)
    shutil.copytree(smoke_world, workdir / "results" / "world")
    target = f"results/data/kitti360/manifests/depth_prior/{SEQ}.json"
    result = snakemake(workdir, env, target)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads((workdir / target).read_text())
    assert manifest["prior"]["backend"] == "depth_anything" and manifest["prior"]["simulated"] is False
    frames = load_poses(workdir / "results" / "world" / "kitti360", SEQ).frames
    view = View(SEQ, "image_00", FOLDER, int(frames[0]))
    depth = np.load(depth_prior_path(workdir / "results" / "data" / "kitti360", view))
    assert depth.shape == tuple(SIZE) and np.isfinite(depth).all() and (depth > 0).all()
