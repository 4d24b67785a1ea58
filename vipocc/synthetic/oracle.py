"""Read access to the exact ground truth of a generated synthetic world (the `oracle/` folder).

No model stage reads this: it serves tests, exact occupancy ground truth, simulated priors and scoring.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from vipocc.synthetic.scene import Scene


class WorldOracle:
    """Exact truth of the world generated into `world_root` (the folder holding world.json and oracle/)."""

    def __init__(self, world_root: str | Path):
        self.root = Path(world_root)
        manifest = self.root / "world.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest} not found: not a generated synthetic world")
        self.manifest = json.loads(manifest.read_text())
        self._scene = lru_cache(maxsize=4)(self._load_scene)

    @property
    def sequences(self) -> list[str]:
        return list(self.manifest["sequences"])

    def frames(self, seq: str) -> np.ndarray:
        return np.asarray(self._sequence(seq)["frames"])

    def scene(self, seq: str) -> Scene:
        return self._scene(seq)

    def occupied(self, seq: str, points_world: np.ndarray) -> np.ndarray:
        """Exact: is each world point [N, 3] inside solid geometry?"""
        return self.scene(seq).occupied(np.asarray(points_world, dtype=np.float64))

    def depth(self, seq: str, cam: int, frame: int) -> np.ndarray:
        """float32 [H, W]: z-depth for cameras 0/1, range for the fisheyes 2/3; inf = sky, nan = outside the lens."""
        return np.load(self._path(seq, "depth", cam, frame, ".npy"))

    def instance(self, seq: str, cam: int, frame: int) -> np.ndarray:
        """uint16 [H, W]: car instance id of each pixel, 0 = not a car."""
        return self._read_png(self._path(seq, "instance", cam, frame, ".png"))

    def semantic(self, seq: str, cam: int, frame: int) -> np.ndarray:
        """uint8 [H, W]: KITTI-360 label id of each pixel (23 = sky, 0 = outside the fisheye lens)."""
        return self._read_png(self._path(seq, "semantic", cam, frame, ".png"))

    def _sequence(self, seq: str) -> dict:
        try:
            return self.manifest["sequences"][seq]
        except KeyError:
            raise KeyError(f"sequence {seq!r} is not in {self.root / 'world.json'}") from None

    def _load_scene(self, seq: str) -> Scene:
        self._sequence(seq)
        return Scene.load(self.root / "oracle" / seq / "scene.npz")

    def _path(self, seq: str, kind: str, cam: int, frame: int, suffix: str) -> Path:
        path = self.root / "oracle" / seq / kind / f"image_{cam:02d}" / f"{frame:010d}{suffix}"
        if not path.is_file():
            raise FileNotFoundError(f"oracle file missing: {path}")
        return path

    @staticmethod
    def _read_png(path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"{path}: unreadable PNG")
        return image
