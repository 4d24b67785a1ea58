# Helpers of rules/evaluation.smk (kept apart: Snakemake's linter refuses rules and functions in one file).
# Needs from rules/common.smk: dataset_kind(), split_dir(), config; from rules/preprocess_helpers.smk:
# PREPROCESS_DERIVED; from rules/ground_truth_helpers.smk: ground_truth_sequences(); from rules/priors_helpers.smk:
# priors_manifest(); from rules/training_helpers.smk: TRAINING_RESULTS.

import re as _evaluation_re
import shlex as _evaluation_shlex

from vipocc.training.experiments import resolve_experiment as _evaluation_resolve_experiment

EVALUATION_RESULTS = "results/eval"
EVALUATION_PRIOR_MODEL = "depth_prior"  # the "model" folder of the pseudo-depth rows
EVALUATION_OFFICIAL = {"bts": "bts_official", "vipocc": "vipocc_official"}


def evaluation_official_checkpoints():
    """{model name: (checkpoint path, kind)} of the official checkpoints given in evaluation.official_checkpoints."""
    given = config["evaluation"]["official_checkpoints"]
    return {EVALUATION_OFFICIAL[kind]: (str(Path(path).expanduser()), kind)
            for kind, path in given.items() if path is not None}


def evaluation_models():
    """Trained experiments of evaluation.models, then the official checkpoints (bts_official, vipocc_official)."""
    return list(config["evaluation"]["models"]) + list(evaluation_official_checkpoints())


def evaluation_model_pattern():
    """Any configured experiment (the ablations too, for the `ablations` target) or official checkpoint."""
    names = set(evaluation_models()) | set(config["training"]["experiments"])
    return "|".join(_evaluation_re.escape(name) for name in sorted(names))


def evaluation_has_depth_branch(model):
    official = evaluation_official_checkpoints()
    if model in official:
        return official[model][1] == "vipocc"
    try:
        return _evaluation_resolve_experiment(config, model).use_depth_branch
    except ValueError as err:
        raise WorkflowError(f"config.yaml evaluation.models: {err}") from None


def evaluation_model_file(wildcards):
    """The weights a job reads: results/train/<model>/model.pt, or the official checkpoint file."""
    official = evaluation_official_checkpoints()
    if wildcards.model in official:
        return official[wildcards.model][0]
    return f"{TRAINING_RESULTS}/{wildcards.model}/model.pt"


def evaluation_model_arguments(wildcards):
    official = evaluation_official_checkpoints()
    if wildcards.model in official:
        path, kind = official[wildcards.model]
        return f"--checkpoint {_evaluation_shlex.quote(path)} --checkpoint-kind {kind}"
    return f"--model {_evaluation_shlex.quote(evaluation_model_file(wildcards))}"


def evaluation_path_arguments(wildcards):
    return (f"--derived-root {_evaluation_shlex.quote(PREPROCESS_DERIVED)}"
            f" --split-dir {_evaluation_shlex.quote(split_dir())}")


def _evaluation_sequences(use):
    return ground_truth_sequences(config["datasets"][use]["split"])


def _evaluation_manifests(stages, use):
    return [priors_manifest(stage, seq) for stage in stages for seq in _evaluation_sequences(use)] + split_files()


def evaluation_depth_inputs(wildcards):
    """Preprocessed images and depth GT of the test sequences, plus the prior for the depth branch."""
    stages = ["preprocess", "depth_gt"] + (["depth_prior"] if wildcards.protocol == "predicted" else [])
    return _evaluation_manifests(stages, "eval_depth")


def evaluation_pseudo_depth_inputs(wildcards):
    return _evaluation_manifests(["preprocess", "depth_gt", "depth_prior"], "eval_depth")


def evaluation_demo_inputs(wildcards):
    return _evaluation_manifests(["preprocess", "depth_gt", "depth_prior"], "eval_depth")


def evaluation_occupancy_inputs(wildcards):
    return _evaluation_manifests(["preprocess", "occupancy_gt"], "eval_occupancy")


def evaluation_voxel_inputs(wildcards):
    return _evaluation_manifests(["preprocess", "voxel_gt"], "eval_voxel")


def evaluation_occupancy_protocols():
    """'4-20', '4-50', ... from evaluation.occupancy.z_ranges ([far, near] pairs)."""
    return [f"{near:g}-{far:g}" for far, near in config["evaluation"]["occupancy"]["z_ranges"]]


def evaluation_z_range(wildcards):
    """--z-range FAR NEAR of an occupancy protocol wildcard '<near>-<far>'."""
    near, far = wildcards.protocol.split("-")
    return f"{far} {near}"


def evaluation_depth_sources(model):
    block = config["evaluation"]["depth"]
    sources = ["rendered"] if block["rendered"] else []
    if block["predicted"] and evaluation_has_depth_branch(model):
        sources.append("predicted")
    return sources


def evaluation_scaling_names():
    return ["none" if s is None else s for s in config["evaluation"]["pseudo_depth"]["scalings"]]


def evaluation_voxel_enabled():
    if not config["evaluation"]["voxel"]["enabled"] or dataset_kind() == "kitti_raw":
        return False
    return dataset_kind() == "synthetic" or config["voxel_gt"]["source"] == "path"


def evaluation_targets():
    """summary.json of every (model, evaluator, protocol). The lead adds these to final_targets(). KITTI Raw:
    the depth evaluator only (Eigen protocol)."""
    targets = []
    kitti_raw = dataset_kind() == "kitti_raw"
    for model in evaluation_models():
        folders = [f"depth_{source}" for source in evaluation_depth_sources(model)]
        if not kitti_raw:
            folders += [f"occupancy_{protocol}" for protocol in evaluation_occupancy_protocols()]
            folders += ["voxel"] if evaluation_voxel_enabled() else []
            folders += ["demo"] if config["evaluation"]["demo"]["frames"] > 0 else []
        targets += [f"{EVALUATION_RESULTS}/{model}/{folder}/summary.json" for folder in folders]
    if not kitti_raw:
        targets += [f"{EVALUATION_RESULTS}/{EVALUATION_PRIOR_MODEL}/pseudo_depth_{name}/summary.json"
                    for name in evaluation_scaling_names()]
    return targets
