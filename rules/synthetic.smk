# The built-in synthetic world: KITTI-360 layout, KITTI Raw export and exact oracle ground truth.


rule synthesize_world:
    output:
        kitti360=directory(f"{WORLD}/kitti360"),
        kitti_raw=directory(f"{WORLD}/kitti_raw"),
        splits=directory(f"{WORLD}/splits"),
        oracle=directory(f"{WORLD}/oracle"),
        manifest=f"{WORLD}/world.json",
    params:
        config=lambda wildcards: stage_config("synthetic"),
        out=lambda wildcards, output: os.path.dirname(output.manifest),
    log:
        "results/logs/synthesize_world.log",
    benchmark:
        "results/benchmarks/synthesize_world.tsv"
    conda:
        "../envs/world.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=0,
    shell:
        "vipocc synthesize --config-json {params.config:q} --out {params.out} --workers {threads} --overwrite"
        " > {log} 2>&1"
