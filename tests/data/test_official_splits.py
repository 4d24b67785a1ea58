"""Official split files: the pinned registry, and fetch_splits with file:// URLs, local mirrors and a registry of our
own small files (right digest -> written; wrong digest or failed download -> error and nothing written; present ->
untouched)."""
import hashlib
import re
import socket

import pytest

from vipocc.cli import main
from vipocc.data import split_commands
from vipocc.data.official_splits import (OFFICIAL_COMMIT, OFFICIAL_SEQUENCES, OFFICIAL_SPLIT_FILES, SplitFetchError,
                                         SplitFile, fetch_splits)

# Facts about BTS's datasets/kitti_360/splits/seg files (protocol.md 3.1, reference-implementation.md 1.10).
EXPECTED_LINES = {"train_files.txt": 98008, "val_files.txt": 11451, "test_files.txt": 446}
EXPECTED_SEQUENCES = ["2013_05_28_drive_0000_sync", "2013_05_28_drive_0002_sync", "2013_05_28_drive_0003_sync",
                      "2013_05_28_drive_0004_sync", "2013_05_28_drive_0005_sync", "2013_05_28_drive_0006_sync",
                      "2013_05_28_drive_0007_sync", "2013_05_28_drive_0009_sync", "2013_05_28_drive_0010_sync"]

CONTENTS = {
    "train_files.txt": b"2013_05_28_drive_0000_sync 0000000250 l\n2013_05_28_drive_0000_sync 0000000250 r\n",
    "val_files.txt": b"2013_05_28_drive_0003_sync 0000000101 l\n",
    "test_files.txt": b"2013_05_28_drive_0004_sync 0000000386 l\n2013_05_28_drive_0004_sync 0000000406 l",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def source(tmp_path):
    """A folder with our small split files, and a registry of file:// URLs with their true digests."""
    folder = tmp_path / "source"
    folder.mkdir()
    for name, data in CONTENTS.items():
        (folder / name).write_bytes(data)
    registry = {name: SplitFile((folder / name).as_uri(), _sha(data), len(data.splitlines()))
                for name, data in CONTENTS.items()}
    return folder, registry


def _files(folder):
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_official_registry_is_pinned_and_well_formed():
    assert OFFICIAL_COMMIT == "de0ff2cf0d65a66ab94a6d3eaa30222d137179bc"
    assert set(OFFICIAL_SPLIT_FILES) == set(EXPECTED_LINES)
    pattern = re.compile(r"^https://raw\.githubusercontent\.com/fengyi233/ViPOcc/([0-9a-f]{40})/"
                         r"datasets/kitti_360/splits/seg/(\w+_files\.txt)$")
    for name, entry in OFFICIAL_SPLIT_FILES.items():
        match = pattern.match(entry.url)
        assert match and match[1] == OFFICIAL_COMMIT and match[2] == name, entry.url
        assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        assert entry.lines == EXPECTED_LINES[name]
    assert len({entry.sha256 for entry in OFFICIAL_SPLIT_FILES.values()}) == 3
    assert list(OFFICIAL_SEQUENCES) == EXPECTED_SEQUENCES


def test_right_digests_are_written_then_left_untouched(source, tmp_path):
    folder, registry = source
    out = tmp_path / "out" / "splits"
    assert fetch_splits(out, registry) == {name: "written" for name in CONTENTS}
    assert {name: (out / name).read_bytes() for name in CONTENTS} == CONTENTS
    stamps = {name: (out / name).stat().st_mtime_ns for name in CONTENTS}
    for name in CONTENTS:  # a second call must not read the sources at all
        (folder / name).unlink()
    assert fetch_splits(out, registry) == {name: "present" for name in CONTENTS}
    assert {name: (out / name).stat().st_mtime_ns for name in CONTENTS} == stamps
    assert _files(out) == sorted(CONTENTS)  # no temporary files left


def test_wrong_digest_is_an_error_naming_url_and_both_digests_and_writes_nothing(source, tmp_path):
    _, registry = source
    wrong = _sha(b"something else")
    registry["val_files.txt"] = SplitFile(registry["val_files.txt"].url, wrong, 1)
    out = tmp_path / "out"
    with pytest.raises(SplitFetchError) as err:
        fetch_splits(out, registry)
    message = str(err.value)
    assert registry["val_files.txt"].url in message and wrong in message
    assert _sha(CONTENTS["val_files.txt"]) in message
    assert _files(out) == []  # the train file, fetched and verified before the bad one, is not written either


def test_a_present_file_with_the_wrong_content_is_replaced(source, tmp_path):
    _, registry = source
    out = tmp_path / "out"
    out.mkdir()
    (out / "test_files.txt").write_bytes(b"edited by hand\n")
    status = fetch_splits(out, registry)
    assert status["test_files.txt"] == "written"
    assert (out / "test_files.txt").read_bytes() == CONTENTS["test_files.txt"]


def test_failed_downloads_name_the_url(source, tmp_path):
    _, registry = source
    missing = (tmp_path / "nowhere" / "test_files.txt").as_uri()
    with pytest.raises(SplitFetchError, match=re.escape(missing)):
        fetch_splits(tmp_path / "out", {"test_files.txt": SplitFile(missing, _sha(b""), 0)})
    with socket.socket() as probe:  # a local port nobody listens on: the connection is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/test_files.txt"
    with pytest.raises(SplitFetchError, match=re.escape(url)):
        fetch_splits(tmp_path / "out", {"test_files.txt": SplitFile(url, _sha(b""), 0)}, timeout=5)
    with pytest.raises(SplitFetchError, match="only http"):
        fetch_splits(tmp_path / "out", {"test_files.txt": SplitFile("ftp://example.org/x", _sha(b""), 0)})
    assert _files(tmp_path / "out") == []


def test_local_mirror_is_copied_and_verified(source, tmp_path):
    folder, registry = source
    offline = {name: SplitFile("https://unreachable.invalid/" + name, entry.sha256, entry.lines)
               for name, entry in registry.items()}
    out = tmp_path / "out"
    assert fetch_splits(out, offline, source_dir=folder) == {name: "written" for name in CONTENTS}
    assert {name: (out / name).read_bytes() for name in CONTENTS} == CONTENTS

    (folder / "val_files.txt").write_bytes(b"2013_05_28_drive_0003_sync 0000000102 l\n")
    with pytest.raises(SplitFetchError, match=re.escape(str(folder / "val_files.txt"))):
        fetch_splits(tmp_path / "out2", offline, source_dir=folder)
    (folder / "val_files.txt").unlink()
    with pytest.raises(FileNotFoundError, match="val_files.txt"):
        fetch_splits(tmp_path / "out2", offline, source_dir=folder)
    assert _files(tmp_path / "out2") == []


@pytest.mark.parametrize("registry, fragment", [
    ({}, "no split files"),
    ({"../train_files.txt": SplitFile("file:///x", "0" * 64, 1)}, "plain file name"),
    ({"train_files.txt": SplitFile("file:///x", "ABC", 1)}, "sha256"),
])
def test_bad_registries_are_refused(tmp_path, registry, fragment):
    with pytest.raises(ValueError, match=fragment):
        fetch_splits(tmp_path, registry)


def test_command_line(source, tmp_path, monkeypatch, capsys):
    folder, registry = source
    monkeypatch.setattr(split_commands, "OFFICIAL_SPLIT_FILES", registry)
    out = tmp_path / "out"
    assert main(["fetch-splits", "--out", str(out), "--from", str(folder)]) == 0
    assert {name: (out / name).read_bytes() for name in CONTENTS} == CONTENTS
    (folder / "test_files.txt").write_bytes(b"changed\n")
    assert main(["fetch-splits", "--out", str(tmp_path / "other"), "--from", str(folder)]) == 2
    error = capsys.readouterr().err
    assert "fetch-splits: error" in error and "sha256 mismatch" in error and str(folder / "test_files.txt") in error
    assert not (tmp_path / "other").exists()
