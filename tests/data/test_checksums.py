"""sha256 manifests: interoperable with GNU sha256sum (independent truth) and every bad file is reported."""
import hashlib
import shutil
import subprocess

import pytest

from vipocc.data.checksums import read_manifest, verify_manifest, write_manifest

SHA256SUM = shutil.which("sha256sum")
needs_sha256sum = pytest.mark.skipif(SHA256SUM is None, reason="GNU sha256sum not installed")


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    (root / "calibration").mkdir(parents=True)
    (root / "calibration" / "perspective.txt").write_text("S_rect_00: 1408 376\n")
    (root / "data_3d_raw" / "seq").mkdir(parents=True)
    (root / "data_3d_raw" / "seq" / "0000000000.bin").write_bytes(bytes(range(256)) * 3)
    (root / "archive.zip").write_bytes(b"")
    return root


def test_known_digest_of_the_empty_file(data_root, tmp_path):
    manifest = write_manifest(data_root, ["archive.zip"], tmp_path / "m.sha256", progress=False)
    # sha256 of zero bytes (FIPS 180-2 test vector)
    assert manifest.read_text() == ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                                    "  archive.zip\n")


@needs_sha256sum
def test_our_manifest_passes_sha256sum_check(data_root, tmp_path):
    manifest = write_manifest(data_root, ["calibration", "data_3d_raw/seq/0000000000.bin", "archive.zip"],
                              tmp_path / "m.sha256", progress=False)
    listed = [entry.path for entry in read_manifest(manifest)]
    assert listed == ["calibration/perspective.txt", "data_3d_raw/seq/0000000000.bin", "archive.zip"]
    check = subprocess.run([SHA256SUM, "-c", str(manifest)], cwd=data_root, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


@needs_sha256sum
def test_sha256sum_manifest_with_escaped_and_binary_names_verifies(tmp_path):
    root = tmp_path / "odd"
    root.mkdir()
    (root / "back\\slash").write_bytes(b"x")
    (root / "new\nline").write_bytes(b"y")
    (root / "plain").write_bytes(b"z")
    text = subprocess.run([SHA256SUM, "back\\slash", "new\nline"], cwd=root, capture_output=True,
                          text=True, check=True).stdout
    text += subprocess.run([SHA256SUM, "--binary", "plain"], cwd=root, capture_output=True, text=True,
                           check=True).stdout
    manifest = tmp_path / "coreutils.sha256"
    manifest.write_text(text)
    assert sorted(e.path for e in read_manifest(manifest)) == ["back\\slash", "new\nline", "plain"]
    report = verify_manifest(root, manifest, progress=False)
    assert report.passed and len(report.ok) == 3
    # and our writer escapes the same way sha256sum does
    ours = write_manifest(root, ["back\\slash", "new\nline"], tmp_path / "ours.sha256", progress=False)
    assert ours.read_text() == text.split("\n", 2)[0] + "\n" + text.split("\n", 2)[1] + "\n"


def test_every_missing_and_mismatched_file_is_listed(data_root, tmp_path):
    manifest = write_manifest(data_root, ["calibration", "data_3d_raw", "archive.zip"], tmp_path / "m.sha256",
                              progress=False)
    (data_root / "calibration" / "perspective.txt").write_text("S_rect_00: 1408 377\n")  # one changed byte
    (data_root / "archive.zip").unlink()
    with pytest.raises(ValueError) as err:
        verify_manifest(data_root, manifest, progress=False)
    message = str(err.value)
    assert "2 of 3 files" in message
    assert "calibration/perspective.txt: sha256" in message and "archive.zip: missing" in message
    assert str(manifest) in message
    expected_actual = hashlib.sha256(b"S_rect_00: 1408 377\n").hexdigest()
    report = verify_manifest(data_root, manifest, raise_on_error=False, progress=False)
    assert not report.passed
    assert report.ok == ["data_3d_raw/seq/0000000000.bin"]
    assert report.missing == ["archive.zip"]
    assert report.mismatched[0][0] == "calibration/perspective.txt"
    assert report.mismatched[0][2] == expected_actual


@pytest.mark.parametrize("content, problem", [
    ("not a checksum line\n", ":1: not a sha256sum line"),
    ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a\nabc  b\n", ":2: not a sha256sum line"),
    ("\n\n", "lists no files"),
])
def test_malformed_manifest_names_file_and_line(tmp_path, content, problem):
    manifest = tmp_path / "bad.sha256"
    manifest.write_text(content)
    with pytest.raises(ValueError, match=problem) as err:
        verify_manifest(tmp_path, manifest, progress=False)
    assert str(manifest) in str(err.value)


def test_missing_manifest_and_missing_input_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no.sha256"):
        verify_manifest(tmp_path, tmp_path / "no.sha256", progress=False)
    with pytest.raises(FileNotFoundError, match="ghost.bin"):
        write_manifest(tmp_path, ["ghost.bin"], tmp_path / "m.sha256", progress=False)
    assert not (tmp_path / "m.sha256").exists()


def _run_cli(*argv: str) -> int:
    import argparse

    from vipocc.data import commands

    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_verify_checksums_command(data_root, tmp_path):
    import json

    from vipocc.config import ConfigError

    manifest = write_manifest(data_root, ["calibration", "archive.zip"], tmp_path / "m.sha256", progress=False)
    config = json.dumps({"dataset": {"kind": "kitti360", "root": str(data_root)},
                         "checksums": {"manifest": str(manifest)}})
    report = tmp_path / "report.json"
    assert _run_cli("verify-checksums", "--config-json", config, "--report", str(report), "--no-progress") == 0
    assert json.loads(report.read_text())["ok"] == 2
    (data_root / "archive.zip").write_bytes(b"changed")
    report.unlink()
    with pytest.raises(ValueError, match="archive.zip"):
        _run_cli("verify-checksums", "--config-json", config, "--report", str(report), "--no-progress")
    assert not report.exists()  # the rule output only appears when every file matches
    no_manifest = json.dumps({"dataset": {"kind": "kitti360", "root": str(data_root)}})
    with pytest.raises(ConfigError, match="checksums.manifest"):
        _run_cli("verify-checksums", "--config-json", no_manifest, "--no-progress")
