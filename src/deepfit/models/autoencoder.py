"""Autoencoders for anomaly detection: a model that reconstructs its (preprocessed) input through
a narrow code, and scores each sample by how badly it does (Hinton & Salakhutdinov 2006; as an
anomaly detector, e.g. Sakurada & Yairi 2014, and Chandola et al. 2009's survey).

    dense_ae    tables (and any data flattened): embeddings as mlp's → Linear-ReLU × hidden →
                code → the mirror → [B, n_dense + Σ cardinalities] (one-hot slots for categories)
    conv_ae     images [B, C, H, W]: Conv(stride 2)-ReLU × len(widths) → Linear code → the
                mirror with ConvTranspose2d, cropped to H × W
    conv1d_ae   sequences [B, T, C]: the same in 1-D over the time steps

`forward(x)` returns the per-sample reconstruction error [B]: the mean squared error over the
reconstructed values (features, one-hot slots, pixels or steps × channels), so the training loss
is its mean (training/losses.py's "reconstruction") and the Predictor's outputs are the anomaly
scores themselves. `reconstruct(x)` and `target(x)` give the two sides of that error.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from deepfit.errors import SettingsError
from deepfit.models.mlp import TABLE_FIRST, TabularInput
from deepfit.models.registry import InputSpec, OutputSpec, register

ANOMALY = ("anomaly",)


class AutoEncoder(nn.Module):
    """x → the per-sample mean squared reconstruction error [B]. Subclasses define
    `reconstruct(x)` and `target(x)` (the same shape)."""

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def target(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        error = (self.reconstruct(x) - self.target(x)).float().square()
        return error.flatten(1).mean(dim=1)  # [B]


def _check(widths: tuple[int, ...], code: int, dropout: float) -> None:
    if not widths or min(widths) < 1 or code < 1:
        raise SettingsError(f"the widths and the code must be positive, not {widths} and {code}")
    if not 0.0 <= dropout < 1.0:
        raise SettingsError(f"dropout must be in [0, 1), not {dropout}")


class DenseAE(AutoEncoder):
    def __init__(self, spec: InputSpec, hidden: tuple[int, ...], code: int, dropout: float) -> None:
        super().__init__()
        self.input = TabularInput(spec)
        self.cardinalities = tuple(spec.cardinalities) if not self.input.flatten else ()
        n_out = self.input.n_dense + sum(self.cardinalities)
        sizes = [self.input.out_features, *hidden, code]
        enc: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            enc += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        self.encoder = nn.Sequential(*enc[:-2])  # the code is linear
        back = [code, *reversed(hidden)]
        dec: list[nn.Module] = []
        for a, b in itertools.pairwise(back):
            dec += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        self.decoder = nn.Sequential(*dec, nn.Linear(back[-1], n_out))

    def target(self, x: torch.Tensor) -> torch.Tensor:
        if self.input.flatten:
            return x.flatten(1)
        n = self.input.n_dense
        codes = x[:, n:].long()  # [B, n_categorical]
        onehots = [F.one_hot(codes[:, i], k).to(x.dtype) for i, k in enumerate(self.cardinalities)]
        return torch.cat([x[:, :n], *onehots], dim=1)  # [B, n_dense + Σ cardinalities]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(self.input(x)))


class ConvAE(AutoEncoder):
    """Images [B, C, H, W] (dims=2) or sequences [B, T, C] (dims=1, channels moved first)."""

    def __init__(self, channels: int, size: tuple[int, ...], widths: tuple[int, ...], code: int,
                 dims: int) -> None:
        super().__init__()
        conv, deconv = (nn.Conv2d, nn.ConvTranspose2d) if dims == 2 else (nn.Conv1d, nn.ConvTranspose1d)
        self.dims, self.size = dims, tuple(size)
        enc, c_in, shrunk = [], channels, list(size)
        for w in widths:  # each halves the map (rounding up)
            enc += [conv(c_in, w, 3, stride=2, padding=1), nn.ReLU()]
            c_in, shrunk = w, [math.ceil(s / 2) for s in shrunk]
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.shrunk = (c_in, *shrunk)
        flat = math.prod(self.shrunk)
        self.code = nn.Linear(flat, code)
        self.uncode = nn.Sequential(nn.Linear(code, flat), nn.ReLU())
        dec: list[nn.Module] = []
        outs = [*reversed(widths[:-1]), channels]
        for i, w in enumerate(outs):  # each doubles the map
            dec.append(deconv(c_in, w, 4, stride=2, padding=1))
            if i < len(outs) - 1:
                dec.append(nn.ReLU())
            c_in = w
        self.decoder = nn.Sequential(*dec)

    def _channels_first(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2) if self.dims == 1 else x  # sequences: [B, T, C] → [B, C, T]

    def target(self, x: torch.Tensor) -> torch.Tensor:
        return self._channels_first(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        z = self.code(self.encoder(self._channels_first(x)))  # [B, code]
        out = self.decoder(self.uncode(z).reshape(-1, *self.shrunk))  # [B, C, ≥H, ≥W]
        return out[..., : self.size[0]] if self.dims == 1 else out[..., : self.size[0], : self.size[1]]


@register("dense_ae", modalities=TABLE_FIRST, tasks=ANOMALY)
def dense_ae(input_spec: InputSpec, output_spec: OutputSpec, *, hidden: tuple[int, ...] = (64, 32),
             code: int = 4, dropout: float = 0.0) -> DenseAE:
    _check(hidden, code, dropout)
    return DenseAE(input_spec, hidden, code, dropout)


@register("conv_ae", modalities=("image",), tasks=ANOMALY)
def conv_ae(input_spec: InputSpec, output_spec: OutputSpec, *, widths: tuple[int, ...] = (16, 32),
            code: int = 16) -> ConvAE:
    _check(widths, code, 0.0)
    channels, h, w = input_spec.shape
    return ConvAE(channels, (h, w), widths, code, dims=2)


@register("conv1d_ae", modalities=("sequence",), tasks=ANOMALY)
def conv1d_ae(input_spec: InputSpec, output_spec: OutputSpec, *, widths: tuple[int, ...] = (16, 32),
              code: int = 8) -> ConvAE:
    _check(widths, code, 0.0)
    steps, channels = input_spec.shape
    return ConvAE(channels, (steps,), widths, code, dims=1)
