"""Writers for the KITTI-360 file layout (calibration, poses, images, Velodyne scans, 3D boxes, splits).

Everything written here parses with the official devkit (kitti360scripts) and with ViPOcc/BTS loaders.
Floats are written in shortest round-trip scientific notation (``1.408e+03``), so a file read back with
``float()`` gives the exact float64 the rig holds; KITTI's own files use the same ``%e`` style.

Layout under ``root`` (the KITTI-360 dataset root)::

    calibration/{perspective.txt, calib_cam_to_pose.txt, calib_cam_to_velo.txt, image_02.yaml, image_03.yaml}
    data_poses/<seq>/{poses.txt, cam0_to_world.txt}
    data_2d_raw/<seq>/image_0{0,1}/data_rect/<frame:010d>.png, image_0{2,3}/data_rgb/<frame:010d>.png,
                     image_0X/timestamps.txt
    data_3d_raw/<seq>/velodyne_points/data/<frame:010d>.bin, velodyne_points/timestamps.txt
    data_3d_bboxes/train/<seq>.xml
"""

from __future__ import annotations

import datetime as dt
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from vipocc.geometry.cameras import MEIParams
from vipocc.geometry.transforms import invert_rigid, rot_z
from vipocc.synthetic.rig import Rig

__all__ = [
    "format_float",
    "format_floats",
    "write_lines",
    "check_rigid_stack",
    "write_points_bin",
    "write_calibration",
    "write_poses",
    "image_path",
    "velodyne_path",
    "write_image",
    "write_velodyne",
    "format_timestamps",
    "write_timestamps_file",
    "write_timestamps",
    "Box3D",
    "BOX_UNIT_VERTICES",
    "BOX_FACES",
    "box_local_to_world",
    "write_bboxes_xml",
    "write_split",
    "DEFAULT_START_TIME",
]

DEFAULT_START_TIME = dt.datetime(2013, 5, 28, 8, 46, 2)
_CALIB_TIME = "09-Jan-2012 13:57:47"  # a KITTI-style date; readers skip this line (not floats)

# Local unit-box corners in KITTI-360's order; local x = length, y = width, z = height.
BOX_UNIT_VERTICES = np.array([
    (0.5, 0.5, 0.5), (0.5, 0.5, -0.5), (0.5, -0.5, 0.5), (0.5, -0.5, -0.5),
    (-0.5, 0.5, -0.5), (-0.5, 0.5, 0.5), (-0.5, -0.5, -0.5), (-0.5, -0.5, 0.5)])
# 12 triangles (0-based vertex indices), counter-clockwise seen from outside (outward normals).
BOX_FACES = np.array([
    (1, 0, 2), (1, 2, 3), (5, 4, 6), (5, 6, 7), (0, 1, 4), (0, 4, 5),
    (3, 2, 7), (3, 7, 6), (2, 0, 5), (2, 5, 7), (1, 3, 6), (1, 6, 4)], dtype=np.int64)


# ---------------------------------------------------------------------------------------------- formatting


def format_float(x: float) -> str:
    """Shortest scientific text that parses back to exactly ``x`` (e.g. ``5.52554261e+02``)."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"cannot write non-finite value {x} to a calibration/pose file")
    return np.format_float_scientific(x, unique=True, min_digits=1, exp_digits=2)


def format_floats(values: Iterable[float]) -> str:
    """Space-separated :func:`format_float` of all values (flattened row-major)."""
    return " ".join(format_float(v) for v in np.asarray(values, dtype=np.float64).ravel())


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    """Write ``lines`` to ``path``, each terminated by a newline (creates parent folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def _check_seq(seq: str) -> str:
    if not isinstance(seq, str) or not seq or any(ch in seq for ch in ("/", "\\", " ", "\t", "\n")):
        raise ValueError(f"seq: expected a sequence folder name such as '2013_05_28_drive_0000_sync', got {seq!r}")
    return seq


def _check_frame(frame: int, name: str = "frame") -> int:
    if isinstance(frame, bool) or int(frame) != frame or frame < 0:
        raise ValueError(f"{name}: expected a non-negative integer frame number, got {frame!r}")
    return int(frame)


# --------------------------------------------------------------------------------------------- calibration


def _perspective_lines(rig: Rig) -> list[str]:
    """perspective.txt: raw (nominal, distortion-free) and rectified parameters of cams 00/01."""
    W, H = rig.perspective_size
    # The synthetic raw cameras share the rectified K and have no distortion; R_0X/T_0X map cam 0 -> cam X.
    T_cam0_to = {0: np.eye(4), 1: invert_rigid(rig.T_cam_to_pose[1]) @ rig.T_cam_to_pose[0]}
    lines = [f"calib_time: {_CALIB_TIME}", f"corner_dist: {format_float(0.0995)}"]
    for cam, R_rect, P_rect in ((0, rig.R_rect_00, rig.P_rect_00), (1, rig.R_rect_01, rig.P_rect_01)):
        lines += [
            f"S_{cam:02d}: {format_floats([W, H])}",
            f"K_{cam:02d}: {format_floats(rig.K_rect[cam])}",
            f"D_{cam:02d}: {format_floats(np.zeros(5))}",
            f"R_{cam:02d}: {format_floats(T_cam0_to[cam][:3, :3])}",
            f"T_{cam:02d}: {format_floats(T_cam0_to[cam][:3, 3])}",
            f"S_rect_{cam:02d}: {format_floats([W, H])}",
            f"R_rect_{cam:02d}: {format_floats(R_rect)}",
            f"P_rect_{cam:02d}: {format_floats(P_rect)}",
        ]
    return lines


def _mei_yaml_lines(cam: int, p: MEIParams) -> list[str]:
    """OpenCV-style YAML exactly as KITTI-360's image_0X.yaml (the devkit skips the first line)."""
    return [
        "%YAML:1.0",
        "---",
        "model_type: MEI",
        f"camera_name: image_{cam:02d}",
        f"image_width: {int(p.width)}",
        f"image_height: {int(p.height)}",
        "mirror_parameters:",
        f"   xi: {format_float(p.xi)}",
        "distortion_parameters:",
        f"   k1: {format_float(p.k1)}",
        f"   k2: {format_float(p.k2)}",
        f"   p1: {format_float(p.p1)}",
        f"   p2: {format_float(p.p2)}",
        "projection_parameters:",
        f"   gamma1: {format_float(p.gamma1)}",
        f"   gamma2: {format_float(p.gamma2)}",
        f"   u0: {format_float(p.u0)}",
        f"   v0: {format_float(p.v0)}",
    ]


def write_calibration(root: str | os.PathLike, rig: Rig) -> dict[str, Path]:
    """Write ``<root>/calibration/*`` for ``rig`` (at its resolution). Returns {file name: path}."""
    calib = Path(root) / "calibration"
    out = {
        "perspective.txt": write_lines(calib / "perspective.txt", _perspective_lines(rig)),
        "calib_cam_to_pose.txt": write_lines(
            calib / "calib_cam_to_pose.txt",
            [f"image_{cam:02d}: {format_floats(rig.T_cam_to_pose[cam][:3])}" for cam in range(4)]),
        "calib_cam_to_velo.txt": write_lines(calib / "calib_cam_to_velo.txt", [format_floats(rig.T_cam0_to_velo[:3])]),
    }
    for cam in (2, 3):
        name = f"image_{cam:02d}.yaml"
        out[name] = write_lines(calib / name, _mei_yaml_lines(cam, rig.mei[cam]))
    return out


# --------------------------------------------------------------------------------------------------- poses


def check_rigid_stack(T: np.ndarray, name: str) -> np.ndarray:
    """Validate a stack of rigid transforms [N,4,4] (raises ValueError naming ``name``); returns float64."""
    T = np.asarray(T, dtype=np.float64)
    if T.ndim != 3 or T.shape[1:] != (4, 4):
        raise ValueError(f"{name}: expected shape [N,4,4], got {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError(f"{name}: contains non-finite values")
    if not np.allclose(T[:, 3], (0.0, 0.0, 0.0, 1.0)):
        raise ValueError(f"{name}: bottom rows must be [0, 0, 0, 1]")
    R = T[:, :3, :3]
    if not np.allclose(R @ np.swapaxes(R, 1, 2), np.eye(3), atol=1e-6) or np.any(np.linalg.det(R) < 0):
        raise ValueError(f"{name}: rotation blocks are not rotations (orthonormal, det +1)")
    return T


def _check_frame_ids(frame_ids: Sequence[int], n: int | None = None) -> np.ndarray:
    ids = np.asarray(frame_ids)
    if ids.ndim != 1 or (n is not None and ids.shape[0] != n):
        raise ValueError(f"frame_ids: expected {n if n is not None else 'N'} frame numbers, got shape {ids.shape}")
    if ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or np.any(np.diff(ids) <= 0)):
        raise ValueError("frame_ids: expected strictly increasing non-negative integers")
    return ids.astype(np.int64)


def write_poses(root: str | os.PathLike, seq: str, frame_ids: Sequence[int], imu_to_world: np.ndarray,
                rig: Rig) -> tuple[Path, Path]:
    """Write ``data_poses/<seq>/poses.txt`` and ``cam0_to_world.txt``.

    ``imu_to_world`` [N,4,4]: pose (IMU/GPS) frame -> world (z up), one per entry of ``frame_ids``
    (strictly increasing; gaps allowed, as in KITTI-360). poses.txt holds ``frame`` + the 3x4 rows (13 numbers);
    cam0_to_world.txt holds ``frame`` + the 4x4 rectified cam 0 -> world (17 numbers).
    """
    seq = _check_seq(seq)
    T = check_rigid_stack(imu_to_world, "imu_to_world")
    ids = _check_frame_ids(frame_ids, T.shape[0])
    cam0_to_world = T @ rig.T_rect_to_pose[0]
    folder = Path(root) / "data_poses" / seq
    poses = write_lines(folder / "poses.txt", (f"{i} {format_floats(M[:3])}" for i, M in zip(ids, T)))
    cams = write_lines(folder / "cam0_to_world.txt", (f"{i} {format_floats(M)}" for i, M in zip(ids, cam0_to_world)))
    return poses, cams


# ------------------------------------------------------------------------------------------ images, lidar


def image_path(root: str | os.PathLike, seq: str, cam: int, frame: int) -> Path:
    """Path of camera ``cam``'s image of ``frame`` (data_rect for 0/1, data_rgb for the fisheyes 2/3)."""
    if cam not in (0, 1, 2, 3):
        raise ValueError(f"cam: expected 0, 1, 2 or 3, got {cam!r}")
    sub = "data_rect" if cam < 2 else "data_rgb"
    return (Path(root) / "data_2d_raw" / _check_seq(seq) / f"image_{cam:02d}" / sub
            / f"{_check_frame(frame):010d}.png")


def velodyne_path(root: str | os.PathLike, seq: str, frame: int) -> Path:
    """Path of the Velodyne scan of ``frame``."""
    return (Path(root) / "data_3d_raw" / _check_seq(seq) / "velodyne_points" / "data"
            / f"{_check_frame(frame):010d}.bin")


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write an RGB uint8 [H,W,3] image as PNG (or JPEG, quality 95, if ``path`` ends in .jpg)."""
    path = Path(path)
    img = np.asarray(rgb)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"rgb for {path}: expected uint8 [H,W,3], got {img.dtype} {img.shape}")
    suffix = path.suffix.lower()
    if suffix == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # fast; files are regenerated, size matters little
    elif suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, 95]
    else:
        raise ValueError(f"path {path}: expected a .png or .jpg file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(img[..., ::-1]), params):
        raise OSError(f"could not write image {path}")
    return path


def write_points_bin(path: str | os.PathLike, points: np.ndarray) -> Path:
    """Write a Velodyne scan [N,4] (x, y, z in m, intensity) as little-endian float32 (KITTI ``.bin``)."""
    path = Path(path)
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 4 or not np.issubdtype(pts.dtype, np.floating):
        raise ValueError(f"points for {path}: expected float [N,4], got {pts.dtype} {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError(f"points for {path}: contains non-finite values")
    path.parent.mkdir(parents=True, exist_ok=True)
    pts.astype("<f4").tofile(path)
    return path


def write_velodyne(root: str | os.PathLike, seq: str, frame: int, points: np.ndarray) -> Path:
    """Write ``frame``'s scan [N,4] (x, y, z in the Velodyne frame in m, intensity in [0,1]) to
    ``data_3d_raw/<seq>/velodyne_points/data/<frame:010d>.bin``."""
    return write_points_bin(velodyne_path(root, seq, frame), points)


# ------------------------------------------------------------------------------------------- timestamps


def format_timestamps(times_s: Sequence[float], start: dt.datetime = DEFAULT_START_TIME) -> list[str]:
    """KITTI timestamp strings ``YYYY-mm-dd HH:MM:SS.nnnnnnnnn`` for ``start + times_s`` (seconds, >= 0).

    Nanoseconds are kept exactly (the readers truncate to microseconds themselves).
    """
    t = np.asarray(times_s, dtype=np.float64)
    if t.ndim != 1 or not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(np.diff(t) < 0):
        raise ValueError("times_s: expected a 1-D non-decreasing array of finite, non-negative seconds")
    out = []
    for ns in np.round(t * 1e9).astype(np.int64).tolist():  # one string per frame: O(frames), not per pixel
        stamp = start + dt.timedelta(microseconds=ns // 1000)
        out.append(f"{stamp:%Y-%m-%d %H:%M:%S}.{stamp.microsecond * 1000 + ns % 1000:09d}")
    return out


def write_timestamps_file(path: str | os.PathLike, times_s: Sequence[float],
                          start: dt.datetime = DEFAULT_START_TIME) -> Path:
    """Write one timestamp line per frame (line k = frame k) to ``path``."""
    return write_lines(Path(path), format_timestamps(times_s, start))


def write_timestamps(root: str | os.PathLike, seq: str, frame_ids: Sequence[int], period_s: float = 0.1,
                     start: dt.datetime = DEFAULT_START_TIME) -> list[Path]:
    """Write the KITTI-360 timestamps.txt files of all 4 cameras and the Velodyne.

    As in the real dataset, line k is frame k for every frame 0..max(frame_ids) (recorded frames include
    those without a pose); frame k is stamped ``start + k * period_s`` (KITTI-360 records at about 10 Hz).
    """
    seq = _check_seq(seq)
    ids = _check_frame_ids(frame_ids)
    if ids.size == 0:
        raise ValueError("frame_ids: expected at least one frame")
    if not (period_s > 0 and math.isfinite(period_s)):
        raise ValueError(f"period_s: expected a positive frame period in seconds, got {period_s}")
    lines = format_timestamps(np.arange(int(ids[-1]) + 1) * float(period_s), start)
    paths = [Path(root) / "data_2d_raw" / seq / f"image_{cam:02d}" / "timestamps.txt" for cam in range(4)]
    paths.append(Path(root) / "data_3d_raw" / seq / "velodyne_points" / "timestamps.txt")
    return [write_lines(p, lines) for p in paths]


# ---------------------------------------------------------------------------------------------- 3D boxes


class Box3D(NamedTuple):
    """A static, yaw-only 3D box in the world frame (z up).

    ``center`` [3] m; ``size`` (length, width, height) m along local x, y, z; ``yaw`` rad about world +z,
    counter-clockwise from world +x to the box's length axis. ``kitti_id`` is the KITTI-360 ``kittiId``
    written as ``<semanticId>`` (car = 13); ``label`` its name.
    """

    instance_id: int
    center: Sequence[float]
    size: Sequence[float]
    yaw: float
    start_frame: int
    end_frame: int
    kitti_id: int = 13
    label: str = "car"


def box_local_to_world(box: Box3D) -> np.ndarray:
    """4x4 transform of the *unit* box to the world: [R_z(yaw) diag(l, w, h) | center]."""
    center = np.asarray(box.center, dtype=np.float64)
    size = np.asarray(box.size, dtype=np.float64)
    if center.shape != (3,) or size.shape != (3,) or not np.all(np.isfinite(center)) or not math.isfinite(box.yaw):
        raise ValueError(f"box {box.instance_id}: center and size must be 3 finite values, yaw finite")
    if np.any(size <= 0):
        raise ValueError(f"box {box.instance_id}: size (l, w, h) must be positive, got {size.tolist()}")
    T = np.eye(4)
    T[:3, :3] = rot_z(float(box.yaw)) @ np.diag(size)
    T[:3, 3] = center
    return T


def _opencv_matrix(parent: ET.Element, tag: str, M: np.ndarray, dt_code: str) -> None:
    node = ET.SubElement(parent, tag, {"type_id": "opencv-matrix"})
    ET.SubElement(node, "rows").text = str(M.shape[0])
    ET.SubElement(node, "cols").text = str(M.shape[1])
    ET.SubElement(node, "dt").text = dt_code
    # Space-separated on one line: the devkit splits on ' ' only (a bare newline would glue two numbers).
    values = (str(int(v)) for v in M.ravel()) if dt_code == "i" else (format_float(v) for v in M.ravel())
    ET.SubElement(node, "data").text = " ".join(values)


def _as_boxes(boxes, start_frame: int | None, end_frame: int | None) -> list[Box3D]:
    """Normalise ``boxes`` to a list of Box3D.

    Accepts Box3D items, tuples in Box3D field order, or a struct of arrays with attributes ``instance_id``
    [C], ``center`` [C,3], ``size`` [C,3], ``yaw`` [C] (e.g. the scene's car table). ``start_frame`` /
    ``end_frame``, when given, override every box's frame window (they are required for a struct).
    """
    if all(hasattr(boxes, name) for name in ("instance_id", "center", "size", "yaw")):
        if start_frame is None or end_frame is None:
            raise ValueError("boxes: a struct of arrays needs start_frame and end_frame")
        items = [Box3D(int(i), c, sz, float(y), start_frame, end_frame)
                 for i, c, sz, y in zip(boxes.instance_id, boxes.center, boxes.size, boxes.yaw)]
    else:
        items = [b if isinstance(b, Box3D) else Box3D(*b) for b in boxes]
        if start_frame is not None:
            items = [b._replace(start_frame=start_frame) for b in items]
        if end_frame is not None:
            items = [b._replace(end_frame=end_frame) for b in items]
    seen = set()
    for b in items:
        if isinstance(b.instance_id, bool) or int(b.instance_id) != b.instance_id or b.instance_id <= 0:
            raise ValueError(f"boxes: instance_id must be a positive integer, got {b.instance_id!r}")
        if (b.kitti_id, b.instance_id) in seen:
            raise ValueError(f"boxes: duplicate instance_id {b.instance_id} for kitti_id {b.kitti_id}")
        seen.add((b.kitti_id, b.instance_id))
        if _check_frame(b.start_frame, "start_frame") > _check_frame(b.end_frame, "end_frame"):
            raise ValueError(f"box {b.instance_id}: start_frame {b.start_frame} > end_frame {b.end_frame}")
    return items


def write_bboxes_xml(root: str | os.PathLike, seq: str, boxes, start_frame: int | None = None,
                     end_frame: int | None = None) -> Path:
    """Write ``data_3d_bboxes/train/<seq>.xml`` (KITTI-360 annotation schema, static objects, timestamp -1).

    ``boxes``: see :func:`_as_boxes` (Box3D items, tuples, or a struct of arrays plus ``start_frame`` /
    ``end_frame``). World vertices are ``transform[:3,:3] @ BOX_UNIT_VERTICES.T + transform[:3,3]``.
    kitti360scripts keys objects by ``semanticId * 1000 + instanceId``: instance ids below 1000 keep that key
    decodable (larger ids still parse and stay unique per class).
    """
    seq = _check_seq(seq)
    root_el = ET.Element("opencv_storage")
    for index, box in enumerate(_as_boxes(boxes, start_frame, end_frame)):
        obj = ET.SubElement(root_el, f"object{index + 1}")
        fields = {"label": box.label, "semanticId": int(box.kitti_id), "instanceId": int(box.instance_id),
                  "timestamp": -1, "dynamic": 0, "start_frame": int(box.start_frame),
                  "end_frame": int(box.end_frame), "index": index}
        for tag, value in fields.items():
            ET.SubElement(obj, tag).text = str(value)
        _opencv_matrix(obj, "transform", box_local_to_world(box), "d")
        _opencv_matrix(obj, "vertices", BOX_UNIT_VERTICES, "d")
        _opencv_matrix(obj, "faces", BOX_FACES, "i")
    ET.indent(root_el)
    path = Path(root) / "data_3d_bboxes" / "train" / f"{seq}.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root_el).write(path, encoding="utf-8", xml_declaration=True)
    return path


# -------------------------------------------------------------------------------------------------- splits


def write_split(path: str | os.PathLike, entries: Iterable[tuple[str, int, str]]) -> Path:
    """Write a split file, one ``<seq> <frame:010d> <l|r>`` line per entry (frame = real image number)."""
    lines = []
    for seq, frame, side in entries:
        if side not in ("l", "r"):
            raise ValueError(f"split entry ({seq!r}, {frame!r}, {side!r}): side must be 'l' or 'r'")
        lines.append(f"{_check_seq(seq)} {_check_frame(frame):010d} {side}")
    return write_lines(Path(path), lines)
