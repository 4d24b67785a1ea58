"""Grounded-SAM instance prior through transformers: Grounding DINO boxes -> SAM box-prompted masks (digest 2.4).

Reference behaviour (ViPOcc ``gen_sampling_anchors_kitti360.py``) and how it maps onto transformers 5.23:

* Prompt ``"road.building.vegetation.sky.car"``, lower-cased, stripped, with a trailing "." added. It is passed
  as ``"road. building. vegetation. sky. car."`` (:func:`normalize_prompt`): the BERT tokenizer splits "." off
  either way, so the token ids are the same; this is the phrase format transformers documents.
* Grounding DINO: a query is kept when its best token probability (sigmoid) exceeds ``box_threshold`` (0.3);
  its phrase is made of the prompt tokens whose probability exceeds ``text_threshold`` (0.25). Both are what
  ``GroundingDinoProcessor.post_process_grounded_object_detection(outputs, input_ids, threshold,
  text_threshold, target_sizes)`` does; it also converts the normalised (cx, cy, w, h) boxes to pixel
  (x1, y1, x2, y2) on the input image. The image resize (800 short side, 1333 max in the real checkpoint) and
  normalisation come from the processor saved with the weights.
* Label = first word of the phrase with "." removed (:func:`phrase_label`); it can be "" when no token passes
  ``text_threshold`` (kept, as the reference would keep it). ``logit`` = the query's best token probability.
* SAM: the boxes prompt SAM on the same image (``multimask_output=False``), masks are upsampled to the image and
  thresholded at 0 (``SamProcessor.post_process_masks``), ``pixel_num`` = mask area in pixels.
* Instance mask: int32 [H, W], pixel = k for the k-th detection (1-based), 0 = none; masks are painted in
  detection order, so a later detection overwrites an earlier one where they overlap (the reference paints its
  class mask the same way). Hence ``(instance_mask == k).sum() <= pixel_num``.

Differences from the reference, all deliberate: boxes in the returned detections are clipped to the image
([0, W] x [0, H]; SAM still gets the unclipped box, as in the reference); ``logit`` keeps full precision (the
reference truncates its string to 4 characters); ``pixel_num`` is an int; images without any detection return
an empty list and an all-zero mask (the reference wrote no anchors file for them).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vipocc.priors.depth_anything import resolve_device

__all__ = [
    "BOX_THRESHOLD",
    "BoxDetections",
    "DEFAULT_PROMPT",
    "TEXT_THRESHOLD",
    "Detection",
    "GroundedSam",
    "detect_boxes",
    "detect_instances",
    "load_grounded_sam",
    "normalize_prompt",
    "paint_instance_mask",
    "phrase_label",
    "segment_boxes",
]

DEFAULT_PROMPT = "road.building.vegetation.sky.car"
BOX_THRESHOLD = 0.3
TEXT_THRESHOLD = 0.25

Detection = dict[str, Any]  # {"label": str, "logit": float, "box": [x1, y1, x2, y2] px, "pixel_num": int}


@dataclass(frozen=True)
class GroundedSam:
    """Loaded Grounding DINO + SAM with their processors, all on ``device`` (eval mode)."""

    detector: Any
    detector_processor: Any
    segmenter: Any
    segmenter_processor: Any
    device: torch.device


@dataclass(frozen=True)
class BoxDetections:
    """Grounding DINO result for one image: ``boxes`` float32 [N, 4] px (x1, y1, x2, y2, NOT clipped),
    ``scores`` float32 [N] (best token probability), ``labels`` N strings."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: list[str]


def _model_folder(path: str | Path, what: str) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what}: model folder not found: {folder}")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{what}: {folder} has no config.json, not a Hugging Face model folder")
    return folder


def load_grounded_sam(
    dino_path: str | Path, sam_path: str | Path, device: str | torch.device | None = "auto",
) -> GroundedSam:
    """Load Grounding DINO (``GroundingDinoForObjectDetection`` + ``AutoProcessor``) and SAM (``SamModel`` +
    ``SamProcessor``) from local HF folders, offline (``local_files_only=True``).

    Raises:
        FileNotFoundError: a folder is missing or has no config.json.
    """
    from transformers import AutoProcessor, GroundingDinoForObjectDetection, SamModel, SamProcessor

    dino_folder = _model_folder(dino_path, "dino_path")
    sam_folder = _model_folder(sam_path, "sam_path")
    target = resolve_device(device)
    detector = GroundingDinoForObjectDetection.from_pretrained(dino_folder, local_files_only=True)
    segmenter = SamModel.from_pretrained(sam_folder, local_files_only=True)
    return GroundedSam(
        detector=detector.to(target).eval(),
        detector_processor=AutoProcessor.from_pretrained(dino_folder, local_files_only=True),
        segmenter=segmenter.to(target).eval(),
        segmenter_processor=SamProcessor.from_pretrained(sam_folder, local_files_only=True),
        device=target,
    )


def normalize_prompt(prompt: str) -> str:
    """``"Road.building . CAR"`` -> ``"road. building. car."``: lower case, "."-separated phrases, trailing "."."""
    phrases = [phrase.strip() for phrase in str(prompt).lower().split(".")]
    phrases = [phrase for phrase in phrases if phrase]
    if not phrases:
        raise ValueError(f"prompt: no phrase in {prompt!r}")
    return ". ".join(phrases) + "."


def phrase_label(phrase: str) -> str:
    """Reference label of a Grounding DINO phrase: its first word with every "." removed (may be "")."""
    words = phrase.strip().split(" ")
    return words[0].strip().replace(".", "")


def _check_images(images: Any) -> np.ndarray:
    batch = np.asarray(images)
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"images: expected [B, H, W, 3] RGB, got shape {batch.shape}")
    if batch.dtype != np.uint8:
        raise ValueError(f"images: expected uint8 RGB, got {batch.dtype}")
    return batch


@torch.no_grad()
def detect_boxes(
    models: GroundedSam,
    images: Any,
    prompt: str = DEFAULT_PROMPT,
    box_threshold: float = BOX_THRESHOLD,
    text_threshold: float = TEXT_THRESHOLD,
) -> list[BoxDetections]:
    """Grounding DINO on a batch of uint8 RGB images [B, H, W, 3] (one forward pass). Boxes in input pixels."""
    batch = _check_images(images)
    for name, value in (("box_threshold", box_threshold), ("text_threshold", text_threshold)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: expected a probability in [0, 1], got {value}")
    text = normalize_prompt(prompt)
    processor = models.detector_processor
    inputs = processor(images=list(batch), text=[text] * len(batch), return_tensors="pt").to(models.device)
    outputs = models.detector(**inputs)
    height, width = batch.shape[1:3]
    results = processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=box_threshold, text_threshold=text_threshold,
        target_sizes=[(height, width)] * len(batch))
    return [BoxDetections(boxes=result["boxes"].float().cpu().numpy().reshape(-1, 4),
                          scores=result["scores"].float().cpu().numpy(),
                          labels=[phrase_label(phrase) for phrase in result["text_labels"]])
            for result in results]


@torch.no_grad()
def segment_boxes(models: GroundedSam, images: Any, boxes: Sequence[np.ndarray]) -> list[np.ndarray]:
    """SAM masks for box prompts: one image-encoder pass for the batch, one prompt decode per image.

    Args:
        images: uint8 RGB [B, H, W, 3].
        boxes: per image a float array [N_i, 4] (x1, y1, x2, y2) in input pixels (N_i may be 0).

    Returns:
        per image bool [N_i, H, W] masks (single-mask output, logits > 0 after upsampling).
    """
    batch = _check_images(images)
    if len(boxes) != len(batch):
        raise ValueError(f"boxes: {len(boxes)} box arrays for {len(batch)} images")
    height, width = batch.shape[1:3]
    processor = models.segmenter_processor
    encoded = processor(images=list(batch), return_tensors="pt")
    embeddings = models.segmenter.get_image_embeddings(encoded["pixel_values"].to(models.device))
    original = [tuple(int(v) for v in size) for size in encoded["original_sizes"].tolist()]
    reshaped = [tuple(int(v) for v in size) for size in encoded["reshaped_input_sizes"].tolist()]
    masks = []
    for index, image_boxes in enumerate(boxes):
        image_boxes = np.asarray(image_boxes, dtype=np.float64).reshape(-1, 4)
        if len(image_boxes) == 0:
            masks.append(np.zeros((0, height, width), dtype=bool))
            continue
        # box prompts live in the resized (longest side = processor size) frame, as SAM's ResizeLongestSide
        (old_h, old_w), (new_h, new_w) = original[index], reshaped[index]
        scale = np.array([new_w / old_w, new_h / old_h, new_w / old_w, new_h / old_h])
        prompt_boxes = torch.as_tensor(image_boxes * scale, dtype=torch.float32, device=models.device)[None]
        decoded = models.segmenter(image_embeddings=embeddings[index:index + 1], input_boxes=prompt_boxes,
                                   multimask_output=False)
        upsampled = processor.post_process_masks([decoded.pred_masks[0].float().cpu()], [original[index]],
                                                 [reshaped[index]])[0]
        masks.append(upsampled[:, 0].numpy().astype(bool))
    return masks


def paint_instance_mask(masks: np.ndarray) -> np.ndarray:
    """int32 [H, W] instance mask from bool masks [N, H, W]: the LAST detection covering a pixel wins (k = 1..N)."""
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"masks: expected [N, H, W], got shape {masks.shape}")
    count = masks.shape[0]
    if count == 0:
        return np.zeros(masks.shape[1:], dtype=np.int32)
    last_from_end = np.argmax(masks[::-1], axis=0)  # index of the last True, counted from the end
    return np.where(masks.any(axis=0), count - last_from_end, 0).astype(np.int32)


def _clip_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    limits = np.array([width, height, width, height], dtype=np.float64)
    return np.clip(boxes.astype(np.float64), 0.0, limits)


def detect_instances(
    models: GroundedSam,
    images: Any,
    prompt: str = DEFAULT_PROMPT,
    box_threshold: float = BOX_THRESHOLD,
    text_threshold: float = TEXT_THRESHOLD,
    batch_size: int = 4,
    progress: bool = False,
) -> list[tuple[list[Detection], np.ndarray]]:
    """Grounded-SAM detections and instance mask per image (module docstring for the exact rules).

    Args:
        models: from :func:`load_grounded_sam`.
        images: uint8 RGB [B, H, W, 3].
        prompt, box_threshold, text_threshold: as the reference (defaults).
        batch_size: images per detector / image-encoder pass.
        progress: show a tqdm bar over batches.

    Returns:
        per image ``(detections, instance_mask)``: detections = list of ``{"label": str, "logit": float,
        "box": [x1, y1, x2, y2] float px in the image (clipped), "pixel_num": int}``; instance_mask int32
        [H, W] with k = k-th detection (1-based), 0 = none.
    """
    batch = _check_images(images)
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    height, width = batch.shape[1:3]
    starts = range(0, len(batch), batch_size)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc="grounded-sam", unit="batch")
    results = []
    for start in starts:
        chunk = batch[start:start + batch_size]
        found = detect_boxes(models, chunk, prompt, box_threshold, text_threshold)
        masks = segment_boxes(models, chunk, [item.boxes for item in found])
        for item, image_masks in zip(found, masks):
            clipped = _clip_boxes(item.boxes, height, width)
            areas = image_masks.sum(axis=(1, 2))
            detections = [{"label": label, "logit": float(score), "box": [float(v) for v in box],
                           "pixel_num": int(area)}
                          for label, score, box, area in zip(item.labels, item.scores, clipped, areas)]
            results.append((detections, paint_instance_mask(image_masks)))
    return results
