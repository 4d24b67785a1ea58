"""The config schema: defaults, cross-field rules, and clear errors for bad keys or values."""
import json

import pytest

from vipocc.config import ConfigError, config_hash, load_config, resolve_world_config, validate_config


def test_defaults_fill_every_block():
    config = validate_config({"dataset": {"kind": "synthetic"}})
    assert config["dataset"]["root"] is None
    assert config["synthetic"] == {"preset": "default", "seed": 0, "resolution_scale": None,
                                   "frames_per_sequence": None, "lidar_azimuth_steps": None}


def test_repository_config_is_valid_and_complete():
    defaults = validate_config({"dataset": {"kind": "synthetic"}})
    ours = load_config("config.yaml")
    assert set(ours) == set(defaults)
    assert ours["preprocess"]["image_size"] == [64, 192] and defaults["preprocess"]["image_size"] == [192, 640]


@pytest.mark.parametrize("bad, fragment", [
    ({"dataset": {"kind": "synthetic"}, "synthetc": {}}, "'synthetc' was unexpected"),
    ({"dataset": {"kind": "kitti-360"}}, "dataset.kind"),
    ({"dataset": {"kind": "kitti360"}}, "dataset.root"),
    ({"dataset": {"kind": "synthetic", "root": "/data"}}, "dataset.root"),
    ({"dataset": {"kind": "synthetic"}, "synthetic": {"resolution_scale": 0.3}}, "synthetic.resolution_scale"),
    ({"dataset": {"kind": "synthetic"}, "synthetic": {"seed": -1}}, "synthetic.seed"),
    ({"dataset": {"kind": "synthetic"}, "synthetic": {"frames_per_sequence": 5}}, "frames_per_sequence"),
])
def test_bad_configs_name_the_key(bad, fragment):
    with pytest.raises(ConfigError, match="invalid configuration") as err:
        validate_config(bad)
    assert fragment in str(err.value)


def test_yaml_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: [unclosed")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config(broken)


def test_json_config_equals_yaml_config():
    from_yaml = load_config("config.yaml")
    assert load_config(json_text=json.dumps(from_yaml)) == from_yaml


def test_config_hash_is_order_independent_and_value_sensitive():
    a = {"x": 1, "y": {"b": 2, "a": 1}}
    b = {"y": {"a": 1, "b": 2}, "x": 1}
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash({"x": 2, "y": {"a": 1, "b": 2}})


def test_world_overrides_apply_to_the_preset():
    config = validate_config({"dataset": {"kind": "synthetic"},
                              "synthetic": {"preset": "smoke", "seed": 7, "resolution_scale": 0.25,
                                            "frames_per_sequence": 30}})
    world = resolve_world_config(config)
    assert world["seed"] == 7 and world["preset"] == "smoke" and world["resolution_scale"] == 0.25
    assert {seq["frames"] for seq in world["sequences"]} == {30}
    assert all(seq["gap_at"] < seq["frames"] for seq in world["sequences"])
    untouched = resolve_world_config(validate_config({"dataset": {"kind": "synthetic"},
                                                      "synthetic": {"preset": "smoke"}}))
    assert untouched["resolution_scale"] == 0.125
