"""Throughput (frames/s) of the demo renderer and of its parts, with a tiny real network on CPU.

Tiny network: ViPOcc with a ResNet-18 field and depth branch (random weights, eval mode), 64 samples per ray (the
workflow default), 96x320 input (the default workflow size), K of the KITTI-360 rig at that size. Parts of one
frame: rendered depth (one ray per pixel), the bird's-eye profile (63 x 119 x 25 points), the voxel mesh .ply
(63 x 25 x 119 points, pooled, meshed and written); "frame" is the whole ``render_demo_frame`` (all pictures and
the mesh). frames/s = 1 / (mean time per round); timings are reported in extra_info, never asserted.
Run with ``pytest tests/benchmarks/test_bench_evaluation_demo.py --benchmark-enable``.
"""
import numpy as np
import pytest
import torch

from vipocc.data.calibration import normalize_K
from vipocc.evaluation.demo import (bev_profile, occupancy_voxels, read_ply_header, render_demo_frame, voxel_mesh,
                                    write_voxel_ply)
from vipocc.evaluation.depth import DepthFrame, predict_depth_map
from vipocc.models.network import NetworkConfig, ViPOccNetwork
from vipocc.synthetic.rig import kitti360_rig

H, W = 96, 320
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return ViPOccNetwork(NetworkConfig(encoder_depth=18)).eval()


@pytest.fixture(scope="module")
def frame():
    rig = kitti360_rig(0.25)
    K = normalize_K(rig.P_rect_00[:, :3], rig.perspective_size[::-1]).astype(np.float32)
    rng = np.random.default_rng(0)
    return DepthFrame("seq", 0, False, torch.from_numpy(rng.uniform(-1, 1, (1, 3, H, W)).astype(np.float32)),
                      torch.from_numpy(K)[None], np.zeros((1, 1), np.float32),
                      torch.from_numpy(rng.uniform(3, 60, (1, 1, H, W)).astype(np.float32)))


def _rendered_depth(network, frame, out_dir):
    return predict_depth_map(network, frame, "rendered", CPU)


def _bev(network, frame, out_dir):
    return bev_profile(network, frame.image, frame.K, CPU)


def _voxel_ply(network, frame, out_dir):
    occupied, centres, size = occupancy_voxels(network, frame.image, frame.K, CPU)
    return write_voxel_ply(out_dir / "f_voxel.ply", *voxel_mesh(centres[occupied], size))


def _frame(network, frame, out_dir):
    return render_demo_frame(network, frame.image, frame.K, frame.prior, out_dir, "f", CPU)


PARTS = {"rendered_depth": _rendered_depth, "bev": _bev, "voxel_ply": _voxel_ply, "frame": _frame}


@pytest.mark.parametrize("part", list(PARTS))
def test_bench_demo(benchmark, network, frame, tmp_path, part):
    out = benchmark.pedantic(PARTS[part], args=(network, frame, tmp_path), rounds=3, iterations=1)
    if part == "rendered_depth":
        assert out.shape == (H, W) and np.isfinite(out).all()
    elif part == "bev":
        assert out.shape == (119, 63) and ((out >= 0) & (out <= 1)).all()
    elif part == "voxel_ply":
        benchmark.extra_info["voxels"] = read_ply_header(out)["vertex"] // 8
    else:
        assert set(out) == {"rgb", "disp_r", "disp_p", "disp_pseudo", "bev", "voxel"}
    if benchmark.stats is not None:  # None when run as a plain test (--benchmark-disable)
        benchmark.extra_info["frames_per_s"] = 1.0 / benchmark.stats.stats.mean
