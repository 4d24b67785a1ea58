"""presets/kitti360.yaml (the paper preset) and the parse-time preflight of real KITTI-360 inputs: the preset holds
the paper's settings whatever config.yaml says, a run with its placeholders stops at once listing every missing
input, and with the inputs present (the smoke world as a KITTI-360 root, fake model files) the DAG builds in both
split modes."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from vipocc.config import load_config, read_yaml, validate_config

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "presets" / "kitti360.yaml"
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
KITTI360_SEQUENCES = ["2013_05_28_drive_0000_sync", "2013_05_28_drive_0002_sync", "2013_05_28_drive_0003_sync",
                      "2013_05_28_drive_0004_sync", "2013_05_28_drive_0005_sync", "2013_05_28_drive_0006_sync",
                      "2013_05_28_drive_0007_sync", "2013_05_28_drive_0009_sync", "2013_05_28_drive_0010_sync"]
EVALUATORS = ("evaluate_occupancy", "evaluate_depth", "evaluate_pseudo_depth", "evaluate_demo")


def dry_run(workdir: Path, *configfiles: Path) -> tuple[int, str, dict[str, int]]:
    """`snakemake -n` of the repository's Snakefile with config.yaml, the preset and `configfiles` merged in that
    order (what `snakemake --configfile presets/kitti360.yaml ...` does from the repository). Returns the exit code,
    stdout + stderr, and the job count per rule."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([SNAKEMAKE, "-n", "-s", str(ROOT / "Snakefile"), "--cores", "1", "--directory",
                             str(workdir), "--configfile", str(ROOT / "config.yaml"), str(PRESET),
                             *map(str, configfiles)], capture_output=True, text=True, timeout=300, env=env)
    counts = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return result.returncode, result.stdout + result.stderr, counts


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def fake_models(folder: Path) -> dict:
    """Config blocks pointing every local model of the preset at empty stand-ins (the dry run only needs paths)."""
    for name in ("depth_anything", "grounding_dino", "sam"):
        (folder / name).mkdir(parents=True)
    for name in ("resnet50.pth", "resnet18.pth"):
        (folder / name).write_bytes(b"")
    for name in ("GT_Occ", "Object_Label"):
        (folder / "kyn" / name).mkdir(parents=True)
    return {"priors": {"depth": {"model_path": str(folder / "depth_anything")},
                       "instances": {"dino_path": str(folder / "grounding_dino"), "sam_path": str(folder / "sam")}},
            "training": {"encoder_weights": str(folder / "resnet50.pth"),
                         "depth_encoder_weights": str(folder / "resnet18.pth")},
            "occupancy_gt": {"path": str(folder / "kyn")}}


def split_sequences(split_dir: Path, split: str) -> list[str]:
    return sorted({line.split()[0] for line in (split_dir / f"{split}_files.txt").read_text().splitlines() if line})


# ------------------------------------------------------------------------------------------------ the preset


def test_preset_is_valid_and_holds_the_paper_settings():
    config = load_config(PRESET)
    dataset, training = config["dataset"], config["training"]
    assert (dataset["kind"], dataset["splits"], dataset["split_dir"]) == ("kitti360", "official", None)
    assert dataset["sequences"] == KITTI360_SEQUENCES
    assert config["preprocess"]["image_size"] == [192, 640] and config["preprocess"]["fisheye_rotation"] == [0, -15]
    assert config["priors"]["depth"]["backend"] == "depth_anything" and config["priors"]["depth"]["max_depth"] == 80
    assert config["priors"]["instances"]["backend"] == "grounded_sam"
    assert (training["encoder_depth"], training["depth_encoder_depth"], training["batch_size"]) == (50, 18, 8)
    assert (training["ray_batch_size"], training["depth_ray_batch_size"], training["n_samples"]) == (4096, 2048, 64)
    assert (training["epochs"], training["max_steps"], training["lr"], training["lr_step"]) == (25, None, 1e-4, 120000)
    assert training["validation_frames"] is None and training["default_experiments"] == ["bts", "vipocc"]
    assert config["occupancy_gt"]["aggregate_scans"] == 300 and config["occupancy_gt"]["source"] == "path"
    assert config["evaluation"]["occupancy"]["z_ranges"] == [[20, 4], [50, 4]]
    # Paper values that config.yaml shrinks for the synthetic world are the schema defaults: the preset keeps them.
    defaults = validate_config({"dataset": {"kind": "kitti360", "root": "/x"}})
    for key in ("batch_size", "ray_batch_size", "depth_ray_batch_size", "max_steps", "validate_every",
                "validation_frames", "checkpoint_every", "log_every", "encoder_depth", "epochs", "lr"):
        assert training[key] == defaults["training"][key], key


def test_preset_overrides_everything_config_yaml_sets():
    """Snakemake merges --configfile over the Snakefile's config.yaml key by key: nothing may leak through."""
    merged = read_yaml(ROOT / "config.yaml")
    update_config(merged, read_yaml(PRESET))
    assert validate_config(merged) == load_config(PRESET)


# ------------------------------------------------------------------------------------------------ preflight


def test_placeholders_stop_the_run_listing_every_missing_input(tmp_path):
    preset = read_yaml(PRESET)
    if Path(preset["dataset"]["root"]).exists():
        pytest.skip(f"{preset['dataset']['root']} exists on this machine")
    code, output, _ = dry_run(tmp_path)
    assert code != 0
    expected = {"dataset.root": preset["dataset"]["root"],
                "priors.depth.model_path": preset["priors"]["depth"]["model_path"],
                "priors.instances.dino_path": preset["priors"]["instances"]["dino_path"],
                "priors.instances.sam_path": preset["priors"]["instances"]["sam_path"],
                "training.encoder_weights": preset["training"]["encoder_weights"],
                "training.depth_encoder_weights": preset["training"]["depth_encoder_weights"],
                "occupancy_gt.path": preset["occupancy_gt"]["path"]}
    lines = [line for line in output.splitlines() if line.startswith("  - ")]
    for key, path in expected.items():
        assert any(key in line and path in line for line in lines), (key, output)
    assert f"{len(expected)} missing" in output
    assert not (tmp_path / "results").exists()


def _skeleton(root: Path, sequences: list[str]) -> None:
    """Every path the preflight checks, as empty files and folders."""
    for name in ("perspective.txt", "calib_cam_to_pose.txt", "calib_cam_to_velo.txt", "image_02.yaml",
                 "image_03.yaml"):
        (root / "calibration").mkdir(parents=True, exist_ok=True)
        (root / "calibration" / name).write_text("")
    for seq in sequences:
        for folder in ("data_2d_raw/{s}/image_00/data_rect", "data_2d_raw/{s}/image_01/data_rect",
                       "data_2d_raw/{s}/image_02/data_rgb", "data_2d_raw/{s}/image_03/data_rgb",
                       "data_3d_raw/{s}/velodyne_points/data", "data_poses/{s}", "data_3d_bboxes/train"):
            (root / folder.format(s=seq)).mkdir(parents=True, exist_ok=True)
        (root / "data_poses" / seq / "poses.txt").write_text("")
        (root / "data_3d_bboxes" / "train" / f"{seq}.xml").write_text("")


def test_preflight_reports_every_missing_piece_at_once(tmp_path):
    first, second = "2013_05_28_drive_0000_sync", "2013_05_28_drive_0002_sync"
    root = tmp_path / "KITTI-360"
    _skeleton(root, [first, second])
    # What a half-finished download looks like: one calibration file, one image folder, one pose file and all
    # lidar scans missing.
    (root / "calibration" / "image_03.yaml").unlink()
    (root / "data_2d_raw" / first / "image_01" / "data_rect").rmdir()
    (root / "data_poses" / second / "poses.txt").unlink()
    shutil.rmtree(root / "data_3d_raw")
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "train_files.txt").write_text(f"{first} 0000000001 l\n{second} 0000000005 r\n")
    (splits / "test_files.txt").write_text(f"{first} 0000000003 l\n")  # val_files.txt is missing
    models = fake_models(tmp_path / "models")
    shutil.rmtree(tmp_path / "models" / "sam")
    overrides = {**models, "dataset": {"root": str(root), "splits": "path", "split_dir": str(splits)},
                 "evaluation": {"official_checkpoints": {"vipocc": str(tmp_path / "ViPOcc-KITTI-360.pt")}}}
    code, output, _ = dry_run(tmp_path / "work", write_yaml(tmp_path / "overrides.yaml", overrides))
    assert code != 0
    lines = [line[4:] for line in output.splitlines() if line.startswith("  - ")]
    expected = [("dataset.root", root / "calibration" / "image_03.yaml"),
                ("dataset.root", root / "data_2d_raw" / first / "image_01" / "data_rect"),
                ("dataset.root", root / "data_poses" / second / "poses.txt"),
                ("dataset.root", root / "data_3d_raw"),  # one line for the whole folder, not one per sequence
                ("dataset.split_dir", splits / "val_files.txt"),
                ("priors.instances.sam_path", tmp_path / "models" / "sam"),
                ("evaluation.official_checkpoints.vipocc", tmp_path / "ViPOcc-KITTI-360.pt")]
    for key, path in expected:
        assert sum(line.startswith(key) and f"{path} " in line for line in lines) == 1, (key, path, output)
    assert len(lines) == len(expected), output
    assert "download_3d_velodyne.sh" in output  # says what to do


# ------------------------------------------------------------------------------------------------ DAG with inputs


def _smoke_overrides(smoke_world: Path, tmp_path: Path, **dataset) -> Path:
    sequences = split_sequences(smoke_world / "splits" / "kitti360", "train") + split_sequences(
        smoke_world / "splits" / "kitti360", "val") + split_sequences(smoke_world / "splits" / "kitti360", "test")
    overrides = {**fake_models(tmp_path / "models"),
                 "dataset": {"root": str(smoke_world / "kitti360"), "sequences": sorted(set(sequences)), **dataset}}
    return write_yaml(tmp_path / "overrides.yaml", overrides)


def _assert_plans_every_stage(counts: dict[str, int], sequences: int, test_sequences: int) -> None:
    for rule in ("preprocess_sequence", "depth_gt_sequence", "depth_prior_sequence", "instance_prior_sequence",
                 "snog_anchors_sequence"):
        assert counts.get(rule) == sequences, (rule, counts)
    assert counts.get("occupancy_gt_sequence") == test_sequences, counts
    assert counts.get("train") == 2, counts  # bts and vipocc
    for rule in EVALUATORS:
        assert counts.get(rule, 0) >= 1, (rule, counts)
    assert "synthesize_world" not in counts and "voxel_gt_sequence" not in counts


def test_dag_builds_with_split_files_from_a_path(smoke_world, tmp_path):
    split_dir = smoke_world / "splits" / "kitti360"
    overrides = _smoke_overrides(smoke_world, tmp_path, splits="path", split_dir=str(split_dir))
    code, output, counts = dry_run(tmp_path / "work", overrides)
    assert code == 0, output
    _assert_plans_every_stage(counts, sequences=3, test_sequences=len(split_sequences(split_dir, "test")))
    assert "fetch_splits" not in counts


def test_dag_builds_before_the_official_files_are_fetched(smoke_world, tmp_path):
    """Needs rules/splits.smk included and split_files() / split_sequences() wired into the stage rules."""
    overrides = _smoke_overrides(smoke_world, tmp_path, splits="official")
    work = tmp_path / "work"
    code, output, counts = dry_run(work, overrides)
    assert code == 0, output
    assert counts.get("fetch_splits") == 1, counts
    # Until the files exist every planned sequence counts as a test sequence (each official split names all nine).
    _assert_plans_every_stage(counts, sequences=3, test_sequences=3)

    # Once they are there (here: the smoke world's files standing in for the fetched ones), they decide the jobs
    # and nothing is fetched again.
    fetched = work / "results" / "splits" / "kitti360"
    shutil.copytree(smoke_world / "splits" / "kitti360", fetched)
    code, output, counts = dry_run(work, overrides)
    assert code == 0, output
    assert "fetch_splits" not in counts
    _assert_plans_every_stage(counts, sequences=3, test_sequences=len(split_sequences(fetched, "test")))

    # ... and must agree with dataset.sequences, which planned the DAG before the fetch.
    wrong = write_yaml(tmp_path / "wrong.yaml", {"dataset": {"sequences": ["2013_05_28_drive_0000_sync"]}})
    code, output, _ = dry_run(work, overrides, wrong)
    assert code != 0 and "dataset.sequences differs" in output and "2013_05_28_drive_0004_sync" in output
