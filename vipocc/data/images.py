"""KITTI-360 image reading, resizing and fisheye -> virtual pinhole resampling, exactly as the reference
(reference-implementation.md 1.4 and 2.1).

Conventions
-----------
* Images are RGB, ``uint8 [H,W,3]`` on disk and in memory; the reference's float images are ``float32`` in [0, 1]
  (``uint8 / 255``) and the dataset's tensors are ``float32`` in [-1, 1] (``x * 2 - 1``).
* Normalised image coordinates: the virtual pinhole pixel (column i, row j) of an ``H x W`` image sits at
  ``x = linspace(-1, 1, W)[i]``, ``y = linspace(-1, 1, H)[j]`` and looks along ``K_norm^-1 [x, y, 1]``. Fisheye
  samples are read by ``grid_sample(align_corners=True)``: normalised fisheye x = -1 is the centre of column 0 and
  +1 the centre of column ``W_f - 1``. Meanwhile the MEI parameters are normalised as ``u0' = 2 u0 / W_f - 1``
  (pixel-edge convention). This half-pixel mix is the reference's (digest weak point 8) and is kept so that our
  images equal the reference's.
* Saving: the reference writes ``(x * 0.5 + 0.5) * 255`` of its [-1, 1] float32 image through ``cv2.imwrite``,
  which converts float to 8 bit by OpenCV's saturating cast: round half to even, clip to [0, 255], and NaN, +-inf
  and values beyond the int32 range become 0 (checked on OpenCV 5.0). :func:`imwrite_cast` reproduces that cast
  and :func:`resize_perspective` / :func:`resample_fisheye` the whole float pipeline, so their uint8 output is
  what the reference's preprocessing script writes for the same input.

Folder names of the preprocessed images come from :func:`preprocessed_folders`, never from hand-typed strings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "MEI_KEYS",
    "check_image_size",
    "preprocessed_folders",
    "read_image",
    "to_unit_float",
    "imwrite_cast",
    "save_cast",
    "resize_perspective_float",
    "resize_perspective",
    "fisheye_to_pinhole_grid",
    "resample_fisheye_float",
    "resample_fisheye",
    "draw_color_jitter",
    "color_jitter",
]

MEI_KEYS = ("xi", "k1", "k2", "gamma1", "gamma2", "u0", "v0")
_INT32_LIMIT = 2.0 ** 31


def check_image_size(image_size: Sequence[int]) -> tuple[int, int]:
    """Validate ``image_size`` = (H, W), positive integers; returns it as a tuple of ints."""
    try:
        height, width = image_size
    except (TypeError, ValueError):
        raise ValueError(f"image_size: expected (height, width), got {image_size!r}") from None
    if any(isinstance(v, bool) or int(v) != v or v <= 0 for v in (height, width)):
        raise ValueError(f"image_size: expected positive integers (height, width), got {image_size!r}")
    return int(height), int(width)


def _format_angle(value: float) -> str:
    """-15 and -15.0 -> '-15' (the reference's folder names come from integer config values); -7.5 -> '-7.5'."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def preprocessed_folders(image_size: Sequence[int], fisheye_rotation: Sequence[float]) -> tuple[str, str]:
    """(perspective folder, fisheye folder) names of the preprocessed images, e.g.
    ``("data_192x640", "data_192x640_0x-15")`` for image_size (192, 640) and fisheye_rotation (yaw 0, pitch -15)."""
    height, width = check_image_size(image_size)
    rotation = np.atleast_1d(np.asarray(fisheye_rotation, dtype=np.float64)).ravel()
    if rotation.size == 1:  # the reference's scalar pitch
        rotation = np.array([0.0, rotation[0]])
    if rotation.size != 2 or not np.all(np.isfinite(rotation)):
        raise ValueError(f"fisheye_rotation: expected (yaw, pitch) degrees, got {fisheye_rotation!r}")
    perspective = f"data_{height}x{width}"
    return perspective, f"{perspective}_{_format_angle(rotation[0])}x{_format_angle(rotation[1])}"


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB ``uint8 [H,W,3]`` (grey images are expanded to 3 channels, as cv2.imread does).

    FileNotFoundError if the file does not exist, ValueError if OpenCV cannot decode it (truncated/corrupt PNG).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: unreadable image (corrupt or truncated {path.suffix or 'file'})")
    return np.ascontiguousarray(image[..., ::-1])


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """uint8 image -> float32 in [0, 1] exactly as the reference (``astype(float32) / 255``)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image: expected uint8, got {image.dtype}")
    return image.astype(np.float32) / np.float32(255)


def imwrite_cast(values: np.ndarray) -> np.ndarray:
    """OpenCV's float -> uint8 conversion inside ``cv2.imwrite`` (saturate_cast of cvRound).

    Round half to even, clip to [0, 255]; NaN, +-inf and |values| >= 2^31 (cvRound overflows to INT_MIN) give 0.
    """
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.floating):
        raise ValueError(f"values: expected a float array, got {values.dtype}")
    rounded = np.rint(values.astype(np.float64))
    with np.errstate(invalid="ignore"):
        in_range = np.isfinite(rounded) & (rounded >= -_INT32_LIMIT) & (rounded < _INT32_LIMIT)
    return np.where(in_range, np.clip(np.nan_to_num(rounded), 0, 255), 0).astype(np.uint8)


def save_cast(image01: np.ndarray) -> np.ndarray:
    """The reference's save of a [0, 1] float32 image: to [-1, 1] (``x * 2 - 1``, as the dataset returns it), then
    ``(x * 0.5 + 0.5) * 255`` in float32 and :func:`imwrite_cast`. uint8, same shape."""
    image01 = np.asarray(image01, dtype=np.float32)
    signed = image01 * np.float32(2) - np.float32(1)
    return imwrite_cast((signed * np.float32(0.5) + np.float32(0.5)) * np.float32(255))


def resize_perspective_float(image01: np.ndarray, image_size: Sequence[int]) -> np.ndarray:
    """float32 [h,w,3] in [0, 1] -> float32 [H,W,3]: ``cv2.resize`` to (W, H) with INTER_LINEAR (reference
    ``process_img``; no crop, the aspect change is absorbed by the normalised K)."""
    height, width = check_image_size(image_size)
    image01 = np.asarray(image01, dtype=np.float32)
    if image01.ndim != 3 or image01.shape[2] != 3:
        raise ValueError(f"image: expected [h,w,3], got {image01.shape}")
    return cv2.resize(image01, (width, height), interpolation=cv2.INTER_LINEAR)


def resize_perspective(image: np.ndarray, image_size: Sequence[int]) -> np.ndarray:
    """uint8 RGB [h,w,3] -> uint8 [H,W,3] exactly as the reference's preprocessing writes it (float resize, then
    the imwrite cast of :func:`save_cast`)."""
    return save_cast(resize_perspective_float(to_unit_float(image), image_size))


def _mei_values(mei_params: Mapping) -> dict[str, float]:
    """Flat normalised MEI dict; also accepts the reference's nested yaml layout (mirror/distortion/projection)."""
    if not isinstance(mei_params, Mapping):
        raise ValueError("mei_params: expected the normalised dict {xi, k1, k2, gamma1, gamma2, u0, v0} "
                         f"(Kitti360Calibration.mei_normalized[cam]), got {type(mei_params).__name__}")
    flat = dict(mei_params)
    for group in ("mirror_parameters", "distortion_parameters", "projection_parameters"):
        if isinstance(flat.get(group), Mapping):
            flat.update(flat.pop(group))
    missing = [k for k in MEI_KEYS if k not in flat]
    if missing:
        raise ValueError(f"mei_params: missing {missing} (expected normalised {list(MEI_KEYS)})")
    values = {k: float(flat[k]) for k in MEI_KEYS}
    if not all(np.isfinite(list(values.values()))):
        raise ValueError(f"mei_params: non-finite value in {values}")
    if values["gamma1"] > 10 or values["gamma2"] > 10:
        raise ValueError(f"mei_params: gamma1/gamma2 = {values['gamma1']}/{values['gamma2']} look like pixels; "
                         "pass the normalised parameters (Kitti360Calibration.mei_normalized)")
    return values


def fisheye_to_pinhole_grid(K_norm: np.ndarray, image_size: Sequence[int], mei_params: Mapping,
                            rotation: np.ndarray | None = None) -> np.ndarray:
    """Sampling grid float32 [H,W,2] (normalised fisheye x, y) of the virtual pinhole view (reference 2.1 steps 1-7).

    1. target pixels ``x = linspace(-1, 1, W)``, ``y = linspace(-1, 1, H)``, ``[x, y, 1]``;
    2. unproject ``d = K_norm^-1 [x, y, 1]`` (K_norm: the normalised perspective K, [3,3]);
    3. rotate ``d = R d`` (``rotation`` [3,3]: virtual camera -> raw fisheye camera, None = identity);
    4. ``d /= |d|``;  5. MEI: ``x_u = d_x / (d_z + xi)``, ``y_u = d_y / (d_z + xi)``;
    6. radial distortion ``(x_u, y_u) *= 1 + k1 r + k2 r^2`` with ``r = x_u^2 + y_u^2`` (no tangential term);
    7. ``u = gamma1 x_u + u0``, ``v = gamma2 y_u + v0`` with the normalised MEI parameters (``mei_params``).

    Computed in float64 (the reference uses float32; the difference is ~1e-7, far below a grey level).
    """
    height, width = check_image_size(image_size)
    K_norm = np.asarray(K_norm, dtype=np.float64)
    if K_norm.shape != (3, 3):
        raise ValueError(f"K_norm: expected [3,3], got {K_norm.shape}")
    R = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
    if R.shape != (3, 3):
        raise ValueError(f"rotation: expected [3,3], got {R.shape}")
    p = _mei_values(mei_params)
    xx, yy = np.meshgrid(np.linspace(-1.0, 1.0, width), np.linspace(-1.0, 1.0, height))
    pixels = np.stack([xx, yy, np.ones_like(xx)], axis=-1)              # [H,W,3]
    dirs = pixels @ (R @ np.linalg.inv(K_norm)).T                       # steps 2-3
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)               # step 4
    denom = dirs[..., 2] + p["xi"]
    x_u, y_u = dirs[..., 0] / denom, dirs[..., 1] / denom              # step 5
    r = x_u * x_u + y_u * y_u
    factor = 1.0 + p["k1"] * r + p["k2"] * r * r                       # step 6
    grid = np.stack([p["gamma1"] * x_u * factor + p["u0"], p["gamma2"] * y_u * factor + p["v0"]], axis=-1)
    return grid.astype(np.float32)


def _check_grid(grid: np.ndarray | torch.Tensor) -> torch.Tensor:
    grid = torch.as_tensor(grid, dtype=torch.float32)
    if grid.ndim != 3 or grid.shape[2] != 2:
        raise ValueError(f"grid: expected [H,W,2] normalised fisheye coordinates, got {tuple(grid.shape)}")
    return grid


def resample_fisheye_float(image01: np.ndarray, grid: np.ndarray | torch.Tensor) -> np.ndarray:
    """float32 [Hf,Wf,C] fisheye image in [0, 1] -> float32 [H,W,C] virtual pinhole view.

    One bilinear tap per pixel (``grid_sample``, ``align_corners=True``, zero padding outside the image), no
    prefilter, as the reference. ``grid`` from :func:`fisheye_to_pinhole_grid`.
    """
    image01 = np.asarray(image01, dtype=np.float32)
    if image01.ndim != 3:
        raise ValueError(f"image: expected [Hf,Wf,C], got {image01.shape}")
    source = torch.from_numpy(np.ascontiguousarray(image01)).permute(2, 0, 1).unsqueeze(0)
    sampled = F.grid_sample(source, _check_grid(grid).unsqueeze(0), mode="bilinear", padding_mode="zeros",
                            align_corners=True)
    return sampled[0].permute(1, 2, 0).contiguous().numpy()


def resample_fisheye(image: np.ndarray, grid: np.ndarray | torch.Tensor) -> np.ndarray:
    """uint8 RGB fisheye [Hf,Wf,3] -> uint8 [H,W,3] virtual pinhole view, exactly as the reference's preprocessing
    writes it (float resampling of ``image / 255``, then the imwrite cast of :func:`save_cast`)."""
    return save_cast(resample_fisheye_float(to_unit_float(image), grid))


# ------------------------------------------------------------------------------------------- colour augmentation


def draw_color_jitter(rng: np.random.Generator, brightness: float = 0.2, contrast: float = 0.2,
                      saturation: float = 0.2, hue: float = 0.1) -> dict:
    """Parameters of one colour jitter, shared by every view of a sample (the reference's ColorJitter.get_params with
    brightness/contrast/saturation in [0.8, 1.2] and hue in [-0.1, 0.1]): a random order of the four operations and
    their factors. Drawn from ``rng`` (numpy Generator), never the global state."""
    return {"order": rng.permutation(4).tolist(),
            "brightness": float(rng.uniform(1 - brightness, 1 + brightness)),
            "contrast": float(rng.uniform(1 - contrast, 1 + contrast)),
            "saturation": float(rng.uniform(1 - saturation, 1 + saturation)),
            "hue": float(rng.uniform(-hue, hue))}


def _grayscale(image01: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma [1,H,W] of an RGB [3,H,W] image (the weights torchvision and PIL use)."""
    return (0.299 * image01[0] + 0.587 * image01[1] + 0.114 * image01[2]).unsqueeze(0)


def _blend(image01: torch.Tensor, other: torch.Tensor | float, factor: float) -> torch.Tensor:
    return (factor * image01 + (1.0 - factor) * other).clamp(0.0, 1.0)


def _shift_hue(image01: torch.Tensor, shift: float) -> torch.Tensor:
    """Rotate the HSV hue of an RGB [3,H,W] image in [0, 1] by ``shift`` turns (value and saturation kept)."""
    r, g, b = image01
    value, _ = image01.max(dim=0)
    minimum, _ = image01.min(dim=0)
    chroma = value - minimum
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    hue = torch.where(value == r, ((g - b) / safe) % 6.0,
                      torch.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    hue = torch.where(chroma > 0, hue / 6.0, torch.zeros_like(hue))
    hue = (hue + shift) % 1.0
    # HSV -> RGB: each channel n in (5, 3, 1) is v - c * clamp(min(k, 4 - k), 0, 1) with k = (n + 6 h) mod 6.
    k = (torch.tensor([5.0, 3.0, 1.0]).view(3, 1, 1) + hue.unsqueeze(0) * 6.0) % 6.0
    return value - chroma * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


def color_jitter(image01: torch.Tensor, params: dict) -> torch.Tensor:
    """Apply one colour jitter (from :func:`draw_color_jitter`) to an RGB float image [3,H,W] in [0, 1].

    brightness: ``b x``; contrast: blend with the mean luma of the image; saturation: blend with the per-pixel luma;
    hue: HSV hue rotation; each result clipped to [0, 1]; applied in ``params["order"]`` (torchvision semantics).
    """
    image01 = torch.as_tensor(image01, dtype=torch.float32)
    if image01.ndim != 3 or image01.shape[0] != 3:
        raise ValueError(f"image01: expected an RGB tensor [3,H,W], got {tuple(image01.shape)}")
    for op in params["order"]:  # four operations
        if op == 0:
            image01 = _blend(image01, 0.0, params["brightness"])
        elif op == 1:
            image01 = _blend(image01, _grayscale(image01).mean(), params["contrast"])
        elif op == 2:
            image01 = _blend(image01, _grayscale(image01), params["saturation"])
        else:
            image01 = _shift_hue(image01, params["hue"])
    return image01
