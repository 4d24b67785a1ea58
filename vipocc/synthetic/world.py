"""Generate the built-in synthetic world: streets, ego trajectories, camera and lidar renders, written in the exact
KITTI-360 layout, as a KITTI Raw export, and with exact oracle ground truth.

Output folder layout (all under `out`):
    kitti360/   calibration/, data_poses/<seq>/, data_2d_raw/<seq>/, data_3d_raw/<seq>/, data_3d_bboxes/train/
    kitti_raw/  <date>/calib_*.txt, <date>/<date>_drive_<NNNN>_sync/... and poses/<date>/<drive>.txt (BTS format)
    splits/     kitti360/{train,val,test}_files.txt (BTS format), kitti_raw/{train,val,test}_files.txt
    oracle/     <seq>/scene.npz, <seq>/{depth,instance,semantic}/image_0X/<frame:010d>.{npy,png}
                (never read by a model stage: exact truth for tests and for scoring)
    world.json  the resolved world description, frame lists, timing, provenance

Everything is written into a staging folder first and moved into place at the end, so a failed or interrupted run
leaves no partial world behind.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from vipocc.config import config_hash
from vipocc.provenance import provenance
from vipocc.synthetic import kitti360_export, kitti_raw_export
from vipocc.synthetic.appearance import lidar_intensity, shade, sky_color
from vipocc.synthetic.raycast import Raycaster
from vipocc.synthetic.rig import Rig, kitti360_rig
from vipocc.synthetic.scene import Scene
from vipocc.synthetic.street import StreetParams, generate_street
from vipocc.synthetic.trajectory import ego_poses

log = logging.getLogger(__name__)

CAMERAS = (0, 1, 2, 3)
PERSPECTIVE = (0, 1)
SKY_SEMANTIC_ID = 23

STREET_MARGIN_FRACTION = 0.15  # trajectory speed varies by +-10 %: leave room at the end of the street


@dataclass(frozen=True)
class SequenceSpec:
    name: str
    split: str
    frames: int
    first_frame: int
    gap_at: int
    gap_length: int

    def frame_ids(self) -> np.ndarray:
        """Posed frame numbers: not contiguous (a jump of gap_length at index gap_at), as in KITTI-360."""
        index = np.arange(self.frames)
        return self.first_frame + index + np.where(index >= self.gap_at, self.gap_length, 0)


def sequence_seed(world_seed: int, index: int) -> int:
    return int(np.random.SeedSequence([world_seed, index]).generate_state(1)[0])


# ----------------------------------------------------------------------------------------------- rendering one frame
@dataclass
class FrameRender:
    rgb: dict            # cam -> uint8 [H, W, 3]
    depth: dict          # cam -> float32 [H, W]: z-depth (perspective) / range (fisheye), inf = sky, nan = no lens
    instance: dict       # cam -> uint16 [H, W]: car instance id, 0 = none
    semantic: dict       # cam -> uint8 [H, W]: KITTI-360 label id, 23 = sky, 0 = outside the fisheye lens
    velodyne: np.ndarray  # float32 [N, 4] x, y, z, intensity in the velodyne frame
    rays: int


def render_camera(scene: Scene, caster: Raycaster, rig: Rig, cam: int, cam_to_world: np.ndarray):
    height, width = rig.image_size(cam)
    dirs_cam, valid = rig.camera_rays(cam)
    dirs_world = dirs_cam @ cam_to_world[:3, :3].T
    hits = caster.cast(np.broadcast_to(cam_to_world[:3, 3], dirs_world.shape), dirs_world)
    hit = hits.solid >= 0
    rgb = np.where(hit[:, None], shade(scene, hits, dirs_world), sky_color(dirs_world))
    rgb = np.where(valid[:, None], rgb, 0.0)
    # Perspective oracle depth is z-depth (what depth maps store); fisheye rays span > 180 deg, so store range.
    depth = hits.distance * dirs_cam[:, 2] if cam in PERSPECTIVE else hits.distance.copy()
    depth = np.where(valid, depth, np.nan).astype(np.float32)
    solid = np.where(hit, hits.solid, 0)
    instance = np.where(hit & valid, scene.solid_instance[solid], 0).astype(np.uint16)
    semantic = np.where(hit, scene.solid_semantic[solid], SKY_SEMANTIC_ID)
    semantic = np.where(valid, semantic, 0).astype(np.uint8)
    as_image = lambda a: a.reshape(height, width, *a.shape[1:])  # noqa: E731
    rgb8 = np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
    return as_image(rgb8), as_image(depth), as_image(instance), as_image(semantic), len(dirs_world)


def render_lidar(scene: Scene, caster: Raycaster, rig: Rig, velo_to_world: np.ndarray, azimuth_steps: int,
                 max_range: float) -> tuple[np.ndarray, int]:
    dirs_velo = rig.lidar_rays(azimuth_steps)
    dirs_world = dirs_velo @ velo_to_world[:3, :3].T
    hits = caster.cast(np.broadcast_to(velo_to_world[:3, 3], dirs_world.shape), dirs_world)
    keep = (hits.solid >= 0) & (hits.distance <= max_range)
    points = dirs_velo[keep] * hits.distance[keep, None]
    intensity = lidar_intensity(scene, hits, dirs_world)[keep]
    return np.column_stack([points, intensity]).astype(np.float32), len(dirs_world)


def render_frame(scene: Scene, caster: Raycaster, rig: Rig, imu_to_world: np.ndarray, azimuth_steps: int,
                 max_range: float) -> FrameRender:
    out = FrameRender({}, {}, {}, {}, np.empty((0, 4), np.float32), 0)
    for cam in CAMERAS:
        cam_to_world = imu_to_world @ rig.camera_to_pose(cam)
        out.rgb[cam], out.depth[cam], out.instance[cam], out.semantic[cam], rays = render_camera(
            scene, caster, rig, cam, cam_to_world)
        out.rays += rays
    out.velodyne, rays = render_lidar(scene, caster, rig, imu_to_world @ rig.T_velo_to_pose, azimuth_steps,
                                      max_range)
    out.rays += rays
    return out


# ------------------------------------------------------------------------------------------------- writing a frame
def write_oracle_frame(oracle_root: Path, seq: str, frame: int, render: FrameRender) -> None:
    for cam in CAMERAS:
        name = f"image_{cam:02d}"
        depth_path = oracle_root / seq / "depth" / name / f"{frame:010d}.npy"
        depth_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(depth_path, render.depth[cam])
        for kind, image in (("instance", render.instance[cam]), ("semantic", render.semantic[cam])):
            path = oracle_root / seq / kind / name / f"{frame:010d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), image):
                raise OSError(f"could not write {path}")


# --------------------------------------------------------------------------------------- worker process plumbing
_WORKER: dict = {}


def _init_worker(scene_path: str, world: dict, staging: str) -> None:
    # The CLI turns SIGTERM into SystemExit for clean-up; a forked worker inherits that handler, and Pool.terminate()
    # (SIGTERM) would then run Python exit code in a process whose other threads hold locks: it hung forever.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    scene = Scene.load(scene_path)
    _WORKER.update(scene=scene, caster=Raycaster(scene), rig=kitti360_rig(world["resolution_scale"]),
                   world=world, staging=Path(staging))


def _render_and_write(task: tuple[str, int, int, np.ndarray, str]) -> int:
    seq, index, frame, imu_to_world, raw_drive = task
    w = _WORKER
    render = render_frame(w["scene"], w["caster"], w["rig"], imu_to_world, w["world"]["lidar_azimuth_steps"],
                          w["world"]["lidar_max_range_m"])
    kitti360_root = w["staging"] / "kitti360"
    for cam in CAMERAS:
        kitti360_export.write_image(kitti360_export.image_path(kitti360_root, seq, cam, frame), render.rgb[cam])
    kitti360_export.write_velodyne(kitti360_root, seq, frame, render.velodyne)
    kitti_raw_export.write_frame(w["staging"] / "kitti_raw", w["world"]["kitti_raw_date"], raw_drive, index,
                                 render.rgb[0], render.rgb[1], render.velodyne)
    write_oracle_frame(w["staging"] / "oracle", seq, frame, render)
    return render.rays


# ------------------------------------------------------------------------------------------------- whole sequences
def build_sequence(world: dict, index: int, spec: SequenceSpec) -> tuple[Scene, np.ndarray]:
    """The street and the ego poses (KITTI-360 pose frame -> world, [N, 4, 4]) of one sequence."""
    seed = sequence_seed(world["seed"], index)
    length = spec.frames * (1.0 + STREET_MARGIN_FRACTION)
    # Instance ids are per sequence (each sequence has its own bbox XML), as in KITTI-360; they must stay < 1000
    # because the devkit keys objects by semanticId * 1000 + instanceId.
    scene, centerline = generate_street(seed, length, StreetParams())
    poses = ego_poses(centerline, spec.frames, seed)
    return scene, poses


def split_entries(world: dict, specs: list[SequenceSpec]) -> dict[str, list[tuple[str, int, str]]]:
    """BTS-format split entries (seq, frame, side): training uses both stereo sides, val/test only the left."""
    entries: dict[str, list] = {"train": [], "val": [], "test": []}
    for spec in specs:
        frames = spec.frame_ids()[: spec.frames - world["split_margin"]]
        frames = frames[:: world["split_stride"][spec.split]]
        sides = ("l", "r") if spec.split == "train" else ("l",)
        entries[spec.split] += [(spec.name, int(f), side) for f in frames for side in sides]
    return entries


def _write_splits(staging: Path, world: dict, specs: list[SequenceSpec]) -> dict[str, int]:
    counts = {}
    raw_names = {spec.name: kitti_raw_export.drive_name(world["kitti_raw_date"], i) for i, spec in enumerate(specs)}
    index_of = {spec.name: {int(f): i for i, f in enumerate(spec.frame_ids())} for spec in specs}
    for split, entries in split_entries(world, specs).items():
        kitti360_export.write_split(staging / "splits" / "kitti360" / f"{split}_files.txt", entries)
        raw_entries = [(f"{world['kitti_raw_date']}/{raw_names[s]}", index_of[s][f], side) for s, f, side in entries]
        kitti_raw_export.write_split(staging / "splits" / "kitti_raw" / f"{split}_files.txt", raw_entries)
        counts[split] = len(entries)
    return counts


def _render_sequence(pool_size: int, world: dict, staging: Path, index: int, spec: SequenceSpec,
                     scene: Scene, poses: np.ndarray) -> int:
    """Render and write every frame of a sequence in `pool_size` processes; return the number of rays cast."""
    scene_path = staging / "oracle" / spec.name / "scene.npz"
    scene_path.parent.mkdir(parents=True, exist_ok=True)
    scene.save(scene_path)
    frames = spec.frame_ids()
    raw_drive = kitti_raw_export.drive_name(world["kitti_raw_date"], index)
    tasks = [(spec.name, i, int(f), poses[i], raw_drive) for i, f in enumerate(frames)]
    context = multiprocessing.get_context("fork")
    rays = 0
    with context.Pool(pool_size, _init_worker, (str(scene_path), world, str(staging))) as pool:
        results = pool.imap(_render_and_write, tasks, chunksize=2)
        for frame_rays in tqdm(results, total=len(tasks), desc=f"render {spec.name}", unit="frame"):
            rays += frame_rays
        pool.close()  # let the workers finish and exit on their own rather than being terminated
        pool.join()
    return rays


def _write_sequence_metadata(staging: Path, world: dict, rig: Rig, index: int, spec: SequenceSpec,
                             scene: Scene, poses: np.ndarray) -> None:
    frames = spec.frame_ids()
    kitti360_root = staging / "kitti360"
    kitti360_export.write_poses(kitti360_root, spec.name, frames, poses, rig)
    kitti360_export.write_bboxes_xml(kitti360_root, spec.name, scene.cars, int(frames[0]), int(frames[-1]))
    kitti360_export.write_timestamps(kitti360_root, spec.name, frames)
    kitti_raw_export.write_drive_metadata(staging / "kitti_raw", world["kitti_raw_date"],
                                          kitti_raw_export.drive_name(world["kitti_raw_date"], index), rig, poses)


def _publish(staging: Path, out: Path, overwrite: bool) -> None:
    for child in sorted(staging.iterdir()):
        target = out / child.name
        if target.exists():
            if not overwrite:
                raise FileExistsError(f"{target} exists (use --overwrite to replace it)")
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        child.rename(target)
    staging.rmdir()


def synthesize_world(world: dict, out: str | Path, workers: int = 1, overwrite: bool = False) -> dict:
    """Generate the world described by `world` (see vipocc/configs/world_*.yaml) into `out`; return the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("kitti360", "kitti_raw", "oracle", "splits", "world.json"):
        if (out / name).exists() and not overwrite:
            raise FileExistsError(f"{out / name} exists (use --overwrite to replace it)")
    staging = Path(out / f".staging-{multiprocessing.current_process().pid}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        manifest = _synthesize_into(world, staging, max(1, workers))
        (staging / "world.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        _publish(staging, out, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _synthesize_into(world: dict, staging: Path, workers: int) -> dict:
    start = time.perf_counter()
    rig = kitti360_rig(world["resolution_scale"])
    specs = [SequenceSpec(**seq) for seq in world["sequences"]]
    kitti360_export.write_calibration(staging / "kitti360", rig)
    kitti_raw_export.write_calibration(staging / "kitti_raw", world["kitti_raw_date"], rig)
    rays = 0
    for index, spec in enumerate(specs):
        scene, poses = build_sequence(world, index, spec)
        _write_sequence_metadata(staging, world, rig, index, spec, scene, poses)
        rays += _render_sequence(workers, world, staging, index, spec, scene, poses)
    split_counts = _write_splits(staging, world, specs)
    seconds = time.perf_counter() - start
    n_frames = sum(spec.frames for spec in specs)
    return {
        "world": world,
        "world_hash": config_hash(world),
        "n_frames": n_frames,
        "sequences": {spec.name: {"split": spec.split, "frames": [int(f) for f in spec.frame_ids()],
                                  "kitti_raw_drive": kitti_raw_export.drive_name(world["kitti_raw_date"], i)}
                      for i, spec in enumerate(specs)},
        "split_sizes": split_counts,
        "timing": {"seconds": seconds, "seconds_per_frame": seconds / n_frames, "rays": rays,
                   "rays_per_second": rays / seconds, "workers": workers},
        "provenance": provenance(config_hash(world)),
    }
