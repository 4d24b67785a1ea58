"""Rolling checkpoints, RNG state capture, best-model pruning, weights files and the model card."""
import hashlib
import json
import random

import numpy as np
import pytest
import torch

from vipocc.training import checkpoint as ckpt


def test_rolling_checkpoints_keep_the_newest(tmp_path):
    for step in (2, 4, 6, 8):
        ckpt.save_checkpoint(tmp_path, step, {"step": step, "w": torch.full((3,), float(step))}, keep=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [6, 8]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_00000006.pt", "checkpoint_00000008.pt"]
    state = ckpt.load_latest_checkpoint(tmp_path)
    assert state["step"] == 8 and torch.equal(state["w"], torch.full((3,), 8.0))


def test_an_unreadable_newest_checkpoint_falls_back_to_the_previous(tmp_path):
    ckpt.save_checkpoint(tmp_path, 1, {"step": 1}, keep=3)
    ckpt.checkpoint_path(tmp_path, 2).write_bytes(b"not a torch file")
    ckpt.save_checkpoint(tmp_path, 3, {"step": 99}, keep=3)  # wrong step inside: also refused
    assert ckpt.load_latest_checkpoint(tmp_path)["step"] == 1
    assert ckpt.load_latest_checkpoint(tmp_path / "missing") is None


def test_keep_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="keep=0"):
        ckpt.save_checkpoint(tmp_path, 1, {"step": 1}, keep=0)


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    random.seed(3), np.random.seed(4), torch.manual_seed(5)
    np.random.normal()  # leave a cached gaussian in numpy's state
    ckpt.save_checkpoint(tmp_path, 1, {"step": 1, "rng": ckpt.capture_rng_state()}, keep=1)
    expected = (random.random(), np.random.normal(size=3), torch.rand(3))
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    ckpt.restore_rng_state(ckpt.load_latest_checkpoint(tmp_path)["rng"])
    got = (random.random(), np.random.normal(size=3), torch.rand(3))
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])
    assert torch.equal(got[2], expected[2])


def test_best_models_not_referenced_are_pruned(tmp_path):
    for step in (3, 6, 9):
        ckpt.save_weights(ckpt.best_model_path(tmp_path, step), {"w": torch.zeros(1)})
    ckpt.prune_best_models(tmp_path, [6, None, 9])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_model_00000006.pt", "best_model_00000009.pt"]


def test_weights_files_and_card(tmp_path):
    weights = {"a": torch.arange(4.0, requires_grad=True), "b": torch.ones(2, 2)}
    path = ckpt.save_weights(tmp_path / "model.pt", weights)
    loaded = ckpt.load_weights(path)
    assert loaded.keys() == weights.keys() and torch.equal(loaded["a"], torch.arange(4.0))
    card = ckpt.write_model_card(tmp_path / "model.json", path, {"experiment": "x", "steps": 3})
    on_disk = json.loads((tmp_path / "model.json").read_text())
    assert on_disk == card
    assert on_disk["model_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert on_disk["model_bytes"] == path.stat().st_size and on_disk["steps"] == 3
    assert not list(tmp_path.glob(".*.tmp"))


def test_load_weights_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        ckpt.load_weights(tmp_path / "nothing.pt")
    torch.save({"step": 1}, tmp_path / "state.pt")
    with pytest.raises(ValueError, match="state.pt: not a plain state_dict"):
        ckpt.load_weights(tmp_path / "state.pt")
