"""What a study shows: the leaderboard of trials, parameter importances (Optuna's fANOVA), the
optimisation history and a parallel-coordinate plot (optuna.visualization.matplotlib), and the
`deepfit train` command that reproduces the best trial; written as tune.json and tune.html."""

from __future__ import annotations

import html
import shlex
import warnings
from pathlib import Path
from typing import Any

from deepfit.config import DataConfig, TrainConfig, field_names
from deepfit.core.io import write_json, write_text

FLAG_OFF = {"checkpoint": "--no-checkpoint", "report": "--no-report"}


def leaderboard(study: Any, direction: str) -> list[dict[str, Any]]:
    """Every trial as a plain row, the best value first (pruned and failed ones after)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"trial": t.number, "state": t.state.name.lower(), "value": t.value,
                     "defaults": bool(t.user_attrs.get("deepfit:defaults")), "params": dict(t.params),
                     "epochs": t.user_attrs.get("epochs_run"),
                     "seconds": t.duration.total_seconds() if t.duration else None,
                     "run_dir": t.user_attrs.get("run_dir")})
    sign = -1 if direction == "maximize" else 1
    return sorted(rows, key=lambda r: (r["state"] != "complete", r["value"] is None,
                                       sign * (r["value"] if r["value"] is not None else 0)))


def importances(study: Any, names: list[str]) -> tuple[dict[str, float] | None, str | None]:
    """fANOVA importances (Hutter et al. 2014, Optuna's evaluator) of the searched settings
    `names` over the complete trials that drew them all, or None and why not. The names are
    given because the defaults trial draws none: Optuna's own default, the settings common to
    every trial, would then be empty."""
    import optuna

    complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if set(names) <= set(t.params)]
    if not names:
        return None, "no importances: no setting was searched"
    if len(complete) < 2:
        return None, (f"no importances: {len(complete)} complete trial{'s' * (len(complete) != 1)} "
                      "drew the searched settings (at least 2 needed)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(
                study, params=list(names), evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
        return {k: float(v) for k, v in found.items()}, None
    except (ValueError, RuntimeError) as exc:
        return None, f"no importances: {exc}"


def plots(study: Any, directory: Path) -> dict[str, str]:
    """plots/history.png and plots/parallel.png (Optuna's matplotlib visualisations)."""
    import matplotlib

    matplotlib.use("Agg")
    import optuna.visualization.matplotlib as vis

    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, draw in (("history", vis.plot_optimization_history),
                       ("parallel", vis.plot_parallel_coordinate)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = draw(study)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.set_size_inches(8, 4.5)
            tmp = directory / f".{name}.tmp.png"
            fig.savefig(tmp, dpi=90, bbox_inches="tight")
            tmp.replace(directory / f"{name}.png")  # written whole, then renamed
            import matplotlib.pyplot as plt

            plt.close(fig)
            written[name] = str(directory / f"{name}.png")
        except (ValueError, RuntimeError):  # too few trials for the plot
            continue
    return written


def train_command(source: Any, settings: dict[str, Any]) -> str:
    """The `deepfit train` command line with these settings: data and training settings as
    their flags, model settings as --set KEY=VALUE."""
    known = set(field_names(DataConfig)) | set(field_names(TrainConfig))
    parts = ["deepfit", "train", str(source)]
    for key, value in settings.items():
        if value is None or key in ("progress", "evaluate_test"):
            continue
        if key == "model":
            parts += ["--model", str(value)]
        elif key in known and isinstance(value, bool):
            if value and key not in FLAG_OFF:
                parts.append(f"--{key.replace('_', '-')}")
            elif not value and key in FLAG_OFF:
                parts.append(FLAG_OFF[key])
        elif key in known:
            parts += [f"--{key.replace('_', '-')}", _text(value)]
        else:
            parts += ["--set", f"{key}={_text(value)}"]
    return shlex.join(parts)


def _num(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def _text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write(result: dict[str, Any], out: Path) -> None:
    """tune.json and tune.html in the study folder."""
    write_json(out / "tune.json", result)
    rows = "".join(
        f"<tr><td>{r['trial']}{' (defaults)' if r['defaults'] else ''}</td><td>{r['state']}</td>"
        f"<td>{_num(r['value'], '.5g')}</td>"
        f"<td>{html.escape(', '.join(f'{k}={_text(v)}' for k, v in r['params'].items()))}</td>"
        f"<td>{r['epochs'] or ''}</td><td>{_num(r['seconds'], '.1f')}</td></tr>"
        for r in result["leaderboard"])
    imp = "".join(f"<li>{html.escape(k)}: {v:.3f}</li>" for k, v in (result["importances"] or {}).items())
    images = "".join(f'<p><img src="plots/{Path(p).name}" alt="{k}"></p>' for k, p in result["plots"].items())
    test = "".join(f"<li>{html.escape(k)}: {v:.4f}</li>" for k, v in result["test_metrics"].items()
                   if isinstance(v, float))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>deepfit tune</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td,th{{padding:2px 8px}}</style></head><body>
<h1>deepfit tune: {html.escape(str(result['source']))}</h1>
<p>{len(result['leaderboard'])} trials, {result['pruned']} pruned; {html.escape(result['metric'])}
({result['direction']}) on the validation split; {html.escape(result['verdict'])}</p>
<p>best trial {result['best_trial']}: {html.escape(result['best_run'])}</p>
<p>test split (evaluated once, best trial only):</p><ul>{test}</ul>
<p>reproduce: <code>{html.escape(result['command'])}</code></p>
<h2>Leaderboard</h2><table><tr><th>trial</th><th>state</th><th>value</th><th>settings</th>
<th>epochs</th><th>seconds</th></tr>{rows}</table>
<h2>Parameter importances (fANOVA)</h2><ul>{imp or html.escape(result['importances_note'] or '')}</ul>
{images}</body></html>"""
    write_text(out / "tune.html", page)
