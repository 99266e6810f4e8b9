"""The guide's feedforward network for tables: (Linear → BatchNorm1d → ReLU → Dropout) × depth,
then a Linear head. Categorical columns arrive as indices and are embedded first."""

from __future__ import annotations

import torch
from torch import nn

from deepfit.errors import SettingsError
from deepfit.models.registry import InputSpec, OutputSpec, register


def embedding_size(cardinality: int) -> int:
    """fastai's rule of thumb for an embedding's width."""
    return min(600, round(1.6 * cardinality**0.56))


class TabularInput(nn.Module):
    """[B, n_features] → [B, n_dense + Σ embedding widths]: dense columns pass through, category
    index columns are looked up in their embeddings."""

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        self.n_dense = spec.n_dense
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_size(c)) for c in spec.cardinalities)
        self.out_features = spec.n_dense + sum(e.embedding_dim for e in self.embeddings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.embeddings:
            return x
        codes = x[:, self.n_dense :].long()  # [B, n_categorical]
        parts = [x[:, : self.n_dense]] + [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        return torch.cat(parts, dim=1)


class MLP(nn.Module):
    def __init__(self, spec: InputSpec, n_outputs: int, hidden: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        self.input = TabularInput(spec)
        layers: list[nn.Module] = []
        width = self.input.out_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_outputs)
        self.num_features = width

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.input(x))  # [B, hidden[-1]]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)  # [B, n_outputs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, n_outputs: int) -> None:
        self.head = nn.Linear(self.num_features, n_outputs)


@register("mlp")
def mlp(
    input_spec: InputSpec,
    output_spec: OutputSpec,
    *,
    hidden: tuple[int, ...] = (128, 64, 32),
    dropout: float = 0.3,
) -> MLP:
    if not hidden or min(hidden) < 1:
        raise SettingsError(f"hidden must list positive layer widths, not {hidden}")
    if not 0.0 <= dropout < 1.0:
        raise SettingsError(f"dropout must be in [0, 1), not {dropout}")
    return MLP(input_spec, output_spec.n_outputs, hidden, dropout)
