"""DDP through torchrun: two CPU processes (gloo) train a couple of steps through the `train` command and end with
identical replicas; sharded validation gathers every frame once."""
import csv
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

EXPERIMENTS = {
    "vipocc": {},
    # the depth branch exists (and is validated) but no loss term trains it: DDP must expect unused parameters
    "untrained_branch": {"lambda_depth_recon": 0.0, "lambda_temporal_alignment": 0.0},
}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_two_gloo_processes_train_in_sync(training_data, make_config, tmp_path, name):
    cfg = make_config(experiments=EXPERIMENTS, batch_size=1, max_steps=2, validate_every=2, validation_frames=3,
                      checkpoint_every=2)
    out = tmp_path / name
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "vipocc.training.commands", "train", "--config-json", json.dumps(cfg), "--experiment", name,
               "--out", str(out), "--raw-root", str(training_data.raw), "--derived-root",
               str(training_data.derived), "--split-dir", str(training_data.splits), "--threads", "1",
               "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    card = json.loads((out / "model.json").read_text())
    assert card["distributed"] == {"world_size": 2, "replicas_in_sync": True}
    assert card["steps"] == 2 and card["train_samples"] == 32 and card["steps_per_epoch"] == 16  # 32 // (1 x 2)
    with open(out / "validation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(int(r["step"]), int(r["frames"])) for r in rows] == [(2, 3)]
    assert card["best"]["step"] == 2
