"""Shared fixtures: the smoke world is generated once per test session and read by many tests."""
import os
from pathlib import Path

import pytest

from world_fixtures import smoke_world_config

TESTS = Path(__file__).resolve().parent

# Tests never reach a model hub: every model is built locally (as the workflow runs: only local folders).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


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
    import kitti360_devkit  # tests/ is on sys.path (pyproject: pythonpath)

    return kitti360_devkit
