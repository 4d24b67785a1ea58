"""Load the official BTS (``BTS-KITTI-360.pt``) and ViPOcc release checkpoints into :class:`ViPOccNetwork`,
strictly, through an explicit key map.

Reference key layout (the reference trainer's ``BTSWrapper``, saved by pytorch-ignite; a model-only file is the
bare state dict, a training checkpoint holds it under ``"model"``; a DistributedDataParallel ``module.`` prefix
is stripped):

* ``renderer.net.*``: ``BTSNet`` (the renderer wrapper's ``net``) -> our ``field.*``; its children keep their names
  (``encoder.encoder.encoder.*`` the ResNet, ``encoder.decoder.decoder.<i>.*`` the Monodepth2 decoder,
  ``mlp_coarse.lin_in/lin_out.*``).
* ``res_inv_depth.*`` (ViPOcc only): the RID depth network -> our ``depth_branch.res_inv_depth.*``
  (``encoder.encoder.*`` ResNet-18, ``decoder.decoder.<i>.*``).

Keys the reference has and we do not build (dropped, each by an explicit rule in :data:`DROP_RULES`):

* ``renderer.net.encoder.encoder.encoder.fc.*`` and ``res_inv_depth.encoder.encoder.fc.*``: torchvision's
  classification head of each ResNet (never run);
* ``*.decoder.decoder.{11,12,13}.*``: the decoders' scale 1-3 ``dispconv`` heads (computed and thrown away);
* ``renderer.net.code_xyz._freqs/_phases``: constant positional-encoding buffers (ours are recomputed);
* ``renderer.net.encoder.depth_decoder.*``: Monodepth2's unused depth decoder; ``renderer.net.mlp_fine.*`` (the
  "empty" fine MLP, present only if it ever held tensors);
* ``renderer.renderer.iter_idx/last_sched``: the NeRF renderer's sampling-schedule counters.

Everything else must match one to one: a key of the file that maps to none of ours, or one of ours that the
file lacks, or a shape difference, is a ValueError listing the names (the reference's ``strict=False`` hid such
mismatches). ``res_inv_depth.*`` keys in a file loaded into a network without a depth branch (evaluating the
ViPOcc release as a density field only, as the reference's occupancy evaluator does) are dropped only when asked
(``drop_depth_branch=True``).
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["PREFIX_MAP", "DROP_RULES", "DEPTH_BRANCH_PREFIX", "official_key_to_ours", "extract_state_dict",
           "map_official_state_dict", "load_official_checkpoint"]

#: reference prefix -> our prefix, tried in order.
PREFIX_MAP: tuple[tuple[str, str], ...] = (
    ("renderer.net.", "field."),
    ("res_inv_depth.", "depth_branch.res_inv_depth."),
)
DEPTH_BRANCH_PREFIX = "res_inv_depth."
#: (pattern on the reference key, why it is dropped)
DROP_RULES: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"^(renderer\.net\.encoder|res_inv_depth)\.encoder\.encoder\.fc\."), "ResNet classification head"),
    (re.compile(r"^(renderer\.net\.encoder|res_inv_depth)\.decoder\.decoder\.(11|12|13)\."),
     "unused scale 1-3 dispconv heads"),
    (re.compile(r"^renderer\.net\.code_xyz\._(freqs|phases)$"), "constant positional-encoding buffers"),
    (re.compile(r"^renderer\.net\.encoder\.depth_decoder\."), "unused Monodepth2 depth decoder"),
    (re.compile(r"^renderer\.net\.mlp_fine\."), "unused fine MLP"),
    (re.compile(r"^renderer\.renderer\.(iter_idx|last_sched)$"), "renderer sampling-schedule counters"),
)


def official_key_to_ours(key: str) -> str | None:
    """Our name of a reference key; None when a :data:`DROP_RULES` rule drops it; the key itself (which will be
    reported as unexpected) when no prefix matches."""
    if any(pattern.search(key) for pattern, _ in DROP_RULES):
        return None
    for theirs, ours in PREFIX_MAP:
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return key


def extract_state_dict(payload: Any, source: str = "<checkpoint>") -> dict[str, torch.Tensor]:
    """The model state dict of a loaded checkpoint: the payload itself (model-only file) or ``payload["model"]``
    (training checkpoint); a leading ``module.`` (DDP) is stripped from every key."""
    if isinstance(payload, Mapping) and "model" in payload and isinstance(payload["model"], Mapping):
        payload = payload["model"]
    if not isinstance(payload, Mapping) or not payload:
        raise ValueError(f"{source}: expected a state dict (or a dict with a 'model' state dict), got "
                         f"{type(payload).__name__}")
    bad = [str(k) for k, v in payload.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{source}: entries that are not named tensors: {', '.join(bad[:10])}")
    if all(key.startswith("module.") for key in payload):
        return {key[len("module."):]: value for key, value in payload.items()}
    return dict(payload)


def _listing(title: str, names: list[str], limit: int = 40) -> str:
    shown = "\n  ".join(names[:limit])
    more = f"\n  ... and {len(names) - limit} more" if len(names) > limit else ""
    return f"{len(names)} {title}:\n  {shown}{more}"


def map_official_state_dict(state: Mapping[str, torch.Tensor], network: nn.Module, *,
                            drop_depth_branch: bool = False, source: str = "<checkpoint>"
                            ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename a reference state dict to ``network``'s names and check it covers them exactly.

    Returns (our state dict, dropped reference keys). ValueError listing every unexpected key (reference keys
    with no counterpart), missing key (ours that the file lacks) and shape mismatch.
    """
    ours = network.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    unexpected: list[str] = []
    has_depth_branch = getattr(network, "depth_branch", None) is not None
    for key, value in state.items():
        if drop_depth_branch and not has_depth_branch and key.startswith(DEPTH_BRANCH_PREFIX):
            dropped.append(key)
            continue
        name = official_key_to_ours(key)
        if name is None:
            dropped.append(key)
        elif name in ours and name not in mapped:
            mapped[name] = value
        else:
            unexpected.append(key if name == key else f"{key} (-> {name})")
    missing = [key for key in ours if key not in mapped]
    shapes = [f"{key}: file {tuple(value.shape)} vs network {tuple(ours[key].shape)}"
              for key, value in mapped.items() if value.shape != ours[key].shape]
    problems = [_listing(title, names) for title, names in (
        ("unexpected keys (in the file, no counterpart in the network)", unexpected),
        ("missing keys (in the network, not in the file)", missing),
        ("shape mismatches", shapes)) if names]
    if problems:
        raise ValueError(f"{source}: the checkpoint does not match the network\n" + "\n".join(problems))
    return mapped, dropped


def load_official_checkpoint(path: str | os.PathLike, network: nn.Module, *, drop_depth_branch: bool = False,
                             map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load an official checkpoint file strictly into ``network`` (see the module docstring).

    The file is read with ``torch.load(weights_only=True)`` (tensors and plain containers only). Returns
    ``{"path", "sha256", "loaded": n keys, "dropped": [reference keys dropped]}``.
    """
    from vipocc.provenance import sha256_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"official checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises pickle / runtime errors of many kinds
        raise ValueError(f"{path}: cannot read as a torch checkpoint of tensors ({error})") from error
    state = extract_state_dict(payload, str(path))
    mapped, dropped = map_official_state_dict(state, network, drop_depth_branch=drop_depth_branch,
                                              source=str(path))
    network.load_state_dict(mapped, strict=True)
    return {"path": str(path), "sha256": sha256_file(path), "loaded": len(mapped), "dropped": dropped}
