"""Text models from a local Hugging Face checkpoint: `--model transfer:PATH`, PATH a folder
holding config.json, the weights (model.safetensors or pytorch_model.bin) and the tokenizer.

    x [B, n_tabular + n_text × L] ─► per text column: input_ids = (x − 1).clamp(0), mask = x > 0
      ─► AutoModel (the encoder) ─► masked mean of the last hidden states (or the first token,
      [CLS]: pooling=cls) ─► concatenated with the tabular block ─► dropout ─► a new Linear head

`transformers`' Auto classes (the `text` extra), from the local folder only (local_files_only,
never the network). The encoder is built from the checkpoint's config, which the run stores in
its settings (`config`, JSON text), so a saved run reloads without the folder; its weights are loaded from
the folder when a run builds it (`load_checkpoint`), which makes the run a fine-tuning one
(training/optim.fine_tuning): the head alone first, then the blocks unfrozen from the top with
discriminative learning rates (ULMFiT's recipe, as for images). The text is read with the
checkpoint's own tokenizer (lifecycle/prepare.text_options, modalities/text/tokens.py), its
post-processor adding [CLS]/[SEP]. Padding never changes the output: it is masked in attention
and left out of the mean.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepfit.core.extras import import_extra
from deepfit.core.notes import Notes
from deepfit.core.space import Choice, Float
from deepfit.errors import SettingsError, SourceNotFoundError
from deepfit.models.base import HeadModel
from deepfit.models.mlp import TabularInput
from deepfit.models.registry import Entry, InputSpec, OutputSpec
from deepfit.models.text import masked_mean

CONFIG = "config.json"
POOLINGS = ("mean", "cls")


def _transformers() -> Any:
    return import_extra("transformers", "text", "a transfer:PATH text model")


def is_checkpoint_name(variant: str) -> bool:
    """Whether the variant of `transfer:<variant>` names a folder rather than a torchvision
    architecture: a path (with a slash, or from . or ~), or a bare name of a folder holding
    config.json (a folder `resnet18` without one leaves `transfer:resnet18` torchvision's)."""
    return bool(variant) and ("/" in variant or "\\" in variant or variant.startswith((".", "~"))
                              or (Path(variant) / CONFIG).is_file())


def read_config(path: Path) -> dict[str, Any]:
    """The checkpoint's config.json. SourceNotFoundError when the folder is not there,
    SettingsError when it holds no Hugging Face config."""
    if not path.is_dir():
        raise SourceNotFoundError(f"transfer:{path}: no such checkpoint folder (a local Hugging "
                                  "Face checkpoint: config.json, its weights and its tokenizer)")
    file = path / CONFIG
    if not file.is_file():
        raise SettingsError(f"transfer:{path}: the folder holds no {CONFIG}, so it is not a Hugging "
                            "Face checkpoint (config.json, model.safetensors or pytorch_model.bin, "
                            "and its tokenizer), nor a torchvision model name")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SettingsError(f"{file} is not readable JSON: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise SettingsError(f"{file} names no model_type, which transformers' Auto classes need")
    return config


def entry(variant: str) -> Entry:
    """The registry entry of `transfer:<folder>`. A folder without config.json is a
    SettingsError here (before any data are read); a folder that is gone is not, so that a run
    holding the config in its settings still rebuilds."""
    path = Path(variant).expanduser()
    if path.is_dir():
        read_config(path)
    return Entry(functools.partial(_hf_text, path=str(path)), ("text",),
                 {"pooling": "mean", "dropout": 0.1, "config": ""},
                 {"pooling": Choice(*POOLINGS), "dropout": Float(0.0, 0.5)})


def _hf_text(input_spec: InputSpec, output_spec: OutputSpec, *, path: str, pooling: str = "mean",
             dropout: float = 0.1, config: str = "") -> HFTextModel:
    if input_spec.modality != "text" or len(input_spec.shape) != 2:
        raise SettingsError(f"transfer:{path} reads text (token ids from the text preprocessor); "
                            f"these data are {input_spec.modality}")
    if pooling not in POOLINGS:
        raise SettingsError(f"pooling must be {' or '.join(POOLINGS)}, not {pooling!r}")
    if not 0.0 <= dropout < 1.0:
        raise SettingsError(f"dropout must be in [0, 1), not {dropout}")
    if not config:
        if not Path(path).is_dir():
            raise SourceNotFoundError(f"transfer:{path}: the checkpoint folder is not there and "
                                      "the run holds no copy of its config")
        return HFTextModel(input_spec, output_spec.n_outputs, read_config(Path(path)), pooling, dropout)
    try:
        stored = json.loads(config)
    except (TypeError, json.JSONDecodeError):
        stored = None
    if not isinstance(stored, dict) or "model_type" not in stored:
        raise SettingsError(f"transfer:{path}: its config setting is not a Hugging Face config "
                            "as JSON text (the checkpoint's config.json)")
    return HFTextModel(input_spec, output_spec.n_outputs, stored, pooling, dropout)


def hf_config(config: dict[str, Any]) -> Any:
    """A transformers config object from the dict of a config.json."""
    rest = {k: v for k, v in config.items() if k != "model_type"}
    try:
        return _transformers().AutoConfig.for_model(config["model_type"], **rest)
    except (ValueError, KeyError) as exc:
        raise SettingsError(f"transformers cannot build a {config.get('model_type')!r} model: {exc}") from None


class HFTextModel(HeadModel):
    """A Hugging Face encoder (`encoder`, built from `config`) over each text column, pooled,
    concatenated with the tabular block (models/mlp.TabularInput), and a new Linear `head`."""

    has_skip_connections = True

    def __init__(self, spec: InputSpec, n_outputs: int, config: dict[str, Any], pooling: str,
                 dropout: float) -> None:
        super().__init__()
        self.n_text, self.length = spec.shape
        self.n_tabular = spec.n_features - self.n_text * self.length
        tabular = InputSpec(self.n_tabular, spec.n_dense, spec.cardinalities)
        self.tabular = TabularInput(tabular) if self.n_tabular else None
        self.hf_config = hf_config(config)
        auto = _transformers().AutoModel
        try:  # BERT-like models: no pooler, which the pooling here replaces
            self.encoder = auto.from_config(self.hf_config, add_pooling_layer=False)
        except TypeError:
            self.encoder = auto.from_config(self.hf_config)
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        tab = self.tabular.out_features if self.tabular is not None else 0
        self.num_features = self.n_text * int(self.hf_config.hidden_size) + tab
        self.head = nn.Linear(self.num_features, n_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        ids = x[:, self.n_tabular:].reshape(len(x), self.n_text, self.length)
        parts = [self.tabular(x[:, : self.n_tabular])] if self.tabular is not None else []
        for i in range(self.n_text):
            mask = ids[:, i] > 0  # [B, L]
            input_ids = (ids[:, i] - 1).clamp(min=0).long()  # padding → id 0, masked
            h = self.encoder(input_ids=input_ids, attention_mask=additive_mask(mask)).last_hidden_state
            parts.append(h[:, 0] if self.pooling == "cls" else masked_mean(h, mask))  # [B, H]
        return self.dropout(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])

    def param_groups(self) -> list[tuple[str, list[nn.Parameter]]]:
        """Layer groups from the input: the embeddings, each transformer block (a final norm
        joins the top one), then the head with the tabular input (both new)."""
        new = [*self.head.parameters(), *(self.tabular.parameters() if self.tabular is not None else [])]
        return [*encoder_groups(self.encoder), ("head", new)]


def additive_mask(mask: torch.Tensor) -> torch.Tensor:
    """[B, L] True = a real token → [B, 1, 1, L] float32: 0 where attended, the lowest float on
    padding. transformers takes a 4-D mask as it is (eager attention adds it, SDPA too), so it
    makes no check of its own on the values (`mask.all()`, a host sync every step, and no
    forward on the meta device, where the thread count is sized)."""
    low = torch.finfo(torch.float32).min
    return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill(
        ~mask, low)[:, None, None, :]


def encoder_groups(encoder: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """The embeddings, then one group per block of the encoder's longest nn.ModuleList (BERT's
    encoder.layer, DistilBERT's transformer.layer, …); parameters after the blocks join the last."""
    lists = [(n, m) for n, m in encoder.named_modules() if isinstance(m, nn.ModuleList) and len(m) > 1]
    if not lists:
        from deepfit.models.vision import layer_groups

        return layer_groups(encoder)
    prefix = max(lists, key=lambda nm: len(nm[1]))[0] + "."
    groups: dict[str, list[nn.Parameter]] = {"embeddings": []}
    key = "embeddings"
    for name, p in encoder.named_parameters():
        if name.startswith(prefix):
            key = "layer." + name[len(prefix):].split(".", 1)[0]
        groups.setdefault(key, []).append(p)
    return [(k, v) for k, v in groups.items() if v]


def with_config(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` of `transfer:<folder>` with the folder's config.json under `config` (as JSON
    text: a run's settings are numbers, text or lists), so that the run rebuilds its model
    without the folder."""
    if settings.get("config"):
        return settings
    config = read_config(Path(name.partition(":")[2]).expanduser())
    return {**settings, "config": json.dumps(config, sort_keys=True)}


def check_input(model: HFTextModel, spec: InputSpec) -> None:
    """SettingsError when the texts are longer than the model's positions or the tokenizer's
    ids run past its embeddings."""
    positions = getattr(model.hf_config, "max_position_embeddings", None)
    if positions and model.length > positions:
        raise SettingsError(f"the texts are kept to {model.length} tokens but the checkpoint has "
                            f"{positions} positions: give --max-length {positions} or less")
    vocab = getattr(model.hf_config, "vocab_size", None)
    if vocab and spec.vocab_size - 1 > vocab:
        raise SettingsError(f"the tokenizer has {spec.vocab_size - 1} tokens but the checkpoint's "
                            f"embeddings {vocab}: the text must be read with the checkpoint's own "
                            "tokenizer")


def load_checkpoint(model: HFTextModel, name: str, notes: Notes) -> None:
    """Load the folder's pretrained weights into `model.encoder` (AutoModel.from_pretrained,
    local files only; it maps a task model's prefixed keys, `bert.…`, onto the encoder's), and
    mark the model as pretrained (`pretrained_from`), which makes the run fine-tune in stages."""
    path = Path(name.partition(":")[2]).expanduser()
    transformers = _transformers()
    hf_logging = transformers.utils.logging
    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # a pooler left out is said in a load report: not an error
    hf_logging.disable_progress_bar()
    try:
        try:
            pretrained = transformers.AutoModel.from_pretrained(str(path), local_files_only=True,
                                                                add_pooling_layer=False)
        except TypeError:
            pretrained = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
    except OSError as exc:
        raise SourceNotFoundError(f"transfer:{path}: no weights could be read from the folder "
                                  f"({str(exc).splitlines()[0][:200]})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()
    try:
        model.encoder.load_state_dict(pretrained.state_dict())
    except RuntimeError as exc:
        raise SettingsError(f"the weights in {path} do not fit its config: "
                            f"{str(exc).splitlines()[0][:200]}") from None
    model.pretrained_from = str(path)
    n = sum(p.numel() for p in model.encoder.parameters())
    notes.decide(f"pretrained {model.hf_config.model_type} encoder from {path} ({n:,} parameters, "
                 f"transformers, local files only), {model.pooling} pooling and a new head; the "
                 "checkpoint counts as --weights: fine-tuned in stages")
