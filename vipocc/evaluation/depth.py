"""Depth evaluation of BTS / ViPOcc against LiDAR GT (protocol.md 4.2, reference-implementation.md 4.2).

Two depth sources per network:

* ``rendered``: the density field's volume-rendered z-depth of every pixel of view 0
  (:meth:`ViPOccNetwork.render_depth_map`, samples at the bin centres: no jitter, so repeated runs are
  bit-identical where the reference's are slightly random);
* ``predicted``: the ViPOcc depth branch, which corrects the pseudo-depth prior of view 0 (the ``depth``
  ablation takes no prior).

Metrics (:func:`vipocc.evaluation.metrics.depth_metrics`): nearest resize of the prediction to the GT size,
optional scaling (``median`` with torch.median semantics, ``lsq``), clamp to [1e-3, 80] m, GT != 0.
Protocols: ``kitti360`` (GT = one LiDAR scan projected into view 0 at the image size; no crop, no GT cap) and
``kitti_raw_eigen`` (GT at the original resolution; Garg crop and 1e-3 < GT < 80).

Frames, units: camera z-depth in metres; images in [-1, 1]; K normalised to [-1, 1] (the dataset's ``projs``).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vipocc.evaluation.metrics import KITTI_RAW_EIGEN, depth_metrics, garg_crop

__all__ = [
    "DEPTH_PROTOCOLS",
    "DEPTH_SOURCES",
    "DepthFrame",
    "depth_frames",
    "evaluate_depth",
    "network_needs_prior",
    "predict_depth_map",
    "progress_bar",
    "protocol_settings",
    "resolve_device",
]

DEPTH_SOURCES = ("rendered", "predicted")
# Keyword arguments of depth_metrics per protocol (besides the scaling).
DEPTH_PROTOCOLS: dict[str, dict[str, Any]] = {"kitti360": {}, "kitti_raw_eigen": dict(KITTI_RAW_EIGEN)}


@dataclass(frozen=True)
class DepthFrame:
    """One test frame of a depth evaluator.

    image ``[1,3,H,W]`` float in [-1, 1]; K ``[1,3,3]`` normalised intrinsics of that view; gt ``[Hg,Wg]`` float
    LiDAR z-depth in m (0 = no return; any size, e.g. the original KITTI Raw resolution); prior ``[1,1,H,W]``
    pseudo depth in m, or None when the dataset does not load it.
    """

    seq: str
    frame: int
    is_right: bool
    image: torch.Tensor
    K: torch.Tensor
    gt: np.ndarray
    prior: torch.Tensor | None = None


def resolve_device(requested: str | torch.device | None) -> torch.device:
    """``auto`` / None -> cuda when a GPU is visible, else cpu; ``cuda`` without a GPU is a ValueError."""
    if isinstance(requested, torch.device):
        return requested
    requested = requested or "auto"
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested not in ("cpu", "cuda"):
        raise ValueError(f"device: expected auto, cpu or cuda, got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda was requested but no GPU is visible")
    return torch.device(requested)


def _first(value: Any) -> Any:
    """View 0 of a sample list (the dataset returns one entry per view / frame)."""
    return value[0] if isinstance(value, (list, tuple)) else value


def depth_frames(samples: Iterable[Mapping[str, Any]]) -> Iterator[DepthFrame]:
    """Adapt dataset samples (:class:`vipocc.data.kitti360.Kitti360Dataset` or
    :class:`vipocc.data.kitti_raw.KittiRawDataset`, not collated) to :class:`DepthFrame` of view 0.

    A sample must carry GT depth (``return_gt_depth``); the pseudo depth is taken when present.
    """
    for sample in samples:
        if not len(sample.get("depths", [])):
            raise ValueError(f"sample {sample.get('seq')} {sample.get('img_id')}: no GT depth "
                             "(dataset option return_gt_depth is off)")
        pseudo = sample.get("pseudo_depth")
        prior = _first(pseudo)[None].float() if isinstance(pseudo, (list, tuple)) and len(pseudo) else None
        yield DepthFrame(
            seq=str(sample["seq"]), frame=int(sample["img_id"]),
            is_right=bool(sample.get("is_right", False)),
            image=_first(sample["imgs"])[None].float(), K=_first(sample["projs"])[None].float(),
            gt=np.asarray(_first(sample["depths"]), dtype=np.float32).reshape(_first(sample["depths"]).shape[-2:]),
            prior=prior)


def network_needs_prior(network: torch.nn.Module) -> bool:
    """True when the network's depth branch takes the pseudo-depth prior (``rid`` / ``res_depth``)."""
    return getattr(network, "depth_branch", None) is not None and network.config.rid_ablation != "depth"


def predict_depth_map(network: torch.nn.Module, frame: DepthFrame, source: str, device: torch.device,
                      pixel_convention: str = "linspace") -> np.ndarray:
    """``[H,W]`` float32 z-depth (m) of view 0 from ``source`` (``rendered`` or ``predicted``) on ``device``."""
    image, K = frame.image.to(device), frame.K.to(device)
    with torch.no_grad():
        if source == "rendered":
            depth = network.render_depth_map(image, K, pixel_convention=pixel_convention)
        elif source == "predicted":
            prior = None
            if network_needs_prior(network):
                if frame.prior is None:
                    raise ValueError(f"{frame.seq} {frame.frame}: the depth branch needs the pseudo depth "
                                     "(dataset option return_pseudo_depth is off)")
                prior = frame.prior.to(device)
            depth = network.predict_depth(image, prior)
        else:
            raise ValueError(f"source: expected one of {DEPTH_SOURCES}, got {source!r}")
    return depth.float().cpu().numpy().reshape(depth.shape[-2:])


def protocol_settings(protocol: str, scaling: str | None) -> dict[str, Any]:
    """The settings recorded in the summary: crop, GT depth bounds, prediction clamp, scaling, resize rule."""
    if protocol not in DEPTH_PROTOCOLS:
        raise ValueError(f"protocol: expected one of {tuple(DEPTH_PROTOCOLS)}, got {protocol!r}")
    kwargs = DEPTH_PROTOCOLS[protocol]
    return {"protocol": protocol, "scaling": scaling, "crop": "garg" if kwargs.get("crop") else None,
            "gt_min_depth": kwargs.get("min_depth"), "gt_max_depth": kwargs.get("max_depth"),
            "pred_clamp": [1e-3, 80.0], "resize": "nearest (torch F.interpolate rule) to the GT size",
            "valid": "gt != 0"}


def evaluate_depth(network: torch.nn.Module, frames: Iterable[DepthFrame], source: str, *,
                   protocol: str = "kitti360", scaling: str | None = None, device: str | torch.device = "auto",
                   pixel_convention: str = "linspace", progress: bool = False,
                   total: int | None = None) -> list[dict[str, Any]]:
    """Per-frame depth metrics of one depth ``source`` of ``network``.

    Args:
        network: a :class:`~vipocc.models.network.ViPOccNetwork` (or any module with ``render_depth_map`` /
            ``predict_depth`` / ``depth_branch`` / ``config.rid_ablation``), put in eval mode here.
        frames: the test frames (:func:`depth_frames`).
        source: ``rendered`` or ``predicted`` (ValueError for ``predicted`` on a network without depth branch).
        protocol: ``kitti360`` or ``kitti_raw_eigen`` (:data:`DEPTH_PROTOCOLS`).
        scaling: None, ``median`` or ``lsq`` (per image).
        device: auto / cpu / cuda; pixel_convention: ray pixel convention of the rendered depth (training's).
        progress, total: tqdm bar over frames.

    Returns:
        one dict per frame: seq, frame, is_right, source, gt_pixels (valid GT count) and the metrics of
        ``vipocc.evaluation.metrics.DEPTH_METRIC_KEYS`` (NaN when the frame has no valid GT pixel).
    """
    if source not in DEPTH_SOURCES:
        raise ValueError(f"source: expected one of {DEPTH_SOURCES}, got {source!r}")
    if source == "predicted" and getattr(network, "depth_branch", None) is None:
        raise ValueError("source predicted: this network has no depth branch (a BTS model); use rendered")
    kwargs = DEPTH_PROTOCOLS[protocol_settings(protocol, scaling)["protocol"]]
    device = resolve_device(device)
    network = network.to(device).eval()
    rows = []
    for frame in progress_bar(frames, progress, total, f"depth {source}"):
        pred = predict_depth_map(network, frame, source, device, pixel_convention)
        metrics = depth_metrics(frame.gt, pred, scaling, **kwargs)
        rows.append({"seq": frame.seq, "frame": frame.frame, "is_right": frame.is_right, "source": source,
                     "gt_pixels": _valid_count(frame.gt, kwargs), **metrics})
    return rows


def _valid_count(gt: np.ndarray, kwargs: Mapping[str, Any]) -> int:
    """Number of GT pixels the metrics use (the mask of depth_metrics)."""
    valid = gt != 0
    if kwargs.get("crop"):
        valid &= garg_crop(gt.shape)
    if kwargs.get("min_depth") is not None:
        valid &= gt > kwargs["min_depth"]
    if kwargs.get("max_depth") is not None:
        valid &= gt < kwargs["max_depth"]
    return int(valid.sum())


def progress_bar(items: Iterable, enabled: bool, total: int | None, desc: str) -> Iterable:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc=desc, unit="frame")
