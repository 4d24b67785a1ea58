# Helpers of rules/preprocess.smk (kept apart: Snakemake's linter wants rules and functions in separate files).
# Needs from rules/common.smk: WORLD, dataset_kind(), dataset_root(), config.

from vipocc.config import resolve_world_config as _preprocess_resolve_world

PREPROCESS_DERIVED = "results/data/kitti360"
PREPROCESS_CAMERAS = (0, 1, 2, 3)


def preprocess_split_dir():
    """Folder of the <split>_files.txt naming the sequences and frames to preprocess (rules/common.smk)."""
    return split_dir()


def preprocess_sequences():
    """Sequences named in the split files. Synthetic: from the resolved world description (the split files do not
    exist before the world is generated; the world writes every sequence into a split). Real data: read at DAG time."""
    if dataset_kind() == "synthetic":
        return sorted(seq["name"] for seq in _preprocess_resolve_world(config)["sequences"])
    if dataset_kind() != "kitti360":
        return []
    return split_sequences("all")


def preprocess_derived_root(manifest):
    """<derived> of a done-manifest <derived>/manifests/<stage>/<seq>.json."""
    return str(Path(manifest).parents[2])


def preprocess_checksum_report():
    return f"{PREPROCESS_DERIVED}/manifests/checksums.json"


def _preprocess_common_inputs(wildcards):
    """The world (synthetic) or the calibration and poses of this sequence (real data), plus the checksum report."""
    inputs = []
    if config["checksums"]["manifest"] is not None:
        inputs.append(preprocess_checksum_report())
    if dataset_kind() == "synthetic":
        return inputs + [f"{WORLD}/world.json"]
    root = dataset_root()
    names = ("perspective.txt", "calib_cam_to_pose.txt", "calib_cam_to_velo.txt", "image_02.yaml", "image_03.yaml")
    return inputs + [f"{root}/calibration/{name}" for name in names] + [
        f"{root}/data_poses/{wildcards.seq}/poses.txt"] + split_files()


def preprocess_image_inputs(wildcards):
    inputs = _preprocess_common_inputs(wildcards)
    if dataset_kind() != "synthetic":
        # Folders: adding, removing or replacing a sequence's images (or touching the folder) reruns that sequence.
        folders = {0: "data_rect", 1: "data_rect", 2: "data_rgb", 3: "data_rgb"}
        inputs += [f"{dataset_root()}/data_2d_raw/{wildcards.seq}/image_{cam:02d}/{folders[cam]}"
                   for cam in PREPROCESS_CAMERAS]
    return inputs


def preprocess_depth_inputs(wildcards):
    inputs = _preprocess_common_inputs(wildcards)
    if dataset_kind() != "synthetic":
        inputs.append(f"{dataset_root()}/data_3d_raw/{wildcards.seq}/velodyne_points/data")
    return inputs


def preprocess_targets():
    """Done-manifests of every sequence (images and depth GT), and the checksum report when a manifest is set.
    The lead adds these to final_targets()."""
    if dataset_kind() == "kitti_raw":
        return []
    targets = [f"{PREPROCESS_DERIVED}/manifests/{stage}/{seq}.json"
               for seq in preprocess_sequences() for stage in ("preprocess", "depth_gt")]
    if config["checksums"]["manifest"] is not None:
        targets.append(preprocess_checksum_report())
    return targets
