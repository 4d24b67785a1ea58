"""The KYN / ViPOcc bird's-eye occupancy evaluator (protocol.md 4.1, reference-implementation.md 4.1).

Per test frame (batch 1, as the reference):

1. Encode view 0 of the sample (image_00 for the ``l`` entries of the test split) with its normalised K; the
   camera is its own world frame (pose = identity), so density queries take cam0 coordinates (m, x right, y down,
   z forward).
2. Query points: :func:`vipocc.data.occupancy_gt.query_grid` (x -4..4 m in 80 columns, the single slice y = 0.375
   m, z from z_far down to z_near in ``int((z_far - z_near) * ppm)`` rows, row 0 = far end, torch float32
   linspace values) in the *inclination-corrected* cam0 frame; they go to cam0 by ``inv(A)`` (A = the 5 degree
   correction, :func:`~vipocc.data.occupancy_gt.inclination_correction`). The density is queried in batches of
   ``batch_points`` (50,000) and ``occupied = sigma > occ_threshold`` (0.5, on density, not alpha). The frustum
   flag of the field is ignored, as the reference's ``only_density`` query does.
3. GT: ``GT_Occ/<seq>_<frame>_{occgt,visgt}.npy`` through
   :func:`~vipocc.data.occupancy_gt.load_occupancy_gt`; ``Object_Label/<seq>_<frame>_occgt_anno.png`` through
   :func:`~vipocc.data.occupancy_labels.load_object_labels`, row-cropped like the GT.
4. Scores: :func:`vipocc.evaluation.metrics.scene_and_object_scores` (``occ &= ~vis``; object scores inside the
   expanded instance rectangles on the full map; then the far cut; scene scores), with the BTS extras
   (scene o_prec / o_rec / ie_prec).
5. Synthetic world: the same scores against the exact oracle occupancy ``Exact_Occ/<seq>_<frame>_occ.npy``
   (lidar visibility and object labels unchanged), in the columns ``exact_*``.

Reference quirk kept on purpose: GT files cover 4-50 m (460 rows); for 4-20 m the reference keeps file rows
``[300:460]`` (:func:`~vipocc.data.occupancy_gt.gt_crop_rows`), whose z values (linspace 50 -> 4 over 460 rows,
spacing 0.10022 m) differ from the prediction rows (linspace 20 -> 4 over 160 rows, spacing 0.10063 m) by up to
0.065 m (row 0: GT 19.935 m vs prediction 20.0 m; last row: both 4.0 m). The exact-oracle map of a 4-50 m file is
cropped the same way, so both column groups score the same cells.

Frames are averaged with :func:`~vipocc.evaluation.metrics.mean_metrics` (NaN skipped per metric). Everything is
deterministic: the query points are fixed and no sampling is involved, so a repeated run is bit-identical on
the same device.

Optional per-frame grids (for the report's error maps; they change no metric): with ``save_grids=True`` and a
``grids_dir``, :func:`evaluate_occupancy` writes ``<grids_dir>/grids.npz`` (:func:`save_occupancy_grids`,
compressed, atomic; 446 frames at 4-20 m take about 0.1 MB with street-like maps, 2.6 MB with random ones): the
prediction scored for every frame, the GT maps it was scored against (as loaded, i.e. ``gt_occupied`` *before*
``&= ~visible``) and the exact oracle occupancy when the frame has one. Read it back with
:func:`load_occupancy_grids`.
"""
from __future__ import annotations

import dataclasses
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vipocc.data import occupancy_gt as og
from vipocc.data.occupancy_labels import load_object_labels
from vipocc.evaluation.metrics import mean_metrics, scene_and_object_scores
from vipocc.io import write_bytes

__all__ = ["OccupancySettings", "evaluate_occupancy", "score_frame", "query_density", "encode_view0",
           "resolve_device", "protocol_name", "field_of", "save_occupancy_grids", "load_occupancy_grids", "GT_OCC_DIR",
           "OBJECT_LABEL_DIR", "EXACT_OCC_DIR", "GRIDS_NPZ"]

GT_OCC_DIR = "GT_Occ"
OBJECT_LABEL_DIR = "Object_Label"
EXACT_OCC_DIR = "Exact_Occ"
GRIDS_NPZ = "grids.npz"
_EXACT_MODES = ("auto", "require", "off")


@dataclasses.dataclass(frozen=True)
class OccupancySettings:
    """Protocol settings (metres unless stated).

    z_range: (far, near), (20, 4) ViPOcc's reported setting, (50, 4) KYN's; x_range: lateral extent; y: the slice
    height below the corrected camera; ppm: cells per metre; occ_threshold: occupied if density > this;
    batch_points: points per network call; far_cut / far_margin_m: the far cut of the invisible area;
    obj_z_expand / obj_x_expand: object rectangle expansion; object_reference_quirk: take instance ids as
    ``unique()[1:-1]`` like the reference (see ``object_region_mask``); exact: "auto" (score the exact oracle
    when its file exists), "require" (missing file = error) or "off"; device: "auto", "cpu" or "cuda".
    """

    z_range: tuple[float, float] = og.EVAL_Z_RANGE
    x_range: tuple[float, float] = og.GT_X_RANGE
    y: float = 0.375
    ppm: int = og.GT_PPM
    occ_threshold: float = 0.5
    batch_points: int = 50_000
    far_cut: bool = True
    far_margin_m: float = 2.0
    obj_z_expand: float = 2.0
    obj_x_expand: float = 0.5
    object_reference_quirk: bool = False
    exact: str = "auto"
    device: str = "auto"

    def __post_init__(self) -> None:
        z_far, z_near = (float(v) for v in self.z_range)
        if not og.GT_Z_RANGE[1] <= z_near < z_far <= og.GT_Z_RANGE[0]:
            raise ValueError(f"z_range: expected (far, near) with 4 <= near < far <= 50 m, got {self.z_range}")
        object.__setattr__(self, "z_range", (z_far, z_near))
        object.__setattr__(self, "x_range", tuple(float(v) for v in self.x_range))
        if self.batch_points < 1:
            raise ValueError(f"batch_points: must be >= 1, got {self.batch_points}")
        if not self.occ_threshold > 0:
            raise ValueError(f"occ_threshold: must be > 0, got {self.occ_threshold}")
        if self.exact not in _EXACT_MODES:
            raise ValueError(f"exact: expected one of {_EXACT_MODES}, got {self.exact!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda', got {self.device!r}")

    @classmethod
    def from_config(cls, block: Mapping[str, Any], z_range: Sequence[float], device: str = "auto",
                    **overrides: Any) -> "OccupancySettings":
        """From the ``evaluation.occupancy`` config block and one of its ``z_ranges``."""
        return cls(z_range=tuple(z_range), ppm=og.GT_PPM, occ_threshold=float(block["occ_threshold"]),
                   batch_points=int(block["batch_points"]), far_cut=bool(block["cut_far_invisible_area"]),
                   obj_z_expand=float(block["obj_z_expand"]), obj_x_expand=float(block["obj_x_expand"]),
                   device=device, **overrides)

    @property
    def z_expand_cells(self) -> int:
        return int(self.obj_z_expand * self.ppm)  # the reference truncates: int(2 m * 10)

    @property
    def x_expand_cells(self) -> int:
        return int(self.obj_x_expand * self.ppm)

    def grid(self) -> np.ndarray:
        """Query points float32 [rows, cols, 3] in the inclination-corrected cam0 frame (m)."""
        return og.query_grid(self.z_range, self.x_range, self.y, self.ppm)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"protocol": protocol_name(self.z_range)}


def protocol_name(z_range: Sequence[float]) -> str:
    """'4-20' for z_range (20, 4); used in the result folder name occupancy_<protocol>."""
    far, near = z_range
    return f"{near:g}-{far:g}"


# ------------------------------------------------------------------------------------------ network access


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> cuda when a GPU is visible, else cpu."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def field_of(network: Any) -> Any:
    """The density field: ``network.field`` (ViPOccNetwork) or the object itself when it has ``density``."""
    field = getattr(network, "field", network)
    if not (hasattr(field, "encode") and hasattr(field, "density")):
        raise ValueError(f"network: {type(network).__name__} has no density field (encode/density methods)")
    return field


def encode_view0(field: Any, sample: Mapping[str, Any], device: torch.device) -> None:
    """Encode view 0 of an un-collated dataset sample (``imgs[0]`` [3,H,W] in [-1,1], ``projs[0]`` [3,3]) as its
    own world frame (pose identity)."""
    if not sample.get("imgs") or not sample.get("projs"):
        raise ValueError("sample: needs non-empty 'imgs' and 'projs' lists (view 0 is encoded)")
    image = torch.as_tensor(sample["imgs"][0], dtype=torch.float32, device=device)
    K = torch.as_tensor(sample["projs"][0], dtype=torch.float32, device=device)
    if image.ndim != 3 or image.shape[0] != 3 or K.shape != (3, 3):
        raise ValueError(f"sample: expected imgs[0] [3,H,W] and projs[0] [3,3], got {tuple(image.shape)}, "
                         f"{tuple(K.shape)}")
    field.encode(image[None], K[None], torch.eye(4, device=device)[None], flip=False)


@torch.no_grad()
def query_density(field: Any, points: np.ndarray | torch.Tensor, batch_points: int,
                  device: torch.device) -> np.ndarray:
    """Density (1/m) of an encoded field at points [P, 3] of its world frame (m), ``batch_points`` per call.

    Returns float32 [P] on the CPU. The field's ``invalid`` flag is not applied.
    """
    points = torch.as_tensor(points, dtype=torch.float32)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points: expected [P, 3], got {tuple(points.shape)}")
    out = torch.empty(points.shape[0], dtype=torch.float32)
    # A handful of batches per frame (P / 50k): bounds the [P, features] working set of the MLP.
    for start in range(0, points.shape[0], batch_points):
        chunk = points[start:start + batch_points].to(device)
        sigma, _ = field.density(chunk[None])
        out[start:start + batch_points] = sigma[0].float().cpu()
    return out.numpy()


def corrected_to_camera(points: np.ndarray) -> np.ndarray:
    """Inclination-corrected cam0 points [..., 3] -> cam0 points, float32 (``inv(A) = A^T``, a rotation)."""
    rotation = og.inclination_correction()[:3, :3]
    return np.asarray(points, dtype=np.float32) @ rotation  # p_cam = A^T p  <=>  row-vector p @ A


# ------------------------------------------------------------------------------------------------ GT files


def _rows_for(array: np.ndarray, settings: OccupancySettings, path: Path) -> np.ndarray:
    """Crop a map of GT-file rows to the evaluated rows exactly as ``load_occupancy_gt`` does."""
    wanted = settings.grid().shape[0]
    full = og.GT_SHAPE[0]
    if array.shape[0] == full and wanted < full:
        return array[og.gt_crop_rows(settings.z_range, settings.ppm)]
    if array.shape[0] == wanted:
        return array
    raise ValueError(f"{path}: {array.shape[0]} rows, expected {full} (4-50 m file) or {wanted} for z_range "
                     f"{settings.z_range}")


def exact_path(gt_root: str | Path, seq: str, frame: int) -> Path:
    return Path(gt_root) / EXACT_OCC_DIR / f"{seq}_{int(frame):010d}_occ.npy"


def load_frame_gt(gt_root: str | Path, seq: str, frame: int, settings: OccupancySettings
                  ) -> dict[str, np.ndarray | None]:
    """occupied, visible (bool), labels (uint8), exact (bool or None), all [rows, cols] of the evaluated grid."""
    root = Path(gt_root)
    occupied, visible = og.load_occupancy_gt(root / GT_OCC_DIR, seq, frame, settings.z_range, settings.ppm)
    label_dir = root / OBJECT_LABEL_DIR
    labels = _rows_for(load_object_labels(label_dir, seq, frame), settings, label_dir)
    exact = None
    path = exact_path(root, seq, frame)
    if settings.exact != "off" and (path.is_file() or settings.exact == "require"):
        if not path.is_file():
            raise FileNotFoundError(f"exact occupancy file not found: {path} (evaluation exact='require')")
        exact = _rows_for(np.load(path, allow_pickle=False).astype(bool), settings, path)
    shape = settings.grid().shape[:2]
    for name, array in (("occupied", occupied), ("labels", labels), ("exact", exact)):
        if array is not None and array.shape != shape:
            raise ValueError(f"{seq} frame {frame}: GT map {name} has shape {array.shape}, expected {shape}")
    return {"occupied": occupied, "visible": visible, "labels": labels, "exact": exact}


# ---------------------------------------------------------------------------------------------- evaluation


def score_frame(occupied_pred: np.ndarray, gt: Mapping[str, np.ndarray | None],
                settings: OccupancySettings) -> dict[str, float]:
    """Scene / object scores (+ scene extras) of one frame, and the ``exact_*`` ones when ``gt['exact']`` exists."""
    kwargs = dict(far_cut=settings.far_cut, ppm=settings.ppm, far_margin_m=settings.far_margin_m,
                  z_expand_cells=settings.z_expand_cells, x_expand_cells=settings.x_expand_cells,
                  reference_quirk=settings.object_reference_quirk, extras=True)
    row = scene_and_object_scores(gt["occupied"], gt["visible"], occupied_pred, gt["labels"], **kwargs)
    if gt.get("exact") is not None:
        exact = scene_and_object_scores(gt["exact"], gt["visible"], occupied_pred, gt["labels"], **kwargs)
        row |= {f"exact_{key}": value for key, value in exact.items()}
    return row


def evaluate_occupancy(network: Any, dataset: Sequence[Mapping[str, Any]], gt_root: str | Path,
                       settings: OccupancySettings = OccupancySettings(), *, progress: bool = True,
                       save_grids: bool = True, grids_dir: str | os.PathLike | None = None
                       ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Evaluate a density field on every sample of ``dataset`` (the ``eval_occupancy`` use of
    :class:`vipocc.data.kitti360.Kitti360Dataset`, or any sequence of samples with imgs, projs, seq, img_id).

    Args:
        network: a :class:`~vipocc.models.network.ViPOccNetwork` (its ``field`` is used) or any module with
            ``encode(image [1,3,H,W], K [1,3,3], w2c [1,4,4], flip)`` and ``density(points [1,P,3]) -> (sigma
            [1,P], invalid)``. It is put in eval mode and moved to the settings' device.
        gt_root: folder holding GT_Occ/, Object_Label/ (and Exact_Occ/ on the synthetic world).
        settings: protocol (see :class:`OccupancySettings`).
        save_grids: write ``<grids_dir>/grids.npz`` (:func:`save_occupancy_grids`) when ``grids_dir`` is given;
            the result folder of the summary is the intended ``grids_dir``. No effect on any metric.
        grids_dir: folder of ``grids.npz`` (created); None writes nothing.

    Returns:
        (rows, summary): rows = one dict per frame (seq, frame, is_right, then the metric keys of
        :func:`score_frame`); summary = ``{"evaluator": "occupancy", "protocol": settings, "frames": n,
        "metrics": mean over frames with NaN skipped per metric, "frames_without_visible_cells": n}``.
    """
    from tqdm.auto import tqdm

    device = resolve_device(settings.device)
    field = field_of(network)
    if isinstance(network, torch.nn.Module):
        network.to(device).eval()
    cam_points = corrected_to_camera(settings.grid()).reshape(-1, 3)
    shape = settings.grid().shape[:2]
    rows: list[dict[str, Any]] = []
    grids: list[dict[str, Any]] = []
    for index in tqdm(range(len(dataset)), desc=f"occupancy {protocol_name(settings.z_range)}", unit="frame",
                      disable=not progress):
        sample = dataset[index]
        seq, frame = str(sample["seq"]), int(sample["img_id"])
        encode_view0(field, sample, device)
        sigma = query_density(field, cam_points, settings.batch_points, device).reshape(shape)
        gt = load_frame_gt(gt_root, seq, frame, settings)
        predicted = sigma > settings.occ_threshold
        row = {"seq": seq, "frame": frame, "is_right": bool(sample.get("is_right", False))}
        rows.append(row | score_frame(predicted, gt, settings))
        if save_grids and grids_dir is not None:
            grids.append(row | {"predicted": predicted, "gt_occupied": gt["occupied"], "gt_visible": gt["visible"],
                                "exact_occupied": gt["exact"]})
    if save_grids and grids_dir is not None:
        save_occupancy_grids(Path(grids_dir) / GRIDS_NPZ, grids, settings)
    return rows, summarize(rows, "occupancy", settings.as_dict())


def save_occupancy_grids(path: str | os.PathLike, frames: Sequence[Mapping[str, Any]],
                         settings: OccupancySettings) -> Path:
    """Write the per-frame bird's-eye grids of an evaluation as one compressed ``.npz`` (atomically).

    Args:
        path: the ``.npz`` file (parents created), usually ``<result folder>/grids.npz``.
        frames: one mapping per frame with seq, frame, is_right and bool [rows, cols] maps ``predicted``
            (density > threshold, the map that was scored), ``gt_occupied`` (GT_Occ occgt as loaded, visible cells
            NOT removed), ``gt_visible`` and ``exact_occupied`` (None when the frame has no exact oracle map).
        settings: the protocol; gives the grid shape and the cell coordinates.

    Arrays in the file (F frames, R rows with row 0 = far end, C = 80 columns from x min to x max):
    ``seq`` str [F], ``frame`` int64 [F], ``is_right`` bool [F], ``predicted`` / ``gt_occupied`` / ``gt_visible``
    bool [F, R, C], ``z_m`` float32 [R] and ``x_m`` float32 [C] (cell centres in metres, inclination-corrected
    cam0 frame: z forward, x right); only when some frame has an exact map: ``exact_occupied`` bool [F, R, C]
    (all False for frames without one) and ``has_exact`` bool [F].
    """
    grid = settings.grid()
    shape = grid.shape[:2]

    def stack(key: str) -> np.ndarray:
        maps = [np.zeros(shape, bool) if item[key] is None else np.asarray(item[key], dtype=bool) for item in frames]
        for item, array in zip(frames, maps):
            if array.shape != shape:
                raise ValueError(f"{path}: {key} of {item['seq']} frame {item['frame']} has shape {array.shape}, "
                                 f"expected {shape}")
        return np.stack(maps) if maps else np.zeros((0, *shape), bool)

    arrays: dict[str, np.ndarray] = {
        "seq": np.asarray([str(item["seq"]) for item in frames], dtype=str),
        "frame": np.asarray([int(item["frame"]) for item in frames], dtype=np.int64),
        "is_right": np.asarray([bool(item.get("is_right", False)) for item in frames], dtype=bool),
        "predicted": stack("predicted"), "gt_occupied": stack("gt_occupied"), "gt_visible": stack("gt_visible"),
        "z_m": grid[:, 0, 2].astype(np.float32), "x_m": grid[0, :, 0].astype(np.float32),
    }
    has_exact = np.asarray([item.get("exact_occupied") is not None for item in frames], dtype=bool)
    if has_exact.any():
        arrays |= {"exact_occupied": stack("exact_occupied"), "has_exact": has_exact}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes(path, buffer.getvalue())
    return Path(path)


_GRID_KEYS = ("seq", "frame", "is_right", "predicted", "gt_occupied", "gt_visible", "z_m", "x_m")


def load_occupancy_grids(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a :func:`save_occupancy_grids` file as a dict (``exact_occupied`` / ``has_exact`` only when
    saved). FileNotFoundError when missing; ValueError naming the file for a missing key or inconsistent shapes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"occupancy grids not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path}: not a readable .npz file ({error})") from None
    missing = [key for key in _GRID_KEYS if key not in arrays]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing} (expected a grids.npz of the occupancy evaluator)")
    n, rows, cols = len(arrays["frame"]), len(arrays["z_m"]), len(arrays["x_m"])
    for key in ("predicted", "gt_occupied", "gt_visible", "exact_occupied"):
        if key in arrays and arrays[key].shape != (n, rows, cols):
            raise ValueError(f"{path}: {key} has shape {arrays[key].shape}, expected {(n, rows, cols)}")
    return arrays


def summarize(rows: Sequence[Mapping[str, Any]], evaluator: str, protocol: Mapping[str, Any],
              id_keys: Sequence[str] = ("seq", "frame", "is_right")) -> dict[str, Any]:
    """Summary dict of per-frame rows: the mean of every metric column (NaN frames skipped per metric)."""
    metrics = mean_metrics([{k: v for k, v in row.items() if k not in id_keys} for row in rows])
    scene_nan = sum(1 for row in rows if math.isnan(row.get("scene_o_acc", 0.0)))
    return {"evaluator": evaluator, "protocol": dict(protocol), "frames": len(rows),
            "frames_without_visible_cells": scene_nan, "metrics": metrics}
