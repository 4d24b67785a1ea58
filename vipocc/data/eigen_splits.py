"""KITTI Raw split files and the Eigen / Eigen-Zhou splits, with a leak-free default.

Split file format (monodepth2 / BTS): one ``<date>/<drive folder> <frame index> <l|r>`` line per sample, e.g.
``2011_09_26/2011_09_26_drive_0002_sync 69 l``. The index is the frame's position in the drive (file
``<index:010d>.png``, line ``index`` of the pose file); monodepth2's Eigen test list zero-pads it, the Eigen-Zhou
lists do not: both parse to the same int. ``l`` = image_02 (left colour camera), ``r`` = image_03.

Why a leak-free variant: ViPOcc's ``eigen_zhou/train_files.txt`` is BTS's 39,810-line list with the 697 Eigen *test*
lines appended, and its ``val_files.txt`` *is* the Eigen test list (BTS's val list was renamed
``val_files_ori.txt``). Training as shipped therefore trains on the test frames and selects its checkpoint on them.
:func:`leak_free_eigen_zhou` (the default of :func:`load_eigen_zhou`) removes every test frame from training and
refuses a validation list that contains test frames; :func:`reference_eigen_zhou` is the switch that rebuilds the
reference's leaky lists.

Note on the reference: BTS's KITTI Raw ``_load_split`` compares the third token *with its newline* to ``"r"``, so
every line but an unterminated last one is read as left; we parse the side properly (with ``return_stereo`` both
cameras are in every sample anyway, only the key camera differs).

A "frame" here is the moment ``(drive, index)``: the left and right images of one moment are the same scene, so
sides are ignored when looking for overlaps.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vipocc.io import write_text

__all__ = [
    "RawSplitEntry",
    "read_raw_split",
    "write_raw_split",
    "as_raw_entries",
    "frame_keys",
    "check_no_leak",
    "leak_free_eigen_zhou",
    "reference_eigen_zhou",
    "EigenZhouSplits",
    "load_eigen_zhou",
]

_DRIVE_PATH = re.compile(r"(\d{4}_\d{2}_\d{2})/(\S+)")
_MAX_LISTED = 20  # overlaps quoted in an error message; the count is always complete


class RawSplitEntry(NamedTuple):
    """One split line. ``seq`` = ``<date>/<drive folder>``, ``frame`` = frame index, ``side`` = ``l`` | ``r``.

    The field names match the KITTI-360 ``SplitEntry`` (seq, frame, side) so code can treat both alike.
    """

    seq: str
    frame: int
    side: str

    @property
    def date(self) -> str:
        """Recording day, e.g. ``2011_09_26`` (the folder holding the calibration files)."""
        return self.seq.split("/", 1)[0]

    @property
    def drive(self) -> str:
        """Drive folder name, e.g. ``2011_09_26_drive_0002_sync``."""
        return self.seq.split("/", 1)[1]

    @property
    def is_right(self) -> bool:
        return self.side == "r"

    @property
    def key(self) -> tuple[str, int]:
        """The moment ``(seq, frame)``, side ignored."""
        return self.seq, self.frame


def _validated(seq: object, frame: object, side: object, where: str) -> RawSplitEntry:
    if not isinstance(seq, str) or not _DRIVE_PATH.fullmatch(seq):
        raise ValueError(f"{where}: expected '<date>/<drive folder>' such as "
                         f"'2011_09_26/2011_09_26_drive_0002_sync', got {seq!r}")
    if isinstance(frame, (bool, np.bool_)) or not isinstance(frame, (int, np.integer)) or frame < 0:
        raise ValueError(f"{where}: frame index must be a non-negative integer, got {frame!r}")
    if side not in ("l", "r"):
        raise ValueError(f"{where}: side must be 'l' or 'r', got {side!r}")
    return RawSplitEntry(seq, int(frame), str(side))


def _parse_line(line: str, path: Path, line_number: int) -> RawSplitEntry:
    tokens = line.split()
    where = f"{path}, line {line_number}"
    if len(tokens) != 3:
        raise ValueError(f"{where}: expected '<date>/<drive> <frame index> <l|r>', got {line.rstrip()!r}")
    seq, frame, side = tokens
    if not frame.isdigit():
        raise ValueError(f"{where}: frame index must be a non-negative integer, got {frame!r}")
    return _validated(seq, int(frame), side, where)


def read_raw_split(path: str | os.PathLike) -> list[RawSplitEntry]:
    """Read a KITTI Raw split file (blank lines are skipped; zero-padded indices are accepted).

    Raises FileNotFoundError for a missing file, ValueError naming the file and line for a malformed line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    lines = path.read_text().splitlines()
    return [_parse_line(line, path, number) for number, line in enumerate(lines, start=1) if line.strip()]


def as_raw_entries(entries: Iterable[RawSplitEntry | Sequence], name: str = "entries") -> list[RawSplitEntry]:
    """Validate ``entries`` (RawSplitEntry or ``(seq, frame, side)`` tuples) into a list of RawSplitEntry."""
    out = []
    for i, entry in enumerate(entries):
        if len(entry) != 3:
            raise ValueError(f"{name}[{i}]: expected (seq, frame, side), got {entry!r}")
        out.append(_validated(*entry, where=f"{name}[{i}]"))
    return out


def write_raw_split(path: str | os.PathLike, entries: Iterable[RawSplitEntry | Sequence]) -> Path:
    """Write ``entries`` in the Eigen-Zhou format (index not zero-padded), atomically (temp file + rename)."""
    path = Path(path)
    text = "".join(f"{e.seq} {e.frame} {e.side}\n" for e in as_raw_entries(entries))
    write_text(path, text)
    return path


def frame_keys(entries: Iterable[RawSplitEntry]) -> set[tuple[str, int]]:
    """The set of moments ``(seq, frame)`` of ``entries`` (sides merged)."""
    return {e.key for e in entries}


def _overlap_message(name_a: str, name_b: str, common: set, by: str) -> str:
    """``'<a> and <b> share N frames: <seq> <frame>, ...'`` (the first _MAX_LISTED, sorted)."""
    shown = sorted(common)[:_MAX_LISTED]
    listed = ", ".join(f"{seq} {frame}" for seq, frame in shown) if by == "frame" else ", ".join(shown)
    more = f" (+{len(common) - _MAX_LISTED} more)" if len(common) > _MAX_LISTED else ""
    unit = "frames" if by == "frame" else "drives"
    return f"{name_a} and {name_b} share {len(common)} {unit}: {listed}{more}"


def check_no_leak(train: Iterable[RawSplitEntry], val: Iterable[RawSplitEntry], test: Iterable[RawSplitEntry],
                  *, by: str = "frame") -> None:
    """Raise ValueError listing every overlap between train/val/test (each pair), or return None.

    ``by="frame"`` compares moments ``(seq, frame)``; ``by="drive"`` compares whole drives (stricter: no scene in
    two splits).
    """
    if by not in ("frame", "drive"):
        raise ValueError(f"by: expected 'frame' or 'drive', got {by!r}")
    lists = {"train": list(train), "val": list(val), "test": list(test)}
    keys = {name: (frame_keys(entries) if by == "frame" else {e.seq for e in entries})
            for name, entries in lists.items()}
    problems = [_overlap_message(a, b, keys[a] & keys[b], by)
                for a, b in (("train", "test"), ("val", "test"), ("train", "val")) if keys[a] & keys[b]]
    if problems:
        raise ValueError("split leak: " + "; ".join(problems))


def _carve_validation(train: list[RawSplitEntry], val_fraction: float,
                      rng: np.random.Generator) -> tuple[list[RawSplitEntry], list[RawSplitEntry]]:
    """Move whole drives (random order from ``rng``) from train to val until val holds >= val_fraction of the
    entries; no drive is split and train keeps at least one drive."""
    drives, counts = np.unique(np.array([e.seq for e in train]), return_counts=True)
    if len(drives) < 2:
        raise ValueError(f"train: cannot carve a validation set by drive from {len(drives)} drive(s); "
                         f"pass an explicit val list")
    order = rng.permutation(len(drives))
    covered = np.cumsum(counts[order]) / counts.sum()
    n_val = int(np.searchsorted(covered, val_fraction) + 1)  # first prefix reaching the fraction
    val_drives = set(drives[order[:min(n_val, len(drives) - 1)]].tolist())
    return ([e for e in train if e.seq not in val_drives], [e for e in train if e.seq in val_drives])


def leak_free_eigen_zhou(train: Iterable[RawSplitEntry], val: Iterable[RawSplitEntry] | None,
                         eigen_test: Iterable[RawSplitEntry], *, val_fraction: float = 0.1,
                         rng: np.random.Generator | None = None,
                         exclude_test_drives: bool = True) -> tuple[list[RawSplitEntry], list[RawSplitEntry]]:
    """Eigen-Zhou (train, val) with no Eigen test frame in either.

    train: every entry whose moment is an Eigen test frame is dropped, and with ``exclude_test_drives`` every
        entry of a drive that holds test frames (neighbouring frames of a test frame show the same scene).
    val: an explicit list (e.g. BTS's ``val_files_ori.txt``) is kept, and its frames are removed from train; it
        must not contain test frames (ViPOcc's ``val_files.txt`` = the test list is refused). ``None``: carve a
        validation set from the cleaned train list by whole drives (``val_fraction`` of the entries, drive order
        drawn from ``rng``, default ``np.random.default_rng(0)``).
    Returns new lists in input order; :func:`check_no_leak` holds for (train, val, eigen_test).
    """
    train, test = as_raw_entries(train, "train"), as_raw_entries(eigen_test, "eigen_test")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a value in (0, 1), got {val_fraction!r}")
    test_keys, test_drives = frame_keys(test), {e.seq for e in test}
    clean = [e for e in train
             if e.key not in test_keys and not (exclude_test_drives and e.seq in test_drives)]
    if val is None:
        clean, val_list = _carve_validation(clean, val_fraction, rng or np.random.default_rng(0))
    else:
        val_list = as_raw_entries(val, "val")
        in_test = frame_keys(val_list) & test_keys
        if in_test:
            raise ValueError(
                f"val: {len(in_test)} of its frames are Eigen test frames (ViPOcc validates on the Eigen test list); "
                f"pass the original validation list (val_files_ori.txt) or val=None to carve one from train by "
                f"drive. {_overlap_message('val', 'eigen_test', in_test, 'frame')}")
        val_keys = frame_keys(val_list)
        clean = [e for e in clean if e.key not in val_keys]
    if not clean:
        raise ValueError("train: no entry left after removing the Eigen test frames and the validation frames")
    check_no_leak(clean, val_list, test)
    return clean, val_list


def reference_eigen_zhou(train: Iterable[RawSplitEntry], val: Iterable[RawSplitEntry] | None,
                         eigen_test: Iterable[RawSplitEntry]) -> tuple[list[RawSplitEntry], list[RawSplitEntry]]:
    """The reference's leaky lists: train with every Eigen test entry (appended at the end when missing, which is
    how ViPOcc built its file) and val = the Eigen test list. ``val`` is ignored. Given ViPOcc's own files the
    lists come back unchanged; given BTS's originals, ViPOcc's lists are rebuilt."""
    train, test = as_raw_entries(train, "train"), as_raw_entries(eigen_test, "eigen_test")
    present = set(train)
    return train + [e for e in test if e not in present], list(test)


class EigenZhouSplits(NamedTuple):
    """Train/val/test lists and where the validation list came from (a file path or 'carved from train')."""

    train: list[RawSplitEntry]
    val: list[RawSplitEntry]
    test: list[RawSplitEntry]
    val_source: str


def load_eigen_zhou(split_dir: str | os.PathLike, eigen_test_file: str | os.PathLike, *, leak_free: bool = True,
                    val_fraction: float = 0.1, rng: np.random.Generator | None = None) -> EigenZhouSplits:
    """Read ``<split_dir>/train_files.txt`` (+ a validation list) and the Eigen test list, then build the leak-free
    (default) or the reference splits.

    Validation list, leak-free: ``val_files_ori.txt`` if present (BTS's original), else ``val_files.txt`` unless it
    contains test frames (ViPOcc's file is the test list), else carved from train by drive. Reference: the Eigen
    test list, as ViPOcc.
    """
    split_dir = Path(split_dir)
    train, test = read_raw_split(split_dir / "train_files.txt"), read_raw_split(eigen_test_file)
    if not leak_free:
        train, val = reference_eigen_zhou(train, None, test)
        return EigenZhouSplits(train, val, test, str(eigen_test_file))
    val, source = None, "carved from train by drive"
    for name in ("val_files_ori.txt", "val_files.txt"):
        candidate = split_dir / name
        if candidate.is_file():
            entries = read_raw_split(candidate)
            if not frame_keys(entries) & frame_keys(test):
                val, source = entries, str(candidate)
                break
    train, val = leak_free_eigen_zhou(train, val, test, val_fraction=val_fraction, rng=rng)
    return EigenZhouSplits(train, val, test, source)
