"""KITTI-360 calibration as the ViPOcc/BTS reference uses it (reference-implementation.md 1.2).

Reads ``<root>/calibration/{perspective.txt, calib_cam_to_pose.txt, calib_cam_to_velo.txt, image_02.yaml,
image_03.yaml}`` where ``root`` is the KITTI-360 dataset root (the folder holding ``calibration/``).

Frames (4x4 ``T_a_to_b`` maps homogeneous points of frame a to frame b, metres):

* ``pose``: the IMU/GPS frame that ``data_poses/<seq>/poses.txt`` maps to the world;
* cameras 0..3 unrectified (``T_cam_to_pose``), perspective cameras 0/1 rectified (``T_rect_to_pose``, what the
  ``data_rect`` images show), and the *virtual* pinhole cameras made from fisheyes 2/3 (``T_virtual_to_pose =
  T_cam_to_pose @ R_fisheye``): they see what :func:`vipocc.data.images.fisheye_to_pinhole_grid` resamples;
* ``velo``: the Velodyne frame.

Intrinsics are normalised to [-1, 1] image coordinates as the reference does, from the rectified pixel K and the
``data_rect`` size (W, H): ``fx' = 2 fx / W``, ``cx' = 2 cx / W - 1`` (same for y with H). The normalised K does not
depend on the image resolution, so it is valid for every resized image. The fisheye (MEI) ``gamma1, u0`` are
normalised by the fisheye width and ``gamma2, v0`` by its height in the same way (``mei_normalized``).

Differences from the reference: float64 instead of float32; a missing file, a missing key or a malformed line raises
an error naming the file (and line), where the reference silently skips unparsable lines.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from vipocc.geometry.cameras import MEIParams

__all__ = ["Kitti360Calibration", "load_calibration", "fisheye_rotation_matrices", "normalize_K",
           "normalize_mei", "PERSPECTIVE_FILE", "CAM_TO_POSE_FILE", "CAM_TO_VELO_FILE"]

PERSPECTIVE_FILE = "perspective.txt"
CAM_TO_POSE_FILE = "calib_cam_to_pose.txt"
CAM_TO_VELO_FILE = "calib_cam_to_velo.txt"

# Keys of perspective.txt that are used, with their number of values.
_PERSPECTIVE_KEYS = {"S_rect_00": 2, "P_rect_00": 12, "P_rect_01": 12, "R_rect_00": 9, "R_rect_01": 9}
# Keys whose values are not numbers in real KITTI files (skipped, as the reference's float parse skips them).
_TEXT_KEYS = {"calib_time"}
_MEI_KEYS = {"mirror_parameters": ("xi",), "distortion_parameters": ("k1", "k2"),
             "projection_parameters": ("gamma1", "gamma2", "u0", "v0")}


@dataclasses.dataclass(frozen=True, eq=False)
class Kitti360Calibration:
    """The KITTI-360 rig as the reference dataset uses it. All arrays float64, read-only.

    Attributes:
        root: the dataset root the files were read from.
        fisheye_rotation: (yaw, pitch) in degrees of the virtual pinhole views made from the fisheyes.
        K_perspective: [3,3] normalised intrinsics of the rectified perspective cameras (shared by 0/1, and by
            the virtual fisheye views, as the reference's ``K_fisheye``).
        raw_size: (H, W) px of the ``data_rect`` images (S_rect_00).
        P_rect: {0, 1} -> [3,4] rectified projections in pixels.
        R_rect: {0, 1} -> [3,3] rectifying rotations (unrectified camera -> rectified camera).
        T_cam_to_pose: {0..3} -> [4,4] unrectified camera -> pose.
        T_rect_to_pose: {0, 1} -> [4,4] rectified camera -> pose (``T_cam_to_pose @ inv(R_rect)``).
        R_fisheye: {2, 3} -> [3,3] virtual pinhole camera -> raw fisheye camera rotation.
        T_virtual_to_pose: {2, 3} -> [4,4] virtual pinhole camera -> pose (``T_cam_to_pose @ R_fisheye``).
        T_cam0_to_velo: [4,4] unrectified camera 0 -> Velodyne.
        T_velo_to_rect: {0, 1} -> [4,4] Velodyne -> rectified camera.
        T_velo_to_pose: [4,4] Velodyne -> pose.
        mei: {2, 3} -> MEIParams in pixels (p1, p2 read but unused, as everywhere).
        mei_normalized: {2, 3} -> {xi, k1, k2, gamma1, gamma2, u0, v0} with gamma/u0/v0 in [-1, 1] image units.
        fisheye_size: {2, 3} -> (H, W) px of the raw fisheye images.
    """

    root: Path
    fisheye_rotation: tuple[float, float]
    K_perspective: np.ndarray
    raw_size: tuple[int, int]
    P_rect: dict[int, np.ndarray]
    R_rect: dict[int, np.ndarray]
    T_cam_to_pose: dict[int, np.ndarray]
    T_rect_to_pose: dict[int, np.ndarray]
    R_fisheye: dict[int, np.ndarray]
    T_virtual_to_pose: dict[int, np.ndarray]
    T_cam0_to_velo: np.ndarray
    T_velo_to_rect: dict[int, np.ndarray]
    T_velo_to_pose: np.ndarray
    mei: dict[int, MEIParams]
    mei_normalized: dict[int, dict[str, float]]
    fisheye_size: dict[int, tuple[int, int]]

    @property
    def K_fisheye(self) -> np.ndarray:
        """Normalised K of the virtual fisheye views: the perspective K, as in the reference."""
        return self.K_perspective

    def view_to_pose(self, cam: int) -> np.ndarray:
        """[4,4] transform of the camera whose images the dataset returns: rectified 0/1, virtual pinhole 2/3."""
        if cam in (0, 1):
            return self.T_rect_to_pose[cam]
        if cam in (2, 3):
            return self.T_virtual_to_pose[cam]
        raise ValueError(f"cam: expected a KITTI-360 camera id 0, 1, 2 or 3, got {cam!r}")


# ------------------------------------------------------------------------------------------------ public helpers


def normalize_K(K_pixels: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Pixel intrinsics [3,3] of an image of ``size_hw`` = (H, W) -> normalised [-1, 1] intrinsics (reference)."""
    K = np.array(K_pixels, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"K_pixels: expected shape [3,3], got {K.shape}")
    height, width = size_hw
    K[0, 0] = 2.0 * K[0, 0] / width
    K[1, 1] = 2.0 * K[1, 1] / height
    K[0, 2] = 2.0 * K[0, 2] / width - 1.0
    K[1, 2] = 2.0 * K[1, 2] / height - 1.0
    return K


def normalize_mei(p: MEIParams) -> dict[str, float]:
    """MEI parameters with gamma1/u0 normalised by the width and gamma2/v0 by the height (reference 1.2)."""
    return {"xi": float(p.xi), "k1": float(p.k1), "k2": float(p.k2),
            "gamma1": 2.0 * p.gamma1 / p.width, "gamma2": 2.0 * p.gamma2 / p.height,
            "u0": 2.0 * p.u0 / p.width - 1.0, "v0": 2.0 * p.v0 / p.height - 1.0}


def fisheye_rotation_matrices(fisheye_rotation) -> dict[int, np.ndarray]:
    """{2: R_02, 3: R_03} [3,3] for ``fisheye_rotation`` = (yaw, pitch) degrees (or a scalar pitch).

    As the reference: ``R_02 = from_euler("xy", [pitch, yaw])`` and ``R_03 = from_euler("xy", [pitch, -yaw])``
    (extrinsic x then y, degrees). With (0, -15) both are a -15 deg rotation about x: the virtual optical axis
    points 15 deg below the fisheye's (camera y points down).
    """
    yaw, pitch = _check_rotation(fisheye_rotation)
    return {2: Rotation.from_euler("xy", [pitch, yaw], degrees=True).as_matrix(),
            3: Rotation.from_euler("xy", [pitch, -yaw], degrees=True).as_matrix()}


# --------------------------------------------------------------------------------------------------- loading


def load_calibration(root: str | os.PathLike, fisheye_rotation=(0.0, -15.0)) -> Kitti360Calibration:
    """Read the KITTI-360 calibration under ``<root>/calibration`` (see the module docstring).

    ``fisheye_rotation``: (yaw, pitch) degrees of the virtual pinhole views (config ``preprocess.fisheye_rotation``);
    a scalar means (0, scalar), as the reference accepts. Raises FileNotFoundError naming a missing file and
    ValueError naming the file (and line) for malformed content.
    """
    root = Path(root)
    folder = root / "calibration"
    rotation = _check_rotation(fisheye_rotation)

    persp = _read_key_values(folder / PERSPECTIVE_FILE, _PERSPECTIVE_KEYS)
    cam_to_pose = _read_key_values(folder / CAM_TO_POSE_FILE, {f"image_{c:02d}": 12 for c in range(4)})
    T_cam0_to_velo = _rows_to_4x4(_read_single_line(folder / CAM_TO_VELO_FILE, 12))

    width, height = (int(v) for v in persp["S_rect_00"])
    if width <= 0 or height <= 0 or (width, height) != tuple(persp["S_rect_00"]):
        raise ValueError(f"{folder / PERSPECTIVE_FILE}: S_rect_00 must be two positive integers (W H), "
                         f"got {persp['S_rect_00'].tolist()}")
    P_rect = {c: persp[f"P_rect_0{c}"].reshape(3, 4) for c in (0, 1)}
    _check_projection(P_rect[0], folder / PERSPECTIVE_FILE)
    R_rect = {c: persp[f"R_rect_0{c}"].reshape(3, 3) for c in (0, 1)}

    T_cam_to_pose = {c: _rows_to_4x4(cam_to_pose[f"image_{c:02d}"]) for c in range(4)}
    # rectified = R_rect @ unrectified, hence rect -> pose = (cam -> pose) @ inv(R_rect).
    T_rect_to_pose = {c: T_cam_to_pose[c] @ np.linalg.inv(_rot4(R_rect[c])) for c in (0, 1)}
    R_fisheye = fisheye_rotation_matrices(rotation)
    T_virtual_to_pose = {c: T_cam_to_pose[c] @ _rot4(R_fisheye[c]) for c in (2, 3)}

    T_velo_to_rect0 = _rot4(R_rect[0]) @ np.linalg.inv(T_cam0_to_velo)
    T_velo_to_pose = T_rect_to_pose[0] @ T_velo_to_rect0
    T_velo_to_rect = {0: T_velo_to_rect0, 1: np.linalg.inv(T_rect_to_pose[1]) @ T_velo_to_pose}

    mei = {c: _read_mei_yaml(folder / f"image_{c:02d}.yaml") for c in (2, 3)}

    calib = Kitti360Calibration(
        root=root, fisheye_rotation=rotation,
        K_perspective=normalize_K(P_rect[0][:, :3], (height, width)), raw_size=(height, width),
        P_rect=P_rect, R_rect=R_rect, T_cam_to_pose=T_cam_to_pose, T_rect_to_pose=T_rect_to_pose,
        R_fisheye=R_fisheye, T_virtual_to_pose=T_virtual_to_pose, T_cam0_to_velo=T_cam0_to_velo,
        T_velo_to_rect=T_velo_to_rect, T_velo_to_pose=T_velo_to_pose, mei=mei,
        mei_normalized={c: normalize_mei(p) for c, p in mei.items()},
        fisheye_size={c: (int(p.height), int(p.width)) for c, p in mei.items()},
    )
    _freeze(calib)
    return calib


# ---------------------------------------------------------------------------------------------------- parsing


def _check_rotation(fisheye_rotation) -> tuple[float, float]:
    values = np.atleast_1d(np.asarray(fisheye_rotation, dtype=np.float64)).ravel()
    if values.size == 1:  # the reference's scalar form: a pitch
        values = np.array([0.0, values[0]])
    if values.size != 2 or not np.all(np.isfinite(values)):
        raise ValueError(f"fisheye_rotation: expected (yaw, pitch) in degrees, got {fisheye_rotation!r}")
    return float(values[0]), float(values[1])


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: calibration file not found")
    return path


def _parse_floats(text: str, path: Path, lineno: int, line: str) -> np.ndarray:
    try:
        values = np.array([float(v) for v in text.split()], dtype=np.float64)
    except ValueError:
        raise ValueError(f"{path}:{lineno}: malformed line (expected numbers): {line.strip()!r}") from None
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{path}:{lineno}: non-finite value in {line.strip()!r}")
    return values


def _read_key_values(path: Path, required: dict[str, int]) -> dict[str, np.ndarray]:
    """Parse ``key: numbers`` lines; check that every ``required`` key is present with its number of values."""
    out: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(_require_file(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{path}:{lineno}: malformed line (expected 'key: values'): {line.strip()!r}")
        if key in _TEXT_KEYS:
            continue
        if key not in required:
            # Unused keys (K_00, D_00, ...) must still be numbers: a garbled file is reported, not half-read.
            _parse_floats(rest, path, lineno, line)
            continue
        values = _parse_floats(rest, path, lineno, line)
        if values.size != required[key]:
            raise ValueError(f"{path}:{lineno}: {key} needs {required[key]} values, got {values.size}")
        out[key] = values
    missing = [key for key in required if key not in out]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    return out


def _read_single_line(path: Path, n_values: int) -> np.ndarray:
    lines = [(i, line) for i, line in enumerate(_require_file(path).read_text().splitlines(), 1) if line.strip()]
    if not lines:
        raise ValueError(f"{path}: empty file (expected one line of {n_values} numbers)")
    lineno, line = lines[0]
    values = _parse_floats(line, path, lineno, line)
    if values.size != n_values:
        raise ValueError(f"{path}:{lineno}: expected {n_values} numbers, got {values.size}")
    return values


def _read_mei_yaml(path: Path) -> MEIParams:
    """OpenCV YAML of an MEI fisheye (the ``%YAML:1.0`` directive is skipped, as the reference does)."""
    lines = _require_file(path).read_text().splitlines()
    if lines and lines[0].startswith("%YAML"):
        lines = lines[1:]
    try:
        data = yaml.safe_load("\n".join(lines))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: malformed YAML: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping of MEI parameters")
    values: dict[str, float] = {}
    try:
        for group, keys in _MEI_KEYS.items():
            for key in keys:
                values[key] = float(data[group][key])
        for key in ("p1", "p2"):  # tangential terms: read, ignored by every projection (as the reference)
            values[key] = float(data["distortion_parameters"].get(key, 0.0))
        width, height = int(data["image_width"]), int(data["image_height"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: missing or malformed MEI parameter ({err!r})") from None
    try:
        return MEIParams(width=width, height=height, **values)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _check_projection(P: np.ndarray, path: Path) -> None:
    if not (P[0, 0] > 0 and P[1, 1] > 0 and np.allclose(P[2, :3], (0.0, 0.0, 1.0))):
        raise ValueError(f"{path}: P_rect_00 is not a pinhole projection (positive focal lengths, row 3 = 0 0 1)")


def _rows_to_4x4(values: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :] = np.asarray(values, dtype=np.float64).reshape(3, 4)
    return T


def _rot4(R: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    return T


def _freeze(calib: Kitti360Calibration) -> None:
    """Make every array read-only: one calibration object is shared by datasets and workers."""
    for field in dataclasses.fields(calib):
        value = getattr(calib, field.name)
        for item in (value.values() if isinstance(value, dict) else [value]):
            if isinstance(item, np.ndarray):
                item.flags.writeable = False
