# Evaluation (issue 6): one job per (model, evaluator, protocol); outputs
#   results/eval/{model}/{evaluator}[_{protocol}]/per_frame.csv and summary.json   (demo: + pictures and .ply).
# {model}: a trained experiment of evaluation.models (reads results/train/{model}/model.pt) or bts_official /
# vipocc_official (the files of evaluation.official_checkpoints); the pseudo-depth prior is the "model" depth_prior.
# Resources: CPU by default (gpu=0); `vipocc evaluate` uses a GPU when one is visible (evaluation.device auto), so a
# GPU profile sets e.g. `set-resources: evaluate_depth: gpu: 1` for the network-heavy rules.
# Needs from rules/common.smk: dataset_kind(), split_dir(), stage_config(); include rules/preprocess.smk,
# rules/ground_truth.smk, rules/priors.smk and rules/training.smk first.

include: "evaluation_helpers.smk"


rule evaluate_occupancy:
    input:
        model=evaluation_model_file,
        data=evaluation_occupancy_inputs,
    output:
        summary=f"{EVALUATION_RESULTS}/{{model}}/occupancy_{{protocol}}/summary.json",
        per_frame=f"{EVALUATION_RESULTS}/{{model}}/occupancy_{{protocol}}/per_frame.csv",
        grids=f"{EVALUATION_RESULTS}/{{model}}/occupancy_{{protocol}}/grids.npz",
    params:
        config=lambda wildcards: stage_config("preprocess", "datasets", "evaluation", "voxel_gt"),
        model=evaluation_model_arguments,
        paths=evaluation_path_arguments,
        out=lambda wildcards, output: os.path.dirname(output.summary),
        args=lambda wildcards: f" --z-range {evaluation_z_range(wildcards)}",
    wildcard_constraints:
        model=evaluation_model_pattern(),
        protocol=r"[0-9.]+-[0-9.]+",
    log:
        "results/logs/evaluate_occupancy/{model}_occupancy_{protocol}.log",
    benchmark:
        "results/benchmarks/evaluate_occupancy/{model}_occupancy_{protocol}.tsv"
    conda:
        "../envs/vipocc.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=0,
    shell:
        "vipocc evaluate occupancy --config-json {params.config:q} {params.model} --name {wildcards.model}"
        " --out {params.out:q} {params.paths}{params.args} --threads {threads} > {log} 2>&1"


rule evaluate_voxel:
    input:
        model=evaluation_model_file,
        data=evaluation_voxel_inputs,
    output:
        summary=f"{EVALUATION_RESULTS}/{{model}}/voxel/summary.json",
        per_frame=f"{EVALUATION_RESULTS}/{{model}}/voxel/per_frame.csv",
    params:
        config=lambda wildcards: stage_config("preprocess", "datasets", "evaluation", "voxel_gt"),
        model=evaluation_model_arguments,
        paths=evaluation_path_arguments,
        out=lambda wildcards, output: os.path.dirname(output.summary),
        args="",
    wildcard_constraints:
        model=evaluation_model_pattern(),
    log:
        "results/logs/evaluate_voxel/{model}_voxel.log",
    benchmark:
        "results/benchmarks/evaluate_voxel/{model}_voxel.tsv"
    conda:
        "../envs/vipocc.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=0,
    shell:
        "vipocc evaluate voxel --config-json {params.config:q} {params.model} --name {wildcards.model}"
        " --out {params.out:q} {params.paths}{params.args} --threads {threads} > {log} 2>&1"


rule evaluate_depth:
    input:
        model=evaluation_model_file,
        data=evaluation_depth_inputs,
    output:
        summary=f"{EVALUATION_RESULTS}/{{model}}/depth_{{protocol}}/summary.json",
        per_frame=f"{EVALUATION_RESULTS}/{{model}}/depth_{{protocol}}/per_frame.csv",
    params:
        config=lambda wildcards: stage_config("preprocess", "datasets", "evaluation", "voxel_gt"),
        model=evaluation_model_arguments,
        paths=evaluation_path_arguments,
        out=lambda wildcards, output: os.path.dirname(output.summary),
        args=lambda wildcards: f" --source {wildcards.protocol}",
    wildcard_constraints:
        model=evaluation_model_pattern(),
        protocol="rendered|predicted",
    log:
        "results/logs/evaluate_depth/{model}_depth_{protocol}.log",
    benchmark:
        "results/benchmarks/evaluate_depth/{model}_depth_{protocol}.tsv"
    conda:
        "../envs/vipocc.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=0,
    shell:
        "vipocc evaluate depth --config-json {params.config:q} {params.model} --name {wildcards.model}"
        " --out {params.out:q} {params.paths}{params.args} --threads {threads} > {log} 2>&1"


rule evaluate_pseudo_depth:
    input:
        data=evaluation_pseudo_depth_inputs,
    output:
        summary=f"{EVALUATION_RESULTS}/{EVALUATION_PRIOR_MODEL}/pseudo_depth_{{protocol}}/summary.json",
        per_frame=f"{EVALUATION_RESULTS}/{EVALUATION_PRIOR_MODEL}/pseudo_depth_{{protocol}}/per_frame.csv",
    params:
        config=lambda wildcards: stage_config("preprocess", "datasets", "evaluation", "voxel_gt"),
        paths=evaluation_path_arguments,
        out=lambda wildcards, output: os.path.dirname(output.summary),
        args=lambda wildcards: f" --scaling {wildcards.protocol}",
    wildcard_constraints:
        protocol="median|none|lsq",
    log:
        "results/logs/evaluate_pseudo_depth/depth_prior_pseudo_depth_{protocol}.log",
    benchmark:
        "results/benchmarks/evaluate_pseudo_depth/depth_prior_pseudo_depth_{protocol}.tsv"
    conda:
        "../envs/vipocc.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=30,
        gpu=0,
    shell:
        "vipocc evaluate pseudo_depth --config-json {params.config:q} --name depth_prior"
        " --out {params.out:q} {params.paths}{params.args} --threads {threads} > {log} 2>&1"


rule evaluate_demo:
    input:
        model=evaluation_model_file,
        data=evaluation_demo_inputs,
    output:
        summary=f"{EVALUATION_RESULTS}/{{model}}/demo/summary.json",
        per_frame=f"{EVALUATION_RESULTS}/{{model}}/demo/per_frame.csv",
    params:
        config=lambda wildcards: stage_config("preprocess", "datasets", "evaluation", "voxel_gt"),
        model=evaluation_model_arguments,
        paths=evaluation_path_arguments,
        out=lambda wildcards, output: os.path.dirname(output.summary),
        args="",
    wildcard_constraints:
        model=evaluation_model_pattern(),
    log:
        "results/logs/evaluate_demo/{model}_demo.log",
    benchmark:
        "results/benchmarks/evaluate_demo/{model}_demo.tsv"
    conda:
        "../envs/vipocc.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=0,
    shell:
        "vipocc evaluate demo --config-json {params.config:q} {params.model} --name {wildcards.model}"
        " --out {params.out:q} {params.paths}{params.args} --threads {threads} > {log} 2>&1"
