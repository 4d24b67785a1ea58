"""Simulated VFM priors for the synthetic world, derived from its exact oracle (there are no real weights here).

Every result made with these backends is a SIMULATION of Depth Anything V2 / Grounded-SAM, not their output;
:data:`SIMULATED_BACKEND_NOTE` is the sentence callers put in metadata and reports.

Depth prior (:func:`simulate_depth_prior`), a seeded corruption of the oracle z-depth designed to carry the error
structure the ViPOcc alignment module has to fix (authors, KITTI-360 test: AbsRel 0.586 unscaled, 0.142 with
per-image median scaling):

1. sky (inf) and anything beyond ``max_depth`` -> ``max_depth``; inverse depth q = 1 / depth (1/m).
2. blurred edges: q is Gaussian-blurred (``edge_blur_px``), so depth discontinuities get the intermediate
   "flying" values of a network's smooth output; flat regions barely change.
3. per-image unknown affine error in inverse depth: q' = q / k + t, with the depth scale k log-normal
   (``scale_log_mean``, ``scale_log_sd``; k > 1 makes everything too far, as the real metric prior is on
   192x640 KITTI-360 input) and the shift t normal (``shift_sd``, 1/m). Median scaling removes most of k but not
   t, whose effect grows with distance.
4. depth-dependent noise: log-depth gets a smooth random field (Gaussian-filtered white noise, correlation
   ``noise_corr_px``, unit variance) scaled by ``noise_near + (noise_far - noise_near) * depth / max_depth``,
   plus a little white noise (``noise_white``).
5. clip to [``min_depth``, ``max_depth``]; sky pixels are set to exactly ``max_depth``.

With the defaults, on street-like 192x640 depth maps (ground plane, walls, car-sized boxes, GT up to 80 m; see
the tests), 60 seeds per map gave a mean unscaled AbsRel of 0.52 (per image 0.34-0.93) and a mean median-scaled
AbsRel of 0.135 (per image 0.125-0.16).

Instance prior (:func:`simulate_instances`): the detections Grounded-SAM would ideally return, in the format of
:func:`vipocc.priors.grounded_sam.detect_instances`: one "stuff" detection per present class of road (7),
building (11), vegetation (21) and sky (23) (box = the class's full pixel extent, mask = its pixels), then one
"car" detection per oracle car instance (box = the instance's pixel extent, optionally jittered, mask = its
pixels), each car dropped with ``drop_prob`` and cars under ``min_car_pixels`` never detected; ``logit`` ~
U(0.5, 0.9). Masks are painted in detection order
(cars last, so they sit on top of the stuff). Box convention: pixel (u, v) covers [u, u+1] x [v, v+1], so the
unjittered box of a region with columns u0..u1 and rows v0..v1 is [u0, v0, u1 + 1, v1 + 1].
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = [
    "CAR_ID",
    "DepthPriorParams",
    "SIMULATED_BACKEND_NOTE",
    "STUFF_IDS",
    "simulate_depth_prior",
    "simulate_instances",
]

SIMULATED_BACKEND_NOTE = ("SIMULATED prior: derived from the synthetic world's oracle with a seeded corruption "
                          "(vipocc.priors.simulated), not the output of a vision foundation model")
STUFF_IDS = {"road": 7, "building": 11, "vegetation": 21, "sky": 23}  # KITTI-360 label ids, prompt order
CAR_ID = 26
_LOGIT_RANGE = (0.5, 0.9)


@dataclass(frozen=True)
class DepthPriorParams:
    """Parameters of the simulated depth prior (module docstring); depths in metres, shift in 1/m, sizes in px."""

    max_depth: float = 80.0
    min_depth: float = 0.5
    edge_blur_px: float = 2.0
    scale_log_mean: float = float(np.log(1.5))
    scale_log_sd: float = 0.06
    shift_sd: float = 0.002
    noise_near: float = 0.15
    noise_far: float = 0.25
    noise_corr_px: float = 16.0
    noise_white: float = 0.02

    def __post_init__(self) -> None:
        if not 0 < self.min_depth < self.max_depth:
            raise ValueError(f"params: need 0 < min_depth < max_depth, got {self.min_depth}, {self.max_depth}")
        for item in fields(self):
            value = getattr(self, item.name)
            if not np.isfinite(value) or (item.name != "scale_log_mean" and value < 0):
                raise ValueError(f"params.{item.name}: expected a finite value >= 0, got {value}")


def _generator(rng: np.random.Generator | int) -> np.random.Generator:
    """The Generator itself, or a new one from an int seed; anything else (None included) is refused."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng: expected a numpy Generator or an int seed, got {rng!r}")


def _smooth_unit_field(shape: tuple[int, int], corr_px: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with unit standard deviation and correlation length ``corr_px`` (0 = white)."""
    field = rng.standard_normal(shape)
    if corr_px > 0:
        field = ndimage.gaussian_filter(field, corr_px, mode="reflect")
        field /= max(field.std(), 1e-12)
    return field


def simulate_depth_prior(
    oracle_depth: Any,
    rng: np.random.Generator | int,
    params: DepthPriorParams | None = None,
) -> np.ndarray:
    """Corrupt an oracle z-depth map into a realistic metric depth prior (module docstring).

    Args:
        oracle_depth: [H, W] z-depth in metres in the camera frame; +inf = sky; NaN (outside a fisheye lens)
            is treated like sky. Finite values must be > 0.
        rng: numpy Generator (consumed) or int seed.
        params: corruption parameters (defaults tuned to the real prior's error levels).

    Returns:
        float32 [H, W] depth in metres in [min_depth, max_depth]; sky = max_depth.
    """
    params = params or DepthPriorParams()
    generator = _generator(rng)
    depth = np.asarray(oracle_depth, dtype=np.float64)
    if depth.ndim != 2 or min(depth.shape) < 1:
        raise ValueError(f"oracle_depth: expected a non-empty [H, W] map, got shape {depth.shape}")
    sky = ~np.isfinite(depth)
    if (depth[~sky] <= 0).any():
        raise ValueError("oracle_depth: finite depths must be > 0 (use inf for sky)")
    clipped = np.where(sky, params.max_depth, np.minimum(depth, params.max_depth))

    inverse = ndimage.gaussian_filter(1.0 / clipped, params.edge_blur_px, mode="nearest") \
        if params.edge_blur_px > 0 else 1.0 / clipped
    scale = np.exp(generator.normal(params.scale_log_mean, params.scale_log_sd))
    shift = generator.normal(0.0, params.shift_sd)
    inverse = np.maximum(inverse / scale + shift, 1.0 / params.max_depth)

    noise_sd = params.noise_near + (params.noise_far - params.noise_near) * clipped / params.max_depth
    log_noise = noise_sd * _smooth_unit_field(depth.shape, params.noise_corr_px, generator) \
        + params.noise_white * generator.standard_normal(depth.shape)
    prior = np.clip(np.exp(log_noise) / inverse, params.min_depth, params.max_depth)
    prior[sky] = params.max_depth
    return prior.astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# instances
# ----------------------------------------------------------------------------------------------------------------

def _region_extents(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a label image (0 = background): sorted ids [K], boxes [K, 4] (u0, v0, u1 + 1, v1 + 1), areas [K]."""
    rows, cols = np.nonzero(labels)
    ids, inverse, areas = np.unique(labels[rows, cols], return_inverse=True, return_counts=True)
    # which columns / rows each region touches (one scatter each), then the first and last touched index
    in_col = np.zeros((len(ids), labels.shape[1]), dtype=bool)
    in_col[inverse, cols] = True
    in_row = np.zeros((len(ids), labels.shape[0]), dtype=bool)
    in_row[inverse, rows] = True
    first_col, first_row = in_col.argmax(axis=1), in_row.argmax(axis=1)
    end_col = labels.shape[1] - in_col[:, ::-1].argmax(axis=1)
    end_row = labels.shape[0] - in_row[:, ::-1].argmax(axis=1)
    boxes = np.stack([first_col, first_row, end_col, end_row], axis=1).astype(np.float64)
    return ids, boxes, areas


def _jitter(boxes: np.ndarray, sd_px: float, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Add N(0, sd) px to every coordinate, clip to the image, keep at least 1 px of width and height."""
    if len(boxes) == 0 or sd_px == 0:
        return boxes
    moved = boxes + rng.normal(0.0, sd_px, size=boxes.shape)
    limits = np.array([width, height], dtype=np.float64)
    low = np.clip(np.minimum(moved[:, :2], moved[:, 2:] - 1), 0, limits - 1)
    high = np.clip(np.maximum(moved[:, 2:], low + 1), 1, limits)
    return np.concatenate([low, high], axis=1)


def simulate_instances(
    oracle_instance: Any,
    oracle_semantic: Any,
    rng: np.random.Generator | int,
    drop_prob: float = 0.1,
    box_jitter_px: float = 2.0,
    min_car_pixels: int = 20,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Detections and instance mask from the oracle, in the ``detect_instances`` format (module docstring).

    Args:
        oracle_instance: uint16 [H, W] car instance id per pixel, 0 = not a car.
        oracle_semantic: uint8 [H, W] KITTI-360 label id per pixel.
        rng: numpy Generator (consumed) or int seed.
        drop_prob: probability that a car gets no detection.
        box_jitter_px: standard deviation (px) of the noise added to each car box coordinate.
        min_car_pixels: cars with fewer visible pixels are never detected (a real detector misses tiny or
            almost fully occluded cars; the synthetic world has many 1-10 px slivers at 192x640).

    Returns:
        (detections, instance_mask): detections = [{"label", "logit", "box" [x1, y1, x2, y2] px, "pixel_num"}],
        stuff classes first (road, building, vegetation, sky; those present), then the kept cars in increasing
        instance id; instance_mask int32 [H, W], k = k-th detection (1-based), 0 = none.
    """
    generator = _generator(rng)
    instance = np.asarray(oracle_instance)
    semantic = np.asarray(oracle_semantic)
    if instance.ndim != 2 or semantic.shape != instance.shape:
        raise ValueError(f"oracle_instance/oracle_semantic: expected two [H, W] maps of one shape, got "
                         f"{instance.shape} and {semantic.shape}")
    if not (np.issubdtype(instance.dtype, np.integer) and np.issubdtype(semantic.dtype, np.integer)):
        raise ValueError("oracle_instance/oracle_semantic: expected integer label maps")
    if not 0.0 <= drop_prob <= 1.0:
        raise ValueError(f"drop_prob: expected a probability in [0, 1], got {drop_prob}")
    if min_car_pixels < 0:
        raise ValueError(f"min_car_pixels: expected >= 0, got {min_car_pixels}")
    if not (np.isfinite(box_jitter_px) and box_jitter_px >= 0):
        raise ValueError(f"box_jitter_px: expected a finite value >= 0, got {box_jitter_px}")
    if min(instance.shape) < 1:
        raise ValueError(f"oracle_instance: empty map of shape {instance.shape}")
    if instance.min() < 0 or semantic.min() < 0:
        raise ValueError("oracle_instance/oracle_semantic: ids must be >= 0")
    height, width = instance.shape

    stuff_index = np.zeros(max(int(semantic.max()), max(STUFF_IDS.values())) + 1, dtype=np.int64)
    for position, class_id in enumerate(STUFF_IDS.values(), start=1):
        stuff_index[class_id] = position
    stuff_labels = stuff_index[semantic]
    stuff_ids, stuff_boxes, stuff_areas = _region_extents(stuff_labels)

    car_ids, car_boxes, car_areas = _region_extents(instance.astype(np.int64))
    kept = (generator.random(len(car_ids)) >= drop_prob) & (car_areas >= min_car_pixels)
    car_ids, car_areas = car_ids[kept], car_areas[kept]
    car_boxes = _jitter(car_boxes[kept], box_jitter_px, height, width, generator)

    names = list(STUFF_IDS)
    labels = [names[i - 1] for i in stuff_ids] + ["car"] * len(car_ids)
    boxes = np.concatenate([stuff_boxes, car_boxes])
    areas = np.concatenate([stuff_areas, car_areas])
    logits = generator.uniform(*_LOGIT_RANGE, size=len(labels))
    detections = [{"label": label, "logit": float(logit), "box": [float(v) for v in box], "pixel_num": int(area)}
                  for label, logit, box, area in zip(labels, logits, boxes, areas)]

    # detection number of each stuff class / car id, then cars painted over stuff
    stuff_number = np.zeros(len(STUFF_IDS) + 1, dtype=np.int32)
    stuff_number[stuff_ids] = np.arange(1, len(stuff_ids) + 1)
    car_number = np.zeros(int(instance.max()) + 1, dtype=np.int32)
    car_number[car_ids] = np.arange(len(stuff_ids) + 1, len(stuff_ids) + len(car_ids) + 1)
    cars = car_number[instance]
    mask = np.where(cars > 0, cars, stuff_number[stuff_labels]).astype(np.int32)
    return detections, mask
