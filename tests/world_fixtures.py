"""Helpers shared by tests (importable because pytest puts tests/ on sys.path)."""
from vipocc.config import resolve_world_config, validate_config


def smoke_world_config(**overrides) -> dict:
    """The resolved smoke-world description, with overrides of the `synthetic` config block."""
    synthetic = {"preset": "smoke", **overrides}
    return resolve_world_config(validate_config({"dataset": {"kind": "synthetic"}, "synthetic": synthetic}))
