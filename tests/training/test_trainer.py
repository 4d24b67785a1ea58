"""The trainer on the smoke world at 48x160: one step's shapes, gradients and loss composition for BTS and ViPOcc,
SNOG rays from each element's own anchor files, falling loss, data order, exact resume and the model card."""
import csv
import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from vipocc.data.images import preprocessed_folders
from vipocc.data.kitti360 import Kitti360Dataset, collate
from vipocc.data.poses import load_poses
from vipocc.evaluation.metrics import DEPTH_METRIC_KEYS
from vipocc.models.frame_roles import VIEW_SLOTS
from vipocc.models.network import ViPOccNetwork
from vipocc.training import checkpoint as ckpt
from vipocc.training.experiments import train_dataset_options, training_settings
from vipocc.training.trainer import (
    ResumableSampler,
    Samplers,
    build_inputs,
    build_network,
    network_config,
    prepare_batch,
    step_generators,
    train,
    training_step,
    validation_subset,
)


def dataset(data, cfg, settings, split_dir=None):
    return Kitti360Dataset(data.raw, data.derived, split_dir or data.splits, train_dataset_options(cfg, settings),
                           data.size, (0, -15), pose_dtype=torch.float64)


def two_sample_split(data, tmp_path, lines=(0, 1)):
    """A split folder whose train split holds the given lines of the smoke train split (val unchanged)."""
    split = tmp_path / "split"
    split.mkdir()
    train_lines = (data.splits / "train_files.txt").read_text().splitlines()
    (split / "train_files.txt").write_text("\n".join(train_lines[i] for i in lines) + "\n")
    shutil.copy(data.splits / "val_files.txt", split)
    return split


# ------------------------------------------------------------------------------------------------ data order


def test_sampler_order_is_seeded_sharded_and_restartable():
    ranks = [ResumableSampler(23, 3, seed=7, rank=r, world_size=2) for r in range(2)]
    assert ranks[0].batches_per_epoch == 3  # 23 // (3 * 2)
    parts = [s.epoch_indices(0) for s in ranks]
    everything = np.concatenate(parts)
    assert len(everything) == 18 and len(set(everything.tolist())) == 18  # disjoint, no repeats
    assert set(everything.tolist()) <= set(range(23))
    # global batch k = 6 consecutive items of the epoch's permutation, split 3 / 3 between the ranks
    order = np.random.default_rng([7, 0]).permutation(23)
    np.testing.assert_array_equal(parts[1][:3], order[3:6])
    assert not np.array_equal(ranks[0].epoch_indices(1), parts[0])  # a new order every epoch
    ranks[0].set_position(0, 2)
    assert list(ranks[0]) == parts[0][6:].tolist() and len(ranks[0]) == 3
    with pytest.raises(ValueError, match="start_batch=4"):
        ranks[0].set_position(0, 4)


def test_validation_subset_is_evenly_spaced():
    np.testing.assert_array_equal(validation_subset(11, 3), [0, 5, 10])
    np.testing.assert_array_equal(validation_subset(4, None), [0, 1, 2, 3])
    np.testing.assert_array_equal(validation_subset(4, 9), [0, 1, 2, 3])


# ------------------------------------------------------------------------------------------------ one step


@pytest.mark.parametrize("name", ["bts", "vipocc"])
def test_one_step_shapes_gradients_and_loss_composition(training_data, make_config, name):
    cfg = make_config()
    s = training_settings(cfg, name)
    batch = prepare_batch(collate([dataset(training_data, cfg, s)[i] for i in (0, 3)]), "cpu")
    model = build_network(s)
    gens = step_generators(0, 0, 0)
    inputs, ids_loss, ids_render = build_inputs(s, batch, Samplers.from_settings(s), gens)
    assert sorted(ids_loss + ids_render) == list(range(8))
    out = model(inputs)
    B, (H, W), R = 2, training_data.size, 256
    assert out.render.rgb.shape == (B, R, 4, 3) and out.render.weights.shape == (B, R, 32)
    if name == "vipocc":
        assert out.pred_depth.shape == (2 * B, 1, H, W) and out.depth_render.depth.shape == (B, 128)
        assert bool((out.pred_depth > 0).all())
    else:
        assert out.pred_depth is None and out.depth_render is None and model.depth_branch is None

    loss, values = training_step(model, batch, s, Samplers.from_settings(s), step_generators(0, 0, 0))
    # protocol.md 3.5 totals, recomputed from the logged terms
    if name == "bts":
        expected = 2 * values["loss_rgb_coarse"] + 0.001 * values["loss_edge_smooth"]
        assert "loss_depth_recon" not in values
    else:
        expected = 2 * values["loss_rgb_coarse"] + 0.005 * values["loss_depth_recon"] + \
            0.01 * values["loss_temp_align"]
        assert values["loss_temp_align"] > 0  # the term is not silently dropped at this small size
    assert values["loss"] == pytest.approx(expected, rel=1e-6)
    loss.backward()
    parts = {"encoder": model.field.encoder.encoder, "decoder": model.field.encoder.decoder,
             "mlp": model.field.mlp_coarse}
    if name == "vipocc":
        parts["depth branch"] = model.depth_branch
    for part, module in parts.items():
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads), part
        assert sum(float(g.abs().sum()) for g in grads) > 0, part


def test_snog_rays_use_each_elements_own_anchor_files(training_data, make_config):
    # 10 patches per element: 4 anchors on each of the two perspective loss views, 2 random fisheye patches
    cfg = make_config(ray_batch_size=640, experiments={"snog": {"sample_mode": "snog", "snog_anchors_per_view": 4}})
    s = training_settings(cfg, "snog")
    data = dataset(training_data, cfg, s)
    samples = [data[i] for i in (0, 5)]  # a left and a right sample (the right one swaps the cameras)
    assert [x["is_right"] for x in samples] == [False, True]
    batch = prepare_batch(collate(samples), "cpu")
    folder, _ = preprocessed_folders(training_data.size, (0, -15))
    frames = load_poses(training_data.raw, training_data.train_seq).frames
    for step in range(4):  # both role draws occur
        inputs, ids_loss, _ = build_inputs(s, batch, Samplers.from_settings(s), step_generators(0, 0, step))
        rays = inputs.rays
        corners = rays.pixels[:, ::64]  # first ray of each 8x8 patch = its top-left corner (x, y)
        views = rays.view[:, ::64]
        for b, sample in enumerate(samples):
            key, other = (1, 0) if sample["is_right"] else (0, 1)
            for position, slot in enumerate(ids_loss):
                on_view = corners[b][views[b] == position]
                if VIEW_SLOTS[slot].kind == "fisheye":
                    continue
                assert len(on_view) == 4
                camera = key if VIEW_SLOTS[slot].side == "key" else other
                frame = int(frames[int(sample["ts"][slot])])
                path = (training_data.derived / "samples" / training_data.train_seq / f"image_{camera:02d}" / folder
                        / f"{frame:010d}.npy")
                anchors = {tuple(a) for a in np.load(path).reshape(-1, 2).tolist()}
                centres = (on_view + 4).tolist()
                assert all(tuple(c) in anchors for c in centres), (b, slot, path)
            fisheye = [i for i, slot in enumerate(ids_loss) if VIEW_SLOTS[slot].kind == "fisheye"]
            assert int(sum((views[b] == i).sum() for i in fisheye)) == 10 - 2 * 4  # the rest: random fisheye patches


# ------------------------------------------------------------------------------------------------ training runs


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def fixed_losses(model, batch, settings):
    """Losses of a fixed batch with fixed rays (4 draws), without updating anything but BN statistics."""
    with torch.no_grad():
        return np.mean([training_step(model, batch, settings, Samplers.from_settings(settings),
                                      step_generators(123, 0, k))[1]["loss_rgb_coarse"] for k in range(4)])


@pytest.mark.slow  # 30 steps: ~8 s on 2 quiet cores, a minute or more when they are shared
def test_photometric_loss_falls_over_30_steps(training_data, make_config, tmp_path):
    split = two_sample_split(training_data, tmp_path)
    cfg = make_config(max_steps=30, final_weights="last", checkpoint_every=100)
    s = training_settings(cfg, "bts")
    batch = prepare_batch(collate([dataset(training_data, cfg, s, split)[i] for i in (0, 1)]), "cpu")
    model = build_network(s)
    before = fixed_losses(model, batch, s)
    card = train(cfg, "bts", tmp_path / "bts", training_data.raw, training_data.derived, split, progress=False)
    model.load_state_dict(ckpt.load_weights(tmp_path / "bts" / "model.pt"))
    after = fixed_losses(model, batch, s)
    assert after < 0.8 * before, (before, after)
    rows = read_csv(tmp_path / "bts" / "losses.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 31)) and card["steps"] == 30


def run_vipocc(data, make_config, split, out, **kwargs):
    cfg = make_config(max_steps=4, validate_every=2, validation_frames=2, checkpoint_every=2, keep_checkpoints=1,
                      log_every=3)
    return train(cfg, "vipocc", out, data.raw, data.derived, split, progress=False, **kwargs)


@pytest.fixture(scope="module")
def resumed_runs(training_data, make_config, tmp_path_factory):
    """vipocc for 4 steps uninterrupted, and stopped after step 2 then rerun."""
    root = tmp_path_factory.mktemp("resume")
    split = two_sample_split(training_data, root, lines=(0, 1, 2, 3, 4, 5))  # 3 batches per epoch: crosses one
    whole = run_vipocc(training_data, make_config, split, root / "whole")
    assert run_vipocc(training_data, make_config, split, root / "killed", stop_at_step=2) is None
    assert not (root / "killed" / "model.pt").exists()
    resumed = run_vipocc(training_data, make_config, split, root / "killed")
    return root, whole, resumed


def test_a_stopped_run_resumes_to_the_same_weights_bit_for_bit(resumed_runs):
    root, whole, resumed = resumed_runs
    a = torch.load(root / "whole" / "work" / "checkpoint_00000004.pt", weights_only=True)
    b = torch.load(root / "killed" / "work" / "checkpoint_00000004.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in ("exp_avg", "exp_avg_sq"))
    assert a["scheduler"] == b["scheduler"] and a["best"] == b["best"]
    assert (root / "whole" / "model.pt").read_bytes() == (root / "killed" / "model.pt").read_bytes()
    # logs of the resumed run equal the uninterrupted ones apart from timing
    for name in ("losses.csv", "validation.csv"):
        rows = [read_csv(root / run / name) for run in ("whole", "killed")]
        for row in rows[0] + rows[1]:
            row.pop("seconds_per_step", None), row.pop("seconds", None)
        assert rows[0] == rows[1] and rows[0]
    assert (whole["sessions"], resumed["sessions"], resumed["resumed_from_step"]) == (1, 2, 2)
    # rolling: only the newest checkpoint is kept
    assert [s for s, _ in ckpt.list_checkpoints(root / "killed" / "work")] == [4]


def test_model_card_describes_the_run(resumed_runs, training_data):
    root, _, card = resumed_runs
    on_disk = json.loads((root / "killed" / "model.json").read_text())
    assert on_disk == json.loads(json.dumps(card))
    model_file = root / "killed" / "model.pt"
    assert card["model_sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert (card["experiment"], card["steps"], card["steps_per_epoch"], card["train_samples"]) == ("vipocc", 4, 3, 6)
    assert card["device"] == "cpu" and card["deterministic"] and card["amp"] is None
    assert card["provenance"]["libraries"]["torch"] == torch.__version__
    assert card["config"]["training"]["experiments"]["vipocc"]["lambda_temporal_alignment"] == 0.01
    assert card["settings"]["experiment"]["name"] == "vipocc" and card["wall_time_s"] > 0
    # best = the lowest validated abs_rel (validation at steps 2 and 4), and model.pt holds that step's weights
    rows = read_csv(root / "killed" / "validation.csv")
    assert [int(r["step"]) for r in rows] == [2, 4] and set(DEPTH_METRIC_KEYS) <= set(rows[0])
    best_row = min(rows, key=lambda r: float(r["abs_rel"]))
    assert card["best"]["step"] == int(best_row["step"])
    assert card["best"]["value"] == pytest.approx(float(best_row["abs_rel"]), rel=1e-12)
    assert card["weights"] == "best"
    best_file = ckpt.best_model_path(root / "killed" / "work", card["best"]["step"])
    assert model_file.read_bytes() == best_file.read_bytes()
    # the weights load strictly into the network the card describes
    network = ViPOccNetwork(network_config(training_settings(card["config"], "vipocc")))
    network.load_state_dict(ckpt.load_weights(model_file), strict=True)


def test_checkpoints_of_other_settings_are_not_resumed(training_data, make_config, tmp_path):
    split = two_sample_split(training_data, tmp_path)
    cfg = make_config(max_steps=2, checkpoint_every=2)
    first = train(cfg, "bts", tmp_path / "out", training_data.raw, training_data.derived, split, progress=False)
    assert first["sessions"] == 1
    more = make_config(max_steps=3, checkpoint_every=2)  # a longer budget continues
    assert train(more, "bts", tmp_path / "out", training_data.raw, training_data.derived, split,
                 progress=False)["resumed_from_step"] == 2
    other = make_config(max_steps=3, checkpoint_every=2, lr=5.0e-4)  # a new learning rate starts over
    card = train(other, "bts", tmp_path / "out", training_data.raw, training_data.derived, split, progress=False)
    assert card["sessions"] == 1 and card["resumed_from_step"] is None
    assert [int(r["step"]) for r in read_csv(tmp_path / "out" / "losses.csv")] == [1, 2, 3]
