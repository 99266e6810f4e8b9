"""advise --need-interpretability: the checklist item answered with evidence, not only the
rule. Two questions, measured on the bake-off's own test rows:

    does a small number of columns carry the importance?   the network's permutation importance
        (tools/explain/importance.py) of each original column, and the share of the total held
        by the top 3 (where the data have columns: Modality.explain_parts().columns)
    does an interpretable model come close?                 the network's test score against the
        best of its baselines (gradient boosting and the linear model, text's TF-IDF; rules.Gap: clearly ahead, or not)
"""

from __future__ import annotations

from typing import Any

from deepfit.tools.advise.rules import Evidence
from deepfit.tools.explain.importance import permutation_importance

FEW = 3  # the "small number of columns"
CONCENTRATED = 0.8  # share of the total importance the top FEW hold to count as concentrated
REPEATS = 5


def interpretability_evidence(prepared: Any, full: dict[str, dict], ev: Evidence,
                              seed: int) -> dict[str, Any]:
    """{importance (None without columns), top3_share, concentrated, baseline_close, text}:
    `full`: the bake-off's rows on all the training rows, by model (the network's carries its
    predictor); `ev`: the bake-off's evidence."""
    net = full[ev.net]
    predictor = net.get("predictor")
    importance, columns = None, None
    if predictor is not None:  # the network as it read the data (a table, or its rows as sequences)
        columns = predictor.modality.explain_parts().columns(predictor.preprocessor)
    if columns:
        X, y = prepared.test_frame
        importance = permutation_importance(predictor, X[columns], y, ev.metric, repeats=REPEATS, seed=seed)
    g = ev.net_vs_best
    close = not g.clear
    standing = ("matches or beats" if g.diff <= 0 else "comes close to") if close else "trails"
    text = [f"{ev.best_baseline} {standing} the network: {g.text(ev.metric)} "
            f"({', '.join(f'{k} {ev.scores[k]:.3f}' for k in (ev.net, *ev.names) if k in ev.scores)}); "
            + ("an interpretable model gives up little" if close
               else "an interpretable model would cost that score")]
    share = None
    if importance is not None:
        share = importance["top3_share"]
        top = ", ".join(f"{c['column']} {c['share']:.0%}" for c in importance["columns"][:FEW])
        text.append(f"the top {FEW} of {len(importance['columns'])} columns carry {share:.0%} of the "
                    f"network's permutation importance (drop in test {ev.metric}, {REPEATS} shuffles: "
                    f"{top}): " + ("a few columns explain the model" if share >= CONCENTRATED
                                   else "the importance is spread over many columns"))
    else:
        text.append(f"no per-column importance for {prepared.data.modality} data: `deepfit explain "
                    "RUN` draws integrated gradients of a trained run")
    return {"importance": importance, "top3_share": share,
            "concentrated": None if share is None else share >= CONCENTRATED,
            "baseline_close": close, "text": "; ".join(text)}
