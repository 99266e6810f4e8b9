"""The guide's CNN for images of any size and channel count.

    x [B, C, H, W]
      ─► 3 × block: (Conv3x3 ─► BatchNorm2d ─► ReLU) × 2 ─► MaxPool2d(2) ─► Dropout2d
      ─► AdaptiveAvgPool2d(pool) ─► flatten                         [B, widths[-1] · pool²]
      ─► Linear ─► BatchNorm1d ─► ReLU ─► Dropout                   [B, hidden]  (features)
      ─► head Linear                                                [B, n_outputs]

A block max-pools only while the feature map is at least 4 pixels high and wide, so 8×8 digits
go 8 → 4 → 2 → 2 and 32×32 images 32 → 16 → 8 → 4; the adaptive pooling then makes the number of
weights independent of the image size: a model trained at one size takes the weights of a model
trained at another (transfer learning between datasets).
"""

from __future__ import annotations

import torch
from torch import nn

from deepfit.core.space import Choice, Float
from deepfit.errors import SettingsError
from deepfit.models.registry import InputSpec, OutputSpec, register
from deepfit.models.vision import ImageModel, check_dropout, image_shape

MIN_POOLED = 4  # a block max-pools a feature map only when it is at least this large


def conv_block(c_in: int, c_out: int, dropout: float, pool: bool) -> nn.Sequential:
    """(Conv3x3 → BN → ReLU) × 2 → MaxPool2d(2) (when `pool`) → Dropout2d."""
    layers: list[nn.Module] = []
    for i in range(2):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False),
                   nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    layers += [nn.MaxPool2d(2) if pool else nn.Identity(), nn.Dropout2d(dropout)]
    return nn.Sequential(*layers)


class CNN(ImageModel):
    def __init__(self, channels: int, size: tuple[int, int], n_outputs: int,
                 widths: tuple[int, ...], hidden: int, dropout: float, pool: int) -> None:
        super().__init__()
        h, w = size
        blocks, c_in = [], channels
        for width in widths:
            pooled = min(h, w) >= MIN_POOLED
            blocks.append(conv_block(c_in, width, dropout, pooled))
            c_in, h, w = width, (h // 2 if pooled else h), (w // 2 if pooled else w)
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.neck = nn.Sequential(nn.Linear(c_in * pool * pool, hidden), nn.BatchNorm1d(hidden),
                                  nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.num_features = hidden
        self.head = nn.Linear(hidden, n_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.blocks(x))  # [B, widths[-1], pool, pool]
        return self.neck(torch.flatten(x, 1))  # [B, hidden]

    def param_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        groups = [(f"block{i + 1}", list(b.parameters())) for i, b in enumerate(self.blocks)]
        return [*groups, ("neck", list(self.neck.parameters())), ("head", list(self.head.parameters()))]


@register("cnn", modalities=("image",),
          space={"hidden": Choice(128, 256, 512), "dropout": Float(0.0, 0.5)})
def cnn(
    input_spec: InputSpec,
    output_spec: OutputSpec,
    *,
    widths: tuple[int, ...] = (32, 64, 128),
    hidden: int = 256,
    dropout: float = 0.2,
    pool: int = 2,
) -> CNN:
    channels, h, w = image_shape(input_spec)
    if not widths or min(widths) < 1 or hidden < 1 or pool < 1:
        raise SettingsError(f"widths, hidden and pool must be positive, not {widths}, {hidden}, {pool}")
    check_dropout(dropout)
    return CNN(channels, (h, w), output_spec.n_outputs, widths, hidden, dropout, pool)

