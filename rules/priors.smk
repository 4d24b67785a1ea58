# Visual priors (issue 4), one job per sequence: pseudo depth (Depth Anything V2), instances (Grounded-SAM)
# and SNOG anchors, written under PREPROCESS_DERIVED/{depth,samples}/ as the reference stores them, plus a
# pseudo-depth sanity figure. On the synthetic world the backends are simulated by default (priors.*.backend: auto);
# every job ends with a done-manifest JSON (the rule output) that names its backend, weights and throughput.
# Needs from rules/common.smk: WORLD, dataset_kind(), stage_config(); include rules/preprocess.smk first.

include: "priors_helpers.smk"


rule depth_prior_sequence:
    input:
        priors_depth_inputs,
    output:
        manifest=priors_manifest("depth_prior"),
    params:
        config=lambda wildcards: stage_config("preprocess", "priors"),
        out=lambda wildcards, output: preprocess_derived_root(output.manifest),
    log:
        "results/logs/depth_prior_sequence/{seq}.log",
    benchmark:
        "results/benchmarks/depth_prior_sequence/{seq}.tsv"
    conda:
        "../envs/vipocc.yaml"
    threads: 1 if priors_is_simulated("depth") else 4
    resources:
        mem_mb=2000 if priors_is_simulated("depth") else 16000,
        runtime=60 if priors_is_simulated("depth") else 720,
        gpu=0 if priors_is_simulated("depth") else 1,
    shell:
        "vipocc depth-prior --config-json {params.config:q} --seq {wildcards.seq} --out {params.out:q}"
        " --threads {threads} --manifest {output.manifest:q} > {log} 2>&1"


rule instance_prior_sequence:
    input:
        priors_instance_inputs,
    output:
        manifest=priors_manifest("instance_prior"),
    params:
        config=lambda wildcards: stage_config("preprocess", "priors"),
        out=lambda wildcards, output: preprocess_derived_root(output.manifest),
    log:
        "results/logs/instance_prior_sequence/{seq}.log",
    benchmark:
        "results/benchmarks/instance_prior_sequence/{seq}.tsv"
    conda:
        "../envs/vipocc.yaml"
    threads: 1 if priors_is_simulated("instances") else 4
    resources:
        mem_mb=2000 if priors_is_simulated("instances") else 16000,
        runtime=60 if priors_is_simulated("instances") else 1440,
        gpu=0 if priors_is_simulated("instances") else 1,
    shell:
        "vipocc instance-prior --config-json {params.config:q} --seq {wildcards.seq} --out {params.out:q}"
        " --threads {threads} --manifest {output.manifest:q} > {log} 2>&1"


rule snog_anchors_sequence:
    input:
        instances=priors_manifest("instance_prior"),
    output:
        manifest=priors_manifest("snog_anchors"),
    params:
        config=lambda wildcards: stage_config("preprocess", "priors"),
        out=lambda wildcards, output: preprocess_derived_root(output.manifest),
    log:
        "results/logs/snog_anchors_sequence/{seq}.log",
    benchmark:
        "results/benchmarks/snog_anchors_sequence/{seq}.tsv"
    conda:
        "../envs/vipocc.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
        gpu=0,
    shell:
        "vipocc snog-anchors --config-json {params.config:q} --seq {wildcards.seq} --out {params.out:q}"
        " --manifest {output.manifest:q} > {log} 2>&1"


rule depth_prior_figure:
    input:
        priors_figure_inputs,
    output:
        figure=priors_figure(),
    params:
        config=lambda wildcards: stage_config("preprocess", "priors"),
        out=lambda wildcards, input: preprocess_derived_root(input[0]),
    log:
        "results/logs/depth_prior_figure/{seq}.log",
    conda:
        "../envs/vipocc.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
        gpu=0,
    shell:
        "vipocc depth-prior-figure --config-json {params.config:q} --seq {wildcards.seq} --out {params.out:q}"
        " --figure {output.figure:q} > {log} 2>&1"
