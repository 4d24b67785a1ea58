"""Grounded-SAM chain on tiny random Grounding DINO + SAM models built from configs (offline).

Truths: transformers' documented one-image usage of each model (processor -> model -> post-processing, with the
SAM processor scaling the box prompts itself) run here independently of the module's batching and box scaling;
hand-made masks for the painting rule; hand-written prompt/label strings.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vipocc.priors import grounded_sam as gs
from vipocc.priors import tiny_models

H, W = 192, 640


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("gsam")
    dino = tiny_models.build_tiny_grounding_dino(root / "dino")
    sam = tiny_models.build_tiny_sam(root / "sam")
    return gs.load_grounded_sam(dino, sam, device="cpu")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(11).integers(0, 256, size=(2, H, W, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def results(models, images):
    return gs.detect_instances(models, images, batch_size=2)


def test_prompt_and_label_rules(models):
    assert gs.normalize_prompt(gs.DEFAULT_PROMPT) == "road. building. vegetation. sky. car."
    assert gs.normalize_prompt(" Road.Building . CAR ") == "road. building. car."
    with pytest.raises(ValueError, match="no phrase"):
        gs.normalize_prompt(" . . ")
    tokenizer = models.detector_processor.tokenizer
    # the reference string (lower-cased + trailing ".") and the normalised one tokenise identically
    assert tokenizer("road.building.vegetation.sky.car.")["input_ids"] == \
        tokenizer(gs.normalize_prompt(gs.DEFAULT_PROMPT))["input_ids"]
    assert gs.phrase_label("road") == "road"
    assert gs.phrase_label("car. road. [SEP]") == "car"
    assert gs.phrase_label("building sky") == "building"
    assert gs.phrase_label(".. vegetation") == ""


def test_paint_instance_mask_last_detection_wins():
    masks = np.zeros((3, 4, 5), dtype=bool)
    masks[0, :2, :3] = True
    masks[1, 1:3, 2:4] = True
    masks[2, 3, 4] = True
    expected = np.array([[1, 1, 1, 0, 0],
                         [1, 1, 2, 2, 0],
                         [0, 0, 2, 2, 0],
                         [0, 0, 0, 0, 3]], dtype=np.int32)
    painted = gs.paint_instance_mask(masks)
    assert painted.dtype == np.int32
    np.testing.assert_array_equal(painted, expected)
    np.testing.assert_array_equal(gs.paint_instance_mask(np.zeros((0, 4, 5), bool)), np.zeros((4, 5), np.int32))


def test_output_structure(results):
    assert len(results) == 2
    for detections, mask in results:
        assert mask.dtype == np.int32 and mask.shape == (H, W)
        assert len(detections) > 0  # the random tiny detector fires on noise images
        assert mask.min() >= 0 and mask.max() <= len(detections)
        for k, det in enumerate(detections, start=1):
            assert set(det) == {"label", "logit", "box", "pixel_num"}
            assert isinstance(det["label"], str) and "." not in det["label"] and " " not in det["label"]
            assert gs.BOX_THRESHOLD < det["logit"] <= 1.0
            x1, y1, x2, y2 = det["box"]
            assert 0 <= x1 <= x2 <= W and 0 <= y1 <= y2 <= H
            assert isinstance(det["pixel_num"], int)
            assert (mask == k).sum() <= det["pixel_num"]  # overlaps go to later detections
        assert (mask == len(detections)).sum() == detections[-1]["pixel_num"]  # nothing paints over the last


def test_detections_match_transformers_reference_usage(models, images, results):
    """Per image, the documented transformers calls give the same boxes, scores, labels and mask areas."""
    dino, dino_proc = models.detector, models.detector_processor
    sam, sam_proc = models.segmenter, models.segmenter_processor
    for image, (detections, _) in zip(images, results):
        with torch.no_grad():
            inputs = dino_proc(images=image, text="road. building. vegetation. sky. car.", return_tensors="pt")
            found = dino_proc.post_process_grounded_object_detection(
                dino(**inputs), inputs["input_ids"], threshold=0.3, text_threshold=0.25, target_sizes=[(H, W)])[0]
            boxes = found["boxes"]
            sam_inputs = sam_proc(images=image, input_boxes=[boxes.tolist()], return_tensors="pt")
            # the processor hands float64 prompts; the original SamPredictor (and the module) use float32
            sam_inputs["input_boxes"] = sam_inputs["input_boxes"].float()
            out = sam(**sam_inputs, multimask_output=False)
            masks = sam_proc.post_process_masks(out.pred_masks, sam_inputs["original_sizes"],
                                                sam_inputs["reshaped_input_sizes"])[0][:, 0]
        assert len(detections) == len(boxes)
        np.testing.assert_allclose([d["logit"] for d in detections], found["scores"].numpy(), rtol=1e-5)
        clipped = np.clip(boxes.numpy(), 0, [W, H, W, H])
        np.testing.assert_allclose([d["box"] for d in detections], clipped, atol=1e-3)
        assert [d["label"] for d in detections] == \
            [text.split(" ")[0].replace(".", "") for text in found["text_labels"]]
        assert [d["pixel_num"] for d in detections] == masks.reshape(len(masks), -1).sum(dim=1).tolist()


def test_images_without_detection(models, images):
    results = gs.detect_instances(models, images[:1], box_threshold=1.0)
    assert len(results) == 1
    detections, mask = results[0]
    assert detections == []
    assert mask.dtype == np.int32 and mask.shape == (H, W) and not mask.any()


def test_bad_inputs_raise(models, images, tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        gs.detect_instances(models, images.astype(np.float32))
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
        gs.detect_instances(models, images[0])
    with pytest.raises(ValueError, match="box_threshold"):
        gs.detect_instances(models, images[:1], box_threshold=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        gs.detect_instances(models, images[:1], batch_size=0)
    with pytest.raises(FileNotFoundError, match="dino_path"):
        gs.load_grounded_sam(tmp_path / "missing", tmp_path / "missing_sam", device="cpu")
