"""The shared result writer: tidy CSV (round-trip floats, NaN, missing cells), strict JSON with provenance."""
import json
import math

import numpy as np
import pytest
import torch

from vipocc.evaluation.records import evaluation_provenance, read_per_frame, result_dir, write_results


def test_csv_and_json_contents(tmp_path):
    rows = [{"seq": "a", "frame": 1, "o_acc": 0.1 + 0.2, "flag": True},
            {"seq": "b", "frame": np.int64(2), "o_acc": float("nan"), "extra": np.float32(0.5)}]
    summary = {"evaluator": "occupancy", "metrics": {"o_acc": 0.1 + 0.2, "ie_rec": math.nan},
               "t": torch.tensor(2.5)}
    paths = write_results(tmp_path / "out", rows, summary, {"git_commit": "abc"})
    lines = paths["per_frame"].read_text().splitlines()
    assert lines[0] == "seq,frame,o_acc,flag,extra"
    assert lines[1] == "a,1,0.30000000000000004,True,"
    assert lines[2] == "b,2,nan,,0.5"
    assert float(read_per_frame(paths["per_frame"])[0]["o_acc"]) == 0.1 + 0.2
    document = json.loads(paths["summary"].read_text())
    assert document == {"evaluator": "occupancy", "metrics": {"o_acc": 0.30000000000000004, "ie_rec": None},
                        "t": 2.5, "provenance": {"git_commit": "abc"}}


def test_bad_arguments_and_paths(tmp_path):
    with pytest.raises(ValueError, match="provenance"):
        write_results(tmp_path, [], {"provenance": 1}, {})
    with pytest.raises(ValueError, match="rows"):
        write_results(tmp_path, [1], {}, {})
    assert result_dir("results/eval", "bts", "occupancy", "4-20").as_posix() == "results/eval/bts/occupancy_4-20"
    with pytest.raises(ValueError, match="model"):
        result_dir("r", "a/b", "occupancy")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        evaluation_provenance(checkpoint=tmp_path / "missing.pt")


def test_provenance_records_checkpoint_hash_and_settings(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"abc")
    record = evaluation_provenance(config_hash="h", checkpoint=ckpt, protocol={"z_range": [20, 4]},
                                   dataset={"kind": "synthetic"}, priors={"depth": {"simulated": True}},
                                   device="cpu")
    # sha256("abc") from FIPS 180-2, appendix B.1
    assert record["checkpoint"]["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert record["config_hash"] == "h" and record["device"] == "cpu"
    assert record["protocol"] == {"z_range": [20, 4]} and record["priors"]["depth"]["simulated"] is True
    assert "torch" in record["libraries"]
