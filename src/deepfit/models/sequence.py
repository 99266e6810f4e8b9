"""Sequence models: `gru`, `lstm`, `transformer`, `cnn1d`. Each takes [B, T, C] floats (T steps
of C channels, normalised per channel by data.sequences.SequencePreprocessor) and gives
[B, n_outputs]: class logits, or one value per forecast step.

Every model has the uniform interface: `features` (its body), `forward_features(x) -> [B, F]`,
`forward_head`, `reset_classifier`. The settings share their names across the registry: `depth`
(recurrent layers, encoder layers, residual blocks), `width` (hidden size, model width, channels),
`dropout`, `pooling`. Defaults suit small data (hundreds to thousands of sequences).

    gru / lstm    depth 2, width 64, unidirectional, dropout 0.1, pooling "last" (the last layer's
                  final state; both directions' when bidirectional) or "mean" over the steps
    transformer   Linear(C, width) + positions ("sinusoidal", or "learned": slower to start on
                  small data) → depth × pre-norm
                  encoder layer (GELU, `heads` heads, inner width 2 × width) → LayerNorm →
                  pooling "mean" over the steps or "cls" (a learned token in front)
    cnn1d         a residual 1-D CNN: stem Conv-BN-ReLU, then depth × [x + BN(Conv(ReLU(BN(Conv x))))]
                  → ReLU, with dilations 1, 2, 4, … so the receptive field covers the window
                  (order matters, not only what occurs), then pooling "mean", "max" or "last"
"""

from __future__ import annotations

import torch
from torch import nn

from deepfit.core.space import Choice, Float, Int
from deepfit.errors import SettingsError
from deepfit.models.base import HeadModel
from deepfit.models.positions import sinusoidal_positions
from deepfit.models.registry import InputSpec, OutputSpec, register


class SequenceNet(HeadModel):
    """The sequence models: x [B, T, C] → forward_features → [B, num_features] → head."""


class RecurrentNet(SequenceNet):
    def __init__(self, cell: type[nn.RNNBase], channels: int, n_outputs: int, depth: int,
                 width: int, bidirectional: bool, dropout: float, pooling: str) -> None:
        super().__init__()
        self.directions = 2 if bidirectional else 1
        self.pooling = pooling
        self.features = cell(channels, width, num_layers=depth, batch_first=True,
                             dropout=dropout if depth > 1 else 0.0, bidirectional=bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.num_features = width * self.directions
        self.head = nn.Linear(self.num_features, n_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out, state = self.features(x)  # out [B, T, directions × width]
        if self.pooling == "mean":
            return self.dropout(out.mean(dim=1))
        h_n = state[0] if isinstance(state, tuple) else state  # [depth × directions, B, width]
        return self.dropout(torch.cat(list(h_n[-self.directions :]), dim=1))  # [B, directions × width]


class TransformerNet(SequenceNet):
    has_skip_connections = True

    def __init__(self, length: int, channels: int, n_outputs: int, depth: int, width: int,
                 heads: int, inner: int, dropout: float, positions: str, pooling: str) -> None:
        super().__init__()
        self.pooling = pooling
        self.embed = nn.Linear(channels, width)
        tokens = length + (pooling == "cls")
        if pooling == "cls":
            self.cls_token = nn.Parameter(nn.init.trunc_normal_(torch.zeros(1, 1, width), std=0.02))
        if positions == "learned":
            self.positions = nn.Parameter(nn.init.trunc_normal_(torch.zeros(1, tokens, width), std=0.02))
        else:
            self.register_buffer("positions", sinusoidal_positions(tokens, width), persistent=False)
        layer = nn.TransformerEncoderLayer(width, heads, inner, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.features = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)  # pre-norm layers leave the stream unnormalised
        self.num_features = width
        self.head = nn.Linear(width, n_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)  # [B, T, width]
        if self.pooling == "cls":
            h = torch.cat([self.cls_token.expand(len(h), -1, -1), h], dim=1)  # [B, 1 + T, width]
        h = self.norm(self.features(h + self.positions))
        return h[:, 0] if self.pooling == "cls" else h.mean(dim=1)  # [B, width]


class ConvBlock(nn.Module):
    """x + BN(Conv(ReLU(BN(Conv(x))))), then ReLU; 'same' padding, so [B, W, T] → [B, W, T]."""

    def __init__(self, width: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.conv1 = nn.Conv1d(width, width, kernel, padding=pad, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm1d(width)
        self.relu1 = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(width, width, kernel, padding=pad, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm1d(width)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.relu1(self.bn1(self.conv1(x))))
        return self.relu2(x + self.bn2(self.conv2(h)))


class Conv1dNet(SequenceNet):
    has_skip_connections = True

    def __init__(self, channels: int, n_outputs: int, depth: int, width: int, kernel: int,
                 dropout: float, pooling: str) -> None:
        super().__init__()
        self.pooling = pooling
        self.stem = nn.Sequential(nn.Conv1d(channels, width, kernel, padding=kernel // 2, bias=False),
                                  nn.BatchNorm1d(width), nn.ReLU())
        self.features = nn.Sequential(*(ConvBlock(width, kernel, 2**i, dropout) for i in range(depth)))
        self.num_features = width
        self.head = nn.Linear(width, n_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(self.stem(x.transpose(1, 2)))  # [B, C, T] → [B, width, T]
        if self.pooling == "last":
            return h[:, :, -1]
        return h.amax(dim=2) if self.pooling == "max" else h.mean(dim=2)  # [B, width]


# ------------------------------------------------------------------------------ the registry
def _length_channels(spec: InputSpec) -> tuple[int, int]:
    if len(spec.shape) != 2:
        raise SettingsError(f"sequence models take [N, T, C] inputs; the input spec's shape is "
                            f"{spec.shape or 'not given'}")
    length, channels = spec.shape
    return int(length), int(channels)


def _check(depth: int, width: int, dropout: float, pooling: str, poolings: tuple[str, ...]) -> None:
    if depth < 1 or width < 1:
        raise SettingsError(f"depth and width must be at least 1, not {depth} and {width}")
    if not 0.0 <= dropout < 1.0:
        raise SettingsError(f"dropout must be in [0, 1), not {dropout}")
    if pooling not in poolings:
        raise SettingsError(f"pooling must be one of {', '.join(poolings)}, not {pooling!r}")


# tuning ranges of gru and lstm (models/registry.py)
RECURRENT_SPACE = {"depth": Int(1, 3), "width": Choice(32, 64, 128), "dropout": Float(0.0, 0.5)}

def _recurrent(cell: type[nn.RNNBase], spec: InputSpec, out: OutputSpec, depth: int, width: int,
               bidirectional: bool, dropout: float, pooling: str) -> RecurrentNet:
    _check(depth, width, dropout, pooling, ("last", "mean"))
    _, channels = _length_channels(spec)
    return RecurrentNet(cell, channels, out.n_outputs, depth, width, bidirectional, dropout, pooling)


@register("gru", modalities=("sequence",), space=RECURRENT_SPACE)
def gru(input_spec: InputSpec, output_spec: OutputSpec, *, depth: int = 2, width: int = 64,
        bidirectional: bool = False, dropout: float = 0.1, pooling: str = "last") -> RecurrentNet:
    return _recurrent(nn.GRU, input_spec, output_spec, depth, width, bidirectional, dropout, pooling)


@register("lstm", modalities=("sequence",), space=RECURRENT_SPACE)
def lstm(input_spec: InputSpec, output_spec: OutputSpec, *, depth: int = 2, width: int = 64,
         bidirectional: bool = False, dropout: float = 0.1, pooling: str = "last") -> RecurrentNet:
    return _recurrent(nn.LSTM, input_spec, output_spec, depth, width, bidirectional, dropout, pooling)


@register("transformer", modalities=("sequence", "text"),  # widths a multiple of the 4 heads
          space={"depth": Int(1, 4), "width": Choice(32, 64, 128), "dropout": Float(0.0, 0.3)})
def transformer(input_spec: InputSpec, output_spec: OutputSpec, *, depth: int = 2, width: int = 64,
                heads: int = 4, inner: int = 0, dropout: float = 0.1, positions: str = "sinusoidal",
                pooling: str = "mean") -> TransformerNet:
    _check(depth, width, dropout, pooling, ("mean", "cls"))
    if heads < 1 or width % heads:
        raise SettingsError(f"width ({width}) must be a multiple of heads ({heads})")
    if positions not in ("learned", "sinusoidal"):
        raise SettingsError(f"positions must be 'learned' or 'sinusoidal', not {positions!r}")
    if input_spec.modality == "text":  # over token embeddings, the padding masked (models/text.py)
        from deepfit.models.text import text_transformer

        return text_transformer(input_spec, output_spec, depth=depth, width=width, heads=heads,
                                inner=inner, dropout=dropout)
    length, channels = _length_channels(input_spec)
    return TransformerNet(length, channels, output_spec.n_outputs, depth, width, heads,
                          inner or 2 * width, dropout, positions, pooling)


@register("cnn1d", modalities=("sequence",),
          space={"depth": Int(2, 6), "width": Choice(32, 64, 128), "kernel": Choice(3, 5, 7),
                 "dropout": Float(0.0, 0.5)})
def cnn1d(input_spec: InputSpec, output_spec: OutputSpec, *, depth: int = 4, width: int = 64,
          kernel: int = 5, dropout: float = 0.1, pooling: str = "mean") -> Conv1dNet:
    _check(depth, width, dropout, pooling, ("mean", "max", "last"))
    if kernel < 1 or kernel % 2 == 0:
        raise SettingsError(f"kernel must be an odd number, not {kernel}")
    _, channels = _length_channels(input_spec)
    return Conv1dNet(channels, output_spec.n_outputs, depth, width, kernel, dropout, pooling)
