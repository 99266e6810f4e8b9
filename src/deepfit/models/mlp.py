"""The guide's feedforward network for tables: (Linear → BatchNorm1d → ReLU → Dropout) × depth,
then a Linear head. Categorical columns arrive as indices and are embedded first.

The layers are `hidden` (widths), or `depth` layers of `width` when depth is given. `norm="none"`
leaves BatchNorm out: the plain deep network whose gradients vanish (compare resmlp)."""

from __future__ import annotations

import math

import torch
from torch import nn

from deepfit.core.space import Float, Int
from deepfit.errors import SettingsError
from deepfit.models.base import HeadModel
from deepfit.models.registry import InputSpec, OutputSpec, register

# Tables first (the default reading of a source when mlp is named), then images and sequences
# flattened, so `deepfit compare --models mlp,cnn,resnet` runs on images as the guide writes it.
TABLE_FIRST = ("tabular", "image", "sequence")


def embedding_size(cardinality: int) -> int:
    """fastai's rule of thumb for an embedding's width."""
    return min(600, round(1.6 * cardinality**0.56))


class TabularInput(nn.Module):
    """[B, n_features] → [B, n_dense + Σ embedding widths]: dense columns pass through, category
    index columns are looked up in their embeddings. Images [B, C, H, W] and sequences [B, T, C]
    are flattened: every value is a feature (the guide's MLP baseline on such data)."""

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        self.flatten = len(spec.shape) > 1  # samples of several axes: every value a feature
        self.n_dense = math.prod(spec.shape) if self.flatten else spec.n_dense
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_size(c)) for c in spec.cardinalities)
        self.out_features = self.n_dense + sum(e.embedding_dim for e in self.embeddings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flatten:
            return x.flatten(1)  # [B, C·H·W] or [B, T·C]
        if not self.embeddings:
            return x
        codes = x[:, self.n_dense :].long()  # [B, n_categorical]
        parts = [x[:, : self.n_dense]] + [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        return torch.cat(parts, dim=1)


class MLP(HeadModel):
    def __init__(self, spec: InputSpec, n_outputs: int, hidden: tuple[int, ...], dropout: float,
                 norm: str = "batch") -> None:
        super().__init__()
        self.input = TabularInput(spec)
        layers: list[nn.Module] = []
        width = self.input.out_features
        for h in hidden:
            normalise = [nn.BatchNorm1d(h)] if norm == "batch" else []
            layers += [nn.Linear(width, h), *normalise, nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_outputs)
        self.num_features = width

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.input(x))  # [B, hidden[-1]]


@register("mlp", modalities=TABLE_FIRST,  # tuned as depth layers of width units
          space={"depth": Int(1, 4), "width": Int(32, 512, log=True), "dropout": Float(0.0, 0.5)})
def mlp(
    input_spec: InputSpec,
    output_spec: OutputSpec,
    *,
    hidden: tuple[int, ...] = (128, 64, 32),
    dropout: float = 0.3,
    depth: int = 0,  # 0: the layers of `hidden`; N: N hidden layers of `width`
    width: int = 0,  # 0: the widest of `hidden`
    norm: str = "batch",  # "batch" or "none"
) -> MLP:
    if depth < 0 or width < 0:
        raise SettingsError(f"depth and width must be >= 0, not {depth} and {width}")
    if depth:
        hidden = (width or max(hidden, default=128),) * depth
    elif width:
        hidden = (width,) * len(hidden)
    if not hidden or min(hidden) < 1:
        raise SettingsError(f"hidden must list positive layer widths, not {hidden}")
    if not 0.0 <= dropout < 1.0:
        raise SettingsError(f"dropout must be in [0, 1), not {dropout}")
    if norm not in ("batch", "none"):
        raise SettingsError(f"norm must be 'batch' or 'none', not {norm!r}")
    return MLP(input_spec, output_spec.n_outputs, hidden, dropout, norm)
