# Shared helpers of the workflow rules (no rules here), and the parse-time preflight of a real dataset's inputs.
import functools
import json
import os

from snakemake.exceptions import WorkflowError
from pathlib import Path

from vipocc.data.official_splits import OFFICIAL_SEQUENCES as _OFFICIAL_SEQUENCES
from vipocc.data.official_splits import OFFICIAL_SPLIT_DIR
from vipocc.priors.stage import resolve_backend as _common_resolve_backend

WORLD = "results/world"
SPLIT_NAMES = ("train", "val", "test")


def dataset_kind():
    return config["dataset"]["kind"]


def dataset_root():
    """The dataset every stage reads: the generated synthetic world, or the user's KITTI-360 / KITTI Raw folder."""
    if dataset_kind() == "synthetic":
        return f"{WORLD}/kitti360"
    root = Path(config["dataset"]["root"]).expanduser()
    if not root.is_dir():
        raise WorkflowError(f"config.yaml dataset.root: folder {root} does not exist (dataset.kind: {dataset_kind()})")
    return str(root)


def split_mode():
    """dataset.splits: "official" (files written by the fetch_splits job) or "path" (dataset.split_dir); absent =
    path."""
    return config["dataset"].get("splits") or "path"


def split_dir():
    """Folder of the KITTI-360 split files ({train,val,test}_files.txt)."""
    if dataset_kind() == "kitti360" and split_mode() == "official":
        return OFFICIAL_SPLIT_DIR
    if config["dataset"].get("split_dir"):
        return config["dataset"]["split_dir"]
    if dataset_kind() == "synthetic":
        return f"{WORLD}/splits/kitti360"
    return os.path.join(workflow.basedir, "splits", "kitti360")


def stage_config(*blocks):
    """JSON of the config blocks a rule needs, passed to the vipocc CLI; a change to them reruns the rule (params)."""
    subset = {"dataset": config["dataset"], **{block: config[block] for block in blocks}}
    return json.dumps(subset, sort_keys=True)


def final_targets():
    targets = []
    if dataset_kind() == "synthetic":
        targets.append(f"{WORLD}/world.json")
    targets += preprocess_targets()
    targets += ground_truth_targets()
    targets += priors_targets()
    targets += training_targets()
    targets += evaluation_targets()
    targets += report_targets()
    return targets


def split_files():
    """The split files, as an input of every job that reads them. splits official: the three files fetch_splits
    writes, so the jobs wait for it; marked ancient because their content is pinned by sha256, so a re-fetch (e.g.
    after an edit of that rule) does not rerun the whole workflow. splits path: those present in split_dir (editing
    one reruns the jobs). Synthetic world and KITTI Raw: none (world.json, an input already, stands for the
    synthetic splits)."""
    if dataset_kind() != "kitti360":
        return []
    files = [os.path.join(split_dir(), f"{name}_files.txt") for name in SPLIT_NAMES]
    if split_mode() == "official":
        return [ancient(path) for path in files]
    return [path for path in files if os.path.isfile(path)]


def planned_sequences():
    """The sequences jobs are planned for before the split files exist: dataset.sequences, or the nine of the
    official files."""
    return sorted(config["dataset"].get("sequences") or _OFFICIAL_SEQUENCES)


@functools.lru_cache(maxsize=16)
def _split_file_sequences(path, mtime_ns, size):
    """Sequence names (first token of each line) of one split file; cached per (path, mtime, size) because input
    functions call this for every job."""
    with open(path) as handle:
        return frozenset(line.split(maxsplit=1)[0] for line in handle if line.strip())


def _read_split_sequences(path):
    stat = os.stat(path)
    return _split_file_sequences(str(path), stat.st_mtime_ns, stat.st_size)


def split_sequences(which):
    """Sorted KITTI-360 sequences of split `which` ("train", "val", "test") or of any split ("all"), read from the
    split files. With splits official, until fetch_splits has written them, planned_sequences() for every
    split (each official split names all nine sequences)."""
    names = SPLIT_NAMES if which == "all" else (which,)
    files = [Path(split_dir()) / f"{name}_files.txt" for name in names]
    present = [path for path in files if path.is_file()]
    if split_mode() == "official" and len(present) < len(files):
        return planned_sequences()
    if not present:
        raise WorkflowError(f"no KITTI-360 split file ({', '.join(str(p) for p in files)})")
    return sorted(frozenset().union(*(_read_split_sequences(path) for path in present)))


# ------------------------------------------------------------------------------------------------------- preflight

PREFLIGHT_CALIBRATION = ("perspective.txt", "calib_cam_to_pose.txt", "calib_cam_to_velo.txt", "image_02.yaml",
                         "image_03.yaml")
# What every stage reads per sequence: a few paths each, so the check never walks the big folders.
PREFLIGHT_SEQUENCE_PATHS = ("data_poses/{seq}/poses.txt", "data_2d_raw/{seq}/image_00/data_rect",
                            "data_2d_raw/{seq}/image_01/data_rect", "data_2d_raw/{seq}/image_02/data_rgb",
                            "data_2d_raw/{seq}/image_03/data_rgb", "data_3d_raw/{seq}/velodyne_points/data",
                            "data_3d_bboxes/train/{seq}.xml")
PREFLIGHT_DOWNLOADS = {
    "calibration": "download it with the KITTI-360 calibration (calibration.zip)",
    "data_poses": "download it with the KITTI-360 vehicle poses (data_poses.zip)",
    "data_2d_raw": "download it with the KITTI-360 perspective images (download_2d_perspective.sh: image_00/01 "
                   "data_rect) and fisheye images (download_2d_fisheye.sh: image_02/03 data_rgb)",
    "data_3d_raw": "download it with the KITTI-360 raw Velodyne scans (download_3d_velodyne.sh)",
    "data_3d_bboxes": "download it with the KITTI-360 3D bounding boxes (data_3d_bboxes.zip)",
}


def _first_missing(root, relative):
    """The shortest prefix of `relative` that does not exist under root (a handful of stat calls)."""
    parts = Path(relative).parts
    for depth in range(1, len(parts) + 1):
        if not (root / Path(*parts[:depth])).exists():
            return str(Path(*parts[:depth]))
    return None


def _preflight_dataset(root, sequences):
    """One line per missing top item under the KITTI-360 root (a missing sequence folder is one line, not seven)."""
    required = [f"calibration/{name}" for name in PREFLIGHT_CALIBRATION]
    required += [path.format(seq=seq) for seq in sequences for path in PREFLIGHT_SEQUENCE_PATHS]
    missing = {}
    for relative in required:
        top = _first_missing(root, relative)
        if top is not None:
            missing.setdefault(top, []).append(relative)
    lines = []
    for top, needed in missing.items():
        wanted = "" if needed == [top] else f" (needed: {needed[0]}" + (
            f" and {len(needed) - 1} more)" if len(needed) > 1 else ")")
        hint = PREFLIGHT_DOWNLOADS.get(Path(top).parts[0], "see the KITTI-360 layout in README.md")
        lines.append(f"dataset.root: {root / top} does not exist{wanted}: {hint}")
    return lines


def _preflight_local_path(key, value, what, required=False, backend=None):
    """A problem line when the local file/folder named by config key `key` is null (and required) or missing."""
    if value is None:
        return [f"{key} is null, but {backend} needs local {what}: set it to their path"] if required else []
    path = Path(value).expanduser()
    if path.exists():
        return []
    return [f"{key}: {path} does not exist: put the {what} there or set {key} to where they are"]


def _preflight_models():
    """Local weights and checkpoints named in the config that the planned jobs read."""
    lines = []
    real_data_priors = {"depth": {"model_path": "Depth Anything V2 weights (a Hugging Face folder or "
                                                "depth_anything_v2_metric_vkitti_vitl.pth)"},
                        "instances": {"dino_path": "Grounding DINO weights (Hugging Face folder)",
                                      "sam_path": "SAM weights (Hugging Face folder)"}}
    if dataset_kind() == "kitti360":
        for prior, keys in real_data_priors.items():
            block = config["priors"][prior]
            try:
                backend = _common_resolve_backend(block["backend"], dataset_kind(), prior)
            except ValueError as err:
                lines.append(str(err))
                continue
            for key, what in keys.items():
                lines += _preflight_local_path(f"priors.{prior}.{key}", block[key], what, True, f"backend {backend}")
        for key in ("encoder_weights", "depth_encoder_weights"):
            lines += _preflight_local_path(f"training.{key}", config["training"][key], "ImageNet ResNet weights (.pth)")
    for kind, path in config["evaluation"]["official_checkpoints"].items():
        lines += _preflight_local_path(f"evaluation.official_checkpoints.{kind}", path, "official checkpoint")
    lines += _preflight_local_path("checksums.manifest", config["checksums"]["manifest"], "sha256 manifest")
    return lines


def _preflight_ground_truth():
    """The user's KYN occupancy GT and SSCBench voxel GT folders (source: path)."""
    lines = []
    occupancy, voxel = config["occupancy_gt"], config["voxel_gt"]
    if occupancy["source"] == "path":
        what = "KYN occupancy GT download (GT_Occ/ and Object_Label/)"
        lines += _preflight_local_path("occupancy_gt.path", occupancy["path"], what, True, "occupancy_gt.source path")
        if occupancy["path"] is not None and Path(occupancy["path"]).expanduser().is_dir():
            for folder in ("GT_Occ", "Object_Label"):
                lines += _preflight_local_path("occupancy_gt.path", str(Path(occupancy["path"]) / folder),
                                               f"KYN {folder}/ folder")
    if voxel["source"] == "path":
        what = "SSCBench-KITTI-360 preprocess folder (labels/, kitti_360_match.txt)"
        lines += _preflight_local_path("voxel_gt.path", voxel["path"], what, True, "voxel_gt.source path")
        root = Path(voxel["path"]).expanduser() if voxel["path"] is not None else None
        if root is not None and root.is_dir():
            lines += _preflight_local_path("voxel_gt.path", str(root / "labels"), "SSCBench labels/ folder")
            if not any((folder / "kitti_360_match.txt").is_file() for folder in (root, root.parent)):
                lines.append(f"voxel_gt.path: no kitti_360_match.txt in {root} or {root.parent}: copy SSCBench's "
                             "match file there")
    return lines


def _preflight_splits():
    """Split-mode settings that contradict each other, and missing split files (splits path)."""
    dataset = config["dataset"]
    if dataset_kind() != "kitti360":
        return [f"dataset.{key}: only used with dataset.kind kitti360 (the {dataset_kind()} data has its own "
                "splits): remove it" for key in ("splits", "sequences") if dataset.get(key) is not None]
    if split_mode() == "official":
        if dataset.get("split_dir"):
            return [f"dataset.split_dir ({dataset['split_dir']}) is only read with dataset.splits path; with "
                    f"splits official the files are fetched into {OFFICIAL_SPLIT_DIR}: remove split_dir"]
        return []
    folder = Path(split_dir())
    return [f"dataset.split_dir: {folder / f'{name}_files.txt'} does not exist: copy BTS's "
            f"datasets/kitti_360/splits/seg/{name}_files.txt there, or set dataset.splits: official to download it"
            for name in SPLIT_NAMES if not (folder / f"{name}_files.txt").is_file()]


def _preflight_sequences():
    """Once the split files exist they, not dataset.sequences, decide the jobs: the two must agree, or a DAG built
    before the files were fetched would have missed or invented sequences."""
    given = config["dataset"].get("sequences")
    files = [Path(split_dir()) / f"{name}_files.txt" for name in SPLIT_NAMES]
    if not given or not all(path.is_file() for path in files):
        return []
    in_files = split_sequences("all")
    if set(given) == set(in_files):
        return []
    absent = sorted(set(given) - set(in_files))
    extra = sorted(set(in_files) - set(given))
    return [f"dataset.sequences differs from the sequences of the split files in {split_dir()} (listed but not in "
            f"the files: {absent or 'none'}; in the files but not listed: {extra or 'none'}): set dataset.sequences "
            "to the files' sequences or to null"]


def preflight():
    """Fail at parse time, before any job, with ONE error listing every missing input of a real dataset (root,
    per-sequence folders, split files, local weights and checkpoints, user-supplied ground truth), each line naming
    the config key, the path and what to do. The synthetic world needs nothing but consistent split settings."""
    lines = _preflight_splits()
    if dataset_kind() != "synthetic":
        root = Path(config["dataset"]["root"]).expanduser()
        if not root.is_dir():
            lines.insert(0, f"dataset.root: folder {root} does not exist (dataset.kind: {dataset_kind()}): "
                            "download the dataset there or set dataset.root to your copy")
        elif dataset_kind() == "kitti360":
            try:
                sequences = split_sequences("all")
            except WorkflowError:
                sequences = []  # splits path without files: reported by _preflight_splits
            lines += _preflight_dataset(root, sequences)
        if dataset_kind() == "kitti360":
            lines += _preflight_sequences()
            lines += _preflight_ground_truth()
        lines += _preflight_models()
    if lines:
        raise WorkflowError(f"{len(lines)} missing or inconsistent input(s) for dataset.kind {dataset_kind()}, "
                            "found before any job ran:\n" + "\n".join(f"  - {line}" for line in lines))


preflight()
