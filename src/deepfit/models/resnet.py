"""torchvision's residual networks: `resnet18`, `resnet34`, `resnet50`.

    x [B, C, H, W] ─► stem ─► layer1 … layer4 ─► global average pool   [B, 512 or 2048]
                   ─► Dropout ─► head Linear                          [B, n_outputs]

The stem is torchvision's (Conv7x7 stride 2, max-pool: 224-pixel photographs) for images of 64
pixels and more; below that (CIFAR-sized images, digits) it is the small-image stem of the CIFAR
ResNets (He et al. 2016, §4.2): one Conv3x3 stride 1 and no max-pool, so that the feature maps
are not reduced to 1×1 pixel before layer2. `stem="auto"` chooses by the image size and pins
the choice (`model.pinned`), so a model built for other images can take the weights.
"""

from __future__ import annotations

import torch
from torch import nn

from deepfit.core.space import Float
from deepfit.errors import SettingsError
from deepfit.models.registry import InputSpec, OutputSpec, register
from deepfit.models.vision import ImageModel, check_dropout, image_shape

SMALL_IMAGE = 64  # pixels: below this, the small-image stem
STEMS = ("auto", "small", "imagenet")


class ResNet(ImageModel):
    has_skip_connections = True

    def __init__(self, arch: str, channels: int, n_outputs: int, stem: str, dropout: float) -> None:
        super().__init__()
        import torchvision  # here: importing it takes seconds, and only image runs need it

        net = torchvision.models.get_model(arch, weights=None)
        if stem == "small":
            net.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif channels != 3:
            net.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.num_features = net.fc.in_features
        net.fc = nn.Identity()
        self.body = net  # [B, C, H, W] → [B, num_features]
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.num_features, n_outputs)
        self.pinned = {"stem": stem}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.body(x))

    def param_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        b = self.body
        stem = [*b.conv1.parameters(), *b.bn1.parameters()]
        layers = [(f"layer{i}", list(getattr(b, f"layer{i}").parameters())) for i in range(1, 5)]
        return [("stem", stem), *layers, ("head", list(self.head.parameters()))]


SPACE = {"dropout": Float(0.0, 0.5)}  # the tuning range of each resnet (models/registry.py)

def _resnet(arch: str, spec: InputSpec, out: OutputSpec, stem: str, dropout: float) -> ResNet:
    channels, h, w = image_shape(spec)
    if stem not in STEMS:
        raise SettingsError(f"stem must be one of {', '.join(STEMS)}, not {stem!r}")
    check_dropout(dropout)
    if stem == "auto":
        stem = "small" if min(h, w) < SMALL_IMAGE else "imagenet"
    return ResNet(arch, channels, out.n_outputs, stem, dropout)


@register("resnet18", modalities=("image",), space=SPACE)
def resnet18(input_spec: InputSpec, output_spec: OutputSpec, *, stem: str = "auto",
             dropout: float = 0.0) -> ResNet:
    return _resnet("resnet18", input_spec, output_spec, stem, dropout)


@register("resnet34", modalities=("image",), space=SPACE)
def resnet34(input_spec: InputSpec, output_spec: OutputSpec, *, stem: str = "auto",
             dropout: float = 0.0) -> ResNet:
    return _resnet("resnet34", input_spec, output_spec, stem, dropout)


@register("resnet50", modalities=("image",), space=SPACE)
def resnet50(input_spec: InputSpec, output_spec: OutputSpec, *, stem: str = "auto",
             dropout: float = 0.0) -> ResNet:
    return _resnet("resnet50", input_spec, output_spec, stem, dropout)
