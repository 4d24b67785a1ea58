# Report (issue 7): papermill notebooks that render the paper tables and figures from the result files.
#   results/report/tables.{ipynb,html} + tables/ (CSV + LaTeX per table, tables.json)
#   results/report/figures.{ipynb,html} + figures/ (PNG + PDF per figure, figures.json)
#   results/report/ablations.{ipynb,html} + ablations/ (target `ablations`: the tables with the ablation rows)
# The notebooks only read result files (they compute no metric). Tables and figures are registered with report(),
# so `snakemake --report report.zip` packages them with the workflow's provenance.
# Needs rules/evaluation.smk (and what it needs) included first.

include: "report_helpers.smk"


rule report_tables:
    input:
        summaries=report_table_inputs,
        expected=REPORT_EXPECTED,
        notebook=f"{REPORT_NOTEBOOKS}/tables.ipynb",
    output:
        notebook=f"{REPORT}/{{tables}}.ipynb",
        html=report(f"{REPORT}/{{tables}}.html", caption="../notebooks/captions/tables.rst", category="Notebooks"),
        tables=report(directory(f"{REPORT}/{{tables}}"), patterns=["{name}.csv"], caption="../notebooks/captions/tables.rst",
                      category="Tables", subcategory="{tables}"),
    params:
        parameters=report_table_parameters,
    wildcard_constraints:
        tables="|".join(REPORT_TABLE_SETS),
    log:
        "results/logs/report_tables/{tables}.log",
    conda:
        "../envs/vipocc.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
        gpu=0,
    shell:
        "vipocc report notebook --notebook {input.notebook:q} --out {output.notebook:q} --html {output.html:q}"
        " --parameters-json {params.parameters:q} > {log} 2>&1"


rule report_figures:
    input:
        data=report_figure_inputs,
        notebook=f"{REPORT_NOTEBOOKS}/figures.ipynb",
    output:
        notebook=f"{REPORT}/figures.ipynb",
        html=report(f"{REPORT}/figures.html", caption="../notebooks/captions/figures.rst", category="Notebooks"),
        figures=report(directory(f"{REPORT}/figures"), patterns=["{name}.png"], caption="../notebooks/captions/figures.rst",
                       category="Figures"),
    params:
        parameters=report_figure_parameters,
    log:
        "results/logs/report_figures.log",
    conda:
        "../envs/vipocc.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
        gpu=0,
    shell:
        "vipocc report notebook --notebook {input.notebook:q} --out {output.notebook:q} --html {output.html:q}"
        " --parameters-json {params.parameters:q} > {log} 2>&1"


rule ablations:
    input:
        f"{REPORT}/ablations.html",
