"""The official KITTI-360 split files of BTS / ViPOcc, fetched by URL and checked against pinned sha256 digests.

The files are BTS's ``datasets/kitti_360/splits/seg/{train,val,test}_files.txt`` (``<seq> <frame:010d> l|r`` lines),
byte-identical in ViPOcc at commit :data:`OFFICIAL_COMMIT`. They are not shipped with this project: rule
``fetch_splits`` (``vipocc fetch-splits``) downloads them into :data:`OFFICIAL_SPLIT_DIR`. Offline machines copy
them from a local folder instead (``--from DIR``) or use ``file://`` URLs; every source is checked against the same
digests.

A fetch is all-or-nothing: every missing file is read and verified in memory (they are 4.4 MB together) before any
is written, each write is atomic (:mod:`vipocc.io`), and a file already present with the right digest is left
untouched (not rewritten, so its modification time does not rerun downstream jobs).
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from vipocc.io import write_bytes
from vipocc.provenance import sha256_file

__all__ = ["OFFICIAL_COMMIT", "OFFICIAL_REPOSITORY", "OFFICIAL_SEQUENCES", "OFFICIAL_SPLIT_DIR",
           "OFFICIAL_SPLIT_FILES", "SplitFetchError", "SplitFile", "fetch_splits", "official_url"]

log = logging.getLogger("vipocc")

OFFICIAL_REPOSITORY = "fengyi233/ViPOcc"
OFFICIAL_COMMIT = "de0ff2cf0d65a66ab94a6d3eaa30222d137179bc"
OFFICIAL_SPLIT_PATH = "datasets/kitti_360/splits/seg"
# Where rule fetch_splits writes the files, relative to the workflow's working directory.
OFFICIAL_SPLIT_DIR = "results/splits/kitti360"
# The KITTI-360 sequences the official files name (each of the three files names all nine).
OFFICIAL_SEQUENCES = tuple(f"2013_05_28_drive_{number:04d}_sync" for number in (0, 2, 3, 4, 5, 6, 7, 9, 10))

# Cap on what one source may deliver: the largest official file is 3.9 MB.
MAX_BYTES = 64 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclasses.dataclass(frozen=True)
class SplitFile:
    """One registered split file: where to get it and what it must hash to."""

    url: str      # http(s):// or file:// URL
    sha256: str   # lower-case hex digest of the exact bytes
    lines: int    # number of lines (the last one may lack a newline), reported on a mismatch


def official_url(name: str) -> str:
    """raw.githubusercontent.com URL of split file `name` (e.g. "test_files.txt") pinned to OFFICIAL_COMMIT."""
    return (f"https://raw.githubusercontent.com/{OFFICIAL_REPOSITORY}/{OFFICIAL_COMMIT}/"
            f"{OFFICIAL_SPLIT_PATH}/{name}")


# Digests and line counts measured on the files at OFFICIAL_COMMIT (train: 49,004 l + 49,004 r; val and test: l).
OFFICIAL_SPLIT_FILES: Mapping[str, SplitFile] = MappingProxyType({
    "train_files.txt": SplitFile(official_url("train_files.txt"),
                                 "b7f9b5afb9bde8cd2df7d940c97fec02e9695189a38624303cbdd173f6d98654", 98008),
    "val_files.txt": SplitFile(official_url("val_files.txt"),
                               "38b2443706117698dcbc00b4757ff276b8695dc3e253a89ace7b4a239904c0fd", 11451),
    "test_files.txt": SplitFile(official_url("test_files.txt"),
                                "5301535cd81c56dbe7db86d7be53af3d8f149c0b6489388d72924495421ff221", 446),
})


class SplitFetchError(ValueError):
    """A split file could not be downloaded or does not match its registered digest; nothing was written."""


def _check_registry(registry: Mapping[str, SplitFile]) -> None:
    if not registry:
        raise ValueError("registry: no split files given")
    for name, entry in registry.items():
        if not name or Path(name).name != name or name in (".", ".."):
            raise ValueError(f"registry: {name!r} is not a plain file name")
        if not isinstance(entry, SplitFile) or not _SHA256.match(entry.sha256):
            raise ValueError(f"registry: {name}: expected a SplitFile with a lower-case hex sha256, got {entry!r}")


def _download(url: str, timeout: float) -> bytes:
    """The bytes at `url` (http(s) or file://); SplitFetchError naming the URL on any failure."""
    if not url.startswith(("https://", "http://", "file://")):
        raise SplitFetchError(f"{url}: only http(s):// and file:// URLs are supported")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read(MAX_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise SplitFetchError(f"{url}: download failed ({err}); nothing was written. Without network, copy the "
                              "split files into a folder and use `vipocc fetch-splits --from DIR`") from err
    if len(data) > MAX_BYTES:
        raise SplitFetchError(f"{url}: more than {MAX_BYTES} bytes, not a split file; nothing was written")
    return data


def _read_local(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"--from: split file {path} does not exist; nothing was written")
    if path.stat().st_size > MAX_BYTES:
        raise SplitFetchError(f"{path}: more than {MAX_BYTES} bytes, not a split file; nothing was written")
    return path.read_bytes()


def _verified(data: bytes, origin: str, entry: SplitFile) -> bytes:
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise SplitFetchError(f"{origin}: sha256 mismatch: expected {entry.sha256} ({entry.lines} lines), got "
                              f"{digest} ({len(data.splitlines())} lines); nothing was written")
    return data


def fetch_splits(out_dir: str | os.PathLike, registry: Mapping[str, SplitFile] = OFFICIAL_SPLIT_FILES, *,
                 source_dir: str | os.PathLike | None = None, timeout: float = 60.0) -> dict[str, str]:
    """Make `out_dir`/<name> hold every file of `registry`, each with its registered sha256.

    Args:
        out_dir: folder to write into (created when missing).
        registry: {file name: SplitFile}; default the official KITTI-360 files.
        source_dir: read `source_dir`/<name> instead of each entry's URL (offline mirror).
        timeout: seconds per download.

    Returns {file name: "present" (already there with the right digest, untouched) or "written"}.
    Raises SplitFetchError (a ValueError) naming the URL / file with the expected and actual sha256 on a mismatch,
    or the URL on a failed download; FileNotFoundError for a file missing from `source_dir`. Every file is read and
    verified before the first is written, so a failed download or digest check writes or replaces nothing; each
    write is atomic. A present file with a wrong digest is replaced by the verified one.
    """
    _check_registry(registry)
    out_dir = Path(out_dir)
    status, fetched = {}, {}
    for name, entry in registry.items():
        target = out_dir / name
        if target.is_file() and sha256_file(target) == entry.sha256:
            status[name] = "present"
            continue
        if target.exists():
            log.warning("%s: not the registered file (sha256 differs), replacing it", target)
        if source_dir is not None:
            origin = str(Path(source_dir) / name)
            data = _read_local(Path(origin))
        else:
            origin = entry.url
            data = _download(origin, timeout)
        fetched[name] = _verified(data, origin, entry)
    for name, data in fetched.items():
        write_bytes(out_dir / name, data)
        status[name] = "written"
    return status
