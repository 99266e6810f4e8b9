"""The interface every model shares (after timm): `forward_features` → `forward_head`, and a head
that can be replaced for another number of outputs. Subclasses set `head` (an nn.Linear) and
`num_features`, and define `forward_features`."""

from __future__ import annotations

import torch
from torch import nn


class HeadModel(nn.Module):
    has_skip_connections = False
    head: nn.Linear
    num_features: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)  # [B, n_outputs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_head(self, n_outputs: int) -> None:
        self.head = nn.Linear(self.num_features, n_outputs).to(self.head.weight.device)

    def reset_classifier(self, n_outputs: int) -> None:
        self.reset_head(n_outputs)
