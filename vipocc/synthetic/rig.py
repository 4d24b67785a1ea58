"""The KITTI-360 sensor rig (2 rectified perspective cameras, 2 MEI fisheyes, a Velodyne HDL-64E).

All values are the real KITTI-360 calibration, cleaned so that the rig is exactly self-consistent:

* rotations are re-orthonormalised (SVD) once; every file written from the rig carries the cleaned values;
* the right rectified camera is the left rectified camera translated by the baseline b along its x axis
  (``T_rect01_to_pose = T_rect00_to_pose @ translation(b, 0, 0)``), with b = -P_rect_01[0,3] / f, so the stereo
  pair is exactly rectified; the raw ``image_01 -> pose`` transform is derived from it and ``R_rect_01``.

Frames: pose (IMU/GPS) frame x forward, y right, z down; Velodyne x forward, y left, z up; cameras x right,
y down, z forward. ``T_a_to_b`` maps points from frame a to frame b (4x4, metres).
Perspective cameras 0/1 are always used *rectified* (what KITTI-360 ``data_rect`` images are).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from vipocc.geometry.cameras import MEIParams, mei_ray_dirs, pinhole_ray_dirs, scaled_image_size
from vipocc.geometry.transforms import invert_rigid, make_transform, orthonormalize, translation

__all__ = ["Rig", "LidarRays", "kitti360_rig", "KITTI360_PERSPECTIVE_SIZE", "KITTI360_FISHEYE_SIZE"]

KITTI360_PERSPECTIVE_SIZE = (1408, 376)  # (width, height) of data_rect images
KITTI360_FISHEYE_SIZE = (1400, 1400)

_FOCAL = 552.554261
_CX, _CY = 682.049453, 238.769549
_P01_TX = -328.318735  # P_rect_01[0,3] = -f * b
_R_RECT_00_RAW = [0.999974, -0.007141, -0.000089, 0.007141, 0.999969, -0.003247, 0.000112, 0.003247, 0.999995]
# Right rectifying rotation (about 1.2 deg), 6 digits. It equals (rect_00 -> pose)^T (image_01 -> pose) for the
# published calibration, so the image_01 -> pose derived below from the exact stereo constraint reproduces the
# published calib_cam_to_pose.txt image_01 line to about 5e-7.
_R_RECT_01_RAW = [0.999778, -0.012114, 0.017222, 0.012058, 0.999922, 0.003351, -0.017262, -0.003143, 0.999846]
_CAM_TO_POSE_RAW = {
    0: [0.0371783278, -0.0986182135, 0.9944306009, 1.5752681039, 0.9992675562, -0.0053553387, -0.0378902567,
        0.0043914093, 0.0090621821, 0.9951109327, 0.0983468786, -0.6500000000],
    2: [0.9995185086, 0.0041276589, -0.0307524527, 0.7264036936, -0.0307926666, 0.0100608424, -0.9994751579,
        -0.1499658517, -0.0038160970, 0.9999408692, 0.0101830998, -1.0686400091],
    3: [-0.9996821702, 0.0005703407, -0.0252038325, 0.7016842127, -0.0252033830, 0.0007820814, 0.9996820384,
        0.7463650950, 0.0005898709, 0.9999995315, -0.0007674583, -1.0751978255],
}
_CAM0_TO_VELO_RAW = [0.04307104361, -0.08829286498, 0.995162929, 0.8043914418, -0.999004371, 0.007784614041,
                     0.04392796942, 0.2993489574, -0.01162548558, -0.9960641394, -0.08786966659, -0.1770225824]
_MEI_RAW = {
    2: MEIParams(xi=2.2134047507854890, k1=0.016798235660113681, k2=1.6548773243373522,
                 p1=4.2223943394772046e-4, p2=4.2462134260997584e-4, gamma1=1336.3220825849971,
                 gamma2=1335.7883350012958, u0=716.94323510126321, v0=705.76498308221585, width=1400, height=1400),
    3: MEIParams(xi=2.5535139132482758, k1=0.049370396274089505, k2=4.5068455478645308,
                 p1=1.3477698472982495e-3, p2=-7.0340482615055284e-4, gamma1=1485.4388981875156,
                 gamma2=1484.9477411748708, u0=698.88316784030962, v0=698.14541887723055, width=1400, height=1400),
}

# Velodyne HDL-64E. Real beams are not evenly spaced; linear spacing over the documented vertical FOV is a
# deliberate simplification (the synthetic world only needs a plausible scan pattern).
LIDAR_N_BEAMS = 64
LIDAR_ELEV_MAX_DEG = 2.0
LIDAR_ELEV_MIN_DEG = -24.8
LIDAR_MAX_RANGE_M = 120.0


def _rigid_from_rows(values: list[float]) -> np.ndarray:
    """4x4 from 12 row-major 3x4 values, rotation re-orthonormalised."""
    M = np.asarray(values, dtype=np.float64).reshape(3, 4)
    return make_transform(orthonormalize(M[:, :3]), M[:, 3])


def _rot4(R: np.ndarray) -> np.ndarray:
    return make_transform(R, np.zeros(3))


class LidarRays(NamedTuple):
    """Directions of one full Velodyne sweep, beam-major (flat index = beam * n_azimuth + azimuth index).

    ``dirs`` [64*n_az, 3] unit vectors in the Velodyne frame; ``beam`` [N] int (0 = top beam, +2.0 deg,
    63 = bottom beam, -24.8 deg); ``azimuth`` [N] rad in [0, 2 pi), counter-clockwise from +x (forward)
    towards +y (left); ``elevation`` [N] rad above the Velodyne x-y plane.
    """

    dirs: np.ndarray
    beam: np.ndarray
    azimuth: np.ndarray
    elevation: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class Rig:
    """The KITTI-360 rig at one image resolution. Build it with :func:`kitti360_rig`.

    Attributes (float64 numpy arrays, metres / pixels):
        resolution_scale: image shrink factor s relative to KITTI-360.
        perspective_size: (W, H) of cams 0/1; fisheye_size: (W, H) of cams 2/3 (KITTI S_rect order;
            :meth:`image_size` gives (H, W)).
        K_rect: {0, 1} -> [3,3] rectified intrinsics (identical for both).
        P_rect_00, P_rect_01: [3,4] rectified projections (P_rect_01[0,3] = -f b).
        R_rect_00, R_rect_01: [3,3] rectifying rotations (unrectified cam -> rectified cam).
        baseline: stereo baseline b (m).
        T_cam_to_pose: {0..3} -> [4,4] unrectified camera -> pose (calib_cam_to_pose.txt).
        T_rect_to_pose: {0, 1} -> [4,4] rectified camera -> pose.
        T_cam0_to_velo: [4,4] unrectified cam 0 -> Velodyne (calib_cam_to_velo.txt).
        T_velo_to_pose: [4,4] Velodyne -> pose.
        mei: {2, 3} -> MEIParams at this resolution.
    """

    resolution_scale: float
    perspective_size: tuple[int, int]
    fisheye_size: tuple[int, int]
    K_rect: dict[int, np.ndarray]
    P_rect_00: np.ndarray
    P_rect_01: np.ndarray
    R_rect_00: np.ndarray
    R_rect_01: np.ndarray
    baseline: float
    T_cam_to_pose: dict[int, np.ndarray]
    T_rect_to_pose: dict[int, np.ndarray]
    T_cam0_to_velo: np.ndarray
    T_velo_to_pose: np.ndarray
    mei: dict[int, MEIParams]
    lidar_n_beams: int = LIDAR_N_BEAMS
    lidar_elevation_deg: tuple[float, float] = (LIDAR_ELEV_MIN_DEG, LIDAR_ELEV_MAX_DEG)
    lidar_max_range: float = LIDAR_MAX_RANGE_M
    _ray_cache: dict = dataclasses.field(default_factory=dict, init=False, repr=False)

    @staticmethod
    def _check_cam(cam: int) -> int:
        if cam not in (0, 1, 2, 3):
            raise ValueError(f"cam: expected a KITTI-360 camera id 0, 1, 2 or 3, got {cam!r}")
        return int(cam)

    def image_size(self, cam: int) -> tuple[int, int]:
        """(height, width) in px of camera ``cam``: numpy image-shape order (the *_size attributes are W, H)."""
        width, height = self.perspective_size if self._check_cam(cam) < 2 else self.fisheye_size
        return height, width

    def camera_to_pose(self, cam: int) -> np.ndarray:
        """4x4 transform from the frame :meth:`camera_rays` uses to the pose frame.

        Rectified camera for 0/1, raw fisheye camera frame for 2/3.
        """
        cam = self._check_cam(cam)
        return (self.T_rect_to_pose if cam < 2 else self.T_cam_to_pose)[cam].copy()

    def camera_rays(self, cam: int) -> tuple[np.ndarray, np.ndarray]:
        """Unit ray directions [H*W,3] through every pixel centre (row-major) in the camera's own frame
        (rectified for 0/1) and a validity mask [H*W] (all True for pinhole; lens domain for fisheyes).

        Every row is a finite unit vector, so the whole array can be ray cast as is: fisheye pixels outside
        the lens domain get the optical axis (0, 0, 1) as a placeholder and must be masked with ``valid``
        (rendered black). The arrays are computed once per rig and camera (a full-resolution fisheye takes
        about 1-2 s) and returned read-only.
        """
        cam = self._check_cam(cam)
        if cam not in self._ray_cache:
            if cam < 2:
                dirs = pinhole_ray_dirs(self.K_rect[cam], *self.perspective_size)
                valid = np.ones(dirs.shape[0], dtype=bool)
            else:
                dirs, valid = mei_ray_dirs(self.mei[cam])
                dirs[~valid] = (0.0, 0.0, 1.0)
            dirs.flags.writeable = False
            valid.flags.writeable = False
            self._ray_cache[cam] = (dirs, valid)
        return self._ray_cache[cam]

    def lidar_rays(self, n_azimuth: int) -> np.ndarray:
        """Unit directions [64 * n_azimuth, 3] of one sweep in the Velodyne frame, beam-major
        (see :meth:`lidar_ray_grid` for the beam index, azimuth and elevation of each row)."""
        return self.lidar_ray_grid(n_azimuth).dirs

    def lidar_ray_grid(self, n_azimuth: int) -> LidarRays:
        """One sweep of ``lidar_n_beams * n_azimuth`` rays with their beam/azimuth/elevation (:class:`LidarRays`)."""
        if int(n_azimuth) != n_azimuth or n_azimuth <= 0:
            raise ValueError(f"n_azimuth: expected a positive integer, got {n_azimuth!r}")
        n_azimuth = int(n_azimuth)
        lo, hi = np.radians(self.lidar_elevation_deg)
        elev_beam = np.linspace(hi, lo, self.lidar_n_beams)  # beam 0 is the top beam
        az_step = 2.0 * np.pi * np.arange(n_azimuth) / n_azimuth
        beam = np.repeat(np.arange(self.lidar_n_beams), n_azimuth)
        azimuth = np.tile(az_step, self.lidar_n_beams)
        elevation = elev_beam[beam]
        dirs = np.stack([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                         np.sin(elevation)], axis=1)
        return LidarRays(dirs, beam, azimuth, elevation)


def _scaled_K(s: float) -> np.ndarray:
    """Rectified K of the perspective cameras for an image shrunk by ``s`` (pixel centres at integers)."""
    return np.array([[s * _FOCAL, 0.0, s * (_CX + 0.5) - 0.5],
                     [0.0, s * _FOCAL, s * (_CY + 0.5) - 0.5],
                     [0.0, 0.0, 1.0]])


def kitti360_rig(resolution_scale: float = 1.0) -> Rig:
    """The KITTI-360 rig with every image shrunk by ``resolution_scale`` (s).

    Perspective images are round(1408 s) x round(376 s), fisheyes round(1400 s)^2; these must be exact
    integers (e.g. s in {1, 0.5, 0.25, 0.125}) or ValueError is raised. Intrinsics follow
    f' = s f, c' = s (c + 0.5) - 0.5. Extrinsics do not depend on s.
    """
    s = float(resolution_scale)
    persp = (scaled_image_size(KITTI360_PERSPECTIVE_SIZE[0], s, "perspective width"),
             scaled_image_size(KITTI360_PERSPECTIVE_SIZE[1], s, "perspective height"))
    fish = (scaled_image_size(KITTI360_FISHEYE_SIZE[0], s, "fisheye width"),
            scaled_image_size(KITTI360_FISHEYE_SIZE[1], s, "fisheye height"))

    K = _scaled_K(s)
    baseline = -_P01_TX / _FOCAL
    P00 = np.concatenate([K, np.zeros((3, 1))], axis=1)
    P01 = P00.copy()
    P01[0, 3] = -K[0, 0] * baseline

    R_rect_00 = orthonormalize(np.reshape(_R_RECT_00_RAW, (3, 3)))
    R_rect_01 = orthonormalize(np.reshape(_R_RECT_01_RAW, (3, 3)))
    T_cam_to_pose = {cam: _rigid_from_rows(vals) for cam, vals in _CAM_TO_POSE_RAW.items()}
    # rectified = R_rect @ unrectified, hence rect -> pose = (unrect -> pose) @ R_rect^T.
    T_rect00 = T_cam_to_pose[0] @ _rot4(R_rect_00.T)
    T_rect01 = T_rect00 @ translation(baseline, 0.0, 0.0)
    T_cam_to_pose[1] = T_rect01 @ _rot4(R_rect_01)
    T_cam_to_pose = {cam: T_cam_to_pose[cam] for cam in range(4)}

    T_cam0_to_velo = _rigid_from_rows(_CAM0_TO_VELO_RAW)
    T_velo_to_pose = T_cam_to_pose[0] @ invert_rigid(T_cam0_to_velo)

    rig = Rig(
        resolution_scale=s, perspective_size=persp, fisheye_size=fish,
        K_rect={0: K.copy(), 1: K.copy()}, P_rect_00=P00, P_rect_01=P01,
        R_rect_00=R_rect_00, R_rect_01=R_rect_01, baseline=baseline,
        T_cam_to_pose=T_cam_to_pose, T_rect_to_pose={0: T_rect00, 1: T_rect01},
        T_cam0_to_velo=T_cam0_to_velo, T_velo_to_pose=T_velo_to_pose,
        mei={cam: p.scaled(s) for cam, p in _MEI_RAW.items()},
    )
    _freeze_arrays(rig)
    return rig


def _freeze_arrays(rig: Rig) -> None:
    """Make the rig's arrays read-only: several stages share one rig and must not mutate it."""
    for field in dataclasses.fields(rig):
        if field.name.startswith("_"):
            continue
        value = getattr(rig, field.name)
        arrays = value.values() if isinstance(value, dict) else [value]
        for arr in arrays:
            if isinstance(arr, np.ndarray):
                arr.flags.writeable = False
