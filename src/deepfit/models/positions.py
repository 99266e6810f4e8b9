"""Sinusoidal position encodings (Vaswani et al. 2017, "Attention Is All You Need"), shared by
the sequence and text transformers (models/sequence.py, models/text.py)."""

from __future__ import annotations

import math

import torch


def sinusoidal_positions(length: int, width: int) -> torch.Tensor:
    """[1, length, width]: sin on the even dimensions, cos on the odd (Vaswani et al. 2017)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return table[None]
