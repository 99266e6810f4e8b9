"""Frozen settings of a run. Every resolved value is written to the run's config.json.

Settings arrive flat (``deepfit.train(src, epochs=20, hidden=(64, 32))`` or CLI flags) and are
sorted here into the data, model and training parts. Keys that belong to none of the three and
are not settings of the chosen model are rejected where the model is built (models.registry).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from deepfit.errors import SettingsError

TASKS = ("classification", "regression", "anomaly")
# tasks learnt without a target: a target given is used only to evaluate (deepfit/anomaly/)
UNSUPERVISED = ("anomaly",)
SCHEDULES = ("plateau", "cosine", "onecycle", "none")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("32", "bf16", "fp16")
LOADERS = ("auto", "memory", "stream")
# Settings a resumed run may change: they do not alter what is computed.
# OpenMP's waiting threads sleep instead of spinning on shared cores: set by the `deepfit` command
# before torch is imported (cli/app.py), measured in benchmarks/threads.py (training/threads.py)
WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE"}
RESUMABLE_CHANGES = ("progress", "log_every", "device", "threads", "workers", "checkpoint",
                     "checkpoint_every_steps", "checkpoint_every_seconds", "report", "data_root",
                     "download", "log", "mlflow_uri", "log_every_n_steps")
IMBALANCE = ("auto", "none", "weights", "sampler", "focal")
AUGMENTS = ("none", "light", "strong")


@dataclass(frozen=True)
class DataConfig:
    target: str | None = None
    task: str | None = None  # None: inferred from the target
    val_size: float = 0.15
    test_size: float = 0.15
    test: str | None = None  # an explicit held-out file; then test_size may be 0
    modality: str | None = None  # None: from the data and the model; a registered modality's name (deepfit/modalities)
    window: int | None = None  # a time series: windows of this many rows (modalities/sequence/preprocess.py)
    horizon: int | None = None  # … forecasting this many steps (default 1)
    image_size: int | None = None  # images resized to this side (default: a folder's median side)
    augment: str = "light"  # images, training batches only: none, light, strong (modalities/image/augment.py)
    flip: bool = False  # images: random horizontal flips too (off: they break digits and text)
    # torchvision's named sets (mnist, fashion-mnist, cifar10): where their files are (None:
    # $DEEPFIT_DATA, else ./data), and whether to download missing ones (modalities/image/named_sets.py)
    data_root: str | None = None
    download: bool = False
    # image folders: decoded images (N×C×H×W bytes) are cached in memory up to this many MB, else
    # streamed from disk (default: DEEPFIT_CACHE_LIMIT_MB, else 5% of the available memory)
    cache_limit_mb: float | None = None
    # text (modalities/text/): the columns read as free text (None: detected; text=False: none,
    # every string column a category as before), the tokenizer trained on the training split
    # (wordpiece or bpe, of vocab_size tokens) and the tokens kept of each text (None: the 95th
    # percentile of the training lengths, at most 512)
    text_columns: tuple[str, ...] | None = None
    text: bool = True
    vocab_size: int = 8000
    max_length: int | None = None
    tokenizer: str = "wordpiece"

    def __post_init__(self) -> None:
        if isinstance(self.text_columns, str):
            object.__setattr__(self, "text_columns",
                               tuple(c.strip() for c in self.text_columns.split(",") if c.strip()))
        elif self.text_columns is not None:
            object.__setattr__(self, "text_columns", tuple(str(c) for c in self.text_columns))
        if self.text_columns is not None and not self.text_columns:
            raise SettingsError("text_columns names no column; give them as a,b")
        if not isinstance(self.text, bool):
            raise SettingsError(f"text must be True or False, not {self.text!r}")
        if self.text_columns and not self.text:
            raise SettingsError("--text-columns and --no-text contradict each other; give one")
        if isinstance(self.vocab_size, bool) or not isinstance(self.vocab_size, int) or self.vocab_size < 16:
            raise SettingsError(f"vocab_size must be a whole number of at least 16, not {self.vocab_size!r}")
        if self.max_length is not None and (isinstance(self.max_length, bool)
                                            or not isinstance(self.max_length, int) or self.max_length < 1):
            raise SettingsError(f"max_length must be a whole number of tokens of at least 1, "
                                f"not {self.max_length!r}")
        if self.tokenizer not in ("wordpiece", "bpe"):
            raise SettingsError(f"tokenizer must be wordpiece or bpe, not {self.tokenizer!r}")
        if self.data_root is not None:
            object.__setattr__(self, "data_root", str(self.data_root))  # a Path, say: JSON-ready
        if not isinstance(self.download, bool):
            raise SettingsError(f"download must be True or False, not {self.download!r}")
        if self.task is not None and self.task not in TASKS:
            raise SettingsError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if self.modality is not None and not (isinstance(self.modality, str) and self.modality):
            raise SettingsError(f"modality must be the name of one, not {self.modality!r}")
        for name in ("window", "horizon"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise SettingsError(f"{name} must be a whole number of at least 1, not {value!r}")
        if self.image_size is not None and (isinstance(self.image_size, bool)
                                            or not isinstance(self.image_size, int) or self.image_size < 1):
            raise SettingsError(f"image_size must be a whole number of pixels, not {self.image_size!r}")
        if self.cache_limit_mb is not None and (isinstance(self.cache_limit_mb, bool)
                                                or not isinstance(self.cache_limit_mb, (int, float))
                                                or not self.cache_limit_mb >= 0):
            raise SettingsError(f"cache_limit_mb must be a number of MB >= 0, not {self.cache_limit_mb!r}")
        if self.augment not in AUGMENTS:
            raise SettingsError(f"augment must be one of {', '.join(AUGMENTS)}, not {self.augment!r}")
        if self.horizon is not None and self.window is None:
            raise SettingsError("--horizon needs --window: both describe the windows of a time series")
        for name in ("val_size", "test_size"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise SettingsError(f"{name} must be in [0, 1), not {value}")
        if self.val_size <= 0.0:
            raise SettingsError("val_size must be above 0: deepfit always keeps a validation split")
        if self.val_size + self.test_size >= 0.9:
            raise SettingsError(
                f"val_size + test_size = {self.val_size + self.test_size:.2f} leaves too little "
                "to train on; keep it under 0.9"
            )
        if self.test_size == 0.0 and self.test is None:
            raise SettingsError(
                "test_size is 0 but no --test file gives a held-out set; "
                "deepfit always evaluates on data the model never saw"
            )


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    batch_size: int = 64
    lr: float | str = 1e-3  # "auto": the LR range test's suggestion (lifecycle/lr_auto.py)
    weight_decay: float = 1e-2
    schedule: str = "plateau"
    clip_norm: float = 1.0  # 0 turns clipping off
    patience: int = 10
    max_seconds: float | None = None  # wall-clock training budget (callbacks/time_budget.py)
    min_delta: float = 0.0
    monitor: str = "val_loss"
    seed: int = 0
    device: str = "auto"
    precision: str = "32"
    compile: bool = False
    loader: str = "auto"  # memory: tensors on the device, sliced; stream: a DataLoader
    workers: int = 2  # DataLoader workers of the streaming path
    threads: int | None = None
    checkpoint: bool = True  # last checkpoint every epoch, best on improvement
    checkpoint_every_steps: int | None = None  # also within an epoch, every this many steps
    checkpoint_every_seconds: float = 300.0  # and once this long has passed since the last (0: off)
    init_weights: str | None = None  # a weights file to start from
    weights: str | None = None  # transfer: DEFAULT (torchvision's), a weights file or a run directory
    from_scratch: bool = False  # transfer:<name> from random weights, knowingly (--weights none)
    freeze_epochs: int = 3  # with weights: epochs that train the new head alone
    unfreeze_every: int = 1  # then a layer group more, from the top, every this many epochs (0: all)
    backbone_lr_mult: float = 0.1  # with weights: the lowest group's LR is this × lr (geometric between)
    check: bool = False  # model sanity checks before training (the data audit always runs)
    force: bool = False  # train despite error-level findings of the checks
    progress: bool | None = None  # None: a bar on a terminal, else a line per epoch on stderr; False: none
    log_every: int = 1  # without a terminal: the progress line every this many epochs (and the last)
    imbalance: str = "auto"  # none, weights, sampler, focal; auto: weights above a 3:1 ratio
    focal_gamma: float = 2.0  # focusing parameter of --imbalance focal
    threshold: float | str | None = None  # binary decision threshold: None (argmax), auto, or a number
    report: bool = True  # plots and report.html in the run directory
    # anomaly task: the share of validation rows above the anomaly threshold (its 1 − c quantile)
    contamination: float = 0.01
    # False: the test split is not evaluated (deepfit tune's trials: the search sees validation
    # scores only; the best trial alone is evaluated on the test split, once)
    evaluate_test: bool = True
    log: tuple[str, ...] = ()  # experiment trackers besides history.csv: tensorboard, mlflow (training/loggers/)
    mlflow_uri: str | None = None  # --log mlflow's tracking URI (None: sqlite:///mlruns.db in the working directory)
    log_every_n_steps: int | None = None  # loggers also get the running training loss every N steps
    sync_bn: bool = False  # under torchrun on CUDA: BatchNorm as SyncBatchNorm (global-batch statistics)

    def __post_init__(self) -> None:
        from deepfit.evaluation.threshold import parse_threshold

        object.__setattr__(self, "precision", str(self.precision))
        if isinstance(self.weights, str) and self.weights.strip().lower() == "none":
            object.__setattr__(self, "weights", None)  # --weights none: random weights, as asked
            object.__setattr__(self, "from_scratch", True)
        object.__setattr__(self, "threshold", parse_threshold(self.threshold))
        log = (self.log,) if isinstance(self.log, str) else tuple(self.log)
        object.__setattr__(self, "log", tuple(dict.fromkeys(n for n in log if n != "csv")))
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1, not {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be at least 1, not {self.batch_size}"),
            (self.lr == "auto" or (not isinstance(self.lr, str) and self.lr > 0),
             f"lr must be positive or auto, not {self.lr}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, not {self.weight_decay}"),
            (self.patience >= 1, f"patience must be at least 1, not {self.patience}"),
            (self.max_seconds is None or self.max_seconds > 0,
             f"max_seconds must be positive, not {self.max_seconds}"),
            (self.min_delta >= 0, f"min_delta must be >= 0, not {self.min_delta}"),
            (self.clip_norm >= 0, "clip_norm must be >= 0 (0 turns clipping off)"),
            (str(self.precision) in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.loader in LOADERS, f"loader must be one of {', '.join(LOADERS)}"),
            (self.workers >= 0, "workers must be >= 0"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}"),
            (self.threads is None or self.threads >= 1, "threads must be at least 1"),
            (not isinstance(self.log_every, bool) and isinstance(self.log_every, int) and self.log_every >= 1,
             f"log_every must be a whole number of epochs >= 1, not {self.log_every!r}"),
            (set(self.log) <= {"tensorboard", "mlflow"},
             f"log must name tensorboard, mlflow or csv, not {', '.join(self.log)}"),
            (self.log_every_n_steps is None or (isinstance(self.log_every_n_steps, int)
                                                and self.log_every_n_steps >= 1),
             f"log_every_n_steps must be a whole number >= 1, not {self.log_every_n_steps!r}"),
            (self.imbalance in IMBALANCE, f"imbalance must be one of {', '.join(IMBALANCE)}"),
            (self.focal_gamma >= 0, f"focal_gamma must be >= 0, not {self.focal_gamma}"),
            (not isinstance(self.contamination, bool) and isinstance(self.contamination, (int, float))
             and 0 < self.contamination < 0.5,
             f"contamination must be a share in (0, 0.5), not {self.contamination!r}"),
            (self.freeze_epochs >= 0, f"freeze_epochs must be >= 0, not {self.freeze_epochs}"),
            (self.unfreeze_every >= 0, f"unfreeze_every must be >= 0, not {self.unfreeze_every}"),
            (0 < self.backbone_lr_mult <= 1, f"backbone_lr_mult must be in (0, 1], not {self.backbone_lr_mult}"),
            (not (self.weights and self.init_weights), "give --weights (transfer, a new head) or "
             "--init-weights (the same model, resumed from weights), not both"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(message)


@dataclass(frozen=True)
class ModelConfig:
    name: str | None = None  # None: the data's modality's default_model, set in runs/prepare.py
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig
    model: ModelConfig
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """The settings as `train(**settings)` takes them."""
        return {**dataclasses.asdict(self.data), **dataclasses.asdict(self.train),
                "model": self.model.name, **self.model.settings}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        return cls(DataConfig(**d["data"]), ModelConfig(**d["model"]), TrainConfig(**d["train"]))


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def split_settings(settings: dict[str, Any]) -> RunConfig:
    """Sort flat settings into a RunConfig. What is neither data nor training goes to the model,
    whose registry entry accepts or rejects it by name."""
    data_keys, train_keys = set(field_names(DataConfig)), set(field_names(TrainConfig))
    given = {k: v for k, v in settings.items() if v is not None}
    data = {k: v for k, v in given.items() if k in data_keys}
    train = {k: v for k, v in given.items() if k in train_keys}
    model_name = given.pop("model", None)
    model = {k: v for k, v in given.items() if k not in data_keys | train_keys}
    try:
        return RunConfig(DataConfig(**data), ModelConfig(model_name, model), TrainConfig(**train))
    except TypeError as exc:  # a value of the wrong type reached a comparison
        raise SettingsError(f"invalid setting: {exc}") from None
