"""Transfer learning: a pretrained model with a new head for the target classes.

    --model transfer:<torchvision name> --weights DEFAULT    torchvision's weights, read from the
                                                            local torch cache (never downloaded)
    --model <name> --weights FILE                           a .safetensors file, or a state dict
                                                            read with torch.load(weights_only=True)
    --model transfer --weights RUN_DIR                      the architecture and weights of a
                                                            deepfit run (pretrain on one dataset,
                                                            fine-tune on another)

Every tensor of the pretrained model is loaded except the head's, which is new (any number of
outputs); anything else missing, unexpected or of another shape is a named error. Training then
goes in stages (training/callbacks/unfreeze.py) with discriminative learning rates (training/optim.py).

`transfer:<name>` takes any torchvision classification model as it is; its last Linear layer is
the head and the rest is the body, cut into layer groups by models.vision.layer_groups.
Grayscale images are repeated into the three channels such models take.

`transfer:<folder>` with a local Hugging Face checkpoint (config.json, weights, tokenizer) is a
text model: models/hf_text.py (its weights are the folder's; --weights is not used with it).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

import deepfit.models.hf_text as hf_text
from deepfit.core.io import load_foreign_weights, load_weights
from deepfit.core.notes import Notes
from deepfit.core.run_checks import (
    build_on_meta,
    check_architecture,
    read_model_json,
    weights_file,
    weights_header,
)
from deepfit.core.space import Float
from deepfit.errors import ImageSizeError, SettingsError, SourceNotFoundError
from deepfit.models.registry import (
    Entry,
    InputSpec,
    OutputSpec,
    create,
    register_family,
    resolve_settings,
)
from deepfit.models.vision import ImageModel, check_dropout, image_shape

FAMILY = "transfer"
TORCHVISION_WEIGHTS = re.compile(r"^[A-Z][A-Z0-9_]*$")  # DEFAULT, IMAGENET1K_V2, …
NO_AUX = {"googlenet": {"aux_logits": False, "init_weights": True},
          "inception_v3": {"aux_logits": False, "init_weights": True}}


class TransferModel(ImageModel):
    """A torchvision classification model: its last Linear layer becomes `head`."""

    def __init__(self, arch: str, channels: int, n_outputs: int, dropout: float) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise SettingsError(f"transfer:{arch} takes 1- or 3-channel images, not {channels}")
        import torchvision  # here: importing it takes seconds, and only image runs need it

        net = torchvision.models.get_model(arch, weights=None, **NO_AUX.get(arch, {}))
        linears = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise SettingsError(f"transfer:{arch} has no Linear classifier to replace")
        self.arch, self.head_name = arch, linears[-1][0]
        self.num_features = linears[-1][1].in_features
        net.set_submodule(self.head_name, nn.Identity())
        self.body = net  # [B, 3, H, W] → [B, num_features]
        self.gray = channels == 1
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.num_features, n_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.gray:
            x = x.expand(-1, 3, -1, -1)  # [B, 1, H, W] → [B, 3, H, W]
        return self.dropout(self.body(x))

    def load_pretrained(self, state: dict[str, torch.Tensor], where: str) -> None:
        """Weights of this architecture, as torchvision names them or as a deepfit run saved
        them; the head's are left out."""
        if any(k.startswith("body.") for k in state):
            state = {k.removeprefix("body."): v for k, v in state.items() if k.startswith("body.")}
        own = self.body.state_dict()
        state = {k: v for k, v in state.items() if k in own or not _is_head(k, self.head_name)}
        state = {k: v for k, v in state.items() if not (k.startswith("aux") and k not in own)}
        load_matching(self.body, state, where, f"transfer:{self.arch}", ignore=())


def _is_head(key: str, head_name: str) -> bool:
    return key.startswith(head_name + ".")


def _family_entry(variant: str) -> Entry:
    if hf_text.is_checkpoint_name(variant):  # a local Hugging Face checkpoint folder: text
        return hf_text.entry(variant)
    if variant and variant not in torchvision_models():
        raise SettingsError(f"transfer:{variant}: not a torchvision classification model; some are: "
                            "resnet18, resnet50, efficientnet_b0, mobilenet_v3_small, convnext_tiny, "
                            "regnet_y_400mf, vit_b_16 (torchvision.models.list_models()); or a "
                            "local Hugging Face checkpoint folder: transfer:./my-bert")
    # plain `transfer` takes the architecture, settings included, from --weights RUN_DIR
    return Entry(functools.partial(_transfer, arch=variant), ("image",),
                 {"dropout": 0.0} if variant else {}, {"dropout": Float(0.0, 0.5)} if variant else {})


def _transfer(input_spec: InputSpec, output_spec: OutputSpec, *, arch: str,
              dropout: float = 0.0) -> TransferModel:
    if not arch:
        raise SettingsError("--model transfer takes its architecture from --weights RUN_DIR; "
                            "or name a torchvision model: --model transfer:resnet18")
    check_dropout(dropout)
    return TransferModel(arch, image_shape(input_spec)[0], output_spec.n_outputs, dropout)


@functools.cache
def torchvision_models() -> frozenset[str]:
    import torchvision

    return frozenset(torchvision.models.list_models(module=torchvision.models))


register_family(FAMILY, _family_entry)


# ------------------------------------------------------------------ building a run's model
def build_model(name: str, settings: dict[str, Any], input_spec: InputSpec, output_spec: OutputSpec,
                weights: str | None, notes: Notes, from_scratch: bool = False,
                ) -> tuple[nn.Module, str, dict[str, Any]]:
    """The model of a run and the (name, settings) that rebuild it: built by name, or with
    `weights`, pretrained and given a new head (a run directory gives the architecture too).
    A `transfer:<folder>` text model is pretrained from its folder (unless `from_scratch`), and
    its settings hold the folder's config, so that the run rebuilds it without the folder."""
    if weights is None:
        check_image_input(name, settings, input_spec, output_spec)
        if name.startswith(FAMILY + ":") and hf_text.is_checkpoint_name(name.partition(":")[2]):
            name = f"{FAMILY}:{Path(name.partition(':')[2]).expanduser().resolve()}"  # reloads anywhere
            settings = hf_text.with_config(name, settings)
        model = create(name, input_spec, output_spec, **settings)
        if isinstance(model, hf_text.HFTextModel) and not next(model.parameters()).is_meta:
            hf_text.check_input(model, input_spec)
            if not from_scratch:
                hf_text.load_checkpoint(model, name, notes)
        return model, name, settings
    path = Path(weights)
    if path.is_dir():
        built = _from_run(path, name, input_spec, output_spec, notes)
        check_image_input(built[1], built[2], input_spec, output_spec, built[0])
        return built
    check_image_input(name, settings, input_spec, output_spec)
    model = create(name, input_spec, output_spec, **settings)
    if TORCHVISION_WEIGHTS.match(weights) and not path.exists():
        if not isinstance(model, TransferModel):
            raise SettingsError(f"--weights {weights} names torchvision's weights, which fit a "
                                "transfer:<name> model, e.g. --model transfer:resnet18")
        state, where = torchvision_weights(model.arch, weights)
    else:
        state, where = load_foreign_weights(path), str(path)
    if isinstance(model, TransferModel):
        model.load_pretrained(state, where)
    else:
        load_matching(model, state, where, name)
    notes.decide(f"pretrained weights from {where}; a new head for {output_spec.n_outputs} outputs")
    return model, name, settings


def check_image_input(name: str, settings: dict[str, Any], input_spec: InputSpec,
                      output_spec: OutputSpec, model: nn.Module | None = None) -> None:
    """Raise ImageSizeError when the model `name` cannot take the images of `input_spec` (too
    small for its pooling, another size than it needs): found on a twin built on the meta device,
    which computes shapes only, before any weights are loaded or any step is taken. A failure
    there is confirmed on `model` (or a real build) with one blank image, so that an operation
    the meta device lacks is never taken for the images' fault."""
    if len(input_spec.shape or ()) != 3:  # not [C, H, W] images: nothing to check
        return
    c, h, w = input_spec.shape
    try:
        with torch.device("meta"):
            twin = create(name, input_spec, output_spec, **settings)
        _blank_forward(twin, (1, c, h, w), "meta")
        return
    except (RuntimeError, AssertionError, ValueError, IndexError, NotImplementedError):
        pass
    real = model if model is not None else create(name, input_spec, output_spec, **settings)
    try:
        _blank_forward(real, (1, c, h, w), next(real.parameters()).device)
    except (RuntimeError, AssertionError, ValueError, IndexError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ImageSizeError(f"{name} cannot take {c}-channel {h}×{w} images ({reason}): give a "
                             "larger --image-size (pretrained ImageNet models: 224; vit: exactly "
                             "224), or a model for small images (cnn, resnet18)") from None


def _blank_forward(model: nn.Module, shape: tuple[int, ...], device: Any) -> None:
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(shape, device=device))
    finally:
        model.train(training)


def check_weights(name: str | None, weights: str | None, from_scratch: bool = False) -> None:
    """Stop before any data are read when --weights cannot be found, or when a
    transfer:<name> model has none: fine-tuning means pretrained weights, and random ones are
    trained only when asked for (`from_scratch`, --weights none). SettingsError or
    SourceNotFoundError."""
    family, _, arch = (name or "").partition(":")
    if family == FAMILY and hf_text.is_checkpoint_name(arch):
        hf_text.read_config(Path(arch).expanduser())  # the folder, with its config.json
        if weights is not None:
            raise SettingsError(f"--model {name} takes its pretrained weights from the folder: "
                                "give no --weights (--weights none trains it from random weights)")
        return
    if weights is None:
        if family == FAMILY and arch and not from_scratch:
            raise SettingsError(
                f"--model {name} fine-tunes a pretrained network, but no --weights were given: "
                f"--weights DEFAULT (torchvision's {arch} weights, from the local torch cache), "
                "--weights FILE (.safetensors or a state dict), or --weights RUN_DIR with "
                "--model transfer; --weights none trains it from random weights")
        return
    if from_scratch:
        raise SettingsError(f"--weights {weights} and from_scratch (--weights none) disagree: "
                            "give one")
    path = Path(weights)
    if TORCHVISION_WEIGHTS.match(weights) and not path.exists():
        if family != FAMILY or not arch:
            raise SettingsError(f"--weights {weights} names torchvision's weights, which fit a "
                                "transfer:<name> model, e.g. --model transfer:resnet18")
        torchvision_weights_path(arch, weights)
    elif not path.exists():
        raise SourceNotFoundError(f"no such weights file or run directory: {path}")
    elif path.is_dir() and name != FAMILY:
        raise SettingsError(f"--weights {path} is a run directory, which gives the architecture "
                            "with its settings: use --model transfer")


def _from_run(run_dir: Path, name: str, input_spec: InputSpec, output_spec: OutputSpec,
              notes: Notes) -> tuple[nn.Module, str, dict[str, Any]]:
    meta = read_model_json(run_dir)  # checked before anything is built, as Predictor.load does
    path, sha = weights_file(run_dir, meta)
    arch = meta["architecture"]
    if name != FAMILY:
        raise SettingsError(f"--weights {run_dir} is a run directory, which gives the architecture "
                            f"(a {arch['name']!r} model) with its settings: use --model transfer")
    old_spec = InputSpec.from_dict(arch["input_spec"])
    if old_spec.modality != input_spec.modality:
        raise SettingsError(f"{run_dir} was trained on {old_spec.modality} data, these are "
                            f"{input_spec.modality}")
    if old_spec.shape[:1] != input_spec.shape[:1] and len(input_spec.shape) == 3:  # [C, H, W]
        raise SettingsError(f"{run_dir} was trained on {old_spec.shape[0]}-channel images, these "
                            f"have {input_spec.shape[0]} channels")
    old = build_on_meta(lambda: create(arch["name"], old_spec, OutputSpec(**arch["output_spec"]),
                                       **arch["settings"]), run_dir / "model.json")
    check_architecture(old, weights_header(path), path)
    settings = resolve_settings(arch["name"], {**arch["settings"], **getattr(old, "pinned", {})})
    model = create(arch["name"], input_spec, output_spec, **settings)
    state = load_weights(path, sha)
    if isinstance(model, TransferModel):
        model.load_pretrained(state, str(run_dir))
    else:
        load_matching(model, state, str(run_dir), arch["name"])
    notes.decide(f"pretrained {arch['name']!r} from {run_dir} (trained for "
                 f"{arch['output_spec']['n_outputs']} outputs); a new head for "
                 f"{output_spec.n_outputs} outputs")
    return model, arch["name"], settings


def torchvision_weights(arch: str, which: str) -> tuple[dict[str, torch.Tensor], str]:
    """torchvision's `which` weights (DEFAULT, IMAGENET1K_V1, …) of `arch`, from the local torch
    cache only: deepfit never downloads."""
    path, weights = torchvision_weights_path(arch, which)
    return load_foreign_weights(path), f"{weights} ({path})"


def torchvision_weights_path(arch: str, which: str) -> tuple[Path, Any]:
    """Where torchvision keeps its `which` weights of `arch`, checked to be there."""
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(arch)[which]
    except (KeyError, ValueError):
        raise SettingsError(f"torchvision has no weights {which!r} for {arch}") from None
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.is_file():
        raise SourceNotFoundError(
            f"torchvision's {which} weights for {arch} ({weights}) are not in the local torch "
            f"cache ({path}); deepfit does not download. Fetch {weights.url} into that folder "
            "(or set TORCH_HOME), or pass a weights file or a run directory to --weights")
    return path, weights


def load_matching(module: nn.Module, state: dict[str, torch.Tensor], where: str, what: str,
                  ignore: tuple[str, ...] = ("head.",)) -> None:
    """Load every tensor of `module` from `state`, except those under `ignore` (the head);
    anything missing, unexpected or of another shape is a named error."""
    own = module.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(ignore)}
    missing = [k for k in own if k not in state and not k.startswith(ignore)]
    unexpected = [k for k in state if k not in own]
    other = [f"{k} {list(state[k].shape)} vs {list(own[k].shape)}" for k in state
             if k in own and state[k].shape != own[k].shape]
    problems = [f"{label}: {', '.join(keys[:3])}{', …' if len(keys) > 3 else ''}"
                for label, keys in (("missing", missing), ("unexpected", unexpected),
                                    ("other shapes", other)) if keys]
    if problems:
        raise SettingsError(f"the weights in {where} do not fit the {what} model ({'; '.join(problems)})")
    module.load_state_dict(state, strict=False)
