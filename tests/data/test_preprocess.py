"""Preprocessing stage (vipocc.data.preprocess, `vipocc preprocess`, rules/preprocess.smk) on the smoke world.

Truth: hand-written folder names and sizes, an independent numpy bilinear resampler fed by the pixel-centre
mapping of cv2.resize and by the devkit-checked MEI projection (vipocc.geometry.cameras.project_mei), file mtimes
(resume), and a Snakemake dry run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vipocc.config import config_hash, validate_config
from vipocc.data import commands
from vipocc.data.calibration import load_calibration
from vipocc.data.poses import load_poses
from vipocc.data.preprocess import (check_split_frames, preprocess_sequence, preprocessed_image_path,
                                    raw_image_path)
from vipocc.geometry.cameras import project_mei

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
SIZE = (64, 208)
FOLDERS = ("data_64x208", "data_64x208_0x-15")  # written by hand: the names the reference would use
SEQ = "2013_05_28_drive_0003_sync"


@pytest.fixture(scope="module")
def processed(smoke_world, tmp_path_factory):
    """The whole sequence SEQ preprocessed once (read-only for the tests that use it)."""
    derived = tmp_path_factory.mktemp("derived")
    stats = preprocess_sequence(smoke_world / "kitti360", derived, SEQ, image_size=SIZE, progress=False)
    return smoke_world / "kitti360", derived, stats


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Plain bilinear interpolation of image [h,w,C] at pixel coordinates x, y [H,W] (zero outside)."""
    h, w = image.shape[:2]
    padded = np.zeros((h + 2, w + 2, image.shape[2]), np.float64)
    padded[1:-1, 1:-1] = image
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    xi = np.clip(x0.astype(int) + 1, 0, w)
    yi = np.clip(y0.astype(int) + 1, 0, h)
    top = padded[yi, xi] * (1 - fx) + padded[yi, xi + 1] * fx
    bottom = padded[yi + 1, xi] * (1 - fx) + padded[yi + 1, xi + 1] * fx
    return top * (1 - fy) + bottom * fy


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]


def test_outputs_exist_with_names_and_sizes(processed):
    raw, derived, stats = processed
    frames = load_poses(raw, SEQ).frames
    assert stats.frames == len(frames) and len(stats.written) == 4 * len(frames) and stats.skipped == 0
    assert stats.folders == FOLDERS
    for cam in range(4):
        folder = derived / "data_2d_raw" / SEQ / f"image_{cam:02d}" / FOLDERS[cam >= 2]
        assert sorted(p.name for p in folder.iterdir()) == [f"{f:010d}.png" for f in frames]
        image = cv2.imread(str(folder / f"{frames[0]:010d}.png"), cv2.IMREAD_UNCHANGED)
        assert image.shape == (*SIZE, 3) and image.dtype == np.uint8
    assert not (raw / "data_2d_raw" / SEQ / "image_00" / FOLDERS[0]).exists()  # raw root never written


def test_perspective_images_are_resized_raw_images(processed):
    """cv2.resize (INTER_LINEAR) samples raw pixel u_raw = (u + 0.5) * W_raw / W - 0.5, clamped at the border."""
    raw, derived, _ = processed
    frame = int(load_poses(raw, SEQ).frames[5])
    for cam in (0, 1):
        source = _read_rgb(raw_image_path(raw, SEQ, cam, frame)).astype(np.float64)
        h, w = source.shape[:2]
        u, v = np.meshgrid(np.arange(SIZE[1]), np.arange(SIZE[0]))
        x = np.clip((u + 0.5) * w / SIZE[1] - 0.5, 0, w - 1)
        y = np.clip((v + 0.5) * h / SIZE[0] - 0.5, 0, h - 1)
        expected = _bilinear(source, x, y)
        ours = _read_rgb(preprocessed_image_path(derived, SEQ, cam, frame, FOLDERS)).astype(np.float64)
        assert np.abs(ours - expected).max() <= 1.0


def test_fisheye_views_sample_the_mei_projection(processed):
    """Virtual pixel (i, j) looks along R K^-1 [linspace(-1,1,W)[i], linspace(-1,1,H)[j], 1]; the reference samples
    the fisheye where the MEI model puts that ray (u_px), read through grid_sample(align_corners=True) of the
    [-1,1]-normalised coordinate 2 u_px / W_f - 1, i.e. at pixel u_px (W_f - 1) / W_f."""
    raw, derived, _ = processed
    calib = load_calibration(raw)
    frame = int(load_poses(raw, SEQ).frames[7])
    H, W = SIZE
    x, y = np.meshgrid(np.linspace(-1, 1, W), np.linspace(-1, 1, H))
    for cam in (2, 3):
        rays = np.stack([x, y, np.ones_like(x)], -1).reshape(-1, 3) @ (calib.R_fisheye[cam]
                                                                       @ np.linalg.inv(calib.K_perspective)).T
        mei = calib.mei[cam]
        uv, valid = project_mei(rays, mei)
        assert valid.all()
        px = (uv[:, 0] * (mei.width - 1) / mei.width).reshape(H, W)
        py = (uv[:, 1] * (mei.height - 1) / mei.height).reshape(H, W)
        expected = _bilinear(_read_rgb(raw_image_path(raw, SEQ, cam, frame)).astype(np.float64), px, py)
        ours = _read_rgb(preprocessed_image_path(derived, SEQ, cam, frame, FOLDERS)).astype(np.float64)
        assert np.abs(ours - expected).max() <= 1.0


def _copy_sequence(smoke_world: Path, dest: Path, seq: str = SEQ) -> Path:
    src = smoke_world / "kitti360"
    shutil.copytree(src / "calibration", dest / "calibration")
    shutil.copytree(src / "data_poses" / seq, dest / "data_poses" / seq)
    shutil.copytree(src / "data_2d_raw" / seq, dest / "data_2d_raw" / seq)
    return dest


def _mtimes(folder: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*.png")}


def test_resume_writes_nothing_and_redoes_only_changed_inputs(smoke_world, tmp_path):
    raw = _copy_sequence(smoke_world, tmp_path / "raw")
    derived = tmp_path / "derived"
    frames = [int(f) for f in load_poses(raw, SEQ).frames[:6]]
    first = preprocess_sequence(raw, derived, SEQ, frames=frames, image_size=SIZE, progress=False)
    assert len(first.written) == 24
    before = _mtimes(derived)
    again = preprocess_sequence(raw, derived, SEQ, frames=frames, image_size=SIZE, progress=False)
    assert again.written == [] and again.skipped == 24 and _mtimes(derived) == before

    # a raw image newer than its output (the output is made older): that one output is redone, nothing else
    stale = preprocessed_image_path(derived, SEQ, 2, frames[4], FOLDERS)
    source_mtime = raw_image_path(raw, SEQ, 2, frames[4]).stat().st_mtime_ns
    os.utime(stale, ns=(source_mtime - 10**9,) * 2)
    redo = preprocess_sequence(raw, derived, SEQ, frames=frames, image_size=SIZE, progress=False)
    assert redo.written == [preprocessed_image_path(derived, SEQ, 2, frames[4], FOLDERS)]
    # an interrupted run (outputs of one frame missing) resumes with exactly that frame
    for cam in range(4):
        preprocessed_image_path(derived, SEQ, cam, frames[1], FOLDERS).unlink()
    resumed = preprocess_sequence(raw, derived, SEQ, frames=frames, image_size=SIZE, progress=False)
    assert sorted(resumed.written) == sorted(preprocessed_image_path(derived, SEQ, c, frames[1], FOLDERS)
                                             for c in range(4))


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "missing", "wrong_size"])
def test_bad_raw_image_is_named_and_leaves_no_partial_output(smoke_world, tmp_path, damage):
    raw = _copy_sequence(smoke_world, tmp_path / "raw")
    derived = tmp_path / "derived"
    frames = [int(f) for f in load_poses(raw, SEQ).frames[:3]]
    bad = raw_image_path(raw, SEQ, 3, frames[1])  # the last camera of the middle frame
    if damage == "corrupt":
        bad.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    elif damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:300])
    elif damage == "missing":
        bad.unlink()
    else:
        cv2.imwrite(str(bad), np.zeros((10, 12, 3), np.uint8))
    error = FileNotFoundError if damage == "missing" else ValueError
    with pytest.raises(error, match=str(bad)):
        preprocess_sequence(raw, derived, SEQ, frames=frames, image_size=SIZE, progress=False)
    for cam in range(4):  # the frame before is complete, the bad frame has no output at all
        assert preprocessed_image_path(derived, SEQ, cam, frames[0], FOLDERS).is_file()
        assert not preprocessed_image_path(derived, SEQ, cam, frames[1], FOLDERS).exists()
    assert not [p for p in derived.rglob("*") if p.is_file() and p.suffix != ".png"]


def test_unposed_frame_and_rotation_mismatch_are_errors(smoke_world, tmp_path):
    raw = smoke_world / "kitti360"
    frames = load_poses(raw, SEQ).frames
    gap = int(np.setdiff1d(np.arange(frames[0], frames[-1]), frames)[0])  # the smoke world has a gap
    with pytest.raises(ValueError, match="poses.txt"):
        preprocess_sequence(raw, tmp_path, SEQ, frames=[gap], image_size=SIZE, progress=False)
    with pytest.raises(ValueError, match="fisheye_rotation"):
        preprocess_sequence(raw, tmp_path, SEQ, frames=[int(frames[0])], image_size=SIZE, fisheye_rotation=(0, -10),
                            calibration=load_calibration(raw, (0, -15)), progress=False)
    assert not any(tmp_path.iterdir())


def test_split_frames_must_be_posed(smoke_world, tmp_path):
    raw = smoke_world / "kitti360"
    frames = load_poses(raw, SEQ).frames
    assert check_split_frames(smoke_world / "splits" / "kitti360", SEQ, frames) > 0
    gap = int(np.setdiff1d(np.arange(frames[0], frames[-1]), frames)[0])
    (tmp_path / "val_files.txt").write_text(f"{SEQ} {frames[0]:010d} l\n{SEQ} {gap:010d} l\n")
    with pytest.raises(ValueError, match=f"val_files.txt.*{gap}"):
        check_split_frames(tmp_path, SEQ, frames)
    with pytest.raises(FileNotFoundError, match="none of the split files"):
        check_split_frames(tmp_path / "nowhere", SEQ, frames)


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_preprocess_command_writes_a_done_manifest(smoke_world, tmp_path):
    config = {"dataset": {"kind": "synthetic"}, "preprocess": {"image_size": list(SIZE)}}
    frames = [int(f) for f in load_poses(smoke_world / "kitti360", SEQ).frames[:4]]
    argv = ["preprocess", "--config-json", json.dumps(config), "--seq", SEQ, "--out", str(tmp_path / "derived"),
            "--raw-root", str(smoke_world / "kitti360"), "--split-dir", str(smoke_world / "splits" / "kitti360"),
            "--frames", ",".join(map(str, frames)), "--threads", "1", "--no-progress"]
    assert _run_cli(*argv) == 0
    path = tmp_path / "derived" / "manifests" / "preprocess" / f"{SEQ}.json"
    manifest = json.loads(path.read_text())
    full = validate_config(config)
    assert manifest["config_hash"] == config_hash({"dataset": full["dataset"], "preprocess": full["preprocess"]})
    expected = sorted(f"data_2d_raw/{SEQ}/image_{c:02d}/{FOLDERS[c >= 2]}/{f:010d}.png"
                      for c in range(4) for f in frames)
    assert manifest["files"] == expected and manifest["written"] == 16
    assert all((tmp_path / "derived" / name).is_file() for name in manifest["files"])
    assert _run_cli(*argv) == 0
    assert json.loads(path.read_text())["written"] == 0


def test_command_needs_an_existing_dataset_root(tmp_path):
    config = {"dataset": {"kind": "synthetic"}}
    with pytest.raises(FileNotFoundError, match="no_world"):
        _run_cli("preprocess", "--config-json", json.dumps(config), "--seq", SEQ, "--out", str(tmp_path),
                 "--raw-root", str(tmp_path / "no_world"))


def test_snakemake_dry_run_plans_one_job_per_sequence(tmp_path):
    """The rules in a workflow made of the repository's rule files (as the Snakefile includes them)."""
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text("\n".join([
        "from snakemake.utils import validate",
        f'configfile: "{ROOT / "config.yaml"}"',
        f'import vipocc.config; vipocc.config.merge_builtin_experiments(config); validate(config, schema="{ROOT / "schemas" / "config.schema.yaml"}")',
        f'include: "{ROOT / "rules" / "common.smk"}"',
        f'include: "{ROOT / "rules" / "synthetic.smk"}"',
        f'include: "{ROOT / "rules" / "preprocess.smk"}"',
        "rule all:",
        "    input: preprocess_targets()",
    ]) + "\n")
    # --config values are parsed as strings by Snakemake: the image size goes through a config file.
    smoke = tmp_path / "smoke.yaml"
    smoke.write_text("synthetic: {preset: smoke}\npreprocess: {image_size: [64, 208]}\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([SNAKEMAKE, "-n", "-s", str(snakefile), "--cores", "2", "--directory",
                             str(tmp_path / "work"), "--configfile", str(ROOT / "config.yaml"), str(smoke)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    sequences = ["2013_05_28_drive_0000_sync", "2013_05_28_drive_0003_sync", "2013_05_28_drive_0004_sync"]
    for rule in ("preprocess_sequence", "depth_gt_sequence"):
        assert f"{rule}" in out
        for seq in sequences:
            assert out.count(f"results/data/kitti360/manifests/{rule.split('_sequence')[0]}/{seq}.json") >= 1
    stats = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
             if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert stats["preprocess_sequence"] == 3 and stats["depth_gt_sequence"] == 3
    assert "verify_checksums" not in stats  # checksums.manifest is null

    # with a manifest, the check runs first and every preprocessing job waits for its report
    manifest = tmp_path / "data.sha256"
    manifest.write_text("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  empty\n")
    smoke.write_text(smoke.read_text() + f"checksums: {{manifest: {manifest}}}\n")
    result = subprocess.run([SNAKEMAKE, "-n", "-s", str(snakefile), "--cores", "2", "--directory",
                             str(tmp_path / "work"), "--configfile", str(ROOT / "config.yaml"), str(smoke)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rule verify_checksums" in result.stdout
    assert result.stdout.count("results/data/kitti360/manifests/checksums.json") >= 7  # output + 6 job inputs
