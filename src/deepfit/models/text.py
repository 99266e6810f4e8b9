"""Text models: `textcnn`, `bigru`, and `transformer` over token embeddings. Each takes the text
preprocessor's [B, n_features] floats (modalities/text/preprocess.py: the tabular block of the
other columns, then shape[1] token ids per text column, 0 = padding) and gives [B, n_outputs].

Each text column is encoded by the same encoder into a vector; the vectors and the tabular
block (numbers as they are, categories embedded: models/mlp.py's TabularInput) are
concatenated (late fusion) and the head reads them. Padding never changes the output: every
encoder masks it (max-pooling over -inf, means over the real tokens, attention's key mask).

    textcnn      embeddings → parallel Conv1d of widths 3, 4, 5 (`width` filters each) → ReLU →
                 max over time → dropout (Kim 2014, "Convolutional Neural Networks for Sentence
                 Classification")
    bigru        embeddings → bidirectional GRU (`depth` layers of `width`, the backward one from
                 each text's last real token) → mean over the real tokens of both directions
    transformer  embeddings + sinusoidal positions → depth × pre-norm encoder layer with the
                 padding masked → LayerNorm → mean over the real tokens (Vaswani et al. 2017)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deepfit.core.space import Choice, Float, Int
from deepfit.errors import SettingsError
from deepfit.models.base import HeadModel
from deepfit.models.mlp import TabularInput
from deepfit.models.positions import sinusoidal_positions
from deepfit.models.registry import InputSpec, OutputSpec, register


class TextNet(HeadModel):
    """Splits the input into the tabular block and the token ids of each text column, encodes
    each text with `encode(ids [B, L], mask [B, L]) -> [B, text_features]`, and concatenates."""

    def __init__(self, spec: InputSpec, embedding_dim: int) -> None:
        super().__init__()
        self.n_text, self.length = spec.shape
        self.n_tabular = spec.n_features - self.n_text * self.length
        tabular = InputSpec(self.n_tabular, spec.n_dense, spec.cardinalities)
        self.tabular = TabularInput(tabular) if self.n_tabular else None
        self.embedding = nn.Embedding(spec.vocab_size, embedding_dim, padding_idx=0)

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        ids = x[:, self.n_tabular:].reshape(-1, self.n_text, self.length).long()  # [B, n_text, L]
        parts = [self.tabular(x[:, : self.n_tabular])] if self.tabular is not None else []
        for i in range(self.n_text):
            parts.append(self.encode(ids[:, i], ids[:, i] > 0))
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

    def _finish(self, text_features: int, n_outputs: int) -> None:
        tab = self.tabular.out_features if self.tabular is not None else 0
        self.num_features = self.n_text * text_features + tab
        self.head = nn.Linear(self.num_features, n_outputs)


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, L, W] averaged over the positions where mask [B, L] is True ([B, W]; zeros for none)."""
    weights = mask.to(h.dtype)[..., None]
    return (h * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class TextCNN(TextNet):
    def __init__(self, spec: InputSpec, n_outputs: int, embedding_dim: int, width: int,
                 kernels: tuple[int, ...], dropout: float) -> None:
        super().__init__(spec, embedding_dim)
        self.kernels = kernels
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, width, k, padding=k - 1) for k in kernels)
        self.dropout = nn.Dropout(dropout)
        self._finish(width * len(kernels), n_outputs)

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.embedding(ids).transpose(1, 2)  # [B, E, L]
        pooled = []
        for conv in self.convs:
            out = torch.relu(conv(h))[..., : ids.shape[1]]  # [B, W, L]: the window ending at t
            # a window ending on padding is masked; the others hold real tokens only (and, at
            # the start, the convolution's zero padding), whatever padding follows the text
            valid = mask.clone()
            valid[:, 0] = True  # an empty text still gives a (zero-input) value
            pooled.append(out.masked_fill(~valid[:, None, :], float("-inf")).amax(dim=2))
        return self.dropout(torch.cat(pooled, dim=1))


class BiGRU(TextNet):
    """Per layer, one GRU reads each text forwards and one reads it backwards from its last real
    token (the reversal gathers within each text's length, so no host sync and no packing), and
    their outputs are concatenated, as torch's bidirectional GRU does over unpadded texts."""

    def __init__(self, spec: InputSpec, n_outputs: int, embedding_dim: int, width: int,
                 depth: int, dropout: float) -> None:
        super().__init__(spec, embedding_dim)
        sizes = [embedding_dim] + [2 * width] * (depth - 1)
        self.forward_layers = nn.ModuleList(nn.GRU(n, width, batch_first=True) for n in sizes)
        self.backward_layers = nn.ModuleList(nn.GRU(n, width, batch_first=True) for n in sizes)
        self.dropout = nn.Dropout(dropout)
        self._finish(2 * width, n_outputs)

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        steps = torch.arange(length, device=ids.device)[None, :]  # [1, L]
        n = mask.sum(dim=1, keepdim=True)  # [B, 1] real tokens (trailing padding after them)
        reverse = torch.where(steps < n, n - 1 - steps, steps)[..., None]  # [B, L, 1]
        h = self.embedding(ids)
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i:
                h = self.dropout(h)
            back = torch.gather(h, 1, reverse.expand(-1, -1, h.shape[2]))
            out_b, _ = bwd(back)
            out_b = torch.gather(out_b, 1, reverse.expand(-1, -1, out_b.shape[2]))
            h = torch.cat([fwd(h)[0], out_b], dim=2)  # [B, L, 2 × width]
        return self.dropout(masked_mean(h, mask))


class TextTransformer(TextNet):
    has_skip_connections = True

    def __init__(self, spec: InputSpec, n_outputs: int, depth: int, width: int, heads: int,
                 inner: int, dropout: float) -> None:
        super().__init__(spec, width)
        self.register_buffer("positions", sinusoidal_positions(self.length, width), persistent=False)
        layer = nn.TransformerEncoderLayer(width, heads, inner, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.features = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.scale = math.sqrt(width)
        self._finish(width, n_outputs)

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.clone()
        keep[:, 0] = True  # an empty text attends to its first (padding) slot rather than nothing
        h = self.embedding(ids) * self.scale + self.positions[:, : ids.shape[1]]
        h = self.norm(self.features(h, src_key_padding_mask=~keep))
        return masked_mean(h, keep)


def _check(depth: int, width: int, dropout: float, spec: InputSpec) -> None:
    if depth < 1 or width < 1:
        raise SettingsError(f"depth and width must be at least 1, not {depth} and {width}")
    if not 0.0 <= dropout < 1.0:
        raise SettingsError(f"dropout must be in [0, 1), not {dropout}")
    if spec.modality != "text" or len(spec.shape) != 2 or spec.vocab_size < 2:
        raise SettingsError("this model reads text (token ids from the text preprocessor); "
                            f"these data are {spec.modality}")


@register("textcnn", modalities=("text",),
          space={"width": Choice(50, 100, 200), "embedding_dim": Choice(64, 128, 256),
                 "dropout": Float(0.0, 0.6)})
def textcnn(input_spec: InputSpec, output_spec: OutputSpec, *, embedding_dim: int = 128,
            width: int = 100, kernels: str = "3,4,5", dropout: float = 0.5) -> TextCNN:
    _check(1, width, dropout, input_spec)
    sizes = tuple(int(k) for k in str(kernels).split(",") if k.strip())
    if not sizes or min(sizes) < 1:
        raise SettingsError(f"kernels must be widths of at least 1 as 3,4,5, not {kernels!r}")
    return TextCNN(input_spec, output_spec.n_outputs, embedding_dim, width, sizes, dropout)


@register("bigru", modalities=("text",),
          space={"depth": Int(1, 2), "width": Choice(32, 64, 128), "dropout": Float(0.0, 0.5)})
def bigru(input_spec: InputSpec, output_spec: OutputSpec, *, embedding_dim: int = 128,
          depth: int = 1, width: int = 64, dropout: float = 0.3) -> BiGRU:
    _check(depth, width, dropout, input_spec)
    return BiGRU(input_spec, output_spec.n_outputs, embedding_dim, width, depth, dropout)


def text_transformer(input_spec: InputSpec, output_spec: OutputSpec, *, depth: int, width: int,
                     heads: int, inner: int, dropout: float) -> TextTransformer:
    """The `transformer` of models/sequence.py when its input is text."""
    _check(depth, width, dropout, input_spec)
    return TextTransformer(input_spec, output_spec.n_outputs, depth, width, heads, inner or 2 * width,
                           dropout)
