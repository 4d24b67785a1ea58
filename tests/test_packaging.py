"""Packaging invariants: exact pins, no torchvision/timm, conda envs mirror pyproject."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def parse_pin(requirement: str) -> tuple[str, str]:
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", requirement.strip())
    assert match, f"not an exact pin: {requirement!r}"
    return match.group(1).lower(), match.group(2)


def test_every_dependency_is_pinned_exactly_and_torch_is_2_13():
    project = pyproject()["project"]
    pins = dict(parse_pin(r) for r in project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pins.update(parse_pin(r) for r in extra)
    assert pins["torch"] == "2.13.0"
    assert "torchvision" not in pins and "timm" not in pins


def test_conda_envs_mirror_the_pyproject_pins():
    pins = dict(parse_pin(r) for r in pyproject()["project"]["dependencies"])
    env_files = sorted((ROOT / "envs").glob("*.yaml"))
    assert env_files
    for env_file in env_files:
        env = yaml.safe_load(env_file.read_text())
        pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        for requirement in pip_section:
            name, version = parse_pin(requirement)
            assert pins.get(name) == version, f"{env_file.name}: {name}=={version} differs from pyproject"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = 'pip install -e ".[test]" && pytest'
    assert command in readme and command in ci
