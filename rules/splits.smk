# The official KITTI-360 split files (dataset.splits: official): BTS's datasets/kitti_360/splits/seg files, pinned
# by URL (ViPOcc commit de0ff2c) and sha256 in vipocc.data.official_splits, downloaded into OFFICIAL_SPLIT_DIR.
# Jobs that read splits take split_files() (rules/common.smk) as input, so they wait for this rule.
# Offline clusters: run `vipocc fetch-splits --out results/splits/kitti360 --from DIR` once (DIR holding the three
# files, checked against the same digests); Snakemake then finds the outputs and does not run this rule.
# Needs from rules/common.smk: OFFICIAL_SPLIT_DIR, SPLIT_NAMES. Include after rules/common.smk.

# The download needs the network, which compute nodes often lack: run it where snakemake itself runs.
localrules:
    fetch_splits,


rule fetch_splits:
    output:
        expand(f"{OFFICIAL_SPLIT_DIR}/{{split}}_files.txt", split=SPLIT_NAMES),
    params:
        out=lambda wildcards, output: os.path.dirname(output[0]),
    log:
        "results/logs/fetch_splits.log",
    conda:
        "../envs/vipocc.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
        gpu=0,
    shell:
        "vipocc fetch-splits --out {params.out:q} > {log} 2>&1"
