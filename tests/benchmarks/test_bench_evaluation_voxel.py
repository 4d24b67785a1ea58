"""Throughput (frames/s) of the voxel evaluator (SSCBench grid, 256 x 256 x 32 voxels) with a tiny real network.

Tiny network: ResNet-18 field (random weights, eval mode), 96x320 input (the default workflow size). Inputs are
synthetic but shaped like a default-world frame: the real KITTI-360 velodyne -> rectified cam0 transform and
normalised intrinsics (so the camera frustum holds the same ~1.6 M voxels that are sent through the network), a
road surface with random blocks on it, a random visible mask and two car boxes. frames/s = frames_per_call /
(mean time per benchmark round); timings are reported in extra_info, never asserted.
Run with ``pytest tests/benchmarks/test_bench_evaluation_voxel.py --benchmark-enable``.
"""
import numpy as np
import pytest
import torch

from vipocc.data.calibration import normalize_K
from vipocc.data.voxel_gt import VOXEL_SHAPE
from vipocc.evaluation.voxel import VoxelSettings, evaluate_voxel, in_frustum
from vipocc.models.network import NetworkConfig, ViPOccNetwork
from vipocc.synthetic.rig import kitti360_rig

H, W = 96, 320
FRAMES = 1  # per round; more frames only repeat the same work


def _labels(rng: np.random.Generator) -> np.ndarray:
    """uint8 [256, 256, 32]: road (7) at k = 3 (z = -1.8 m, 1.7 m below the velodyne), random 2.4 m high blocks
    (11) on 20 % of the columns, unknown (255) at j < 10."""
    labels = np.zeros(VOXEL_SHAPE, np.uint8)
    labels[:, :, 3] = 7
    blocks = rng.random(VOXEL_SHAPE[:2]) < 0.2
    labels[:, :, 4:16][blocks] = 11
    labels[:, :10] = 255
    return labels


@pytest.fixture(scope="module")
def setup():
    rig = kitti360_rig(0.25)
    velo_to_cam = np.linalg.inv(rig.T_rect_to_pose[0]) @ rig.T_velo_to_pose
    K = normalize_K(rig.P_rect_00[:, :3], rig.perspective_size[::-1]).astype(np.float32)
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)
    boxes = {"center": torch.tensor([[2.0, 0.9, 12.0], [-3.0, 0.9, 20.0]]),  # camera frame, on the road
             "whl": torch.tensor([[1.8, 1.5, 4.2], [1.8, 1.5, 4.2]]), "rotation": torch.eye(3).repeat(2, 1, 1)}
    data = [{"imgs": [torch.rand(3, H, W, generator=generator) * 2 - 1], "projs": [torch.from_numpy(K)],
             "seq": "s", "img_id": frame, "voxel": _labels(rng).astype(np.int32),
             "voxel_visible": rng.random(VOXEL_SHAPE) < 0.3, "voxellidar2c": velo_to_cam.astype(np.float32),
             "3d_bboxes": boxes} for frame in range(FRAMES)]
    torch.manual_seed(0)
    network = ViPOccNetwork(NetworkConfig(encoder_depth=18, use_depth_branch=False)).eval()
    return network, data


def test_bench_voxel_evaluator(benchmark, setup):
    network, data = setup
    rows, summary = benchmark.pedantic(evaluate_voxel, args=(network, data, VoxelSettings(device="cpu")),
                                       kwargs={"progress": False}, rounds=3, iterations=1)
    assert len(rows) == FRAMES and summary["frames"] == FRAMES
    benchmark.extra_info["frames_per_call"] = FRAMES
    if benchmark.stats is not None:  # None when run as a plain test (--benchmark-disable)
        benchmark.extra_info["frames_per_s"] = FRAMES / benchmark.stats.stats.mean
    from vipocc.data.voxel_gt import voxel_centers
    centers = np.concatenate([voxel_centers(), np.ones((len(voxel_centers()), 1))], axis=1).astype(np.float32)
    points = (centers @ data[0]["voxellidar2c"].T)[:, :3]
    benchmark.extra_info["queried_voxels_per_frame"] = int(
        (in_frustum(points, data[0]["projs"][0].numpy()) & (data[0]["voxel"].reshape(-1) != 255)).sum())
