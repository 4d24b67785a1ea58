"""Official checkpoint key maps: a state dict in the reference layout (built here by an independently written
inverse map plus the reference's extra keys) loads strictly and round-trips; missing / unexpected keys and shape
mismatches are errors that list the names."""
import pytest
import torch

from vipocc.models.network import NetworkConfig, ViPOccNetwork
from vipocc.models.official_checkpoints import load_official_checkpoint, map_official_state_dict


def _network(depth_branch: bool, seed: int) -> ViPOccNetwork:
    torch.manual_seed(seed)
    return ViPOccNetwork(NetworkConfig(encoder_depth=18, use_depth_branch=depth_branch))


def _reference_layout(network: ViPOccNetwork) -> dict[str, torch.Tensor]:
    """Our names -> the reference's (BTSWrapper: renderer.net = BTSNet, res_inv_depth = RID), plus its extras."""
    state = {}
    for key, value in network.state_dict().items():
        if key.startswith("field."):
            state["renderer.net." + key[len("field."):]] = value.clone()
        elif key.startswith("depth_branch.res_inv_depth."):
            state["res_inv_depth." + key[len("depth_branch.res_inv_depth."):]] = value.clone()
        else:
            raise AssertionError(f"unexpected key of our network: {key}")
    extras = {
        "renderer.net.encoder.encoder.encoder.fc.weight": torch.zeros(1000, 512),
        "renderer.net.encoder.encoder.encoder.fc.bias": torch.zeros(1000),
        "renderer.net.code_xyz._freqs": torch.zeros(1, 18),
        "renderer.net.code_xyz._phases": torch.zeros(1, 18),
        "renderer.net.encoder.depth_decoder.decoder.0.conv.conv.weight": torch.zeros(1),
        "renderer.renderer.iter_idx": torch.tensor(0),
        "renderer.renderer.last_sched": torch.tensor(0),
    }
    for i in (11, 12, 13):
        extras[f"renderer.net.encoder.decoder.decoder.{i}.conv.weight"] = torch.zeros(64, 64, 3, 3)
        extras[f"renderer.net.encoder.decoder.decoder.{i}.conv.bias"] = torch.zeros(64)
    if network.depth_branch is not None:
        extras["res_inv_depth.encoder.encoder.fc.weight"] = torch.zeros(1000, 512)
        extras["res_inv_depth.decoder.decoder.12.conv.weight"] = torch.zeros(1, 32, 3, 3)
    return state | extras


@pytest.mark.parametrize("depth_branch", [False, True], ids=["bts", "vipocc"])
def test_round_trip_through_a_checkpoint_file(tmp_path, depth_branch):
    source, target = _network(depth_branch, 0), _network(depth_branch, 1)
    path = tmp_path / "official.pt"
    torch.save({"model": _reference_layout(source)}, path)  # training-checkpoint form
    info = load_official_checkpoint(path, target)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    assert info["loaded"] == len(source.state_dict())
    assert "renderer.renderer.iter_idx" in info["dropped"] and len(info["sha256"]) == 64
    torch.save(_reference_layout(source), path)  # model-only form
    assert load_official_checkpoint(path, _network(depth_branch, 2))["loaded"] == info["loaded"]


def test_vipocc_release_into_a_field_only_network_needs_the_explicit_drop():
    state = _reference_layout(_network(True, 0))
    with pytest.raises(ValueError, match=r"unexpected keys[\s\S]*res_inv_depth\.encoder\.encoder\.conv1\.weight"):
        map_official_state_dict(state, _network(False, 1))
    mapped, dropped = map_official_state_dict(state, _network(False, 1), drop_depth_branch=True)
    assert all(key.startswith("field.") for key in mapped)
    assert any(key.startswith("res_inv_depth.") for key in dropped)


def test_missing_unexpected_and_shape_errors_list_names():
    network = _network(False, 0)
    state = _reference_layout(network)
    del state["renderer.net.mlp_coarse.lin_out.bias"]
    state["renderer.net.mlp_fine_extra.weight"] = torch.zeros(1)
    state["renderer.net.mlp_coarse.lin_in.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError) as error:
        map_official_state_dict(state, network, source="BTS-KITTI-360.pt")
    message = str(error.value)
    assert "BTS-KITTI-360.pt" in message
    assert "missing keys" in message and "field.mlp_coarse.lin_out.bias" in message
    assert "unexpected keys" in message and "renderer.net.mlp_fine_extra.weight" in message
    assert "shape mismatches" in message and "field.mlp_coarse.lin_in.weight" in message


def test_ddp_prefix_and_bad_files(tmp_path):
    source = _network(False, 0)
    path = tmp_path / "ddp.pt"
    torch.save({"module." + k: v for k, v in _reference_layout(source).items()}, path)
    assert load_official_checkpoint(path, _network(False, 1))["loaded"] == len(source.state_dict())
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_official_checkpoint(tmp_path / "nope.pt", source)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_official_checkpoint(tmp_path / "junk.pt", source)
