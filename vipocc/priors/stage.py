"""Per-sequence jobs of the priors stage: pseudo depth, instances (detections + mask) and SNOG anchors.

Outputs, under the derived root, exactly where the reference stores them (reference-implementation.md 1.6, 1.7)::

    depth/<seq>/image_0X/<folder>/<frame:010d>.npy          float32 [H, W] metric z-depth (m) of that view
    samples/<seq>/image_0X/<folder>/<frame:010d>.json       detections [{label, logit, box [x1,y1,x2,y2] px, pixel_num}]
    samples/<seq>/image_0X/<folder>/<frame:010d>_mask.npy   uint8 (uint16 if > 255 detections) instance mask
    samples/<seq>/image_0X/<folder>/<frame:010d>.npy        uint16 [n_sets, num_patches, 2] SNOG anchors (x, y) px

``<folder>`` is the preprocessed folder of the view (``data_<H>x<W>`` for image_00/01, ``data_<H>x<W>_<yaw>x<pitch>``
for the virtual fisheye views image_02/03), from :func:`vipocc.data.images.preprocessed_folders`. Every prior is
computed on the preprocessed image of the same path under ``data_2d_raw/`` (written by the preprocessing stage).

Differences from the reference: the instance mask holds detection numbers (pixel = k for the k-th detection of
the JSON, 1-based; 0 = none; later detections painted over earlier ones) instead of its 6 class ids, since the
class of every detection is in the JSON; the JSON and the mask are always written (the reference needed flags);
frames without any detection still get an anchors file (uniform background only) where the reference wrote none
and its dataset then failed; no PNG copies of depth or masks are written.

Backends. ``simulated`` (the synthetic world, which has no real weights): the oracle's exact maps of the raw
camera image are resampled to the preprocessed view (:class:`OracleViews`) and corrupted by
:mod:`vipocc.priors.simulated`. ``depth_anything`` / ``grounded_sam``: the real models through transformers
(:mod:`vipocc.priors.depth_anything`, :mod:`vipocc.priors.grounded_sam`), loaded only when a frame needs them.

Randomness. Each simulated frame and each anchor file draws from its own generator seeded by
(seed, stream, seq, camera, frame) (:func:`frame_rng`), so results do not depend on the order or the subset of
frames a job processes, nor on whether it was resumed.

Resumability. An output is skipped when it exists and is at least as new as its input (the preprocessed image;
for anchors the detections JSON). Callers pass ``overwrite=True`` when the settings changed (the CLI compares the
config hash of the last run). Every file is written atomically (:mod:`vipocc.io`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = [
    "CAMERA_IDS",
    "DepthAnythingBackend",
    "GroundedSamBackend",
    "OracleViews",
    "SimulatedDepthBackend",
    "SimulatedInstanceBackend",
    "SnogSettings",
    "StageStats",
    "View",
    "depth_prior_path",
    "depth_prior_sequence",
    "detections_path",
    "frame_rng",
    "instance_mask_path",
    "instance_prior_sequence",
    "mask_dtype",
    "read_detections",
    "resolve_backend",
    "snog_anchor_path",
    "snog_anchor_sequence",
    "view_folder",
    "weights_sha256",
]

log = logging.getLogger("vipocc")

CAMERA_IDS = {"image_00": 0, "image_01": 1, "image_02": 2, "image_03": 3}
FISHEYE_CAMERAS = ("image_02", "image_03")
REAL_BACKENDS = {"depth": "depth_anything", "instances": "grounded_sam"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")


# ----------------------------------------------------------------------------------------------------- naming


def resolve_backend(requested: str, dataset_kind: str, prior: str) -> str:
    """The backend a job uses: ``auto`` -> ``simulated`` on the synthetic world, the real model otherwise.

    Args:
        requested: the config value (``auto``, ``simulated`` or the real backend's name).
        dataset_kind: ``dataset.kind`` (synthetic, kitti360, kitti_raw).
        prior: ``"depth"`` or ``"instances"``.

    ValueError for an unknown prior or backend, or ``simulated`` on real data (there is no oracle to simulate from).
    """
    if prior not in REAL_BACKENDS:
        raise ValueError(f"prior: expected one of {sorted(REAL_BACKENDS)}, got {prior!r}")
    real = REAL_BACKENDS[prior]
    if requested == "auto":
        return "simulated" if dataset_kind == "synthetic" else real
    if requested not in ("simulated", real):
        raise ValueError(f"priors.{prior}.backend: expected auto, simulated or {real}, got {requested!r}")
    if requested == "simulated" and dataset_kind != "synthetic":
        raise ValueError(f"priors.{prior}.backend: simulated needs the synthetic world's oracle, "
                         f"but dataset.kind is {dataset_kind}")
    return requested


def _camera_id(camera: str) -> int:
    try:
        return CAMERA_IDS[camera]
    except KeyError:
        raise ValueError(f"camera: expected one of {sorted(CAMERA_IDS)}, got {camera!r}") from None


def view_folder(camera: str, folders: tuple[str, str]) -> str:
    """Preprocessed folder of a camera: ``folders`` = (perspective, fisheye) from ``preprocessed_folders``."""
    return folders[1] if _camera_id(camera) >= 2 else folders[0]


@dataclasses.dataclass(frozen=True)
class View:
    """One preprocessed image: sequence, camera name (image_0X), its folder and the frame number."""

    seq: str
    camera: str
    folder: str
    frame: int

    @property
    def cam(self) -> int:
        return _camera_id(self.camera)

    def image_path(self, derived_root: str | os.PathLike) -> Path:
        """``<derived>/data_2d_raw/<seq>/<camera>/<folder>/<frame:010d>.png``."""
        return Path(derived_root) / "data_2d_raw" / self.seq / self.camera / self.folder / f"{self.frame:010d}.png"


def depth_prior_path(derived_root: str | os.PathLike, view: View) -> Path:
    """``<derived>/depth/<seq>/<camera>/<folder>/<frame:010d>.npy``."""
    return Path(derived_root) / "depth" / view.seq / view.camera / view.folder / f"{view.frame:010d}.npy"


def _samples_stem(derived_root: str | os.PathLike, view: View) -> Path:
    return Path(derived_root) / "samples" / view.seq / view.camera / view.folder / f"{view.frame:010d}"


def detections_path(derived_root: str | os.PathLike, view: View) -> Path:
    """``<derived>/samples/<seq>/<camera>/<folder>/<frame:010d>.json``."""
    return _samples_stem(derived_root, view).with_suffix(".json")


def instance_mask_path(derived_root: str | os.PathLike, view: View) -> Path:
    """``<derived>/samples/<seq>/<camera>/<folder>/<frame:010d>_mask.npy``."""
    stem = _samples_stem(derived_root, view)
    return stem.with_name(f"{stem.name}_mask.npy")


def snog_anchor_path(derived_root: str | os.PathLike, view: View) -> Path:
    """``<derived>/samples/<seq>/<camera>/<folder>/<frame:010d>.npy`` (:func:`vipocc.priors.snog.anchor_path`)."""
    from vipocc.priors.snog import anchor_path

    return anchor_path(Path(derived_root) / "samples", view.seq, view.camera, view.folder, view.frame)


def frame_rng(seed: int, stream: str, view: View) -> np.random.Generator:
    """Generator of one (seed, stream, seq, camera, frame): independent of processing order and frame subsets.

    ``stream`` separates the uses (``"depth"``, ``"instances"``, ``"snog"``) so they never share numbers.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    digest = hashlib.sha256(f"{stream}/{view.seq}/{view.camera}/{view.frame}".encode()).digest()
    words = np.frombuffer(digest[:16], dtype="<u4").tolist()
    return np.random.default_rng(np.random.SeedSequence([int(seed), *words]))


def weights_sha256(path: str | os.PathLike) -> dict[str, str]:
    """sha256 of model weights: {file name: hex} of a checkpoint file, or of every weight file of a folder
    (suffixes .safetensors, .bin, .pth, .pt, searched recursively). FileNotFoundError naming a missing path."""
    from vipocc.provenance import sha256_file

    path = Path(path)
    if path.is_file():
        return {path.name: sha256_file(path)}
    if not path.is_dir():
        raise FileNotFoundError(f"model weights not found: {path}")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    return {p.relative_to(path).as_posix(): sha256_file(p) for p in files}


def mask_dtype(count: int) -> np.dtype:
    """Smallest of uint8 / uint16 holding detection numbers 0..count."""
    if count <= np.iinfo(np.uint8).max:
        return np.dtype(np.uint8)
    if count <= np.iinfo(np.uint16).max:
        return np.dtype(np.uint16)
    raise ValueError(f"instance mask: {count} detections do not fit uint16")


def read_detections(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Detections JSON of one image (a list of dicts). FileNotFoundError / ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: detections file not found (run `vipocc instance-prior` first)")
    try:
        detections = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(detections, list) or not all(isinstance(item, dict) for item in detections):
        raise ValueError(f"{path}: expected a list of detection objects")
    return detections


# ------------------------------------------------------------------------------------------- oracle resampling


class OracleViews:
    """The synthetic world's exact maps of the raw camera images, resampled to the preprocessed views.

    Sampling rule (both for labels and depth): the NEAREST raw pixel. A perspective view pixel (u, v) of an
    H x W image maps to the raw pixel ((u + 0.5) W_raw / W - 0.5, (v + 0.5) H_raw / H - 0.5) (cv2.resize's
    pixel-centre mapping, the one the preprocessed image was made with), rounded half up. A virtual fisheye view
    pixel maps through the preprocessing grid (:func:`vipocc.data.images.fisheye_to_pinhole_grid`) to normalised
    fisheye coordinates g, i.e. raw pixel (g + 1) / 2 * (size - 1) (grid_sample, align_corners=True), rounded.
    Nearest sampling keeps depth edges sharp: an interpolated depth would create "flying" values that exist on no
    surface (the simulated prior adds its own, documented edge blur), and sky (inf) stays sky.

    Depth is the z-depth of the VIEW: the oracle's z-depth for image_00/01 (rectified cameras, same axes);
    for the fisheye views the oracle stores the range along the ray, so z = range / |K^-1 [x, y, 1]|
    (the ray of pixel (x, y) in normalised coordinates has z = 1 before normalisation; the rotation to the raw
    fisheye camera keeps lengths). Pixels that fall outside the raw fisheye image or its lens are NaN (depth) / 0
    (labels).
    """

    def __init__(self, world_root: str | os.PathLike, image_size: Sequence[int],
                 calibration: Any | None = None):
        """world_root: folder with world.json and oracle/; image_size: (H, W) of the preprocessed views;
        calibration: a Kitti360Calibration with the workflow's fisheye rotation (needed for image_02/03 only)."""
        from vipocc.data.images import check_image_size
        from vipocc.synthetic.oracle import WorldOracle

        self.oracle = WorldOracle(world_root)
        self.image_size = check_image_size(image_size)
        self.calibration = calibration
        self._maps: dict[tuple[int, tuple[int, int]], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def _index_maps(self, cam: int, raw_hw: tuple[int, int]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, valid, z_factor) [H, W] of the nearest raw pixel of every view pixel (cached per camera)."""
        key = (cam, raw_hw)
        if key not in self._maps:
            self._maps[key] = (self._perspective_maps if cam < 2 else self._fisheye_maps)(cam, raw_hw)
        return self._maps[key]

    def _perspective_maps(self, cam: int, raw_hw: tuple[int, int]):
        (height, width), (raw_h, raw_w) = self.image_size, raw_hw
        rows = np.floor((np.arange(height) + 0.5) * raw_h / height).astype(np.int64)  # = round half up of the map
        cols = np.floor((np.arange(width) + 0.5) * raw_w / width).astype(np.int64)
        rows, cols = np.meshgrid(np.minimum(rows, raw_h - 1), np.minimum(cols, raw_w - 1), indexing="ij")
        return rows, cols, np.ones(rows.shape, dtype=bool), np.ones(rows.shape)

    def _fisheye_maps(self, cam: int, raw_hw: tuple[int, int]):
        from vipocc.data.images import fisheye_to_pinhole_grid

        if self.calibration is None:
            raise ValueError("OracleViews: a calibration is needed to resample the fisheye views image_02/03")
        calib = self.calibration
        height, width = self.image_size
        grid = fisheye_to_pinhole_grid(calib.K_perspective, self.image_size, calib.mei_normalized[cam],
                                       calib.R_fisheye[cam]).astype(np.float64)
        raw_h, raw_w = raw_hw
        cols = np.floor((grid[..., 0] + 1.0) * 0.5 * (raw_w - 1) + 0.5).astype(np.int64)
        rows = np.floor((grid[..., 1] + 1.0) * 0.5 * (raw_h - 1) + 0.5).astype(np.int64)
        valid = (cols >= 0) & (cols < raw_w) & (rows >= 0) & (rows < raw_h)
        xx, yy = np.meshgrid(np.linspace(-1.0, 1.0, width), np.linspace(-1.0, 1.0, height))
        rays = np.stack([xx, yy, np.ones_like(xx)], axis=-1) @ np.linalg.inv(calib.K_perspective).T
        z_factor = 1.0 / np.linalg.norm(rays, axis=-1)
        return np.where(valid, rows, 0), np.where(valid, cols, 0), valid, z_factor

    def _sample(self, raw: np.ndarray, cam: int, fill: float | int) -> np.ndarray:
        rows, cols, valid, _ = self._index_maps(cam, raw.shape[:2])
        return np.where(valid, raw[rows, cols], fill).astype(raw.dtype)

    def depth(self, view: View) -> np.ndarray:
        """float32 [H, W] z-depth (m) of the view; inf = sky, NaN = outside the fisheye lens."""
        raw = self.oracle.depth(view.seq, view.cam, view.frame).astype(np.float32)
        rows, cols, valid, z_factor = self._index_maps(view.cam, raw.shape)
        depth = np.where(valid, raw[rows, cols], np.nan)
        return (depth * z_factor).astype(np.float32) if view.cam >= 2 else depth.astype(np.float32)

    def instance(self, view: View) -> np.ndarray:
        """uint16 [H, W] oracle car instance id of the view (0 = not a car)."""
        return self._sample(self.oracle.instance(view.seq, view.cam, view.frame), view.cam, 0)

    def semantic(self, view: View) -> np.ndarray:
        """uint8 [H, W] KITTI-360 label id of the view (0 = outside the fisheye lens)."""
        return self._sample(self.oracle.semantic(view.seq, view.cam, view.frame), view.cam, 0)


# ----------------------------------------------------------------------------------------------------- backends


class DepthBackend(Protocol):
    """A depth prior producer. ``predict`` gets uint8 RGB [B, H, W, 3] (None when ``needs_images`` is False)."""

    name: str
    simulated: bool
    needs_images: bool
    batch_size: int

    def predict(self, images: np.ndarray | None, views: list[View]) -> np.ndarray: ...

    def describe(self) -> dict: ...


class InstanceBackend(Protocol):
    """An instance prior producer: per view (detections, int instance mask [H, W])."""

    name: str
    simulated: bool
    needs_images: bool
    batch_size: int

    def predict(self, images: np.ndarray | None, views: list[View]) -> list[tuple[list[dict], np.ndarray]]: ...

    def describe(self) -> dict: ...


class SimulatedDepthBackend:
    """Simulated Depth Anything V2 (:func:`vipocc.priors.simulated.simulate_depth_prior` of the oracle view)."""

    name = "simulated"
    simulated = True
    needs_images = False
    batch_size = 1

    def __init__(self, views: OracleViews, seed: int = 0, params: Any | None = None):
        from vipocc.priors.simulated import DepthPriorParams

        self.views = views
        self.seed = seed
        self.params = params or DepthPriorParams()

    def predict(self, images: np.ndarray | None, views: list[View]) -> np.ndarray:
        from vipocc.priors.simulated import simulate_depth_prior

        return np.stack([simulate_depth_prior(self.views.depth(view), frame_rng(self.seed, "depth", view),
                                              self.params) for view in views])

    def describe(self) -> dict:
        from vipocc.priors.simulated import SIMULATED_BACKEND_NOTE

        return {"backend": self.name, "simulated": True, "note": SIMULATED_BACKEND_NOTE, "seed": self.seed,
                "params": dataclasses.asdict(self.params)}


class SimulatedInstanceBackend:
    """Simulated Grounded-SAM (:func:`vipocc.priors.simulated.simulate_instances` of the oracle view)."""

    name = "simulated"
    simulated = True
    needs_images = False
    batch_size = 1

    def __init__(self, views: OracleViews, seed: int = 0, drop_prob: float = 0.1, box_jitter_px: float = 2.0,
                 min_car_pixels: int = 20):
        self.views = views
        self.seed = seed
        self.options = {"drop_prob": drop_prob, "box_jitter_px": box_jitter_px, "min_car_pixels": min_car_pixels}

    def predict(self, images: np.ndarray | None, views: list[View]) -> list[tuple[list[dict], np.ndarray]]:
        from vipocc.priors.simulated import simulate_instances

        return [simulate_instances(self.views.instance(view), self.views.semantic(view),
                                   frame_rng(self.seed, "instances", view), **self.options) for view in views]

    def describe(self) -> dict:
        from vipocc.priors.simulated import SIMULATED_BACKEND_NOTE

        return {"backend": self.name, "simulated": True, "note": SIMULATED_BACKEND_NOTE, "seed": self.seed,
                **self.options}


def _effective_dtype(dtype: str | None, device: Any) -> str | None:
    """Reduced precision only on CUDA: on a CPU the setting is ignored (logged), so one config runs anywhere."""
    if dtype is not None and device.type != "cuda":
        log.warning("priors: dtype %s ignored on %s (reduced precision is GPU only); using float32", dtype, device)
        return None
    return dtype


class DepthAnythingBackend:
    """Depth Anything V2 through transformers; the model is loaded on the first batch (skipped jobs load nothing).

    Args: model_path (HF folder or original .pth), device ("auto" = CUDA if available), dtype (None, "bf16",
    "fp16": autocast on CUDA, ignored on CPU), input_size (518 in the reference), batch_size, max_depth (metric
    head scale of an original .pth, 80 m).
    """

    name = "depth_anything"
    simulated = False
    needs_images = True

    def __init__(self, model_path: str | os.PathLike, device: str = "auto", dtype: str | None = None,
                 input_size: int = 518, batch_size: int = 4, max_depth: float = 80.0):
        from vipocc.priors.depth_anything import resolve_device

        self.model_path = Path(model_path)
        if not self.model_path.exists():
            raise FileNotFoundError(f"priors.depth.model_path: {self.model_path} does not exist")
        self.device = resolve_device(device)
        self.dtype = _effective_dtype(dtype, self.device)
        self.input_size = int(input_size)
        self.batch_size = int(batch_size)
        self.max_depth = max_depth
        self._model = None

    def predict(self, images: np.ndarray | None, views: list[View]) -> np.ndarray:
        from vipocc.priors.depth_anything import load_depth_anything, predict_depth

        if self._model is None:
            self._model = load_depth_anything(self.model_path, self.device, max_depth=int(self.max_depth))
        return predict_depth(self._model, images, self.input_size, self.batch_size, self.dtype)

    def describe(self) -> dict:
        return {"backend": self.name, "simulated": False, "model_path": str(self.model_path),
                "weights_sha256": weights_sha256(self.model_path), "device": str(self.device),
                "dtype": self.dtype or "float32", "input_size": self.input_size, "batch_size": self.batch_size}


class GroundedSamBackend:
    """Grounding DINO + SAM through transformers; loaded on the first batch."""

    name = "grounded_sam"
    simulated = False
    needs_images = True

    def __init__(self, dino_path: str | os.PathLike, sam_path: str | os.PathLike, device: str = "auto",
                 prompt: str = "road.building.vegetation.sky.car", box_threshold: float = 0.3,
                 text_threshold: float = 0.25, batch_size: int = 4):
        from vipocc.priors.depth_anything import resolve_device

        self.paths = {"dino_path": Path(dino_path), "sam_path": Path(sam_path)}
        for key, path in self.paths.items():
            if not path.is_dir():
                raise FileNotFoundError(f"priors.instances.{key}: model folder {path} does not exist")
        self.device = resolve_device(device)
        self.options = {"prompt": prompt, "box_threshold": box_threshold, "text_threshold": text_threshold}
        self.batch_size = int(batch_size)
        self._models = None

    def predict(self, images: np.ndarray | None, views: list[View]) -> list[tuple[list[dict], np.ndarray]]:
        from vipocc.priors.grounded_sam import detect_instances, load_grounded_sam

        if self._models is None:
            self._models = load_grounded_sam(self.paths["dino_path"], self.paths["sam_path"], self.device)
        return detect_instances(self._models, images, batch_size=self.batch_size, **self.options)

    def describe(self) -> dict:
        return {"backend": self.name, "simulated": False, "device": str(self.device), "batch_size": self.batch_size,
                **{key: str(path) for key, path in self.paths.items()},
                "weights_sha256": {key: weights_sha256(path) for key, path in self.paths.items()}, **self.options}


# ------------------------------------------------------------------------------------------------------- jobs


@dataclasses.dataclass
class StageStats:
    """What one job did. ``images``: views considered; ``written`` / ``skipped`` (up to date) count views;
    ``outputs``: every output file of the views (written now or earlier); ``compute_seconds``: time spent reading,
    predicting and writing the views that were (re)done; extra: job-specific counters."""

    stage: str
    seq: str
    images: int = 0
    written: int = 0
    skipped: int = 0
    compute_seconds: float = 0.0
    outputs: list[Path] = dataclasses.field(default_factory=list)
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def images_per_second(self) -> float | None:
        return self.written / self.compute_seconds if self.written and self.compute_seconds > 0 else None

    def as_dict(self) -> dict:
        rate = self.images_per_second
        return {"stage": self.stage, "seq": self.seq, "images": self.images, "written": self.written,
                "skipped": self.skipped, "compute_seconds": round(self.compute_seconds, 4),
                "images_per_second": None if rate is None else round(rate, 3), **self.extra}


def _is_up_to_date(outputs: Iterable[Path], source: Path) -> bool:
    from vipocc.data.preprocess import is_up_to_date

    return all(is_up_to_date(path, [source]) for path in outputs)


def _views(seq: str, frames: Iterable[int], cameras: Sequence[str], folders: tuple[str, str]) -> list[View]:
    """Every (camera, frame) view, camera-major (a batch then holds images of one camera)."""
    cameras = list(dict.fromkeys(cameras))
    if not cameras:
        raise ValueError("cameras: expected at least one camera")
    frames = [int(frame) for frame in frames]
    return [View(seq, camera, view_folder(camera, folders), frame) for camera in cameras for frame in frames]


def _read_batch(derived_root: Path, views: list[View], image_size: tuple[int, int]) -> np.ndarray:
    """uint8 RGB [B, H, W, 3] of the preprocessed images; ValueError naming a file of the wrong size."""
    from vipocc.data.images import read_image

    images = []
    for view in views:
        path = view.image_path(derived_root)
        image = read_image(path)
        if image.shape[:2] != tuple(image_size):
            raise ValueError(f"{path}: image is {image.shape[1]}x{image.shape[0]} (WxH), expected "
                             f"{image_size[1]}x{image_size[0]} (preprocess.image_size)")
        images.append(image)
    return np.stack(images)


def _run_views(stage: str, seq: str, views: list[View], outputs_of: Callable[[View], list[Path]],
               source_of: Callable[[View], Path], batch_size: int, process: Callable[[list[View]], None],
               overwrite: bool, progress: bool) -> StageStats:
    """Shared loop: find views whose outputs are missing or stale, process them in batches, count everything."""
    from tqdm.auto import tqdm

    stats = StageStats(stage=stage, seq=seq, images=len(views))
    todo = []
    for view in views:
        source = source_of(view)
        if not source.is_file():
            raise FileNotFoundError(f"{source}: input of the {stage} of {view.camera} frame {view.frame} is missing")
        outputs = outputs_of(view)
        stats.outputs.extend(outputs)
        if overwrite or not _is_up_to_date(outputs, source):
            todo.append(view)
    stats.skipped = len(views) - len(todo)
    bar = tqdm(total=len(todo), desc=f"{stage} {stats.seq}", unit="img", disable=not progress)
    start = time.perf_counter()
    for first in range(0, len(todo), max(1, batch_size)):
        chunk = todo[first:first + max(1, batch_size)]
        process(chunk)
        stats.written += len(chunk)
        bar.update(len(chunk))
    stats.compute_seconds = time.perf_counter() - start
    bar.close()
    return stats


def depth_prior_sequence(derived_root: str | os.PathLike, seq: str, frames: Iterable[int], cameras: Sequence[str],
                         folders: tuple[str, str], image_size: Sequence[int], backend: DepthBackend,
                         overwrite: bool = False, progress: bool = True) -> StageStats:
    """Write the pseudo depth of every (camera, frame) view: float32 [H, W] metres at :func:`depth_prior_path`.

    Args:
        derived_root: holds data_2d_raw/ (the preprocessed images, read) and depth/ (written).
        frames: frame numbers; cameras: image_00..image_03 names; folders: (perspective, fisheye) folder names.
        image_size: (H, W) of the preprocessed images (every image is checked).
        backend: a depth backend (simulated or Depth Anything).
    """
    from vipocc.io import save_npy

    derived_root = Path(derived_root)
    size = tuple(int(v) for v in image_size)

    def process(chunk: list[View]) -> None:
        images = _read_batch(derived_root, chunk, size) if backend.needs_images else None
        depths = np.asarray(backend.predict(images, chunk), dtype=np.float32)
        if depths.shape != (len(chunk), *size):
            raise ValueError(f"depth backend {backend.name}: returned {depths.shape}, expected {(len(chunk), *size)}")
        for view, depth in zip(chunk, depths):
            save_npy(depth_prior_path(derived_root, view), depth)

    return _run_views("depth_prior", seq, _views(seq, frames, cameras, folders),
                      lambda view: [depth_prior_path(derived_root, view)], lambda view: view.image_path(derived_root),
                      backend.batch_size, process, overwrite, progress)


def instance_prior_sequence(derived_root: str | os.PathLike, seq: str, frames: Iterable[int],
                            cameras: Sequence[str], folders: tuple[str, str], image_size: Sequence[int],
                            backend: InstanceBackend, overwrite: bool = False, progress: bool = True) -> StageStats:
    """Write detections JSON and instance mask of every view (:func:`detections_path`, :func:`instance_mask_path`).

    The mask is written first and the JSON last, so a JSON at least as new as the image marks a finished view.
    ``stats.extra``: total detections, detections per label, and views without any detection.
    """
    from vipocc.io import save_npy, write_text

    derived_root = Path(derived_root)
    size = tuple(int(v) for v in image_size)
    labels: dict[str, int] = {}
    empty = [0]

    def process(chunk: list[View]) -> None:
        images = _read_batch(derived_root, chunk, size) if backend.needs_images else None
        results = backend.predict(images, chunk)
        for view, (detections, mask) in zip(chunk, results):
            mask = np.asarray(mask)
            if mask.shape != size:
                raise ValueError(f"instance backend {backend.name}: mask of shape {mask.shape}, expected {size}")
            save_npy(instance_mask_path(derived_root, view), mask.astype(mask_dtype(len(detections))))
            write_text(detections_path(derived_root, view), json.dumps(detections, indent=1) + "\n")
            for item in detections:
                labels[item["label"]] = labels.get(item["label"], 0) + 1
            empty[0] += not detections

    stats = _run_views("instance_prior", seq, _views(seq, frames, cameras, folders),
                       lambda view: [instance_mask_path(derived_root, view), detections_path(derived_root, view)],
                       lambda view: view.image_path(derived_root), backend.batch_size, process, overwrite, progress)
    stats.extra = {"detections": sum(labels.values()), "detections_per_label": dict(sorted(labels.items())),
                   "images_without_detection": empty[0]}
    return stats


@dataclasses.dataclass(frozen=True)
class SnogSettings:
    """SNOG sampling settings (the ``priors.snog`` config block less its cameras)."""

    patch_size: int = 8
    num_patches: int = 64
    n_sets: int = 25
    background_ratio: float = 0.5
    phrases: tuple[str, ...] = ("car", "person")
    seed: int = 0


def snog_anchor_sequence(derived_root: str | os.PathLike, seq: str, frames: Iterable[int], cameras: Sequence[str],
                         folders: tuple[str, str], image_size: Sequence[int], settings: SnogSettings = SnogSettings(),
                         overwrite: bool = False, progress: bool = True) -> StageStats:
    """Write the SNOG anchors (uint16 [n_sets, num_patches, 2] (x, y) px) of every view from its detections JSON.

    Views without any detection (or without any detection of ``settings.phrases``) are sampled uniformly.
    ``stats.extra``: views sampled uniformly only, and draws that needed the lattice fallback.
    """
    from vipocc.priors.snog import draw_anchors, mixture_weights, save_anchors

    derived_root = Path(derived_root)
    size = tuple(int(v) for v in image_size)
    counters = {"uniform_only_images": 0, "grid_fallback_draws": 0}

    def process(chunk: list[View]) -> None:
        for view in chunk:
            detections = read_detections(detections_path(derived_root, view))
            draw = draw_anchors(detections, size, settings.n_sets, settings.patch_size, settings.num_patches,
                                settings.background_ratio, settings.phrases, frame_rng(settings.seed, "snog", view))
            save_anchors(snog_anchor_path(derived_root, view), draw.anchors)
            weights, _ = mixture_weights(detections, settings.background_ratio, settings.phrases)
            counters["uniform_only_images"] += len(weights) == 1
            counters["grid_fallback_draws"] += int(draw.grid_fallback.sum())

    stats = _run_views("snog_anchors", seq, _views(seq, frames, cameras, folders),
                       lambda view: [snog_anchor_path(derived_root, view)],
                       lambda view: detections_path(derived_root, view), 16, process, overwrite, progress)
    stats.extra = dict(counters)
    return stats
