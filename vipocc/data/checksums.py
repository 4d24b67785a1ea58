"""sha256 manifests (the ``sha256sum`` text format) for user-supplied data: write one, verify one.

Format, as GNU coreutils ``sha256sum`` writes and ``sha256sum -c`` reads it: one line per file,
``<64 hex digits><space><space or *><path>``; ``*`` marks binary mode (no difference on POSIX). A path holding a
backslash or a newline is escaped (``\\\\`` / ``\\n``) and its line starts with a backslash. Paths are relative to
the data root the manifest describes (an absolute path is used as is). A manifest may list single files or whole
archives; blank lines are ignored.
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable
from pathlib import Path

from vipocc.io import write_text
from vipocc.provenance import sha256_file

__all__ = ["ChecksumReport", "ManifestEntry", "read_manifest", "verify_manifest", "write_manifest"]

_LINE = re.compile(r"^(\\?)([0-9a-fA-F]{64}) [ *](.+)$")


@dataclasses.dataclass(frozen=True)
class ManifestEntry:
    digest: str  # lower-case hex sha256
    path: str    # as written in the manifest (relative to the data root)
    line: int    # 1-based line number in the manifest


@dataclasses.dataclass
class ChecksumReport:
    """Outcome of :func:`verify_manifest`: paths as written in the manifest."""
    manifest: Path
    root: Path
    ok: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    mismatched: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (path, expected, actual)

    @property
    def passed(self) -> bool:
        return not self.missing and not self.mismatched

    def problems(self) -> list[str]:
        """One human-readable line per bad file."""
        lines = [f"{path}: missing" for path in self.missing]
        lines += [f"{path}: sha256 {actual} != expected {expected}" for path, expected, actual in self.mismatched]
        return lines

    def as_dict(self) -> dict:
        return {"manifest": str(self.manifest), "root": str(self.root), "checked": len(self.ok) + len(self.missing)
                + len(self.mismatched), "ok": len(self.ok), "missing": self.missing,
                "mismatched": [{"path": p, "expected": e, "actual": a} for p, e, a in self.mismatched]}


def _unescape(name: str) -> str:
    # sha256sum escapes only "\" and newline; decode left to right so "\\n" stays a backslash followed by "n".
    return re.sub(r"\\(.)", lambda m: {"\\": "\\", "n": "\n"}.get(m.group(1), m.group(0)), name)


def _escape(name: str) -> tuple[str, str]:
    if "\\" not in name and "\n" not in name:
        return "", name
    return "\\", name.replace("\\", "\\\\").replace("\n", "\\n")


def read_manifest(manifest_path: str | os.PathLike) -> list[ManifestEntry]:
    """Parse a sha256sum-format manifest. Raises FileNotFoundError / ValueError naming the file and line."""
    manifest_path = Path(manifest_path)
    if not manifest_path.is_file():
        raise FileNotFoundError(f"checksum manifest {manifest_path} not found")
    entries = []
    for number, raw in enumerate(manifest_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if match is None:
            raise ValueError(f"{manifest_path}:{number}: not a sha256sum line "
                             f"('<64 hex digits>  <path>'): {raw[:80]!r}")
        escaped, digest, name = match.groups()
        entries.append(ManifestEntry(digest.lower(), _unescape(name) if escaped else name, number))
    if not entries:
        raise ValueError(f"{manifest_path}: manifest lists no files")
    return entries


def verify_manifest(root: str | os.PathLike, manifest_path: str | os.PathLike, raise_on_error: bool = True,
                    progress: bool = True) -> ChecksumReport:
    """Hash every file of the manifest under `root` and compare.

    Every entry is checked before anything is raised, so the error lists *all* missing and mismatched files.
    With raise_on_error=False the report is returned instead (``report.passed`` says whether all matched).
    """
    from tqdm.auto import tqdm

    root, manifest_path = Path(root), Path(manifest_path)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} (checked against {manifest_path}) is not a folder")
    report = ChecksumReport(manifest=manifest_path, root=root)
    for entry in tqdm(read_manifest(manifest_path), desc="sha256", unit="file", disable=not progress):
        path = root / entry.path
        if not path.is_file():
            report.missing.append(entry.path)
            continue
        actual = sha256_file(path)
        if actual == entry.digest:
            report.ok.append(entry.path)
        else:
            report.mismatched.append((entry.path, entry.digest, actual))
    if raise_on_error and not report.passed:
        problems = report.problems()
        raise ValueError(f"{manifest_path}: {len(problems)} of {len(problems) + len(report.ok)} files under {root} "
                         "fail the checksum check:\n  " + "\n  ".join(problems))
    return report


def _expand(root: Path, paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Relative file paths under root; folders expand to their files (sorted), hidden temporaries included."""
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        full = path if path.is_absolute() else root / path
        if full.is_dir():
            files.extend(sorted(p for p in full.rglob("*") if p.is_file()))
        elif full.is_file():
            files.append(full)
        else:
            raise FileNotFoundError(f"write_manifest: {full} does not exist")
    relative = []
    for full in files:
        try:
            relative.append(full.relative_to(root))
        except ValueError:
            raise ValueError(f"write_manifest: {full} is not under the data root {root}") from None
    return relative


def write_manifest(root: str | os.PathLike, paths: Iterable[str | os.PathLike], out: str | os.PathLike,
                   progress: bool = True) -> Path:
    """Write a sha256sum-format manifest of `paths` (files or folders, relative to `root` or absolute inside it)
    to `out`, atomically. Returns `out`. The result passes ``cd root && sha256sum -c out``."""
    from tqdm.auto import tqdm

    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} is not a folder")
    lines = []
    for relative in tqdm(_expand(root, paths), desc="sha256", unit="file", disable=not progress):
        prefix, name = _escape(relative.as_posix())
        lines.append(f"{prefix}{sha256_file(root / relative)}  {name}\n")
    write_text(out, "".join(lines))
    return out
