# KITTI-360 preprocessing (one job per sequence): resized perspective images and virtual pinhole views of the
# fisheyes, LiDAR depth ground truth, and the optional sha256 check of user-supplied data.
# Each job writes its images / depth maps under PREPROCESS_DERIVED (resumable, atomic files) and ends with a
# per-sequence done-manifest JSON (the rule output) listing every file and the config hash.
# Needs from rules/common.smk: WORLD, dataset_kind(), dataset_root(), stage_config().

include: "preprocess_helpers.smk"


wildcard_constraints:
    seq=r"[^/]+",


rule verify_checksums:
    input:
        manifest=lambda wildcards: config["checksums"]["manifest"],
    output:
        report=preprocess_checksum_report(),
    params:
        config=lambda wildcards: stage_config("checksums"),
    log:
        "results/logs/verify_checksums.log",
    benchmark:
        "results/benchmarks/verify_checksums.tsv"
    conda:
        "../envs/vipocc.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=120,
        gpu=0,
    shell:
        "vipocc verify-checksums --config-json {params.config:q} --manifest {input.manifest:q}"
        " --report {output.report:q} --no-progress > {log} 2>&1"


rule preprocess_sequence:
    input:
        preprocess_image_inputs,
    output:
        manifest=f"{PREPROCESS_DERIVED}/manifests/preprocess/{{seq}}.json",
    params:
        config=lambda wildcards: stage_config("preprocess"),
        out=lambda wildcards, output: preprocess_derived_root(output.manifest),
        splits=lambda wildcards: preprocess_split_dir(),
    log:
        "results/logs/preprocess_sequence/{seq}.log",
    benchmark:
        "results/benchmarks/preprocess_sequence/{seq}.tsv"
    conda:
        "../envs/vipocc.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
        gpu=0,
    shell:
        "vipocc preprocess --config-json {params.config:q} --seq {wildcards.seq} --out {params.out:q}"
        " --split-dir {params.splits:q} --threads {threads} --manifest {output.manifest:q} > {log} 2>&1"


rule depth_gt_sequence:
    input:
        preprocess_depth_inputs,
    output:
        manifest=f"{PREPROCESS_DERIVED}/manifests/depth_gt/{{seq}}.json",
    params:
        config=lambda wildcards: stage_config("preprocess", "depth_gt"),
        out=lambda wildcards, output: preprocess_derived_root(output.manifest),
    log:
        "results/logs/depth_gt_sequence/{seq}.log",
    benchmark:
        "results/benchmarks/depth_gt_sequence/{seq}.tsv"
    conda:
        "../envs/vipocc.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
        gpu=0,
    shell:
        "vipocc depth-gt --config-json {params.config:q} --seq {wildcards.seq} --out {params.out:q}"
        " --threads {threads} --manifest {output.manifest:q} > {log} 2>&1"
