# Training (issue 5): one job per experiment of config training.experiments, e.g.
#   snakemake results/train/vipocc_no_ta/model.pt     trains that ablation only.
# Outputs: results/train/{experiment}/model.pt (weights) and model.json (card). Checkpoints and live logs go to
# results/train/{experiment}/work/, which is not an output: Snakemake keeps it when a job fails or is killed, and the
# rerun (profiles set rerun-incomplete) resumes from the newest checkpoint and ends with the same weights.
# Resources: CPU by default; a GPU profile sets `set-resources: train: gpu: N` (N > 1 launches torchrun / DDP) and
# the threads/memory/runtime of the cluster.
# Needs from rules/common.smk: WORLD, dataset_kind(), stage_config(); include rules/preprocess.smk and
# rules/priors.smk first.

include: "training_helpers.smk"


rule train:
    input:
        training_inputs,
    output:
        model=f"{TRAINING_RESULTS}/{{experiment}}/model.pt",
        card=f"{TRAINING_RESULTS}/{{experiment}}/model.json",
    params:
        config=training_config,
        out=lambda wildcards, output: os.path.dirname(output.model),
        paths=training_path_arguments,
        launcher=training_launcher,
    wildcard_constraints:
        experiment=training_experiment_pattern(),
    log:
        "results/logs/train/{experiment}.log",
    benchmark:
        "results/benchmarks/train/{experiment}.tsv"
    conda:
        "../envs/vipocc.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=1440,
        gpu=0,
    shell:
        "{params.launcher} vipocc train --config-json {params.config:q} --experiment {wildcards.experiment}"
        " --out {params.out:q} {params.paths} --threads {threads} > {log} 2>&1"
