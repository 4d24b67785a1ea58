"""BTS/KYN split files: one ``<seq> <frame:010d> <l|r>`` line per sample (reference-implementation.md 1.10).

The frame is the real image number (not a pose index); the side says which perspective camera is the key camera
(``l`` = image_00, ``r`` = image_01). Like the reference only the first character of the side token counts
(``left``/``right`` work too), but anything other than l/r is an error here rather than silently "left".
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

__all__ = ["SplitEntry", "read_split", "split_file"]


class SplitEntry(NamedTuple):
    """One sample of a split: sequence folder name, image number, side 'l' or 'r'."""

    seq: str
    frame: int
    side: str

    @property
    def is_right(self) -> bool:
        return self.side == "r"


def split_file(split_dir: str | os.PathLike, split: str) -> Path:
    """Path of split ``split`` (e.g. train/val/test): ``<split_dir>/<split>_files.txt`` (existence not checked)."""
    if not isinstance(split, str) or not split or any(ch in split for ch in "/\\"):
        raise ValueError(f"split: expected a split name such as 'train', 'val' or 'test', got {split!r}")
    return Path(split_dir) / f"{split}_files.txt"


def read_split(path: str | os.PathLike) -> list[SplitEntry]:
    """All entries of a split file, in file order. Blank lines are ignored.

    Raises FileNotFoundError naming a missing file and ValueError naming the file and line number of a
    malformed line (not three tokens, a non-integer or negative frame, a side other than l/r).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split file not found")
    entries = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        entries.append(_parse_line(tokens, path, lineno, line))
    return entries


def _parse_line(tokens: list[str], path: Path, lineno: int, line: str) -> SplitEntry:
    if len(tokens) != 3:
        raise ValueError(f"{path}:{lineno}: expected '<seq> <frame> <l|r>', got {line.strip()!r}")
    seq, frame_text, side_text = tokens
    if not frame_text.isdigit():
        raise ValueError(f"{path}:{lineno}: frame must be a non-negative integer, got {frame_text!r}")
    side = side_text[0]
    if side not in ("l", "r"):
        raise ValueError(f"{path}:{lineno}: side must be 'l' or 'r', got {side_text!r}")
    return SplitEntry(seq, int(frame_text), side)
