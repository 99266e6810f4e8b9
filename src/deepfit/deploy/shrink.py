"""The three ways `deepfit compress` makes a model smaller, each from a trained run's Predictor
and its training split (re-prepared exactly: deploy/compress.py), each returning a new Predictor
and the fine-tune's TrainState (empty for quantisation):

    quantize   dynamic int8 quantisation of Linear/LSTM/GRU layers for the CPU
               (torch.ao.quantization.quantize_dynamic; models/quantized.py saves and reloads it)
    prune      global magnitude pruning (torch.nn.utils.prune.global_unstructured with L1
               unstructured: the smallest |w| of all prunable weights together set to 0), a short
               fine-tune with the masks on, then prune.remove so the zeros are plain weights
    distill    knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in
               a Neural Network"): a student of the same family with half the widths, trained on
               the soft targets of the teacher at temperature T (KL · T²) mixed with the hard
               labels' cross-entropy, through deepfit's Trainer with DistillationLoss
Fine-tunes run deepfit's Trainer with early stopping on the validation split and the best
weights restored; the loop itself is not copied.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepfit.checks.before_training import has_batchnorm
from deepfit.core.notes import Notes
from deepfit.data.batches import make_batches
from deepfit.data.dataset import Streamed
from deepfit.errors import SettingsError
from deepfit.evaluation.metrics import metric_fn, mode_of
from deepfit.lifecycle.predictor import Predictor
from deepfit.models import InputSpec, OutputSpec, create, resolve_settings
from deepfit.models.quantized import DYNAMIC_INT8, quantize_int8
from deepfit.training import imbalance as imb
from deepfit.training.callbacks import EarlyStopping, NonFiniteGuard, RestoreBestWeights
from deepfit.training.optim import create_optimizer
from deepfit.training.state import Monitor, TrainState, seed_everything
from deepfit.training.trainer import Trainer

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)  # their `weight`; biases and norms are kept
WIDTH_KEYS = ("hidden", "widths", "width", "inner")  # the settings distill halves


def quantize(teacher: Predictor) -> tuple[Predictor, TrainState]:
    """The run's model with its Linear, LSTM and GRU layers in int8 (CPU)."""
    model = quantize_int8(teacher.model)
    architecture = {**teacher.architecture, "quantization": DYNAMIC_INT8}
    return _like(teacher, model, architecture), TrainState()


def prune(teacher: Predictor, prepared: Any, cfg: Any, sparsity: float, epochs: int
          ) -> tuple[Predictor, TrainState]:
    """`sparsity` of the weights of every Linear and Conv layer together set to zero by
    magnitude, fine-tuned `epochs` epochs with the mask held, then made permanent."""
    from torch.nn.utils import prune as torch_prune

    if not 0.0 < sparsity < 1.0:
        raise SettingsError(f"sparsity must be in (0, 1), not {sparsity}")
    model = copy.deepcopy(teacher.model).cpu()
    targets = [(m, "weight") for m in model.modules() if isinstance(m, PRUNABLE)]
    if not targets:
        raise SettingsError(f"{teacher.architecture['name']} has no Linear or Conv layer to prune")
    torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured, amount=sparsity)
    loss = imb.loss_for(prepared.data.task, prepared.imbalance, cfg.train.focal_gamma)
    state = fine_tune(model, prepared, cfg, loss, prepared.tensors["train"][1], epochs)
    for module, name in targets:  # the mask into the weights: a plain model again
        torch_prune.remove(module, name)
    architecture = {**teacher.architecture, "pruned": {"method": "global_l1_unstructured",
                                                        "sparsity": sparsity}}
    return _like(teacher, model.eval(), architecture), state


def sparsity_of(model: nn.Module) -> float:
    """The share of zeros among the weights prune touches (Linear and Conv layers)."""
    weights = [m.weight for m in model.modules() if isinstance(m, PRUNABLE)]
    total = sum(w.numel() for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / max(total, 1))


def student_settings(name: str, settings: dict[str, Any], given: dict[str, Any] | None) -> dict:
    """The student's settings: those given, else the teacher's with every width halved
    (WIDTH_KEYS, at least 1; 0 keeps meaning "the default"). SettingsError when the family has
    no width to halve and none are given."""
    if given:
        return resolve_settings(name, {**settings, **given})
    halved = {k: _half(v) for k, v in settings.items() if k in WIDTH_KEYS}
    if not halved:
        raise SettingsError(f"{name} has no width setting to halve for a student; give the "
                            "student's settings (student={...}, or --student-set KEY=VALUE)")
    return resolve_settings(name, {**settings, **halved})


def _half(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [max(1, int(v) // 2) for v in value]
    return max(1, int(value) // 2) if value else value


def distill(teacher: Predictor, prepared: Any, cfg: Any, *, temperature: float, alpha: float,
            epochs: int, student: dict[str, Any] | None = None) -> tuple[Predictor, TrainState]:
    """A student of the teacher's family (half its widths, or `student`'s settings) trained on
    the training split: classification on alpha · KL(teacher_T ‖ student_T) · T² + (1 − alpha)
    · CE(labels); regression on the targets blended alpha · teacher + (1 − alpha) · truth (the
    same gradient as the two squared errors weighted so)."""
    if temperature <= 0 or not 0.0 <= alpha <= 1.0:
        raise SettingsError(f"temperature must be > 0 and alpha in [0, 1], not {temperature} and {alpha}")
    arch = teacher.architecture
    settings = student_settings(arch["name"], arch["settings"], student)
    seed_everything(cfg.train.seed)
    model = create(arch["name"], InputSpec.from_dict(arch["input_spec"]),
                   OutputSpec(**arch["output_spec"]), **settings)
    X, y = prepared.tensors["train"]
    soft = _teacher_outputs(teacher.model, X, cfg.train.batch_size)  # [N, K], once, in eval mode
    if prepared.data.task == "classification":
        targets = torch.cat([y[:, None].double(), soft.double()], dim=1)  # [N, 1 + C]: code, logits
        loss: nn.Module = DistillationLoss(temperature, alpha)
    else:
        targets = (alpha * soft.reshape(y.shape) + (1 - alpha) * y).to(y.dtype)
        loss = imb.loss_for(prepared.data.task, None)
    state = fine_tune(model, prepared, cfg, loss, targets, epochs)
    architecture = {**arch, "settings": settings,
                    "distilled": {"teacher_settings": arch["settings"], "temperature": temperature,
                                  "alpha": alpha}}
    return _like(teacher, model.eval(), architecture), state


class DistillationLoss(nn.Module):
    """Hinton et al. (2015): alpha · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − alpha) ·
    CE(s, labels), on targets [N, 1 + C] (the class code, then the teacher's logits). On targets
    [N] of class codes alone (the validation split) it is the plain cross-entropy, so the
    validation loss and early stopping measure the student as the original was measured."""

    def __init__(self, temperature: float, alpha: float) -> None:
        super().__init__()
        self.temperature, self.alpha = temperature, alpha

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == 1:
            return F.cross_entropy(logits, target.long())
        codes, teacher = target[:, 0].long(), target[:, 1:].to(logits.dtype)
        T = self.temperature
        soft = F.kl_div(F.log_softmax(logits / T, dim=1), F.log_softmax(teacher / T, dim=1),
                        reduction="batchmean", log_target=True) * T * T
        return self.alpha * soft + (1 - self.alpha) * F.cross_entropy(logits, codes)


@torch.no_grad()
def _teacher_outputs(model: nn.Module, X: Any, batch: int) -> torch.Tensor:
    if isinstance(X, Streamed):
        raise SettingsError("distill needs the training images in memory; this run streamed "
                            "them from a folder (--loader memory)")
    model.eval()
    step = max(batch, 256)
    return torch.cat([model(X[i : i + step]).float() for i in range(0, len(X), step)])


def fine_tune(model: nn.Module, prepared: Any, cfg: Any, loss: nn.Module, y_train: torch.Tensor,
              epochs: int) -> TrainState:
    """`epochs` epochs of deepfit's Trainer on the training split (its targets `y_train`), on
    the CPU with the run's batch size, learning rate and monitor; early stopping on the
    validation split with the best weights restored."""
    if epochs < 1:
        raise SettingsError(f"epochs must be at least 1, not {epochs}")
    t = dataclasses.replace(cfg.train, weights=None)  # one parameter group: no transfer stages
    device = torch.device("cpu")
    X, _ = prepared.tensors["train"]
    kw = {"loader": "memory", "seed": t.seed, "device": device,
          "transform": prepared.preprocessor.standardise if isinstance(X, Streamed) else None}
    train = make_batches(X, y_train, t.batch_size, shuffle=True, drop_single=has_batchnorm(model), **kw)
    val = make_batches(*prepared.tensors["val"], t.batch_size, shuffle=False, **kw)
    trainer = Trainer(model, loss, create_optimizer(model, t, device), epochs=epochs, device=device,
                      clip_norm=t.clip_norm, monitor=Monitor(t.monitor, mode_of(t.monitor), t.min_delta),
                      metrics=metric_fn(prepared.data.task, prepared.target.mean, prepared.target.std),
                      callbacks=[EarlyStopping(t.patience), RestoreBestWeights(), NonFiniteGuard()],
                      augment=_augment(prepared, cfg))
    return trainer.fit(train, val)


def _augment(prepared: Any, cfg: Any) -> Any:
    from deepfit.modalities import get_modality

    return get_modality(prepared.data.modality).augment(cfg.data, prepared.preprocessor, Notes(live=False))


def _like(teacher: Predictor, model: nn.Module, architecture: dict[str, Any]) -> Predictor:
    """A Predictor with the teacher's preprocessing, target and threshold around `model`."""
    return Predictor(model, teacher.preprocessor, teacher.target, architecture, teacher.threshold,
                     teacher.series)
