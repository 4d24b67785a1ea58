# Shared helpers of the workflow rules (no rules here).
import json
import os

from snakemake.exceptions import WorkflowError
from pathlib import Path

WORLD = "results/world"


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


def split_dir():
    """Folder of the KITTI-360 split files ({train,val,test}_files.txt)."""
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
    return targets


def check_dataset():
    """Fail at parse time, before any job, when a real dataset's root is missing."""
    if dataset_kind() != "synthetic":
        dataset_root()


check_dataset()
