"""Atomic writers leave either the complete new file or the old one, never a partial file or a temporary."""
import numpy as np
import pytest

from vipocc import io


def test_writers_round_trip(tmp_path):
    io.save_npy(tmp_path / "a" / "x.npy", np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "x.npy"), np.arange(6).reshape(2, 3))
    io.write_text(tmp_path / "t.txt", "hello")
    assert (tmp_path / "t.txt").read_text() == "hello"
    image = (np.arange(64, dtype=np.uint16) * 1000).reshape(8, 8)
    io.write_png(tmp_path / "i.png", image)
    import cv2
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "i.png"), cv2.IMREAD_UNCHANGED), image)


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_unencodable_png_names_the_file(tmp_path):
    with pytest.raises(ValueError, match="bad.png"):
        io.write_png(tmp_path / "bad.png", np.zeros((4, 4, 7), np.float64))
    assert not list(tmp_path.iterdir())
