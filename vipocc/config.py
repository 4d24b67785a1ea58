"""Loading and validating the workflow configuration.

The same JSON schema (schemas/config.schema.yaml) is used by the Snakefile (through snakemake.utils.validate) and by
the `vipocc` CLI, so a rule and a user calling the CLI by hand see the same defaults and the same errors.
"""
from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_RESOURCE = "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the source and the offending key."""


def load_schema() -> dict:
    text = resources.files("vipocc.configs").joinpath(SCHEMA_RESOURCE).read_text()
    return yaml.safe_load(text)


def _validator_filling_defaults():
    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def builtin_experiments(schema: dict | None = None) -> dict:
    """The built-in training experiments (bts, vipocc, the ablations): the schema default of training.experiments."""
    schema = schema if schema is not None else load_schema()
    return copy.deepcopy(schema["properties"]["training"]["properties"]["experiments"]["default"])


def merge_builtin_experiments(config: dict, schema: dict | None = None) -> dict:
    """Update ``config`` in place so that ``training.experiments`` given by the user extends the built-in ones:
    a block named like a built-in experiment changes only the keys it gives (``vipocc: {lambda_depth_recon: 0.01}``
    keeps every other ViPOcc setting and leaves bts untouched); a new name is a new experiment (its missing keys take
    the ViPOcc values from the schema). Returns ``config``."""
    training = config.get("training") if isinstance(config, dict) else None
    given = training.get("experiments") if isinstance(training, dict) else None
    if not isinstance(given, dict):
        return config
    merged = builtin_experiments(schema)
    for name, block in given.items():
        base = merged.get(name, {})
        merged[name] = {**base, **block} if isinstance(block, dict) else block
    training["experiments"] = merged
    return config


def validate_config(config: dict, source: str = "<config>") -> dict:
    """Return a deep copy of `config` with schema defaults filled in; raise ConfigError on any violation."""
    resolved = merge_builtin_experiments(copy.deepcopy(config) if config is not None else {})
    validator = _validator_filling_defaults()(load_schema())
    errors = sorted(validator.iter_errors(resolved), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  - {'.'.join(map(str, e.absolute_path)) or '<top level>'}: {e.message}" for e in errors]
        raise ConfigError(f"invalid configuration in {source}:\n" + "\n".join(lines))
    return resolved


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"configuration file not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err


def load_config(path: str | Path | None = None, json_text: str | None = None) -> dict:
    """Load the workflow config from a YAML file or a JSON string (what rules pass), validated and defaulted."""
    if (path is None) == (json_text is None):
        raise ConfigError("give exactly one of a config file path or a JSON config string")
    if json_text is not None:
        try:
            raw = json.loads(json_text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--config-json is not valid JSON: {err}") from err
        return validate_config(raw, "--config-json")
    return validate_config(read_yaml(path), str(path))


def config_hash(config: dict) -> str:
    """sha256 of the canonical JSON form of a (resolved) config: identical settings give identical hashes."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def world_preset(name: str) -> dict:
    text = resources.files("vipocc.configs").joinpath(f"world_{name}.yaml").read_text()
    return yaml.safe_load(text)


def resolve_world_config(config: dict) -> dict:
    """The complete description of the synthetic world: the preset with the non-null overrides of config.synthetic."""
    synthetic = config["synthetic"]
    world = world_preset(synthetic["preset"])
    world["preset"] = synthetic["preset"]
    world["seed"] = synthetic["seed"]
    for key in ("resolution_scale", "lidar_azimuth_steps"):
        if synthetic.get(key) is not None:
            world[key] = synthetic[key]
    if synthetic.get("frames_per_sequence") is not None:
        for seq in world["sequences"]:
            seq["frames"] = synthetic["frames_per_sequence"]
            seq["gap_at"] = min(seq["gap_at"], seq["frames"] - 1)
    return world
