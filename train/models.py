"""Network builders: torchvision ResNets adapted to one-channel EBSD patterns.

The paper (Yan et al. 2025) uses ResNet18 for supervised training and a ResNet50 generator with
two one-layer classifier heads for MCD. Patterns have one channel, so the first convolution takes
one channel; ImageNet weights, when given as a local file, are adapted by summing the RGB kernels
(the response to a grey image is unchanged). Weights are never downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models.resnet import BasicBlock, ResNet

from train.errors import TrainingError

ARCHITECTURES = ("resnet10", "resnet18", "resnet34", "resnet50")


def _torchvision_resnet(arch: str) -> ResNet:
    """Build an untrained torchvision ResNet (``resnet10`` is BasicBlock x [1,1,1,1], for tests)."""
    if arch == "resnet10":
        return ResNet(BasicBlock, [1, 1, 1, 1])
    if arch in ("resnet18", "resnet34", "resnet50"):
        return getattr(resnet, arch)(weights=None)
    raise TrainingError(f"model architecture {arch!r}: unknown; choose one of {ARCHITECTURES}")


def _load_local_weights(model: ResNet, weights_path: str | Path) -> None:
    """Load ImageNet weights from a local ``.pth`` state dict into a 3-channel ResNet."""
    path = Path(weights_path)
    if not path.is_file():
        raise TrainingError(f"pretrained weights {path}: no such file (never downloaded)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise TrainingError(f"pretrained weights {path}: cannot be read ({exc})") from exc
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError:  # tensor shapes differ: another architecture
        missing, unexpected = ["(shapes differ)"], []
    if unexpected or [k for k in missing if not k.startswith("fc.")]:
        raise TrainingError(
            f"pretrained weights {path}: do not match the architecture "
            f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)"
        )


def _one_channel_stem(model: ResNet) -> None:
    """Replace the first convolution by a one-channel one, summing any RGB kernels."""
    old = model.conv1
    new = nn.Conv2d(1, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
    with torch.no_grad():
        new.weight.copy_(old.weight.sum(dim=1, keepdim=True))
    model.conv1 = new


def build_backbone(arch: str = "resnet18", weights_path: str | Path | None = None) -> ResNet:
    """Build a one-channel ResNet whose ``fc`` is the identity (a feature extractor).

    Parameters
    ----------
    arch
        One of :data:`ARCHITECTURES`.
    weights_path
        Optional local file with a torchvision ImageNet state dict for ``arch``.

    Returns
    -------
    torchvision.models.ResNet
        Maps (B, 1, H, W) float32 patterns to (B, F) features; ``model.num_features`` is F.
    """
    model = _torchvision_resnet(arch)
    if weights_path is not None:
        _load_local_weights(model, weights_path)
    _one_channel_stem(model)
    model.num_features = model.fc.in_features
    model.fc = nn.Identity()
    return model


def build_classifier(
    num_classes: int, arch: str = "resnet18", weights_path: str | Path | None = None
) -> ResNet:
    """Build a one-channel ResNet classifier (the paper's supervised model is ResNet18).

    Parameters
    ----------
    num_classes
        Number of output logits (at least 2).
    arch
        One of :data:`ARCHITECTURES`.
    weights_path
        Optional local ImageNet state dict; the classification layer is always new.

    Returns
    -------
    torchvision.models.ResNet
        Maps (B, 1, H, W) float32 patterns to (B, num_classes) logits.
    """
    if num_classes < 2:
        raise TrainingError(f"number of classes {num_classes}: a classifier needs at least 2")
    model = build_backbone(arch, weights_path)
    model.fc = nn.Linear(model.num_features, num_classes)
    return model


@dataclass
class MCDNetworks:
    """The three networks of Maximum Classifier Discrepancy (Saito et al. 2018).

    Attributes
    ----------
    generator
        Feature extractor (paper: ResNet50 backbone), (B, 1, H, W) -> (B, F).
    head1, head2
        The two classifiers, one linear layer each, (B, F) -> (B, C) logits.
    """

    generator: nn.Module
    head1: nn.Module
    head2: nn.Module

    def modules(self) -> dict[str, nn.Module]:
        """Return the networks by name (for checkpoints and device moves)."""
        return {"generator": self.generator, "head1": self.head1, "head2": self.head2}


def build_mcd_networks(
    num_classes: int, arch: str = "resnet50", weights_path: str | Path | None = None
) -> MCDNetworks:
    """Build the MCD generator and its two one-layer classifier heads.

    Parameters
    ----------
    num_classes
        Number of classes (at least 2).
    arch
        Generator backbone, one of :data:`ARCHITECTURES` (paper: ``resnet50``).
    weights_path
        Optional local ImageNet state dict for the backbone.
    """
    if num_classes < 2:
        raise TrainingError(f"number of classes {num_classes}: a classifier needs at least 2")
    generator = build_backbone(arch, weights_path)
    features = generator.num_features
    return MCDNetworks(
        generator=generator,
        head1=nn.Linear(features, num_classes),
        head2=nn.Linear(features, num_classes),
    )
