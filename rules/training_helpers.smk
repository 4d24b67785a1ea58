# Helpers of rules/training.smk (kept apart: Snakemake's linter refuses rules and functions in one file).
# Needs from rules/common.smk: WORLD, dataset_kind(); from rules/preprocess_helpers.smk: PREPROCESS_DERIVED,
# preprocess_sequences(); split_dir() from common.smk; from rules/priors_helpers.smk: priors_manifest().

import re as _training_re
import shlex as _training_shlex

from vipocc.training.experiments import default_experiments as _training_default_experiments
from vipocc.training.experiments import experiment_names as _training_experiment_names
from vipocc.training.experiments import resolve_experiment as _training_resolve_experiment
from vipocc.training.experiments import training_settings as _training_settings

TRAINING_RESULTS = "results/train"


def training_experiment_pattern():
    """Regex matching exactly the configured experiment names (the {experiment} wildcard constraint)."""
    return "|".join(_training_re.escape(name) for name in _training_experiment_names(config))


def training_inputs(wildcards):
    """What one experiment reads: preprocessed images and depth GT of every sequence, the pseudo depth when its
    depth branch uses the VFM prior, the SNOG anchors when it samples with SNOG, and local ImageNet weights."""
    try:
        experiment = _training_resolve_experiment(config, wildcards.experiment)
        _training_settings(config, wildcards.experiment)  # inconsistent settings fail before any job runs
    except ValueError as err:
        raise WorkflowError(f"config.yaml {err}") from None
    sequences = preprocess_sequences()
    inputs = [f"{WORLD}/world.json"] if dataset_kind() == "synthetic" else []
    stages = ["preprocess", "depth_gt"]
    if experiment.needs_prior:
        stages.append("depth_prior")
    if experiment.sample_mode == "snog":
        stages.append("snog_anchors")
    inputs += [priors_manifest(stage, seq) for stage in stages for seq in sequences]
    for key in ("encoder_weights", "depth_encoder_weights"):
        if config["training"][key] is not None:
            inputs.append(config["training"][key])
    return inputs + split_files()


def training_config(wildcards):
    """The config JSON of one experiment's job: the shared training keys plus only this experiment's block, so that
    changing another experiment's loss weight does not retrain this one (Snakemake reruns a job when its params
    change)."""
    block = dict(config["training"])
    block["experiments"] = {wildcards.experiment: block["experiments"][wildcards.experiment]}
    block["default_experiments"] = [wildcards.experiment]
    subset = {"dataset": config["dataset"], "preprocess": config["preprocess"], "datasets": config["datasets"],
              "training": block}
    return json.dumps(subset, sort_keys=True)


def training_path_arguments(wildcards):
    """--derived-root / --split-dir of `vipocc train` (the raw root comes from the config)."""
    return (f"--derived-root {_training_shlex.quote(PREPROCESS_DERIVED)}"
            f" --split-dir {_training_shlex.quote(split_dir())}")


def training_launcher(wildcards, resources):
    """torchrun (DDP, one process per GPU) when the job gets more than one GPU, else nothing."""
    gpus = int(resources.get("gpu", 0) or 0)
    return f"torchrun --standalone --nproc_per_node={gpus} --no-python" if gpus > 1 else ""


def training_targets():
    """Models of training.default_experiments (bts and vipocc by default). The lead adds these to final_targets()."""
    try:
        names = _training_default_experiments(config)
    except ValueError as err:
        raise WorkflowError(f"config.yaml {err}") from None
    if dataset_kind() == "kitti_raw":
        return []
    return [f"{TRAINING_RESULTS}/{name}/model.pt" for name in names]
