"""The guide's matrix as a rule table, and how measured evidence overrides it (deepfit advise).

The rule of thumb, first matching row wins (`matrix`: the modality's rows, Modality.guide_rows):

    interpretability required             → linear_model   (or gradient boosting, if clearly better)
    images, < 10,000 labelled             → transfer_learning
    images or sequences, ≥ 10,000         → deep_learning
    sequences, < 10,000                   → try_both
    tabular, < 10,000                     → gradient_boosting  (linear_model if it ties)
    tabular, ≥ 10,000                     → try_both

Then the evidence of the bake-off (one split; the network and the modality's baselines on the
same rows: gradient boosting and a linear model, or for text TF-IDF + logistic regression;
paired bootstrap of the test-score difference):

    network clearly ahead of both baselines          → deep_learning, unless interpretability is
                                                        required or the rule said transfer_learning
    a baseline clearly ahead of the network          → that baseline, where the rule said
                                                        deep_learning or try_both
    one baseline clearly ahead of the other          → that one (between gradient_boosting and
                                                        linear_model verdicts)
    gradient boosting and linear within the noise    → linear_model (as good and simpler)
    a latency bound the verdict's model misses       → the best model that meets it
    one baseline only (text)                         → a reason saying whether it is as good as
                                                        the network ("TF-IDF + logistic regression
                                                        is as good: …") or the network clearly beats it

"Clearly ahead" is more than CLEAR_MARGIN (2 points of accuracy or r2) and more than
NOISE_SE standard errors of the paired bootstrap. Every step appends its reason, so the report
says why the verdict differs from the rule when it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deepfit.modalities import get_modality

THRESHOLDS = (1_000, 10_000, 100_000)  # the guide's labelled-row thresholds
CLEAR_MARGIN = 0.02
NOISE_SE = 2.0
VERDICTS = ("deep_learning", "gradient_boosting", "try_both", "transfer_learning", "linear_model")
BASELINE_VERDICT = {"gradient_boosting": "gradient_boosting", "linear": "linear_model",
                    "tfidf_linear": "linear_model"}

# (test(labelled rows, interpretability), verdict, the row as the report shows it): the first
# row, then the data's modality's own rows (Modality.guide_rows), then the last
INTERPRETABLE = (lambda n, interp: interp, "linear_model",
                 "interpretability required → a linear model (or gradient boosting, if clearly better)")
OTHERWISE = (lambda n, interp: True, "try_both",
             "no row of the guide for this data → try both: a network and gradient boosting")


def matrix(modality: str) -> list:
    """The guide's matrix for `modality`, in the order its rows are tried."""
    return [INTERPRETABLE, *get_modality(modality).guide_rows, OTHERWISE]


def matrix_row(modality: str, rows: int, interpretability: bool) -> tuple[str, str]:
    """(verdict, row text) of the first matching row of the guide's matrix."""
    return next((verdict, text) for test, verdict, text in matrix(modality)
                if test(rows, interpretability))


def row_band(rows: int) -> str:
    below = [t for t in THRESHOLDS if rows < t]
    above = [t for t in THRESHOLDS if rows >= t]
    parts = ([f"at least {above[-1]:,}"] if above else []) + ([f"below {below[0]:,}"] if below else [])
    return " and ".join(parts)


@dataclass
class Gap:
    """Score of `a` minus score of `b` on the same test rows, with its bootstrap standard error."""

    a: str
    b: str
    diff: float
    se: float

    @property
    def clear(self) -> bool:
        """a clearly ahead of b."""
        return self.diff > CLEAR_MARGIN and self.diff > NOISE_SE * self.se

    @property
    def tie(self) -> bool:
        return abs(self.diff) <= max(CLEAR_MARGIN, NOISE_SE * self.se)

    def text(self, metric: str) -> str:
        return f"{self.a} − {self.b} = {self.diff:+.3f} {metric} (± {self.se:.3f} bootstrap s.e.)"


def bootstrap_scores(task: str, target: np.ndarray, preds: list[np.ndarray], n: int = 500,
                     seed: int = 0, metric: str | None = None) -> np.ndarray:
    """[len(preds), n] scores on the same `n` resamples of the test rows: accuracy or r2 (the
    task's main metric), or for classification `metric` balanced_accuracy or f1_macro."""
    target = np.asarray(target).reshape(len(target), -1)
    idx = np.random.default_rng(seed).integers(0, len(target), (n, len(target)))
    t = target[idx]  # [n, N, k]
    out = []
    for p in preds:
        p = np.asarray(p).reshape(len(target), -1)[idx]
        if task == "classification" and metric in ("balanced_accuracy", "f1_macro"):
            out.append(_per_class_score(metric, p[..., 0], t[..., 0], np.unique(target)))
        elif task == "classification":
            out.append((p == t).mean(axis=(1, 2)))
        else:
            total = ((t - t.mean(axis=(1, 2), keepdims=True)) ** 2).sum(axis=(1, 2))
            out.append(1 - ((t - p) ** 2).sum(axis=(1, 2)) / np.where(total > 0, total, 1))
    return np.stack(out)


def _per_class_score(metric: str, p: np.ndarray, t: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Balanced accuracy (mean recall over the classes in each resample's targets) or macro F1
    (over the classes in its targets or predictions), scikit-learn's rules; p, t: [n, N] → [n]."""
    scores, counts = np.zeros(len(t)), np.zeros(len(t))
    for c in classes:
        actual, predicted = (t == c).sum(axis=1), (p == c).sum(axis=1)
        hits = ((t == c) & (p == c)).sum(axis=1)
        if metric == "balanced_accuracy":
            present, value = actual > 0, hits / np.maximum(actual, 1)
        else:
            present, value = actual + predicted > 0, 2 * hits / np.maximum(actual + predicted, 1)
        scores += np.where(present, value, 0.0)
        counts += present
    return scores / np.maximum(counts, 1)


def gap(task: str, target: np.ndarray, names: tuple[str, str], scores: tuple[float, float],
        preds: tuple[np.ndarray, np.ndarray], seed: int = 0, metric: str | None = None) -> Gap:
    boot = bootstrap_scores(task, target, list(preds), seed=seed, metric=metric)
    return Gap(names[0], names[1], scores[0] - scores[1], float(np.std(boot[0] - boot[1])))


@dataclass
class Evidence:
    """What the bake-off measured, at the full training split."""

    metric: str
    scores: dict[str, float]  # network name, gradient_boosting, linear → test score
    net: str
    net_vs_best: Gap  # the network against the better baseline
    gb_vs_linear: Gap | None  # None: the data's baselines are not these two (text: tfidf_linear)
    latency_ms: dict[str, float] = field(default_factory=dict)
    best_baseline: str = "gradient_boosting"
    # the baselines fitted (Modality.baseline_kinds), kind → plain words (baselines.describe)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> dict[str, str]:
        """The baselines in plain words (default: gradient boosting and the linear model)."""
        return self.labels or {"gradient_boosting": "gradient boosting", "linear": "a linear model"}

    @property
    def best_name(self) -> str:
        return self.names.get(self.best_baseline, self.best_baseline)


def decide(rule: str, ev: Evidence, interpretability: bool, latency_bound: float | None,
           ) -> tuple[str, list[str]]:
    """The verdict: the rule of thumb, overridden by clear evidence; with every reason."""
    verdict, reasons, m = rule, [f"the guide's matrix says {rule}"], ev.metric
    ahead, behind = ev.net_vs_best.clear, _flip(ev.net_vs_best).clear
    if ahead and rule in ("gradient_boosting", "linear_model", "try_both") and not interpretability:
        verdict = "deep_learning"
        reasons.append(f"the evidence wins: the network is clearly ahead of the best baseline "
                       f"({ev.net_vs_best.text(m)}), so the patterns are hard to hand-engineer "
                       f"and {rule} would leave that score behind")
    elif ahead and interpretability:
        reasons.append(f"the network is clearly ahead ({ev.net_vs_best.text(m)}); interpretability "
                       "was asked for, so that is the price of an explainable model")
    elif ahead and rule == "transfer_learning":
        reasons.append(f"the evidence agrees that a network pays off ({ev.net_vs_best.text(m)}); "
                       "with few labelled images a pretrained one is the better start")
    elif behind and rule in ("deep_learning", "try_both"):
        verdict = BASELINE_VERDICT[ev.best_baseline]
        reasons.append(f"the evidence wins: {ev.best_baseline} is clearly ahead of the network "
                       f"({_flip(ev.net_vs_best).text(m)})")
    elif behind and rule == "transfer_learning":
        reasons.append(f"a small network trained from scratch trails {ev.best_baseline} "
                       f"({_flip(ev.net_vs_best).text(m)}); a pretrained network usually closes "
                       "that gap on few images: check it with deepfit compare")
    elif not ahead and not behind:
        reasons.append(f"the network and the best baseline are within the noise ({ev.net_vs_best.text(m)})")
    if ev.gb_vs_linear is None:  # one baseline of its own (text's TF-IDF): say how it stands
        reasons.append(_own_baseline(ev, ahead, behind))
    if verdict in ("gradient_boosting", "linear_model"):
        verdict = _baseline_choice(verdict, ev, reasons)
    return _latency(verdict, ev, latency_bound, reasons), reasons


def _own_baseline(ev: Evidence, ahead: bool, behind: bool) -> str:
    """How the network stands against the data's one baseline, in words: "TF-IDF + logistic
    regression is as good: …", or better, or "the network clearly beats TF-IDF …"."""
    name, text = ev.best_name, ev.net_vs_best.text(ev.metric)
    if ahead:
        return (f"the network clearly beats {name} ({text}): it finds more in these texts than "
                "which words occur (their order or context), or makes better use of few of them")
    if behind:
        return (f"{name} is as good, and better: clearly ahead of the network ({_flip(ev.net_vs_best).text(ev.metric)}); "
                "it is simpler, faster and easier to explain")
    return (f"{name} is as good: the network does not clearly beat it ({text}); it is simpler, "
            "faster and easier to explain")


def baseline_for(verdict: str, scores: dict) -> str:
    """The baseline kind a baseline verdict means, among those fitted (`scores`' keys):
    gradient_boosting, linear, or tfidf_linear for text's linear model."""
    kinds = [k for k, v in BASELINE_VERDICT.items() if v == verdict and k in scores]
    return kinds[0] if kinds else ("gradient_boosting" if verdict == "gradient_boosting" else "linear")


def _baseline_choice(verdict: str, ev: Evidence, reasons: list[str]) -> str:
    g = ev.gb_vs_linear
    if g is None:
        return verdict
    if g.clear:
        if verdict != "gradient_boosting":
            reasons.append(f"gradient boosting is clearly ahead of the linear model ({g.text(ev.metric)})")
        return "gradient_boosting"
    if _flip(g).clear:
        if verdict != "linear_model":
            reasons.append(f"the linear model is clearly ahead of gradient boosting ({_flip(g).text(ev.metric)})")
        return "linear_model"
    if g.tie:
        reasons.append(f"gradient boosting and the linear model tie within the noise "
                       f"({g.text(ev.metric)}): the linear model is as good and simpler")
        return "linear_model"
    return verdict


def _latency(verdict: str, ev: Evidence, bound: float | None, reasons: list[str]) -> str:
    if bound is None or not ev.latency_ms:
        return verdict
    model = ev.net if verdict in ("deep_learning", "try_both") else (
        baseline_for(verdict, ev.scores) if verdict in BASELINE_VERDICT.values() else None)
    if model is None or ev.latency_ms.get(model, 0.0) <= bound:
        return verdict
    meeting = [k for k in ev.names if ev.latency_ms.get(k, np.inf) <= bound]
    if not meeting:
        reasons.append(f"no model measured meets the {bound:g} ms latency bound; {verdict} kept")
        return verdict
    best = max(meeting, key=lambda k: ev.scores[k])
    reasons.append(f"{model} takes {ev.latency_ms[model]:.3g} ms per sample, over the {bound:g} ms "
                   f"bound; {best} meets it ({ev.latency_ms[best]:.3g} ms)")
    return BASELINE_VERDICT[best]


def _flip(g: Gap) -> Gap:
    return Gap(g.b, g.a, -g.diff, g.se)


__all__ = [
    "THRESHOLDS",
    "VERDICTS",
    "Evidence",
    "Gap",
    "baseline_for",
    "bootstrap_scores",
    "decide",
    "gap",
    "matrix",
    "matrix_row",
    "row_band",
]
