"""`vipocc evaluate`: model loading, CLI errors, result files (CSV / JSON contents), the Snakemake DAG."""
import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vipocc.config import config_hash, validate_config
from vipocc.evaluation import commands
from vipocc.models.network import NetworkConfig, ViPOccNetwork
from vipocc.training.checkpoint import save_weights, write_model_card

ROOT = Path(__file__).resolve().parents[2]
H, W = 48, 64


def _parse(argv):
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _trained_model(folder: Path, use_depth_branch=True) -> Path:
    torch.manual_seed(3)
    config = NetworkConfig(encoder_depth=18, n_samples=4, use_depth_branch=use_depth_branch)
    network = ViPOccNetwork(config)
    model = save_weights(folder / "model.pt", network.state_dict())
    write_model_card(folder / "model.json", model, {
        "experiment": "vipocc", "steps": 4, "settings": {"pixel_convention": "linspace"},
        "network": {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in config.__dict__.items()}}})
    return model


def test_trained_model_round_trip(tmp_path):
    model = _trained_model(tmp_path)
    loaded = commands.load_model(model)
    saved = torch.load(model, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in loaded.network.state_dict().items())
    assert loaded.source == "model" and loaded.network.depth_branch is not None


def test_official_checkpoint_keys_are_mapped(tmp_path):
    torch.manual_seed(4)
    reference = ViPOccNetwork(NetworkConfig(use_depth_branch=False))
    renamed = {("renderer.net." + k[len("field."):]): v for k, v in reference.state_dict().items()}
    path = tmp_path / "BTS-KITTI-360.pt"
    torch.save({"model": renamed, "epoch": 7}, path)
    loaded = commands.load_model(checkpoint=path, checkpoint_kind="bts")
    assert loaded.load_report["loaded"] == len(reference.state_dict())
    assert all(torch.equal(reference.state_dict()[k], v) for k, v in loaded.network.state_dict().items())
    torch.save({"model": {**renamed, "something.else": torch.zeros(1)}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="something.else"):  # strict: an unexpected key is an error naming it
        commands.load_model(checkpoint=tmp_path / "other.pt", checkpoint_kind="bts")


def test_cli_errors(tmp_path):
    with pytest.raises(SystemExit):  # --model and --checkpoint are exclusive
        _parse(["evaluate", "depth", "--out", "o", "--model", "a.pt", "--checkpoint", "b.pt", "--source", "rendered"])
    with pytest.raises(SystemExit):  # a model is required
        _parse(["evaluate", "occupancy", "--out", "o"])
    with pytest.raises(SystemExit):  # unknown kind
        _parse(["evaluate", "colour", "--out", "o"])
    with pytest.raises(ValueError, match="--checkpoint-kind"):
        commands.load_model(checkpoint=tmp_path / "x.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        commands.load_model(tmp_path / "missing.pt")
    (tmp_path / "lonely.pt").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="lonely.json"):
        commands.load_model(tmp_path / "lonely.pt")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        commands.load_model(checkpoint=tmp_path / "nope.pt", checkpoint_kind="vipocc")
    args = _parse(["evaluate", "depth", "--out", "o", "--model", "a.pt", "--source", "rendered", "--threads", "0"])
    with pytest.raises(ValueError, match="--threads"):
        args.func(args)
    assert commands.select_indices(10, evenly=3) == [0, 4, 9] and commands.select_indices(5, limit=2) == [0, 1]


class FakeDataset:
    """Kitti360Dataset stand-in: fixed samples with GT, prior and the attributes the commands read."""

    def __init__(self, n=2):
        rng = np.random.default_rng(5)
        self.datapoints = [("seq_a", i, False) for i in range(n)]
        self.options = {"return_pseudo_depth": True}
        self.samples = [{"imgs": [torch.from_numpy(rng.uniform(-1, 1, (3, H, W)).astype(np.float32))],
                         "projs": [torch.tensor([[1.0, 0, 0], [0, 3.0, 0], [0, 0, 1]])],
                         "depths": [torch.from_numpy(rng.uniform(3, 40, (1, H, W)).astype(np.float32))],
                         "pseudo_depth": [torch.from_numpy(rng.uniform(3, 40, (1, H, W)).astype(np.float32))],
                         "seq": "seq_a", "img_id": 10 + i, "is_right": False} for i in range(n)]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        return self.samples[index]


@pytest.fixture
def fake_data(tmp_path, monkeypatch):
    derived = tmp_path / "derived"
    manifest = derived / "manifests" / "depth_prior" / "seq_a.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"prior": {"backend": "simulated", "simulated": True}}))
    info = {"kind": "synthetic", "use": "eval_depth", "split": "test", "split_file": "t.txt", "raw_root": "r",
            "derived_root": str(derived)}
    monkeypatch.setattr(commands, "_kitti360", lambda config, use, args, **kw: (FakeDataset(), dict(info)))
    config = validate_config({"dataset": {"kind": "synthetic"}, "preprocess": {"image_size": [H, W]}})
    return tmp_path, config


def _run(argv):
    args = _parse(argv)
    assert args.func(args) == 0


def test_depth_command_files(fake_data):
    tmp_path, config = fake_data
    model = _trained_model(tmp_path / "model")
    out = tmp_path / "vipocc" / "depth_predicted"
    _run(["evaluate", "depth", "--config-json", json.dumps(config), "--model", str(model), "--source",
          "predicted", "--name", "vipocc", "--out", str(out), "--device", "cpu", "--no-progress"])
    first = (out / "per_frame.csv").read_text()
    rows = list(csv.DictReader(first.splitlines()))
    assert [r["frame"] for r in rows] == ["10", "11"] and {r["source"] for r in rows} == {"predicted"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluator"] == "depth" and summary["model"] == "vipocc" and summary["frames"] == 2
    assert summary["metrics"]["abs_rel"] == pytest.approx(np.mean([float(r["abs_rel"]) for r in rows]))
    prov = summary["provenance"]
    assert prov["checkpoint"]["sha256"] == __import__("hashlib").sha256(model.read_bytes()).hexdigest()
    assert prov["config_hash"] == config_hash(config) and prov["device"] == "cpu"
    assert prov["protocol"]["scaling"] is None and prov["protocol"]["crop"] is None
    assert prov["protocol"]["source"] == "predicted" and prov["dataset"]["split"] == "test"
    assert prov["priors"]["depth"]["simulated"] is True  # copied from the prior manifest
    assert "git_commit" in prov and "torch" in prov["libraries"]


def test_pseudo_depth_command_records_the_simulated_prior(fake_data):
    tmp_path, config = fake_data
    out = tmp_path / "depth_prior" / "pseudo_depth_median"
    _run(["evaluate", "pseudo_depth", "--config-json", json.dumps(config), "--scaling", "median", "--out", str(out),
          "--no-progress"])
    rows = list(csv.DictReader((out / "per_frame.csv").open()))
    assert {r["prior_simulated"] for r in rows} == {"True"} and {r["scaling"] for r in rows} == {"median"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["prior_simulated"] is True and summary["protocol"]["scaling"] == "median"
    assert "checkpoint" not in summary["provenance"]


def test_demo_command_writes_files(fake_data, monkeypatch):
    from evaluation.test_demo import StubDemoNetwork  # analytic density field: fast grids

    tmp_path, config = fake_data
    model = tmp_path / "bts.pt"
    model.write_bytes(b"weights")
    stub = StubDemoNetwork()
    stub.depth_branch = None  # a BTS model
    monkeypatch.setattr(commands, "load_model", lambda *a: commands.LoadedModel(stub, model, "model"))
    out = tmp_path / "bts" / "demo"
    _run(["evaluate", "demo", "--config-json", json.dumps(config), "--model", str(model), "--frames", "1",
          "--out", str(out), "--device", "cpu", "--no-progress"])
    rows = list(csv.DictReader((out / "per_frame.csv").open()))
    assert len(rows) == 1 and (out / rows[0]["file_voxel"]).is_file() and (out / rows[0]["file_bev"]).is_file()
    assert "file_disp_p" not in rows[0]  # BTS has no depth branch


def test_dry_run_plans_one_job_per_model_and_evaluator(tmp_path):
    snakefile = tmp_path / "Snakefile"
    includes = "\n".join(f'include: "{ROOT}/rules/{name}.smk"' for name in
                         ("common", "synthetic", "preprocess", "ground_truth", "priors", "training", "evaluation"))
    snakefile.write_text(f'configfile: "{ROOT}/config.yaml"\nfrom snakemake.utils import validate\n'
                         f'import vipocc.config; vipocc.config.merge_builtin_experiments(config); validate(config, schema="{ROOT}/schemas/config.schema.yaml")\n{includes}\n'
                         "rule all:\n    input: evaluation_targets()\n")
    snakemake = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([snakemake, "-n", "-s", str(snakefile), "--cores", "2", "--directory", str(tmp_path),
                             ],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    counts = dict(re.findall(r"^(evaluate_\w+)\s+(\d+)$", result.stdout, re.M))
    # default evaluation.models [bts, vipocc]; bts: depth rendered; vipocc: rendered + predicted; occupancy 4-20 and 4-50 each; pseudo depth median + none
    assert counts == {"evaluate_depth": "3", "evaluate_occupancy": "4", "evaluate_voxel": "2", "evaluate_demo": "2",
                      "evaluate_pseudo_depth": "2"}
    for path in ("results/eval/bts/occupancy_4-20/summary.json", "results/eval/vipocc/depth_predicted/summary.json",
                 "results/eval/depth_prior/pseudo_depth_none/summary.json", "results/eval/bts/voxel/summary.json"):
        assert path in result.stdout
    assert "results/eval/bts/depth_predicted" not in result.stdout
