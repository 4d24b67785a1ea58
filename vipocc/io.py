"""Atomic file writing: a reader (or a resumed job) never sees a half-written file.

Every writer goes through `atomic_path`: the data is written to a temporary file in the same folder, flushed, and
renamed over the target (os.replace is atomic on POSIX); on any error the temporary file is removed.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path`, on failure it is deleted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp creates 0600; published files get the usual permissions
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def save_npy(path: str | Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    write_bytes(path, buffer.getvalue())


def write_png(path: str | Path, image: np.ndarray) -> None:
    """PNG of a uint8/uint16 image (grey or BGR channel order, as cv2 expects)."""
    try:
        ok, encoded = cv2.imencode(".png", image)
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError(f"{path}: cannot encode an image of shape {image.shape} and dtype {image.dtype} as PNG")
    write_bytes(path, encoded.tobytes())
