"""Literal, one-candidate-at-a-time SNOG sampler written from the reference description.

TEST ORACLE AND BENCHMARK BASELINE ONLY. It follows the behaviour described in
``shared/reference/reference-implementation.md`` 2.4 step by step (own code, not the authors'):

* one Gaussian sampler per detection whose label is in ``phrases``: mean = box centre, sd = (w/4, h/4);
  a draw is rounded and must satisfy ``half < x < W - half`` and ``half < y < H - half``, up to 10 tries,
  after which the sampler gives up (``None``) and a uniform sample is used instead;
* one uniform sampler: ``x ~ randint(half, W - half)``, ``y ~ randint(half, H - half)`` with numpy's
  exclusive upper end (so x = half is possible, unlike the Gaussian's strict test);
* sampler probabilities ``(1 - bg) * log(A_k) / sum_j log(A_j)`` for the Gaussians and ``bg`` for the uniform
  one (Gaussians first, uniform last); ``[1]`` when there is no Gaussian;
* ``num_patches`` sampler choices drawn i.i.d., then one patch after the other: draw, accept when the distance
  to every accepted centre is >= sqrt(2) * patch_size, otherwise count a failure; after ``component_attempts``
  failures for the current patch, draw from the uniform sampler only; the counter resets on acceptance.

Two deliberate differences from the released script: ``image_size`` is (H, W) (the released generator passes
PIL's (W, H), see the digest), and randomness comes from a passed ``numpy.random.Generator`` instead of the global
state. The original loop has no attempt cap; ``max_attempts`` only keeps a test from hanging forever.
"""

from __future__ import annotations

import math

import numpy as np


class _Uniform:
    """Uniform integer centre inside the image, reference bounds (exclusive upper end)."""

    def __init__(self, image_size: tuple[int, int], patch_size: int, rng: np.random.Generator) -> None:
        self.h, self.w = image_size
        self.half = patch_size // 2
        self.rng = rng

    def gen_sample(self) -> np.ndarray:
        x = self.rng.integers(self.half, self.w - self.half)
        y = self.rng.integers(self.half, self.h - self.half)
        return np.array([x, y])


class _Gaussian:
    """Axis-aligned Gaussian over a box (sd = size / 4), rounded, strict in-image test, 10 tries."""

    def __init__(self, box, image_size: tuple[int, int], patch_size: int, rng: np.random.Generator) -> None:
        x1, y1, x2, y2 = (float(v) for v in box)
        self.h, self.w = image_size
        self.half = patch_size / 2
        self.mean = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        self.cov = np.diag([((x2 - x1) / 4) ** 2, ((y2 - y1) / 4) ** 2])
        self.rng = rng

    def gen_sample(self) -> np.ndarray | None:
        for _ in range(10):
            s = np.round(self.rng.multivariate_normal(self.mean, self.cov)).astype(int)
            if self.half < s[0] < self.w - self.half and self.half < s[1] < self.h - self.half:
                return s
        return None


def reference_probabilities(areas: list[float], background_ratio: float) -> list[float]:
    """Sampler probabilities: Gaussians (log-area weighted) first, uniform last."""
    if not areas:
        return [1.0]
    logs = [math.log(a) for a in areas]
    total = sum(logs)
    return [(1 - background_ratio) * v / total for v in logs] + [background_ratio]


def reference_sample_anchors(
    detections: list[dict],
    image_size: tuple[int, int],
    rng: np.random.Generator,
    patch_size: int = 8,
    num_patches: int = 64,
    background_ratio: float = 0.5,
    phrases: tuple[str, ...] = ("car", "person"),
    component_attempts: int = 10,
    max_attempts: int = 100_000,
    return_sources: bool = False,
):
    """One SNOG draw, patch by patch. Returns int [num_patches, 2] (x, y) pixel centres.

    With ``return_sources`` also returns int [num_patches] ids of the sampler whose draw was accepted
    (index into Gaussians-then-uniform; a Gaussian that fell back to uniform counts as uniform).
    """
    gaussians = [_Gaussian(d["box"], image_size, patch_size, rng) for d in detections if d["label"] in phrases]
    areas = [d["pixel_num"] for d in detections if d["label"] in phrases]
    uniform = _Uniform(image_size, patch_size, rng)
    samplers = gaussians + [uniform]
    uniform_id = len(samplers) - 1
    probs = reference_probabilities(areas, background_ratio)
    choices = rng.choice(len(samplers), size=num_patches, p=probs)
    min_dist = math.sqrt(2) * patch_size

    accepted: list[np.ndarray] = []
    sources: list[int] = []
    attempts = 0
    for choice in choices:
        cnt = 0
        while True:
            attempts += 1
            if attempts > max_attempts:
                raise RuntimeError("reference SNOG loop exceeded max_attempts (image cannot hold the patches?)")
            sampler_id = choice if cnt < component_attempts else uniform_id
            sample = samplers[sampler_id].gen_sample()
            if sample is None:
                sample, sampler_id = uniform.gen_sample(), uniform_id
            if all(np.linalg.norm(sample - a) >= min_dist for a in accepted):
                accepted.append(sample)
                sources.append(sampler_id)
                break
            cnt += 1
    anchors = np.stack(accepted).astype(np.int32)
    if return_sources:
        return anchors, np.asarray(sources)
    return anchors
