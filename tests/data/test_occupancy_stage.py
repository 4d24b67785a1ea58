"""The occupancy GT job on the smoke world: lidar GT vs the exact oracle (documented bounds), the reference frame
and scan window, KYN file names / shapes / dtypes, resumability, atomic frames, the report, source: path, the CLI
and the Snakemake dry run.

Measured on the smoke world's test sequence (3 frames, 16-24 scans each, 256-step lidar): visible cells are truly
free in 98.5-100 % of cells per band (99.3 % overall); 99 % of the truly occupied cells at 4-10 m are lidar-occupied.
Lidar-occupied cells are truly occupied *at the slice height* in only 42 % of cases at 4-10 m (55-78 % farther):
the lidar GT keeps every point of the 0.75 m band y in [0, 0.75] and calls a cell occupied when fewer than 3 scans
see through it, so the air above a car's hood (the hood top lies in the band) and the shadows behind parked cars
count as occupied. Within the band's height, 93 % of the 4-10 m lidar-occupied cells hold solid matter (the rest
are shadows). The bounds below sit a little under these numbers.
"""
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
import yaml

from vipocc.data import occupancy_gt as og
from vipocc.data import occupancy_stage as stage
from vipocc.data.gt_commands import register, report_paths
from vipocc.synthetic.oracle import WorldOracle
from vipocc.synthetic.scene import Scene, box_solid

ROOT = Path(__file__).resolve().parents[2]
SEQ = "2013_05_28_drive_0004_sync"
FRAMES = [0, 4, 8]  # the smoke world's test frames (split_stride 4, 24 posed frames, margin 12)


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture(scope="module")
def generated(smoke_world, tmp_path_factory):
    """The CLI run of the whole test sequence (300 scans asked, fewer available) into a fresh derived root."""
    out = tmp_path_factory.mktemp("derived")
    config = json.dumps({"dataset": {"kind": "synthetic"}, "synthetic": {"preset": "smoke"}})
    assert run_cli("occupancy-gt", "--config-json", config, "--seq", SEQ, "--out", str(out), "--raw-root",
                   str(smoke_world / "kitti360"), "--split-dir", str(smoke_world / "splits" / "kitti360"),
                   "--no-progress") == 0
    return out


# ------------------------------------------------------------------------------------------------ geometry


def test_evaluated_frames_come_from_the_test_split(smoke_world):
    split_dir = smoke_world / "splits" / "kitti360"
    assert stage.evaluated_frames(split_dir, SEQ) == FRAMES
    train = [int(line.split()[1]) for line in (split_dir / "train_files.txt").read_text().splitlines()
             if line.startswith("2013_05_28_drive_0000_sync")]
    assert stage.evaluated_frames(split_dir, "2013_05_28_drive_0000_sync", "all") == sorted(set(train))
    with pytest.raises(FileNotFoundError, match="test_files.txt"):
        stage.evaluated_frames(smoke_world, SEQ)


def test_scan_window_goes_forward_and_stops_at_the_sequence_end():
    np.testing.assert_array_equal(stage.scan_window(24, 4, 300), np.arange(4, 24))
    np.testing.assert_array_equal(stage.scan_window(24, 4, 3), [4, 5, 6])
    with pytest.raises(ValueError, match="pose index 24"):
        stage.scan_window(24, 24, 3)


def test_velo_pose_of_the_evaluated_scan_is_the_corrected_velo_to_rect(smoke_world):
    from vipocc.data.calibration import load_calibration
    from vipocc.data.poses import load_poses

    raw = smoke_world / "kitti360"
    calibration, poses = load_calibration(raw), load_poses(raw, SEQ)
    velo, window = stage.velo_poses_for(poses, calibration, 20, 300)
    np.testing.assert_array_equal(window, [20, 21, 22, 23])
    c, s = og.CAM_INCLINATION_COS, og.CAM_INCLINATION_SIN
    A = np.array([[1, 0, 0, 0], [0, c, s, 0], [0, -s, c, 0], [0, 0, 0, 1]])
    # scan 0: the frame's own velodyne, i.e. A @ T_velo_to_rect[0] (calibration computes it independently)
    np.testing.assert_allclose(velo[0], A @ calibration.T_velo_to_rect[0], atol=1e-7)
    # scan t: velodyne t -> world -> reference, composed here from the raw poses
    cam0 = poses.imu_to_world[20] @ calibration.T_rect_to_pose[0]
    expected = A @ np.linalg.inv(cam0) @ poses.imu_to_world[23] @ calibration.T_velo_to_pose
    np.testing.assert_allclose(velo[3], expected, atol=1e-7)


def test_exact_occupancy_of_a_box_matches_hand_geometry():
    scene = Scene.from_solids([box_solid(np.array([10.0, 0.0, 1.0]), np.array([2.0, 4.0, 2.0]), semantic=11,
                                         material=2)])
    # reference frame: x right, y down, z forward = world (-y, -z, x), shifted 10 m up
    world_to_ref = np.array([[0, -1, 0, 0], [0, 0, -1, 10.0], [1, 0, 0, 0], [0, 0, 0, 1.0]])
    points = np.array([[0, 9.0, 10.0], [1.9, 9.5, 9.2], [2.1, 9.0, 10.0], [0, 7.9, 10.0], [0, 9.0, 11.1]])
    np.testing.assert_array_equal(stage.exact_occupancy(scene, points, world_to_ref), [1, 1, 0, 0, 0])


# ------------------------------------------------------------------------------------------------ lidar vs truth


def test_lidar_gt_agrees_with_the_exact_occupancy_where_it_is_visible(generated):
    report = json.loads(report_paths(generated, SEQ)[0].read_text())
    bands = {band["band"]: band for band in report["bands"]}
    assert list(bands) == ["4-10", "10-20", "20-30", "30-50", "all"]
    assert bands["all"]["cells"] == 3 * 460 * 80 and report["frames"] == 3
    for name, band in bands.items():
        assert band["visible"] > 0.5 * band["cells"]
        assert band["visible_truly_free"] >= 0.97, name
        for key in ("visible_truly_free", "invisible_agreement", "lidar_occupied_precision",
                    "exact_occupied_recall", "agreement"):
            assert np.isfinite(band[key]) and 0.0 <= band[key] <= 1.0
    assert bands["all"]["visible_truly_free"] >= 0.99
    assert bands["4-10"]["exact_occupied_recall"] >= 0.95  # near range: truly occupied cells are lidar-occupied
    # counts add up and the fractions are their ratios
    for key in ("cells", "visible", "lidar_occupied", "agree"):
        assert sum(bands[b][key] for b in ("4-10", "10-20", "20-30", "30-50")) == bands["all"][key]
    assert bands["all"]["agreement"] == bands["all"]["agree"] / bands["all"]["cells"]
    csv = report_paths(generated, SEQ)[1].read_text().splitlines()
    assert csv[0].startswith("band,cells,") and len(csv) == 6


def test_lidar_occupied_cells_near_range_are_mostly_truly_occupied_within_the_height_band(smoke_world, generated):
    """KYN's slice stands for the band y in [0, 0.75] m (the lidar points it keeps): a near lidar-occupied cell
    should hold solid matter somewhere in that band above or below it (the rest are shadows nothing saw)."""
    from vipocc.data.calibration import load_calibration
    from vipocc.data.poses import load_poses

    raw = smoke_world / "kitti360"
    calibration, poses = load_calibration(raw), load_poses(raw, SEQ)
    scene = WorldOracle(smoke_world).scene(SEQ)
    near = slice(400, 460)  # rows at z < 10 m of the 50-4 m grid
    assert og.query_grid(og.GT_Z_RANGE)[near, 0, 2].max() < 10
    lidar_occupied = in_band = 0
    for frame in FRAMES:
        occupied, visible = og.load_occupancy_gt(generated / "GT_Occ", SEQ, frame, og.GT_Z_RANGE)
        cells = (occupied & ~visible)[near]
        world_to_ref = stage.world_to_reference(poses.imu_to_world[poses.index_of(frame)], calibration)
        column = np.zeros_like(cells)
        for y in np.linspace(0.0, 0.75, 8):
            column |= stage.exact_occupancy(scene, og.query_grid(og.GT_Z_RANGE, y=y)[near], world_to_ref)
        lidar_occupied += cells.sum()
        in_band += (cells & column).sum()
    assert lidar_occupied > 1000 and in_band / lidar_occupied >= 0.85  # measured 0.93


# ------------------------------------------------------------------------------------------------ files


def test_files_have_the_kyn_names_shapes_and_dtypes(generated):
    for frame in FRAMES:
        stem = f"{SEQ}_{frame:010d}"
        for name in (f"GT_Occ/{stem}_occgt.npy", f"GT_Occ/{stem}_visgt.npy", f"Exact_Occ/{stem}_occ.npy"):
            array = np.load(generated / name, allow_pickle=False)
            assert array.dtype == np.bool_ and array.shape == (460, 80), name
        labels = cv2.imread(str(generated / "Object_Label" / f"{stem}_occgt_anno.png"), cv2.IMREAD_UNCHANGED)
        assert labels.dtype == np.uint8 and labels.shape == (460, 80)
    assert not [p for p in generated.rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".inprogress")]
    manifest = json.loads((generated / "manifests" / "occupancy_gt" / f"{SEQ}.json").read_text())
    assert manifest["scans_used"] == {"0": 24, "4": 20, "8": 16}  # 300 asked, the sequence ends
    assert manifest["frame_numbers"] == FRAMES and manifest["computed"] == 3
    assert all((generated / f).is_file() for f in manifest["files"]) and len(manifest["files"]) == 14


def test_second_run_writes_nothing_and_a_touched_scan_redoes_only_the_frames_that_use_it(smoke_world, tmp_path):
    raw = tmp_path / "kitti360"
    shutil.copytree(smoke_world / "kitti360", raw)
    settings = stage.OccupancyGtSettings(aggregate_scans=5)
    first = stage.occupancy_gt_sequence(raw, tmp_path / "out", SEQ, FRAMES, settings, progress=False)
    assert len(first.written) == 9 and first.skipped == 0
    mtimes = {p: p.stat().st_mtime_ns for p in first.outputs}
    again = stage.occupancy_gt_sequence(raw, tmp_path / "out", SEQ, FRAMES, settings, progress=False)
    assert again.written == [] and again.skipped == 3
    assert {p: p.stat().st_mtime_ns for p in first.outputs} == mtimes
    scan = raw / "data_3d_raw" / SEQ / "velodyne_points" / "data" / f"{6:010d}.bin"  # windows 0-4, 4-8 and 8-12
    os.utime(scan, ns=(max(mtimes.values()) + 10**9,) * 2)
    redo = stage.occupancy_gt_sequence(raw, tmp_path / "out", SEQ, FRAMES, settings, progress=False)
    assert redo.skipped == 2 and {p.name.split("_")[6] for p in redo.written} == {f"{4:010d}"}


def test_bad_scans_fail_with_the_frame_and_file_named_and_leave_no_files(smoke_world, tmp_path):
    raw = tmp_path / "kitti360"
    shutil.copytree(smoke_world / "kitti360", raw)
    scans = raw / "data_3d_raw" / SEQ / "velodyne_points" / "data"
    np.zeros((10, 4), np.float32).tofile(scans / f"{8:010d}.bin")  # a scan the reference would crash on
    with pytest.raises(ValueError, match=rf"(?s){SEQ} frame 8 .*360"):
        stage.occupancy_gt_sequence(raw, tmp_path / "out", SEQ, [8], stage.OccupancyGtSettings(1), progress=False)
    (scans / f"{4:010d}.bin").write_bytes(b"\0" * 20)  # truncated
    with pytest.raises(ValueError, match=f"{4:010d}.bin.*truncated"):
        stage.occupancy_gt_sequence(raw, tmp_path / "out", SEQ, [4], stage.OccupancyGtSettings(1), progress=False)
    with pytest.raises(ValueError, match="poses.txt"):
        stage.occupancy_gt_sequence(raw, tmp_path / "out", SEQ, [12], stage.OccupancyGtSettings(1), progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_rerun_skips_every_frame_and_a_changed_config_redoes_them(smoke_world, tmp_path):
    def run(aggregate_scans):
        config = json.dumps({"dataset": {"kind": "synthetic"}, "synthetic": {"preset": "smoke"},
                             "occupancy_gt": {"aggregate_scans": aggregate_scans}})
        assert run_cli("occupancy-gt", "--config-json", config, "--seq", SEQ, "--out", str(tmp_path), "--raw-root",
                       str(smoke_world / "kitti360"), "--split-dir", str(smoke_world / "splits" / "kitti360"),
                       "--no-progress") == 0
        return json.loads((tmp_path / "manifests" / "occupancy_gt" / f"{SEQ}.json").read_text())

    assert run(4)["computed"] == 3
    assert run(4)["computed"] == 0
    changed = run(6)
    assert changed["computed"] == 3 and changed["scans_used"] == {"0": 6, "4": 6, "8": 6}


def test_an_interrupted_frame_leaves_no_gt_pair_and_is_redone(smoke_world, tmp_path, monkeypatch):
    settings = stage.OccupancyGtSettings(aggregate_scans=3)
    real_save = stage.save_object_labels
    calls = []

    def fail_on_second_frame(directory, seq, frame, labels):
        calls.append(frame)
        if frame == 4:
            raise KeyboardInterrupt
        return real_save(directory, seq, frame, labels)

    monkeypatch.setattr(stage, "save_object_labels", fail_on_second_frame)
    with pytest.raises(KeyboardInterrupt):
        stage.occupancy_gt_sequence(smoke_world / "kitti360", tmp_path, SEQ, FRAMES, settings, progress=False)
    assert (tmp_path / "GT_Occ" / f"{SEQ}_{0:010d}_occgt.npy").is_file()
    assert not list((tmp_path / "GT_Occ").glob(f"{SEQ}_{4:010d}_*"))
    monkeypatch.undo()
    resumed = stage.occupancy_gt_sequence(smoke_world / "kitti360", tmp_path, SEQ, FRAMES, settings, progress=False)
    assert resumed.skipped == 1 and len(resumed.written) == 6
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_source_path_checks_the_users_files_and_names_the_missing_ones(smoke_world, generated, tmp_path):
    user = tmp_path / "kyn"
    shutil.copytree(generated / "GT_Occ", user / "GT_Occ")
    shutil.copytree(generated / "Object_Label", user / "Object_Label")
    (user / "GT_Occ" / f"{SEQ}_{4:010d}_visgt.npy").unlink()
    config = json.dumps({"dataset": {"kind": "synthetic"}, "synthetic": {"preset": "smoke"},
                         "occupancy_gt": {"source": "path", "path": str(user)}})
    args = ("occupancy-gt", "--config-json", config, "--seq", SEQ, "--out", str(tmp_path / "out"), "--raw-root",
            str(smoke_world / "kitti360"), "--split-dir", str(smoke_world / "splits" / "kitti360"), "--no-progress")
    with pytest.raises(FileNotFoundError, match=rf"(?s)1 of 9 .*{SEQ}_0000000004_visgt.npy"):
        run_cli(*args)
    shutil.copy(generated / "GT_Occ" / f"{SEQ}_{4:010d}_visgt.npy", user / "GT_Occ")
    assert run_cli(*args) == 0
    manifest = json.loads((tmp_path / "out" / "manifests" / "occupancy_gt" / f"{SEQ}.json").read_text())
    assert manifest["source"] == str(user) and len(manifest["files"]) == 9
    assert not (tmp_path / "out" / "GT_Occ").exists()  # nothing generated or copied
    assert stage.occupancy_gt_root({"occupancy_gt": {"source": "path", "path": str(user)}}, tmp_path) == user


def test_report_command_merges_sequence_reports(generated, tmp_path):
    single = report_paths(generated, SEQ)[0]
    assert run_cli("occupancy-gt-report", str(single), str(single), "--out", str(tmp_path)) == 0
    merged = json.loads((tmp_path / "occupancy_gt_vs_truth.json").read_text())
    original = json.loads(single.read_text())
    for mine, theirs in zip(merged["bands"], original["bands"]):
        assert mine["cells"] == 2 * theirs["cells"] and mine["agreement"] == pytest.approx(theirs["agreement"])
    assert merged["frames"] == 6 and (tmp_path / "occupancy_gt_vs_truth.csv").is_file()


# ------------------------------------------------------------------------------------------------ workflow


def test_snakemake_dry_run_plans_one_occupancy_gt_job_per_test_sequence(tmp_path):
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(
        "from snakemake.utils import validate\n"
        f'configfile: "{ROOT}/config.yaml"\n'
        f'import vipocc.config; vipocc.config.merge_builtin_experiments(config); validate(config, schema="{ROOT}/schemas/config.schema.yaml")\n'
        f'include: "{ROOT}/rules/common.smk"\n'
        f'include: "{ROOT}/rules/synthetic.smk"\n'
        f'include: "{ROOT}/rules/ground_truth.smk"\n'
        "rule all:\n    input: ground_truth_targets()\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    snakemake = shutil.which("snakemake", path=env["PATH"])
    result = subprocess.run([snakemake, "-n", "-s", str(snakefile), "--cores", "2", "--directory", str(tmp_path),
                             "--config", "synthetic={'preset': 'smoke'}"], capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    preset = yaml.safe_load((ROOT / "vipocc" / "configs" / "world_smoke.yaml").read_text())
    test_sequences = sorted(s["name"] for s in preset["sequences"] if s["split"] == "test")
    assert result.stdout.count("rule occupancy_gt_sequence:") == len(test_sequences) >= 1
    for seq in test_sequences:
        assert f"manifests/occupancy_gt/{seq}.json" in result.stdout
    assert "voxel_gt_sequence" in result.stdout and "occupancy_gt_report" in result.stdout
