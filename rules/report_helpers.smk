# Helpers of rules/report.smk (kept apart: Snakemake's linter refuses rules and functions in one file).
# Needs from rules/evaluation_helpers.smk: EVALUATION_RESULTS, evaluation_models(), evaluation_targets(),
# evaluation_occupancy_protocols(), evaluation_depth_sources(); from rules/training_helpers.smk: TRAINING_RESULTS;
# from rules/ground_truth_helpers.smk: GROUND_TRUTH_DERIVED, ground_truth_report_enabled(); from
# rules/preprocess_helpers.smk: PREPROCESS_DERIVED, preprocess_sequences(); from rules/priors_helpers.smk:
# priors_manifest().

from vipocc.training.experiments import default_experiments as _report_default_experiments
from vipocc.training.experiments import experiment_names as _report_experiment_names

REPORT = "results/report"
REPORT_TABLE_SETS = ("tables", "ablations")  # the default report, and the one the `ablations` target adds
# Notebooks and the registry ship with the workflow (not the working directory, which --directory may move).
REPORT_NOTEBOOKS = os.path.join(workflow.basedir, "notebooks")
REPORT_EXPECTED = os.path.join(workflow.basedir, "expected_results.yaml")


def report_ablation_experiments():
    """Every configured experiment that the default target does not train (vipocc_no_ta, ...)."""
    return [name for name in _report_experiment_names(config) if name not in _report_default_experiments(config)]


def report_ablation_evaluations():
    """Occupancy (every range) and depth summaries of the ablation experiments: the rows of the ablation table."""
    targets = []
    for model in report_ablation_experiments():
        folders = [f"occupancy_{protocol}" for protocol in evaluation_occupancy_protocols()]
        folders += [f"depth_{source}" for source in evaluation_depth_sources(model)]
        targets += [f"{EVALUATION_RESULTS}/{model}/{folder}/summary.json" for folder in folders]
    return targets


def report_table_inputs(wildcards):
    """The evaluation summaries a table set shows: all default evaluations, plus the ablations for `ablations`."""
    summaries = evaluation_targets()
    if wildcards.tables == "ablations":
        summaries += report_ablation_evaluations()
    return summaries


def report_table_parameters(wildcards, output):
    return json.dumps({"eval_root": EVALUATION_RESULTS, "expected": REPORT_EXPECTED,
                       "out_dir": output.tables, "aggregate_scans": config["occupancy_gt"]["aggregate_scans"],
                       "ablations": report_ablation_experiments() if wildcards.tables == "ablations" else []})


def _report_demo_models():
    return [model for model in evaluation_models() if config["evaluation"]["demo"]["frames"] > 0]


def _report_trained():
    return [name for name in _report_default_experiments(config) if name in config["evaluation"]["models"]]


def report_figure_inputs(wildcards):
    """Demo renders, occupancy grids, training logs, the GT-vs-truth table and the SNOG anchors the figures read."""
    inputs = [f"{EVALUATION_RESULTS}/{model}/demo/summary.json" for model in _report_demo_models()]
    inputs += [f"{EVALUATION_RESULTS}/{model}/occupancy_{protocol}/grids.npz"
               for model in evaluation_models() for protocol in evaluation_occupancy_protocols()]
    inputs += [f"{TRAINING_RESULTS}/{name}/model.json" for name in _report_trained()]
    if ground_truth_report_enabled():
        inputs.append(f"{GROUND_TRUTH_DERIVED}/occupancy_gt_vs_truth.csv")
    inputs += [priors_manifest(stage, seq) for stage in ("preprocess", "snog_anchors")
               for seq in preprocess_sequences()]
    return inputs


def report_figure_parameters(wildcards, output):
    gt_vs_truth = f"{GROUND_TRUTH_DERIVED}/occupancy_gt_vs_truth.csv" if ground_truth_report_enabled() else None
    return json.dumps({"eval_root": EVALUATION_RESULTS, "train_root": TRAINING_RESULTS,
                       "derived_root": PREPROCESS_DERIVED, "gt_vs_truth_csv": gt_vs_truth,
                       "out_dir": output.figures, "models": evaluation_models(), "experiments": _report_trained()})


def report_targets():
    """The rendered report of the default target (the lead adds these to final_targets())."""
    if dataset_kind() == "kitti_raw":
        return []
    return [f"{REPORT}/tables.html", f"{REPORT}/figures.html"]
