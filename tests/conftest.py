"""Shared fixtures: the smoke world is generated once per test session and read by many tests."""
import importlib.util
import sys
from pathlib import Path

import pytest

from world_fixtures import smoke_world_config

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def smoke_world(tmp_path_factory) -> Path:
    """Folder of a generated smoke world (kitti360/, kitti_raw/, splits/, oracle/, world.json)."""
    from vipocc.synthetic.world import synthesize_world

    root = tmp_path_factory.mktemp("smoke_world")
    synthesize_world(smoke_world_config(), root, workers=2)
    return root


@pytest.fixture(scope="session")
def devkit():
    """The official KITTI-360 devkit with its numpy-2 / PyYAML-6 / matplotlib-3.11 shims (tests only)."""
    if "kitti360_devkit" not in sys.modules:
        spec = importlib.util.spec_from_file_location("kitti360_devkit", TESTS / "kitti360_devkit.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["kitti360_devkit"] = module
        spec.loader.exec_module(module)
    return sys.modules["kitti360_devkit"]
