"""Experiment blocks -> run settings: the paper's loss weights per experiment (protocol.md 3.5-3.7), selection by
name, overrides, consistency errors, the dataset loads each experiment needs, and the resume hash."""
import pytest

from vipocc.config import ConfigError, validate_config
from vipocc.training.experiments import (
    default_experiments,
    experiment_names,
    resolve_experiment,
    resume_hash,
    train_dataset_options,
    training_settings,
    validation_dataset_options,
)


def config(**training):
    return validate_config({"dataset": {"kind": "synthetic"}, "training": training})


DEFAULT = config()


def test_builtin_experiments_and_default_target():
    assert experiment_names(DEFAULT) == ["bts", "vipocc", "vipocc_depth", "vipocc_no_rc", "vipocc_no_ta",
                                         "vipocc_res_depth", "vipocc_snog"]
    assert default_experiments(DEFAULT) == ["bts", "vipocc"]


# Total losses of protocol.md 3.5 / digest 3.8: ViPOcc L = 2 L_ph + 0.005 L_rc + 0.01 L_ta; BTS adds edge-aware
# smoothness 0.001 to its doubled photometric term and has no depth terms.
@pytest.mark.parametrize("name, weights, branch, ablation, mode", [
    ("bts", {"rgb": 1.0, "edge_smooth": 0.001}, False, "rid", "patch"),
    ("vipocc", {"rgb": 1.0, "depth_recon": 0.005, "temp_align": 0.01}, True, "rid", "patch"),
    ("vipocc_no_ta", {"rgb": 1.0, "depth_recon": 0.005}, True, "rid", "patch"),
    ("vipocc_no_rc", {"rgb": 1.0, "temp_align": 0.01}, True, "rid", "patch"),
    ("vipocc_res_depth", {"rgb": 1.0, "depth_recon": 0.005, "temp_align": 0.01}, True, "res_depth", "patch"),
    ("vipocc_depth", {"rgb": 1.0, "depth_recon": 0.005, "temp_align": 0.01}, True, "depth", "patch"),
    ("vipocc_snog", {"rgb": 1.0, "depth_recon": 0.005, "temp_align": 0.01}, True, "rid", "snog"),
])
def test_experiment_blocks_carry_the_paper_settings(name, weights, branch, ablation, mode):
    exp = resolve_experiment(DEFAULT, name)
    assert exp.loss_weights() == weights
    assert exp.count_photometric_twice
    assert (exp.use_depth_branch, exp.rid_ablation, exp.sample_mode) == (branch, ablation, mode)


def test_common_settings_are_the_paper_schedule():
    s = training_settings(DEFAULT, "vipocc")
    assert (s.lr, s.lr_step, s.lr_gamma, s.batch_size, s.epochs) == (1e-4, 120000, 0.1, 8, 25)
    assert (s.encoder_depth, s.depth_encoder_depth, s.n_samples, s.z_near, s.z_far) == (50, 18, 64, 3.0, 80.0)
    assert (s.n_patches, s.n_depth_patches, s.image_size) == (64, 32, (192, 640))
    assert (s.validate_every, s.checkpoint_every, s.selection_metric) == (2000, 500, "abs_rel")


def test_validation_depth_follows_the_reference_per_experiment():
    assert training_settings(DEFAULT, "vipocc").validation_depth == "predicted"
    assert training_settings(DEFAULT, "bts").validation_depth == "rendered"
    assert training_settings(config(validation_depth="rendered"), "vipocc").validation_depth == "rendered"
    with pytest.raises(ValueError, match="predicted needs a depth branch"):
        training_settings(config(validation_depth="predicted"), "bts")


def test_unknown_experiment_names_the_configured_ones():
    with pytest.raises(ValueError, match=r"'vipoc'.*\['bts', 'vipocc'"):
        training_settings(DEFAULT, "vipoc")


def test_a_user_block_gets_vipocc_defaults_and_its_own_batch_size():
    cfg = config(batch_size=4, experiments={"mine": {"lambda_temporal_alignment": 0.0, "batch_size": 3}})
    assert "mine" in experiment_names(cfg) and {"bts", "vipocc"} <= set(experiment_names(cfg))
    s = training_settings(cfg, "mine")
    assert s.batch_size == 3 and s.experiment.loss_weights() == {"rgb": 1.0, "depth_recon": 0.005}
    assert default_experiments(cfg) == ["bts", "vipocc"]


def test_a_block_named_like_a_builtin_changes_only_its_keys():
    cfg = config(experiments={"vipocc": {"lambda_depth_recon": 0.01}})
    vipocc, bts = training_settings(cfg, "vipocc").experiment, training_settings(cfg, "bts").experiment
    assert vipocc.lambda_depth_recon == 0.01 and vipocc.lambda_temporal_alignment == 0.01
    assert vipocc.use_depth_branch and vipocc.rid_ablation == "rid"
    assert bts == training_settings(DEFAULT, "bts").experiment


def test_default_experiments_must_be_configured():
    cfg = config(default_experiments=["bts", "nope"])
    with pytest.raises(ValueError, match="not in training.experiments"):
        default_experiments(cfg)


def test_depth_terms_without_a_depth_branch_are_refused():
    cfg = config(experiments={"half_bts": {"use_depth_branch": False}})  # keeps ViPOcc's 0.005 / 0.01
    with pytest.raises(ValueError, match="half_bts.lambda_depth_recon.*use_depth_branch"):
        training_settings(cfg, "half_bts")


@pytest.mark.parametrize("overrides, message", [
    ({"ray_batch_size": 1000}, "ray_batch_size = 1000 is not a whole number of 8x8 patches"),
    ({"ray_batch_size": 2048, "experiments": {"s": {"sample_mode": "snog"}}}, "snog_anchors_per_view = 16"),
    ({"z_near": 90.0}, "need 0 < z_near < z_far"),
])
def test_inconsistent_settings_are_refused(overrides, message):
    cfg = config(**overrides)
    name = next(iter(overrides.get("experiments", {"bts": None})))
    with pytest.raises(ValueError, match=message):
        training_settings(cfg, name)


def test_schema_refuses_bad_experiment_values():
    with pytest.raises(ConfigError, match="rid_ablation"):
        config(experiments={"x": {"rid_ablation": "inverse"}})
    with pytest.raises(ConfigError, match="does not match"):
        config(experiments={"a/b": {}})


@pytest.mark.parametrize("name, pseudo, samples", [
    ("bts", False, False), ("vipocc", True, False), ("vipocc_depth", False, False), ("vipocc_snog", True, True),
])
def test_dataset_options_load_what_the_experiment_needs(name, pseudo, samples):
    s = training_settings(DEFAULT, name)
    train = train_dataset_options(DEFAULT, s)
    assert (train["return_pseudo_depth"], train["return_samples"]) == (pseudo, samples)
    assert train["frame_count"] == 2 and train["return_stereo"] and train["return_fisheye"]
    assert not train["return_gt_depth"] and not train["return_3d_bboxes"] and train["split"] == "train"
    val = validation_dataset_options(DEFAULT, s)
    assert val["split"] == "val" and val["frame_count"] == 1 and val["return_gt_depth"]
    assert not val["return_fisheye"] and not val["return_stereo"]
    assert val["return_pseudo_depth"] == pseudo


def test_resume_hash_ignores_runtime_keys_only():
    base = resume_hash(DEFAULT, training_settings(DEFAULT, "vipocc"), 1)
    for runtime in ({"max_steps": 10}, {"num_workers": 4}, {"checkpoint_every": 7}, {"epochs": 3},
                    {"validate_every": 100}):
        cfg = config(**runtime)
        assert resume_hash(cfg, training_settings(cfg, "vipocc"), 1) == base
    for relevant in ({"lr": 2.0e-4}, {"seed": 1}, {"batch_size": 4}, {"validation_frames": 5}):
        cfg = config(**relevant)
        assert resume_hash(cfg, training_settings(cfg, "vipocc"), 1) != base
    assert resume_hash(DEFAULT, training_settings(DEFAULT, "vipocc"), 2) != base
    assert resume_hash(DEFAULT, training_settings(DEFAULT, "vipocc_no_ta"), 1) != base
