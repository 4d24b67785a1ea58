# Occupancy and voxel ground truth (one job per sequence): KYN lidar occupancy GT + object labels (GT_Occ/,
# Object_Label/), on the synthetic world also the exact occupancy (Exact_Occ/) and the lidar-GT-vs-truth report,
# and SSCBench-style voxel GT (voxel_gt/). With occupancy_gt.source / voxel_gt.source "path" the jobs only check
# that the user's files exist for every evaluated frame. Each job ends with a done-manifest JSON (the rule output).
# Needs from rules/common.smk: WORLD, dataset_kind(), dataset_root(), split_dir(), stage_config().
# Add ground_truth_targets() to the default target.

include: "ground_truth_helpers.smk"


rule occupancy_gt_sequence:
    input:
        ground_truth_inputs,
    output:
        manifest=f"{GROUND_TRUTH_DERIVED}/manifests/occupancy_gt/{{seq}}.json",
    wildcard_constraints:
        seq=r"[^/]+",
    params:
        config=lambda wildcards: stage_config("occupancy_gt"),
        out=lambda wildcards, output: ground_truth_derived_root(output.manifest),
        splits=lambda wildcards: split_dir(),
    log:
        "results/logs/occupancy_gt_sequence/{seq}.log",
    benchmark:
        "results/benchmarks/occupancy_gt_sequence/{seq}.tsv"
    conda:
        "../envs/world.yaml"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=720,
        gpu=0,
    shell:
        "vipocc occupancy-gt --config-json {params.config:q} --seq {wildcards.seq} --out {params.out:q}"
        " --split-dir {params.splits:q} --workers {threads} --manifest {output.manifest:q} > {log} 2>&1"


rule voxel_gt_sequence:
    input:
        ground_truth_inputs,
    output:
        manifest=f"{GROUND_TRUTH_DERIVED}/manifests/voxel_gt/{{seq}}.json",
    wildcard_constraints:
        seq=r"[^/]+",
    params:
        config=lambda wildcards: stage_config("voxel_gt", "datasets"),
        out=lambda wildcards, output: ground_truth_derived_root(output.manifest),
        splits=lambda wildcards: split_dir(),
    log:
        "results/logs/voxel_gt_sequence/{seq}.log",
    benchmark:
        "results/benchmarks/voxel_gt_sequence/{seq}.tsv"
    conda:
        "../envs/world.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
        gpu=0,
    shell:
        "vipocc voxel-gt --config-json {params.config:q} --seq {wildcards.seq} --out {params.out:q}"
        " --split-dir {params.splits:q} --manifest {output.manifest:q} > {log} 2>&1"


rule occupancy_gt_report:
    input:
        manifests=lambda wildcards: [f"{GROUND_TRUTH_DERIVED}/manifests/occupancy_gt/{seq}.json"
                                     for seq in ground_truth_occupancy_sequences()],
    output:
        json=f"{GROUND_TRUTH_DERIVED}/occupancy_gt_vs_truth.json",
        csv=f"{GROUND_TRUTH_DERIVED}/occupancy_gt_vs_truth.csv",
    params:
        reports=lambda wildcards: ground_truth_reports(),
    log:
        "results/logs/occupancy_gt_report.log",
    conda:
        "../envs/world.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
        gpu=0,
    shell:
        "vipocc occupancy-gt-report {params.reports:q} --json {output.json:q} --csv {output.csv:q} > {log} 2>&1"
