"""The `vipocc` command line: config printing, clear errors and exit codes."""
import json

from vipocc.cli import main


def test_config_prints_the_resolved_config(capsys):
    assert main(["config", "--config", "config.yaml"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["dataset"] == {"kind": "synthetic", "root": None, "split_dir": None}


def test_invalid_config_exits_2_naming_the_key(capsys):
    assert main(["config", "--config-json", '{"dataset": {"kind": "kitti360"}}']) == 2
    assert "dataset.root" in capsys.readouterr().err


def test_synthesize_refuses_a_real_dataset(capsys, tmp_path):
    config = json.dumps({"dataset": {"kind": "kitti360", "root": str(tmp_path)}})
    assert main(["synthesize", "--config-json", config, "--out", str(tmp_path / "w")]) == 2
    assert "dataset.kind: synthetic" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
