"""ResNet-18/34/50 with torchvision's exact module and parameter names, plus the feature encoder.

torchvision cannot be installed next to this project's CPU torch, so the architecture is rebuilt here. Every
module, parameter and buffer name (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``, ``fc``, ...)
and every shape equals torchvision's ``resnet18/34/50`` (ResNet v1.5: in a Bottleneck the stride sits on the 3x3
conv), so an ImageNet ``state_dict`` saved by torchvision loads with ``strict=True``.

Weights are only ever read from a local file: nothing is downloaded (the reference downloads at every model
construction, which fails offline).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "ResnetEncoder",
    "resnet",
    "load_state_dict_strict",
    "RESNET_SPECS",
]


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet-18/34). Output channels = ``planes``."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, v1.5) -> 1x1 bottleneck (ResNet-50). Output channels = ``4 * planes``."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


# depth -> (block type, blocks per stage); identical to torchvision's model builders.
RESNET_SPECS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


class ResNet(nn.Module):
    """torchvision-compatible ResNet classifier (stem, 4 stages, global pool, ``fc`` to ``num_classes``)."""

    def __init__(self, block: type[nn.Module], layers: tuple[int, int, int, int], num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_stage(block, 64, layers[0], stride=1)
        self.layer2 = self._make_stage(block, 128, layers[1], stride=2)
        self.layer3 = self._make_stage(block, 256, layers[2], stride=2)
        self.layer4 = self._make_stage(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        self._init_weights()

    def _make_stage(self, block: type[nn.Module], planes: int, n_blocks: int, stride: int) -> nn.Sequential:
        out_channels = planes * block.expansion
        downsample = None
        # A projection shortcut is needed whenever the block changes resolution or channel count.
        if stride != 1 or self.inplanes != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        blocks = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = out_channels
        blocks += [block(self.inplanes, planes) for _ in range(1, n_blocks)]
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        # Same scheme as torchvision (He init for convs, unit BN), so a non-pretrained start matches it too.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``[B,3,H,W]`` (ImageNet-normalised) -> logits ``[B,num_classes]``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def load_state_dict_strict(module: nn.Module, path: str | Path, what: str = "checkpoint") -> None:
    """Load a plain ``state_dict`` from a local ``.pth`` into ``module``; any key mismatch is an error.

    Raises FileNotFoundError if ``path`` does not exist and ValueError (naming the file) if the file is not a
    state dict, if keys are missing or unexpected (all of them are listed), or if a shape differs. Files written
    before BatchNorm had ``num_batches_tracked`` (torchvision's ImageNet V1 weights) load fine: BatchNorm itself
    fills that buffer in for such files. On a key mismatch the matching tensors have already been copied, so a
    module that raised should be discarded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{what} file {path} does not hold a plain state_dict (name -> tensor)")
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatch
        raise ValueError(f"{what} file {path} does not fit the model: {err}") from err
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{what} file {path} does not match the model: "
            f"missing keys {sorted(result.missing_keys)}; unexpected keys {sorted(result.unexpected_keys)}"
        )


def resnet(depth: int, pretrained_path: str | Path | None = None) -> ResNet:
    """Build torchvision's ResNet-``depth`` (18, 34 or 50), optionally loading a local ImageNet ``.pth`` strictly."""
    if depth not in RESNET_SPECS:
        raise ValueError(f"depth={depth!r}: ResNet depth must be one of {sorted(RESNET_SPECS)}")
    block, layers = RESNET_SPECS[depth]
    model = ResNet(block, layers)
    if pretrained_path is not None:
        load_state_dict_strict(model, pretrained_path, what=f"ResNet-{depth} weights")
    return model


class ResnetEncoder(nn.Module):
    """Monodepth2-style multi-scale ResNet feature extractor.

    Input: images ``[B,3,H,W]`` in ``[-1,1]``. They are mapped to ``[0,1]`` and then normalised with the
    reference's single mean/std ``(x - 0.45) / 0.225`` (not the per-channel ImageNet statistics).

    Output: 5 feature maps, ``relu(bn1(conv1))`` at 1/2, ``layer1`` at 1/4 (after the max-pool), ``layer2``..``layer4``
    at 1/8, 1/16, 1/32 resolution (ceil for odd sizes, as strided convs give). Channels in ``num_ch_enc``:
    ``[64,64,128,256,512]`` for ResNet-18/34, ``[64,256,512,1024,2048]`` for ResNet-50.

    The classifier head is removed after loading (``fc`` is never used, and unused parameters break DDP), so the
    module's keys are the torchvision keys under ``encoder.`` minus ``encoder.fc.*``. A checkpoint key map
    must therefore drop the reference's ``...encoder.fc.weight/bias``.
    """

    def __init__(self, depth: int = 50, pretrained_path: str | Path | None = None) -> None:
        super().__init__()
        self.encoder = resnet(depth, pretrained_path)
        del self.encoder.fc, self.encoder.avgpool
        expansion = RESNET_SPECS[depth][0].expansion
        self.num_ch_enc: list[int] = [64, 64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """``image [B,3,H,W]`` in ``[-1,1]`` -> list of 5 maps ``[B,num_ch_enc[i],H/2^(i+1),W/2^(i+1)]``."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image: expected [B,3,H,W], got shape {tuple(image.shape)}")
        net = self.encoder
        x = ((image * 0.5 + 0.5) - 0.45) / 0.225
        f0 = net.relu(net.bn1(net.conv1(x)))
        f1 = net.layer1(net.maxpool(f0))
        f2 = net.layer2(f1)
        f3 = net.layer3(f2)
        f4 = net.layer4(f3)
        return [f0, f1, f2, f3, f4]
