"""Throughput of the priors jobs (vipocc.priors.stage) on 192x640 preprocessed smoke-world images, I/O included.

images/s = images_per_call / mean; SNOG anchors/s = anchors_per_call / mean (n_sets x num_patches per image).
The depth_anything / grounded_sam numbers run the tiny random models (vipocc.priors.tiny_models): they measure
the stage (PNG reading, processors, writing) plus a tiny network, not the real ViT-L / Swin-T + ViT-H cost.
Run with ``pytest tests/benchmarks/test_bench_prior_stage.py --benchmark-enable``; no timing is asserted.
"""
from __future__ import annotations

import numpy as np
import pytest

from vipocc.data.calibration import load_calibration
from vipocc.data.poses import load_poses
from vipocc.data.preprocess import preprocess_sequence
from vipocc.priors import stage, tiny_models

SEQ = "2013_05_28_drive_0000_sync"
SIZE = (192, 640)
FOLDERS = ("data_192x640", "data_192x640_0x-15")
CAMERA = ("image_00",)


@pytest.fixture(scope="module")
def prepared(smoke_world, tmp_path_factory):
    """8 frames of SEQ preprocessed at 192x640, their oracle views, and a derived root to write into."""
    raw = smoke_world / "kitti360"
    derived = tmp_path_factory.mktemp("bench_prior_stage")
    frames = [int(f) for f in load_poses(raw, SEQ).frames[:8]]
    preprocess_sequence(raw, derived, SEQ, frames=frames, image_size=SIZE, progress=False)
    views = stage.OracleViews(smoke_world, SIZE, load_calibration(raw))
    return derived, frames, views


def _bench_depth(benchmark, derived, frames, backend):
    def run():
        return stage.depth_prior_sequence(derived, SEQ, frames, CAMERA, FOLDERS, SIZE, backend, overwrite=True,
                                          progress=False)

    if not benchmark.disabled:
        run()  # warm-up (oneDNN kernels, model loading)
    stats = benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["images_per_call"] = len(frames)
    assert stats.written == len(frames)


def test_bench_stage_depth_simulated(benchmark, prepared):
    derived, frames, views = prepared
    _bench_depth(benchmark, derived, frames, stage.SimulatedDepthBackend(views))


def test_bench_stage_depth_anything_tiny(benchmark, prepared, tmp_path_factory):
    derived, frames, _ = prepared
    model = tiny_models.build_tiny_depth_anything(tmp_path_factory.mktemp("bench_stage_da"))
    # input_size 266 (266x882 network input) keeps the plain test run short; the reference uses 518
    backend = stage.DepthAnythingBackend(model, device="auto", input_size=266, batch_size=2)
    _bench_depth(benchmark, derived, frames[:2], backend)


def _bench_instances(benchmark, derived, frames, backend):
    def run():
        return stage.instance_prior_sequence(derived, SEQ, frames, CAMERA, FOLDERS, SIZE, backend, overwrite=True,
                                             progress=False)

    if not benchmark.disabled:
        run()
    stats = benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["images_per_call"] = len(frames)
    assert stats.written == len(frames)


def test_bench_stage_instances_simulated(benchmark, prepared):
    derived, frames, views = prepared
    _bench_instances(benchmark, derived, frames, stage.SimulatedInstanceBackend(views))


def test_bench_stage_grounded_sam_tiny(benchmark, prepared, tmp_path_factory):
    derived, frames, _ = prepared
    root = tmp_path_factory.mktemp("bench_stage_gsam")
    backend = stage.GroundedSamBackend(tiny_models.build_tiny_grounding_dino(root / "dino"),
                                       tiny_models.build_tiny_sam(root / "sam"), device="auto", batch_size=2)
    _bench_instances(benchmark, derived, frames[:2], backend)


def test_bench_stage_snog_anchors(benchmark, prepared):
    derived, frames, views = prepared
    stage.instance_prior_sequence(derived, SEQ, frames, CAMERA, FOLDERS, SIZE, stage.SimulatedInstanceBackend(views),
                                  progress=False)
    settings = stage.SnogSettings()  # the reference's 25 draws of 64 anchors

    def run():
        return stage.snog_anchor_sequence(derived, SEQ, frames, CAMERA, FOLDERS, SIZE, settings, overwrite=True,
                                          progress=False)

    stats = benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["images_per_call"] = len(frames)
    benchmark.extra_info["anchors_per_call"] = len(frames) * settings.n_sets * settings.num_patches
    assert stats.written == len(frames) and stats.extra["grid_fallback_draws"] == 0
    anchors = np.load(stage.snog_anchor_path(derived, stage.View(SEQ, CAMERA[0], FOLDERS[0], frames[0])))
    assert anchors.shape == (25, 64, 2)
