# Helpers of rules/priors.smk (kept apart: Snakemake's linter refuses rules and functions in one file).
# Needs from rules/common.smk: WORLD, dataset_kind(); from rules/preprocess_helpers.smk: PREPROCESS_DERIVED,
# preprocess_sequences(), preprocess_derived_root().

from vipocc.priors.stage import resolve_backend as _priors_resolve_backend

PRIORS_FIGURES = "results/priors/figures"
PRIORS_STAGES = ("depth_prior", "instance_prior", "snog_anchors")
_PRIORS_MODEL_KEYS = {"depth": ("model_path",), "instances": ("dino_path", "sam_path")}


def priors_backend(prior):
    """Backend a prior's jobs use ("depth" or "instances"): auto -> simulated on the synthetic world, else real."""
    try:
        return _priors_resolve_backend(config["priors"][prior]["backend"], dataset_kind(), prior)
    except ValueError as err:
        raise WorkflowError(f"config.yaml {err}") from None


def priors_is_simulated(prior):
    return priors_backend(prior) == "simulated"


def priors_manifest(stage, seq="{seq}"):
    """Done-manifest of one priors job: <derived>/manifests/<stage>/<seq>.json."""
    return f"{PREPROCESS_DERIVED}/manifests/{stage}/{seq}.json"


def priors_figure(seq="{seq}"):
    return f"{PRIORS_FIGURES}/{seq}_depth_prior.png"


def _priors_model_paths(prior):
    """Local weights of a real backend (inputs: replacing them reruns the jobs); a missing one stops the DAG."""
    paths = []
    for key in _PRIORS_MODEL_KEYS[prior]:
        value = config["priors"][prior][key]
        if value is None:
            raise WorkflowError(f"config.yaml priors.{prior}.{key} must name local weights for backend "
                                f"{priors_backend(prior)}")
        path = Path(value).expanduser()
        if not path.exists():
            raise WorkflowError(f"config.yaml priors.{prior}.{key}: {path} does not exist")
        paths.append(str(path))
    return paths


def _priors_prior_inputs(prior, seq):
    """The preprocessed images of the sequence plus the oracle (simulated) or the model weights (real)."""
    inputs = [priors_manifest("preprocess", seq)]
    if priors_is_simulated(prior):
        return inputs + [f"{WORLD}/world.json"]
    return inputs + _priors_model_paths(prior)


def priors_depth_inputs(wildcards):
    return _priors_prior_inputs("depth", wildcards.seq)


def priors_instance_inputs(wildcards):
    return _priors_prior_inputs("instances", wildcards.seq)


def priors_figure_inputs(wildcards):
    """The pseudo depth, and the reference depth: the oracle (synthetic world) or the LiDAR depth GT."""
    inputs = [priors_manifest("depth_prior", wildcards.seq)]
    if dataset_kind() == "synthetic":
        return inputs + [f"{WORLD}/world.json"]
    return inputs + [priors_manifest("depth_gt", wildcards.seq)]


def priors_targets():
    """Manifests of the three priors jobs and the sanity figure of every sequence (KITTI-360 and the synthetic
    world; nothing for KITTI Raw). The lead adds these to final_targets()."""
    if dataset_kind() == "kitti_raw":
        return []
    sequences = preprocess_sequences()
    return [priors_manifest(stage, seq) for seq in sequences for stage in PRIORS_STAGES] + [
        priors_figure(seq) for seq in sequences]
