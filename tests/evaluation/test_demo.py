"""Demo renders: bird's-eye profile and voxels of analytic density fields, PLY files, the files of one frame."""
import numpy as np
import pytest
import torch

from vipocc.data.occupancy_gt import inclination_correction
from vipocc.evaluation.demo import (BevSettings, bev_profile, inverse_depth_image, occupancy_voxels,
                                    read_ply_header, render_demo_frame, voxel_mesh, write_voxel_ply)

CPU = torch.device("cpu")


class AnalyticField:
    """density(points_cam) = rule(points in the inclination-corrected frame); invalid where x_cam > limit."""

    def __init__(self, rule, invalid_x=None):
        self.rule, self.invalid_x = rule, invalid_x

    def encode(self, image, K, w2c, flip=False):
        assert torch.equal(w2c[0], torch.eye(4))

    def density(self, points):
        A = torch.from_numpy(inclination_correction()[:3, :3]).double()
        corrected = points.double() @ A.T  # p_corrected = A p_cam
        sigma = self.rule(corrected).float()
        invalid = torch.zeros_like(sigma, dtype=torch.bool)
        if self.invalid_x is not None:
            invalid = points[..., 0] > self.invalid_x
        return sigma, invalid


def _net(field):
    return type("Net", (), {"field": field})()


IMAGE, K = torch.zeros(1, 3, 8, 8), torch.eye(3)[None]


def test_bev_profile_of_a_wall():
    # dense (sigma 1) nearer than z = 10 m in the corrected frame, empty beyond
    field = AnalyticField(lambda p: (p[..., 2] < 10).double())
    profile = bev_profile(_net(field), IMAGE, K, CPU, batch_points=1000)
    zs = np.linspace(20, 3, 119, dtype=np.float32)
    assert profile.shape == (119, 63)
    # float32 z after the round trip through the rotation: compare away from the wall itself
    far, near = zs > 10.01, zs < 9.99
    assert (profile[far] == 1.0).all() and (profile[near] == 0.0).all()


def test_bev_profile_counts_height_fraction_and_invalid_points():
    # dense below y = 0.3 m (y down: y > 0.3), so heights 0..0.3 are free: 11 of 25 samples (0, 0.03125, ... 0.3125)
    field = AnalyticField(lambda p: (p[..., 1] > 0.3).double())
    profile = bev_profile(_net(field), IMAGE, K, CPU)
    heights = np.linspace(0, 0.75, 25, dtype=np.float32)
    assert np.allclose(profile, (heights <= 0.3).mean(), atol=1e-6)
    blind = AnalyticField(lambda p: torch.zeros_like(p[..., 0]), invalid_x=0.0)  # invalid counts as dense
    profile = bev_profile(_net(blind), IMAGE, K, CPU, BevSettings(density_threshold=0.6))
    xs = np.linspace(-4.5, 4.5, 63)
    assert (profile[:, xs < -0.01] == 1).all() and (profile[:, xs > 0.01] == 0).all()


def test_voxels_of_a_half_space():
    field = AnalyticField(lambda p: (p[..., 0] > 0).double())
    occupied, centres, size = occupancy_voxels(_net(field), IMAGE, K, CPU)
    assert occupied.shape == (62, 24, 118) and centres.shape == (62, 24, 118, 3)
    assert size == pytest.approx(1 / 7)
    # a 2x2x2 block averages above 0.5 only when both of its x corners are > 0: x pairs 32..61 of linspace(-4.5,4.5,63)
    xs = np.linspace(-4.5, 4.5, 63)
    pairs = (xs[:-1] > 0) & (xs[1:] > 0)
    assert occupied.sum() == pairs.sum() * 24 * 118
    assert np.allclose(centres[:, 0, 0, 0], (xs[:-1] + xs[1:]) / 2, atol=1e-6)


def test_ply_binary_and_ascii_parse(tmp_path):
    centres = np.array([[0, 0, 5], [1, -1, 6], [2, 1, 7]], np.float32)
    vertices, faces, colours = voxel_mesh(centres, 0.5)
    assert vertices.shape == (24, 3) and faces.shape == (18, 4) and colours.shape == (24, 3)
    # cube corners are centre +- size/2
    assert np.allclose(vertices[:8].min(0), [-0.25, -0.25, 4.75]) and np.allclose(vertices[:8].max(0), [.25, .25, 5.25])
    binary = write_voxel_ply(tmp_path / "b.ply", vertices, faces, colours)
    info = read_ply_header(binary)
    assert info["format"] == "binary_little_endian" and info["vertex"] == 24 and info["face"] == 18
    body = binary.read_bytes()[info["header_bytes"]:]
    assert len(body) == 24 * (12 + 3) + 18 * (1 + 16)
    first = np.frombuffer(body[:12], "<f4")
    assert np.array_equal(first, vertices[0])
    ascii_path = write_voxel_ply(tmp_path / "a.ply", vertices, faces, colours, binary=False)
    info = read_ply_header(ascii_path)
    lines = ascii_path.read_text().splitlines()
    start = lines.index("end_header") + 1
    vertex_lines = np.loadtxt(lines[start:start + 24])
    face_lines = np.loadtxt(lines[start + 24:], dtype=int)
    assert info["format"] == "ascii" and np.allclose(vertex_lines[:, :3], vertices, atol=1e-6)
    assert (face_lines[:, 0] == 4).all() and np.array_equal(face_lines[:, 1:], faces)
    # highest voxel (most negative y) gets the top magma colour, the lowest the bottom one
    assert tuple(colours[8]) != tuple(colours[16])


def test_inverse_depth_image_is_min_max_normalised():
    from matplotlib import colormaps

    image = inverse_depth_image(np.array([[1.0, 2.0], [4.0, 0.0]]))
    top = (np.array(colormaps["magma"](1.0)[:3]) * 255).round()
    bottom = (np.array(colormaps["magma"](0.0)[:3]) * 255).round()
    assert np.array_equal(image[0, 0], top) and np.array_equal(image[1, 0], bottom)
    assert np.array_equal(image[1, 1], bottom)  # no depth -> lowest colour


class StubDemoNetwork(torch.nn.Module):
    """Analytic field (dense nearer than 8 m) plus constant rendered / predicted depths."""

    def __init__(self):
        super().__init__()
        self.field = AnalyticField(lambda p: (p[..., 2] < 8).double())
        self.depth_branch = torch.nn.Identity()
        self.config = type("Config", (), {"rid_ablation": "rid"})()

    def render_depth_map(self, image, K, pixel_convention="linspace"):
        return torch.linspace(3, 30, image.shape[-1]).expand(1, 1, *image.shape[-2:])

    def predict_depth(self, image, prior):
        return prior * 1.5


def test_demo_files_of_one_frame(tmp_path):
    import cv2

    image = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    files = render_demo_frame(StubDemoNetwork(), image, K, torch.full((1, 1, 48, 64), 10.0), tmp_path,
                              "seq_0000000001", CPU, batch_points=50000)
    assert set(files) == {"rgb", "disp_r", "disp_p", "disp_pseudo", "bev", "voxel"}
    assert all(name.startswith(str(tmp_path / "seq_0000000001_")) for name in files.values())
    rgb = cv2.imread(files["rgb"])[..., ::-1]
    expected = ((image[0].permute(1, 2, 0).numpy() * 0.5 + 0.5) * 255).round()
    assert rgb.shape == (48, 64, 3) and np.abs(rgb - expected).max() <= 0.5
    assert cv2.imread(files["bev"]).shape == (119, 63, 3)
    assert cv2.imread(files["disp_r"]).shape == (48, 64, 3)
    info = read_ply_header(files["voxel"])
    # dense where corrected z < 8 m: z pairs of linspace(20, 3, 119) with both ends < 8 m, all x and y pairs
    zs = np.linspace(20, 3, 119)
    assert info["vertex"] == 8 * ((zs[:-1] < 8) & (zs[1:] < 8)).sum() * 62 * 24
    assert info["face"] == 6 * info["vertex"] // 8
    no_prior = render_demo_frame(StubDemoNetwork(), image, K, None, tmp_path / "b", "x", CPU)
    assert "disp_p" not in no_prior and "disp_pseudo" not in no_prior  # the depth branch needs the prior
