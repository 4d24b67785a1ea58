"""BTS split files: the smoke world's splits, and errors naming file and line."""

import json

import pytest

from vipocc.data.splits import SplitEntry, read_split, split_file


def test_smoke_splits(smoke_world):
    manifest = json.loads((smoke_world / "world.json").read_text())
    split_dir = smoke_world / "splits" / "kitti360"
    for split, size in manifest["split_sizes"].items():
        entries = read_split(split_file(split_dir, split))
        assert len(entries) == size
        for entry in entries:
            assert entry.frame in manifest["sequences"][entry.seq]["frames"]
            assert manifest["sequences"][entry.seq]["split"] == split
    train = read_split(split_dir / "train_files.txt")
    seq = "2013_05_28_drive_0000_sync"
    assert train[:2] == [SplitEntry(seq, 2, "l"), SplitEntry(seq, 2, "r")]
    assert [e.is_right for e in train[:2]] == [False, True]
    assert {e.side for e in read_split(split_dir / "test_files.txt")} == {"l"}


def test_split_file_path(tmp_path):
    assert split_file(tmp_path, "val") == tmp_path / "val_files.txt"
    with pytest.raises(ValueError, match="split"):
        split_file(tmp_path, "../val")


def test_reference_format_details(tmp_path):
    path = tmp_path / "s.txt"
    # no newline at the end (as the real test_files.txt), blank lines, long side tokens (only the first char counts)
    path.write_text("seq_a 0000000010 l\n\nseq_b 0000000007 right")
    assert read_split(path) == [SplitEntry("seq_a", 10, "l"), SplitEntry("seq_b", 7, "r")]


@pytest.mark.parametrize("line, message", [
    ("seq_a 0000000010", r"s.txt:2: expected '<seq> <frame> <l\|r>'"),
    ("seq_a 10a l", r"s.txt:2: frame must be a non-negative integer"),
    ("seq_a -3 l", r"s.txt:2: frame must be a non-negative integer"),
    ("seq_a 0000000010 x", r"s.txt:2: side must be 'l' or 'r'"),
])
def test_malformed_lines_are_named(tmp_path, line, message):
    path = tmp_path / "s.txt"
    path.write_text(f"seq_a 0000000001 l\n{line}\n")
    with pytest.raises(ValueError, match=message):
        read_split(path)


def test_missing_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope_files.txt"):
        read_split(split_file(tmp_path, "nope"))
