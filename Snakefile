# vipocc: one workflow from the dataset to the paper tables for ViPOcc (AAAI-25) and its BTS baseline.
# Default target: the built-in synthetic world (see README). Experiment settings: config.yaml (validated against
# schemas/config.schema.yaml); runtime settings: profiles/default (loaded automatically) or profiles/slurm.
import os

from snakemake.utils import min_version, validate

from vipocc.config import merge_builtin_experiments

min_version("9.0")

# Models are only loaded from local folders; never wait for a hub that cannot be reached.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


configfile: "config.yaml"


# training.experiments in a config file extends the built-in experiments (bts, vipocc, ablations) key by key.
merge_builtin_experiments(config)
validate(config, schema="schemas/config.schema.yaml")


report: "notebooks/captions/workflow.rst"


include: "rules/common.smk"
include: "rules/splits.smk"
include: "rules/synthetic.smk"
include: "rules/preprocess.smk"
include: "rules/ground_truth.smk"
include: "rules/priors.smk"
include: "rules/training.smk"
include: "rules/evaluation.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
