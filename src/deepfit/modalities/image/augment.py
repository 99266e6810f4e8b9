"""Augmentation of whole training batches on the training device, with torchvision.transforms.v2.

    none     nothing
    light    random crop with padding (reflected, 1/8 of the side: 1 px for 8×8 digits, 4 for 32×32)
    strong   light + random rotation within ±10° + colour jitter (brightness, contrast, saturation
             0.2, RGB images only)
    flip     (--flip, with light or strong) random horizontal flips as well; off by default: they
             turn digits and text into other symbols

The Trainer applies it to each training batch, after the batch is on the device and before the
forward pass (`Trainer(augment=...)`); validation, test and predictions never see it.

v2 transforms draw one set of random parameters per call, so a batch is cut into `groups` groups
(8 by default; fewer when the batch is smaller) and each group gets its own crop offsets, flip and
angle: per-group rather than per-sample randomness, at the cost of 8 small calls per batch.
The parameters come from the global torch generator, which checkpoints save: a resumed run
augments exactly as the uninterrupted one. Colour jitter works on values in [0, 1]: the batch
(standardised per channel) is mapped back to that range around it.
"""

from __future__ import annotations

import torch

from deepfit.errors import SettingsError

LEVELS = ("none", "light", "strong")
GROUPS = 8
ROTATION = 10.0  # degrees, strong
JITTER = 0.2  # brightness, contrast, saturation, strong (RGB)


class BatchAugment:
    """x [B, C, H, W] (standardised) → augmented x, same shape, on the same device."""

    def __init__(self, transform: torch.nn.Module, mean: list[float], std: list[float],
                 unit_range: bool, description: str, groups: int = GROUPS) -> None:
        self.transform, self.groups, self.description = transform, groups, description
        self.unit_range = unit_range  # map to [0, 1] around the transform (colour jitter)
        self.mean = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[None, :, None, None]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.unit_range:
            mean, std = self.mean.to(x.device), self.std.to(x.device)
            x = x * std + mean  # [0, 1]
        parts = [self.transform(chunk) for chunk in x.tensor_split(min(self.groups, len(x)))]
        x = torch.cat(parts)
        if self.unit_range:
            x = (x.clamp(0.0, 1.0) - mean) / std
        return x

    def __repr__(self) -> str:
        return f"BatchAugment({self.description})"


def make_augment(level: str, flip: bool, shape: tuple[int, int, int], mean: list[float],
                 std: list[float], unit_range: bool = True,
                 groups: int = GROUPS) -> BatchAugment | None:
    """The augmentation of `level` for images of `shape` (C, H, W) standardised with `mean` and
    `std`; None for "none". `unit_range`: the images' raw values are in [0, 1] (colour jitter
    needs it)."""
    from torchvision.transforms import v2  # here: importing torchvision takes seconds

    if level not in LEVELS:
        raise SettingsError(f"augment must be one of {', '.join(LEVELS)}, not {level!r}")
    if level == "none":
        return None
    c, h, w = shape
    pad = max(1, round(min(h, w) / 8))
    steps: list[torch.nn.Module] = []
    said = []
    if pad < min(h, w):  # reflected padding needs more pixels than it adds
        steps.append(v2.RandomCrop((h, w), padding=pad, padding_mode="reflect"))
        said.append(f"random crop with {pad} px reflected padding")
    else:
        said.append(f"no random crop ({h}×{w} px images are too small to pad by reflection)")
    if flip:
        steps.append(v2.RandomHorizontalFlip())
        said.append("horizontal flip")
    jitter = level == "strong" and c == 3 and unit_range
    if level == "strong":
        steps.append(v2.RandomRotation(ROTATION))
        said.append(f"rotation within ±{ROTATION:g}°")
    if jitter:
        steps.append(v2.ColorJitter(brightness=JITTER, contrast=JITTER, saturation=JITTER))
        said.append(f"colour jitter {JITTER:g}")
    description = f"{level}: {', '.join(said)}; per group of 1/{groups} batch"
    return BatchAugment(v2.Compose(steps) if steps else v2.Identity(), mean, std, jitter, description,
                        groups)
