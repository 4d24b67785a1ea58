"""Throughput of the occupancy evaluator (frames/s) with a tiny real network (ResNet-18 field, 192 x 640 input)
on the 4-20 m (160 x 80) and 4-50 m (460 x 80) grids. Timings are reported, never asserted."""
import numpy as np
import pytest
import torch

from vipocc.evaluation.occupancy import OccupancySettings, evaluate_occupancy

SEQ = "s"
FRAMES = (0, 1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from vipocc.data.occupancy_gt import save_occupancy_gt
    from vipocc.data.occupancy_labels import save_object_labels
    from vipocc.models.network import NetworkConfig, ViPOccNetwork

    root = tmp_path_factory.mktemp("gt")
    rng = np.random.default_rng(0)
    for frame in FRAMES:
        save_occupancy_gt(root / "GT_Occ", SEQ, frame, rng.random((460, 80)) < 0.3, rng.random((460, 80)) < 0.5)
        labels = np.zeros((460, 80), np.uint8)
        labels[400:420, 30:40] = 3
        save_object_labels(root / "Object_Label", SEQ, frame, labels)
    torch.manual_seed(0)
    network = ViPOccNetwork(NetworkConfig(encoder_depth=18, use_depth_branch=False))
    K = torch.tensor([[1.1, 0.0, 0.0], [0.0, 3.6, 0.0], [0.0, 0.0, 1.0]])
    gen = torch.Generator().manual_seed(0)
    data = [{"imgs": [torch.rand(3, 192, 640, generator=gen) * 2 - 1], "projs": [K], "seq": SEQ, "img_id": f}
            for f in FRAMES]
    return network, data, root


@pytest.mark.parametrize("z_range", [(20.0, 4.0), (50.0, 4.0)], ids=["4-20", "4-50"])
def test_bench_occupancy_evaluator(benchmark, setup, z_range):
    network, data, root = setup
    settings = OccupancySettings(z_range=z_range, device="cpu")
    rows, _ = benchmark(evaluate_occupancy, network, data, root, settings, progress=False)
    assert len(rows) == len(FRAMES)
    benchmark.extra_info["frames_per_call"] = len(FRAMES)
