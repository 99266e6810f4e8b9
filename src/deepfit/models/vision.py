"""The interface every image model shares, so that transfer learning, checks and export need no
per-model code.

    x [B, C, H, W] ─► forward_features ─► [B, num_features] ─► forward_head ─► [B, n_outputs]

    reset_head(n)    a new Linear head for n outputs (timm's name, `reset_classifier`, also works)
    param_groups()   [(name, [parameters])] ordered from the input to the head ("head" last):
                     the units of gradual unfreezing and of discriminative learning rates
    pinned           settings resolved from the input (a ResNet's stem, say) that a model built
                     for other inputs must keep to take these weights

`layer_groups` cuts any module into such groups (used for torchvision models taken as they are).
"""

from __future__ import annotations

import torch
from torch import nn

from deepfit.errors import SettingsError
from deepfit.models.base import HeadModel
from deepfit.models.registry import InputSpec

MIN_GROUP_SHARE = 0.01  # a group with fewer parameters than this share joins the next one
MIN_GROUPS = 4  # a body cut into fewer top-level groups is cut one level deeper


class ImageModel(HeadModel):
    """Subclasses set `body` ([B, C, H, W] → [B, num_features]), `head` and `num_features`."""

    body: nn.Module
    pinned: dict = {}  # noqa: RUF012  (a subclass sets its own)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # [B, num_features]

    def param_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        return [*layer_groups(self.body), ("head", list(self.head.parameters()))]


def image_shape(spec: InputSpec) -> tuple[int, int, int]:
    """(C, H, W) of an image input spec."""
    if len(spec.shape) != 3:  # one [C, H, W] sample
        raise SettingsError(f"an image model needs [C, H, W] images, not {spec.modality} data "
                            f"of shape {list(spec.shape)}")
    c, h, w = spec.shape
    return int(c), int(h), int(w)


def check_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise SettingsError(f"dropout must be in [0, 1), not {dropout}")


def layer_groups(module: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """`module`'s parameters as groups ordered from the input: its children with parameters, in
    the order they were defined; the largest child is cut into its own children while there are
    fewer than MIN_GROUPS groups; a group under MIN_GROUP_SHARE of the parameters (a stem's
    BatchNorm, say) joins the next (at the end, a final norm, the one before). Parameters held
    by a module itself (a ViT's class token, its position embedding) go with its first child's
    group."""
    groups = _children(module, "")
    while len(groups) < MIN_GROUPS:
        sizes = [sum(p.numel() for p in params) if child is None else _count(child)
                 for _, child, params in groups]
        i = max(range(len(groups)), key=sizes.__getitem__)
        name, child, own = groups[i]
        inner = _children(child, name + ".") if child is not None else []
        if len(inner) < 2:
            break
        inner[0] = (inner[0][0], inner[0][1], own + inner[0][2])
        groups[i : i + 1] = inner
    flat = [(name, own + (list(child.parameters()) if child is not None else []))
            for name, child, own in groups]
    return _merge_small([(n, p) for n, p in flat if p])


def _children(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module | None, list]]:
    """(name, child, parameters held directly by `module` that go with it)."""
    own = list(module.parameters(recurse=False))
    out = [(prefix + name, child, []) for name, child in module.named_children() if _count(child)]
    if not out:
        return [(prefix.rstrip(".") or "body", None, own)] if own else []
    out[0] = (out[0][0], out[0][1], own)
    return out


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _merge_small(groups: list[tuple[str, list]]) -> list[tuple[str, list]]:
    total = sum(p.numel() for _, params in groups for p in params) or 1
    merged: list[tuple[list[str], list]] = []
    carry: tuple[list[str], list] = ([], [])
    for name, params in groups:
        names, held = carry[0] + [name], carry[1] + params
        small = sum(p.numel() for p in held) < MIN_GROUP_SHARE * total
        carry = (names, held) if small else ([], [])
        if not small:
            merged.append((names, held))
    if carry[0]:  # small groups at the end (a final norm) join the group before
        if merged:
            merged[-1] = (merged[-1][0] + carry[0], merged[-1][1] + carry[1])
        else:
            merged.append(carry)
    return [("+".join(names), params) for names, params in merged]
