# Helpers of rules/ground_truth.smk (kept apart: Snakemake's linter wants rules and functions in separate files).
# Needs from rules/common.smk: WORLD, dataset_kind(), dataset_root(), split_dir(), split_sequences(), config.

from vipocc.config import resolve_world_config as _ground_truth_world

GROUND_TRUTH_DERIVED = "results/data/kitti360"
GROUND_TRUTH_CALIBRATION = ("perspective.txt", "calib_cam_to_pose.txt", "calib_cam_to_velo.txt",
                            "image_02.yaml", "image_03.yaml")


def ground_truth_sequences(which):
    """Sequences with frames in split `which` ("test", "val", "train") or in any split ("all"). Synthetic: from the
    resolved world description (each sequence belongs to one split); KITTI-360: split_sequences() of common.smk (the
    split files, or dataset.sequences before the official files are fetched)."""
    if dataset_kind() == "synthetic":
        return sorted(seq["name"] for seq in _ground_truth_world(config)["sequences"]
                      if which == "all" or seq["split"] == which)
    if dataset_kind() != "kitti360":
        return []
    return split_sequences(which)


def ground_truth_occupancy_sequences():
    return ground_truth_sequences(config["occupancy_gt"]["frames"])


def ground_truth_voxel_sequences():
    """Sequences of the voxel evaluation's split; none when voxel GT cannot be had (real data, source generate)."""
    if dataset_kind() != "synthetic" and config["voxel_gt"]["source"] != "path":
        return []
    return ground_truth_sequences(config["datasets"]["eval_voxel"]["split"])


def ground_truth_report_enabled():
    return dataset_kind() == "synthetic" and config["occupancy_gt"]["source"] == "generate"


def ground_truth_inputs(wildcards):
    """The world (synthetic) or this sequence's calibration, poses, boxes, scans and the split files (real data)."""
    if dataset_kind() == "synthetic":
        return [f"{WORLD}/world.json"]
    root = dataset_root()
    return ([f"{root}/calibration/{name}" for name in GROUND_TRUTH_CALIBRATION]
            + [f"{root}/data_poses/{wildcards.seq}/poses.txt",
               f"{root}/data_3d_bboxes/train/{wildcards.seq}.xml",
               f"{root}/data_3d_raw/{wildcards.seq}/velodyne_points/data"]
            + split_files())


def ground_truth_derived_root(manifest):
    """<derived> of a done-manifest <derived>/manifests/<stage>/<seq>.json."""
    return str(Path(manifest).parents[2])


def ground_truth_reports():
    return [f"{GROUND_TRUTH_DERIVED}/occupancy_gt_vs_truth/{seq}.json" for seq in ground_truth_occupancy_sequences()]


def ground_truth_targets():
    """Done-manifests of the occupancy and voxel GT jobs, and the lidar-GT-vs-truth report (synthetic world)."""
    if dataset_kind() == "kitti_raw":
        return []
    targets = [f"{GROUND_TRUTH_DERIVED}/manifests/occupancy_gt/{seq}.json"
               for seq in ground_truth_occupancy_sequences()]
    targets += [f"{GROUND_TRUTH_DERIVED}/manifests/voxel_gt/{seq}.json" for seq in ground_truth_voxel_sequences()]
    if ground_truth_report_enabled() and ground_truth_occupancy_sequences():
        targets += [f"{GROUND_TRUTH_DERIVED}/occupancy_gt_vs_truth.json"]
    return targets
