"""The guide's residual network for tables: blocks of x + F(x), stacked to any depth.

    x ─► TabularInput ─► Linear(in, width)                                   [B, width]
      ─► depth × ( x + Dropout(Linear(Dropout(ReLU(Linear(Norm(x)))))) )     [B, width]
      ─► Norm ─► ReLU ─► head Linear(width, n_outputs)                       [B, n_outputs]

Each block is pre-normalised (the residual path itself is never normalised), as in RTDL's ResNet
(Gorishniy et al. 2021) and pre-activation ResNets (He et al. 2016): the identity path carries
the gradient from the head to the first layer unchanged, so 50 blocks train where a 50-layer plain
MLP's first-layer gradient vanishes (training/callbacks/gradient_health.py measures it).
"""

from __future__ import annotations

import torch
from torch import nn

from deepfit.core.space import Float, Int
from deepfit.errors import SettingsError
from deepfit.models.base import HeadModel
from deepfit.models.mlp import TABLE_FIRST, TabularInput
from deepfit.models.registry import InputSpec, OutputSpec, register

NORMS = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}


class ResidualBlock(nn.Module):
    """x + F(x), F = Norm → Linear → ReLU → Dropout → Linear → Dropout."""

    def __init__(self, width: int, inner: int, dropout: float, norm: str) -> None:
        super().__init__()
        self.norm = NORMS[norm](width)
        self.linear1 = nn.Linear(width, inner)
        self.linear2 = nn.Linear(inner, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, width] → [B, width]
        h = self.dropout(torch.relu(self.linear1(self.norm(x))))
        return x + self.dropout(self.linear2(h))


class ResMLP(HeadModel):
    has_skip_connections = True  # gradient_health: no vanishing-gradient warning for this one

    def __init__(self, spec: InputSpec, n_outputs: int, depth: int, width: int, inner: int,
                 dropout: float, norm: str) -> None:
        super().__init__()
        self.input = TabularInput(spec)
        self.stem = nn.Linear(self.input.out_features, width)
        self.features = nn.Sequential(*(ResidualBlock(width, inner, dropout, norm) for _ in range(depth)))
        self.final_norm = NORMS[norm](width)
        self.head = nn.Linear(width, n_outputs)
        self.num_features = width

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(self.stem(self.input(x)))  # [B, width]
        return torch.relu(self.final_norm(h))


@register("resmlp", modalities=TABLE_FIRST,
          space={"depth": Int(1, 8), "width": Int(32, 512, log=True), "dropout": Float(0.0, 0.5)})
def resmlp(
    input_spec: InputSpec,
    output_spec: OutputSpec,
    *,
    depth: int = 4,  # residual blocks
    width: int = 128,  # the residual stream's width
    inner: int = 0,  # each block's hidden width; 0: 2 × width
    dropout: float = 0.1,
    norm: str = "batch",  # "batch" or "layer"
) -> ResMLP:
    if depth < 1 or width < 1 or inner < 0:
        raise SettingsError(f"resmlp needs depth >= 1 and width >= 1, not {depth} and {width}")
    if not 0.0 <= dropout < 1.0:
        raise SettingsError(f"dropout must be in [0, 1), not {dropout}")
    if norm not in NORMS:
        raise SettingsError(f"norm must be one of {', '.join(NORMS)}, not {norm!r}")
    return ResMLP(input_spec, output_spec.n_outputs, depth, width, inner or 2 * width, dropout, norm)
