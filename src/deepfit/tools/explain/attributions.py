"""Integrated gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep
Networks"; Captum's `IntegratedGradients`) of a run's model on held-out samples, with the two
checks that say whether to trust them:

    completeness    the attributions of a sample sum to F(x) − F(baseline) (Captum's
                    convergence delta is the difference; reported relative to |F(x) − F(baseline)|)
    randomisation   the model-randomisation test (Adebayo et al. 2018, "Sanity Checks for
                    Saliency Maps"): the same architecture with re-initialised weights gives
                    attributions; their Spearman rank correlation with the trained model's
                    |attributions| (per sample, over the units reported, then the mean) must be
                    low, or the explanation shows the input's structure, not what was learned

F is the model's raw output for the target: the logit of the class the trained model predicts
(classification), or the first output in standardised units (regression). The baseline is the
training mean of every input: zeros after the fitted standardisation (a table's one-hot and
missing-indicator slots at 0 too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from deepfit.core.extras import import_extra
from deepfit.models import InputSpec, OutputSpec, create

N_STEPS = 64  # points of the path integral (Gauss–Legendre, Captum's default method)
INTERNAL_BATCH = 512  # rows of one forward pass along the path
SIMILAR = 0.5  # a mean Spearman correlation at or above this fails the randomisation test
BASELINE_WORDS = ("the training mean of every input (0 after the fitted standardisation; a "
                  "table's one-hot and missing-indicator slots at 0)")


@dataclass
class Attributions:
    """values [N, *input] (the attributable slots; others 0), delta [N] (Captum's convergence
    delta), output_change [N]: F(x) − F(baseline)."""

    values: np.ndarray
    delta: np.ndarray
    output_change: np.ndarray


def integrated_gradients(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor | int,
                         attributable: int | None = None, n_steps: int = N_STEPS) -> Attributions:
    """Captum's IntegratedGradients of `model` at `inputs` [N, *input] from a zero baseline,
    for output `target` ([N] class codes, or one output index). With `attributable`, only the
    first `attributable` slots of flat inputs [N, F] are integrated; the rest (a table's
    category indices) are held at their values. Raises MissingExtraError without captum."""
    attr = import_extra("captum.attr", "explain", "deepfit explain")
    model = model.eval()
    x = inputs.detach().float()
    held = None
    if attributable is not None and attributable < x.shape[1]:
        x, held = x[:, :attributable], x[:, attributable:]

    def forward(part: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        out = model(torch.cat([part, rest[0]], dim=1) if rest else part)
        return out.reshape(len(out), -1)

    extra = (held,) if held is not None else None
    baseline = torch.zeros_like(x)
    values, delta = attr.IntegratedGradients(forward).attribute(
        x, baselines=baseline, target=target, additional_forward_args=extra, n_steps=n_steps,
        internal_batch_size=INTERNAL_BATCH, return_convergence_delta=True)
    with torch.no_grad():
        args = (held,) if held is not None else ()
        index = target if isinstance(target, int) else target.reshape(-1, 1)
        pick = (lambda out: out[:, index]) if isinstance(target, int) else (lambda out: out.gather(1, index)[:, 0])
        change = pick(forward(x, *args)) - pick(forward(baseline, *args))
    if held is not None:
        values = torch.cat([values, torch.zeros_like(held)], dim=1)
    return Attributions(values.detach().numpy(), delta.detach().numpy(), change.numpy())


def completeness(found: Attributions) -> dict[str, Any]:
    """How far the samples' attributions are from summing to F(x) − F(baseline): the largest
    |delta| and, relative, the largest |delta| over the mean |F(x) − F(baseline)| of the
    samples (a sample whose output barely moves from the baseline's would make its own ratio
    meaningless)."""
    delta, change = np.abs(found.delta), np.abs(found.output_change)
    scale = float(change.mean()) if len(change) else 0.0
    largest = float(delta.max(initial=0.0))
    return {"max_abs_delta": largest, "mean_abs_delta": float(delta.mean()) if len(delta) else 0.0,
            "mean_abs_output_change": scale, "max_relative_delta": largest / max(scale, 1e-12),
            "text": "sum of attributions − (F(x) − F(baseline)) (Captum's convergence delta); "
                    "relative: the largest |delta| over the mean |F(x) − F(baseline)|"}


def reinitialised(architecture: dict[str, Any], seed: int) -> nn.Module:
    """The run's architecture with freshly initialised weights (PyTorch's default
    initialisation, seeded), in eval mode: the model of the randomisation test."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create(architecture["name"], InputSpec.from_dict(architecture["input_spec"]),
                       OutputSpec(**architecture["output_spec"]), **architecture["settings"])
    return model.eval()


def rank_similarity(trained: np.ndarray, random: np.ndarray) -> dict[str, Any]:
    """The Spearman rank correlation of |trained| and |random| per sample (units flattened;
    NaN units, which nothing attributes, left out; a constant sample skipped), and their mean."""
    from scipy.stats import spearmanr

    per_sample = []
    for a, b in zip(trained.reshape(len(trained), -1), random.reshape(len(random), -1)):
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = np.abs(a[keep]), np.abs(b[keep])
        if len(a) >= 2 and np.ptp(a) > 0 and np.ptp(b) > 0:
            per_sample.append(float(spearmanr(a, b).statistic))
    mean = float(np.mean(per_sample)) if per_sample else float("nan")
    passed = bool(np.isfinite(mean) and mean < SIMILAR)
    return {"test": "model randomisation (Adebayo et al. 2018): integrated gradients of the same "
                    "architecture with re-initialised weights",
            "spearman_abs": mean, "samples": len(per_sample), "threshold": SIMILAR, "passed": passed,
            "text": _sanity_words(mean, passed)}


def _sanity_words(mean: float, passed: bool) -> str:
    if not np.isfinite(mean):
        return "randomisation test not measured (no sample with varying attributions)"
    if passed:
        return (f"rank correlation of |attributions| with a re-initialised model's {mean:.2f} (below "
                f"{SIMILAR:g}): the explanation depends on what the model learned")
    return (f"rank correlation of |attributions| with a re-initialised model's {mean:.2f} (at or "
            f"above {SIMILAR:g}): a model that learned nothing is explained almost alike, so these "
            "attributions show the inputs' structure more than what was learned; do not trust them")


__all__ = ["BASELINE_WORDS", "Attributions", "completeness", "integrated_gradients",
           "rank_similarity", "reinitialised"]
