"""The modality interface and its registry: what one kind of data (tables, images, sequences…)
gives the rest of deepfit, so that nothing outside its folder branches on its name.

A modality is a `Modality` subclass registered once (`register_modality`, after timm's and the
model registry's `register`): its readers join the reader registry (data/readers.py) and its
preprocessor is saved and loaded by its name. The train path, check, compare, advise,
benchmark and predict ask `get_modality(name)` for what differs:

    reading         readers: (name, fn(ReadRequest) -> Dataset | None, priority)
    preprocessing   preprocessor: the class fitted on the training split (fit(X, notes),
                    transform(X, notes) -> float32 array, input_spec(), to_dict()/from_dict(),
                    columns); saved as {"kind": name, ...}
    models          default_model, and anomaly_model for the anomaly task (model_for(task));
                    the models that accept it declare it (models.registry)
    audit           audit(data, splits, test_data, seed): its own findings, after the ones every
                    modality shares (checks/audit.py); noun (one sample, in their messages);
                    fixes (its advice in place of a shared check's fix text, by check name);
                    audit_fitted(preprocessor, data, splits, test_data): those that need the fitted
                    preprocessor (text: tokens unknown to the tokenizer), after preprocessing
    batches         channels_last (memory format on a GPU); augment(data_cfg, pre, notes): the
                    training batches' augmentation or None
    benchmarks      layout, natural_shape, quick_shape, example_input(shape), synthetic_rows,
                    synthetic_input(spec, n, generator): encoded samples for a model alone
    predict         prediction_input(pre, X), read_for_predict(pre, path), predict_files
    export          preprocess_spec(pre): the preprocessor's to_spec(), for preprocess.json;
                    run_files(pre): files saved beside model.json (text: tokenizer.json)
    serving         request_schema(pre), request_input(pre, records): a served request's records
    advice          unstructured, baselines (compare's default), baseline_kinds (which ones,
                    tools/compare/baselines.py), baseline_text_columns(pre), enough_rows, guide_rows
    report          report_facts(data record): its lines of the report's data table
    explain         explain_parts(): what `deepfit explain` permutes, sums and draws (explain.py)
    examples        report_examples(preprocessor, X, evaluation, classes): test samples the
                    report shows (text: the most confidently wrong texts)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from deepfit.core.notes import Notes
from deepfit.core.words import plural
from deepfit.data.readers import Reader, register_reader
from deepfit.data.tables import read_npz_array, read_table
from deepfit.errors import PredictInputError, SettingsError
from deepfit.models.registry import InputSpec

FEW_LABELS = 10_000  # the guide's labelled-row threshold between its "few" and "many" rows
# a row of the guide's matrix: (test(labelled rows, interpretability asked), verdict, its text)
GuideRow = tuple[Callable[[int, bool], bool], str, str]


class Modality:
    """One kind of data. Subclasses set the class attributes and override what differs; the
    defaults suit dense array samples [N, *shape] whose last axis is the channels."""

    name: ClassVar[str]
    default_model: ClassVar[str]
    anomaly_model: ClassVar[str | None] = None  # its autoencoder (models/autoencoder.py)
    preprocessor: ClassVar[type]
    layout: ClassVar[str] = "[…]"  # one sample's axes, for messages: "[F]", "[T, C]", "[C, H, W]"
    natural_shape: ClassVar[tuple[int, ...]] = ()  # one sample when no data give it (benchmarks)
    quick_shape: ClassVar[tuple[int, ...]] = ()  # … a small one (benchmark --quick, tests)
    readers: ClassVar[tuple[tuple[str, Reader, int], ...]] = ()
    unstructured: ClassVar[bool] = True  # not a table: the guide's case for deep learning
    baselines: ClassVar[bool] = False  # compare adds its baselines (baseline_kinds) by default
    # the non-deep baselines compare and advise fit beside the networks (tools/compare/baselines.py
    # KINDS): gradient boosting and a linear model on the encoded features; text: TF-IDF + linear
    baseline_kinds: ClassVar[tuple[str, ...]] = ("gradient_boosting", "linear")
    enough_rows: ClassVar[int] = 10_000  # labelled rows deep learning usually needs (advise)
    channels_last: ClassVar[bool] = False  # the model in channels_last memory on a GPU
    guide_rows: ClassVar[tuple[GuideRow, ...]] = ()  # advise's matrix rows for it, in order
    noun: ClassVar[str] = "sample"  # one sample, in the check's messages: "row", "image" …
    # the check's advice for these data: check name → the fix text that replaces the shared one
    # (checks/rows.py's hold for any data) in that check's findings (checks/audit.py)
    fixes: ClassVar[dict[str, str]] = {}

    def model_for(self, task: str | None) -> str:
        """The default model for `task`: its autoencoder for anomaly detection, else
        default_model. Raises SettingsError when it has none for the task."""
        if task != "anomaly":
            return self.default_model
        if self.anomaly_model is None:
            raise SettingsError(f"no autoencoder is registered for {self.name} data; name one with --model")
        return self.anomaly_model

    def create_preprocessor(self, data: Any = None) -> Any:
        """A new, unfitted preprocessor (for `data`, the Dataset it will be fitted on, when a
        modality's preprocessor needs to know how they were read)."""
        return self.preprocessor()

    def example_input(self, shape: tuple[int, ...] | None = None) -> InputSpec:
        """The input spec of dense samples of `shape` (default `natural_shape`). Raises
        SettingsError for a shape of the wrong rank or a size below 1."""
        shape = tuple(int(s) for s in (shape or self.natural_shape))
        if not self.natural_shape:
            raise SettingsError(f"no natural input shape for {self.name} data")
        if len(shape) != len(self.natural_shape) or min(shape) < 1:
            raise SettingsError(f"{self.name} input shape must be {self.layout} of positive "
                                f"sizes, not {list(shape)}")
        return self.input_spec_of(shape)

    def input_spec_of(self, shape: tuple[int, ...]) -> InputSpec:
        """The spec of dense samples of `shape`; the last axis is the channels by default."""
        return InputSpec(shape[-1], shape[-1], modality=self.name, shape=shape)

    def synthetic_input(self, spec: InputSpec, n: int, generator: Any) -> Any:
        """`n` encoded samples for a model of input `spec`, as its preprocessor would give
        them (benchmarks on synthetic input): [n, *spec.shape] (or [n, n_features]) standard
        normal floats drawn with the torch.Generator `generator`."""
        import torch

        shape = tuple(spec.shape) if spec.shape else (spec.n_features,)
        return torch.randn((n, *shape), generator=generator)

    def unrelated_cause(self, n_train: int) -> str:
        """The likely cause of a useless model when nothing in the data or the training
        explains it (checks/useless.py), in this data's words."""
        return (f"the target may not depend on what the {self.noun}s show (labels shuffled, or "
                f"not matched to their {self.noun}s?), or too weakly for "
                f"{plural(n_train, 'training ' + self.noun)}")

    def alternatives(self, data: Any) -> dict[str, str]:
        """Models of another modality worth trying on these data, each with the modality that
        reads the same source for it ({model: modality}; advise tries them beside the default
        network on the same split). None by default."""
        return {}

    def baseline_text_columns(self, preprocessor: Any) -> list[str]:
        """The raw columns of free text a bag-of-words baseline (tfidf_linear) reads, by name;
        none by default (the baselines then take the encoded features only)."""
        return []

    def audit(self, data: Any, splits: Any, test_data: Any, *, seed: int = 0) -> list:
        """Findings of this modality's own checks (checks.findings.Finding); none by default."""
        return []

    def augment(self, data_cfg: Any, preprocessor: Any, notes: Notes) -> Any:
        """The training batches' augmentation (a callable on a batch tensor, on the device) or
        None; `data_cfg` is config.DataConfig."""
        return None

    def audit_fitted(self, preprocessor: Any, data: Any, splits: Any, test_data: Any) -> list:
        """Findings that need the preprocessor fitted on the training split, about the held-out
        samples (the validation and test rows of `splits`, or the `test_data` file); run after
        preprocessing (lifecycle/prepare.py, tools/check.py). None by default."""
        return []

    def synthetic_rows(self, preprocessor: Any, n: int, rng: np.random.Generator) -> Any:
        """`n` raw samples the fitted `preprocessor` accepts, drawn from what it learned."""
        raise SettingsError(f"no synthetic rows for {self.name} data; give a SOURCE")

    def held_out_reading(self, preprocessor: Any) -> dict[str, Any]:
        """The reading settings (ReadRequest fields) a fitted preprocessor fixes for new data of
        the model: how its CSV wrote numbers, the size of its images. None by default."""
        return {}

    def prediction_input(self, preprocessor: Any, X: Any) -> Any:
        """New samples as the preprocessor takes them (a table's arrays get their columns)."""
        return X

    def read_for_predict(self, preprocessor: Any, path: Path) -> Any:
        """A file of new samples: an .npz's X as it is, other files as a table."""
        if path.suffix.lower() == ".npz":
            return read_npz_array(path)
        return read_table(path, **self.held_out_reading(preprocessor))

    def report_facts(self, data: dict[str, Any]) -> dict[str, Any]:
        """Lines this modality adds to the report's "Data and splits" table, from the run's
        config.json "data" record; saved in it as "facts" (runs/directory.py), shown by
        evaluation/report.py. None by default."""
        return {}

    def report_examples(self, preprocessor: Any, X: Any, evaluation: Any,
                        classes: list[Any]) -> list[dict[str, Any]]:
        """Test samples the report shows as a table (rows of column → value; text and numbers),
        from the raw test samples `X` in the order of `evaluation` (evaluation.full_metrics's
        Evaluation) and the class names of its codes; saved in metrics.json as
        "confused_examples" (lifecycle/train.py). None by default."""
        return []

    def explain_parts(self) -> Any:
        """What `deepfit explain` (tools/explain/) does that differs for these data: an
        ExplainParts (modalities/explain.py; the default: dense samples, each value its own
        unit, no permutation importance, no picture)."""
        from deepfit.modalities.explain import ExplainParts

        return ExplainParts()

    def preprocess_spec(self, preprocessor: Any) -> dict[str, Any]:
        """What turns raw samples into the network's input, as plain JSON for another language
        (an export's preprocess.json, deploy/export.py): {"modality": name, ...} and the fitted
        preprocessor's `to_spec()`. Raises SettingsError when the preprocessor has none."""
        if not hasattr(preprocessor, "to_spec"):
            raise SettingsError(f"the {self.name} preprocessor cannot describe itself for an export "
                                "(it has no to_spec method)")
        return {"modality": self.name, **preprocessor.to_spec()}

    def run_files(self, preprocessor: Any) -> dict[str, str]:
        """Files a run directory holds beside model.json for other tools (file name → text);
        the preprocessor in model.json stays what loading reads. None by default."""
        return {}

    def predict_files(self, predictor: Any, path: Path) -> Any:
        """Predictions (a DataFrame) for files this modality reads itself (a folder of images),
        or None to read `path` with `read_for_predict`."""
        return None


    def request_schema(self, preprocessor: Any) -> dict[str, str]:
        """What one record of a served request holds, field → what it takes (deepfit serve's
        GET /models). By default one sample as nested numbers under "values"."""
        shape = list(preprocessor.input_spec().get("shape") or ())
        return {"values": f"numbers nested as one sample {shape}"}

    def request_input(self, preprocessor: Any, records: list[dict[str, Any]]) -> Any:
        """The records of a served request as `prediction_input` takes them. Raises
        PredictInputError naming the record and field that is wrong (records[3].values)."""
        shape = tuple(preprocessor.input_spec().get("shape") or ())
        samples = []
        for i, record in enumerate(records):
            where = f"records[{i}].values"
            if record.get("values") is None:
                raise PredictInputError(f"{where} is missing: each record holds one sample, "
                                        f"numbers nested as {list(shape)}")
            try:
                array = np.asarray(record["values"], dtype=np.float32)
            except (TypeError, ValueError):
                raise PredictInputError(f"{where} must hold numbers nested as {list(shape)}") from None
            if array.shape != shape:
                raise PredictInputError(f"{where} has shape {list(array.shape)}; the model takes "
                                        f"{list(shape)}")
            samples.append(array)
        return np.stack(samples)


_MODALITIES: dict[str, Modality] = {}


def register_modality(modality: Modality) -> Modality:
    """Make `modality` known by its name, with its readers; registering a name again replaces
    it. The one line a new modality adds (deepfit/modalities/__init__.py, or the user's code)."""
    _MODALITIES[modality.name] = modality
    for name, read, priority in modality.readers:
        register_reader(name, read, priority)
    return modality


def get_modality(name: str | None) -> Modality:
    """The registered modality `name` (None: tabular, what a run saved before modalities had
    names means). Raises SettingsError naming the registered ones."""
    name = name or "tabular"
    if name not in _MODALITIES:
        raise SettingsError(f"modality must be one of {', '.join(modality_names())}, not {name!r}")
    return _MODALITIES[name]


def modality_names() -> list[str]:
    return list(_MODALITIES)


def modality_of_preprocessor(pre: Any) -> Modality:
    """The modality whose preprocessor class `pre` is."""
    for modality in _MODALITIES.values():
        if type(pre) is modality.preprocessor:
            return modality
    return next(m for m in _MODALITIES.values() if isinstance(pre, m.preprocessor))


def preprocessor_to_dict(pre: Any) -> dict[str, Any]:
    """The saved form of a fitted preprocessor: plain JSON carrying its modality as `kind`."""
    return {"kind": modality_of_preprocessor(pre).name, **pre.to_dict()}


def preprocessor_from_dict(d: dict[str, Any]) -> Any:
    """A preprocessor from its saved form (no `kind`: tabular, as runs saved it at first)."""
    d = dict(d)
    return get_modality(d.pop("kind", "tabular")).preprocessor.from_dict(d)


def check_model_settings(name: str, settings: dict[str, Any]) -> None:
    """Build model `name` on the meta device (shapes only, no memory, no weights) for an example
    input of its first modality (`natural_shape`), so that a setting of the wrong value
    (dropout 1.5, a width of 0, an even kernel) is its SettingsError before any data are read.
    Any other failure is left to the real build, which knows the data's shape."""
    import torch

    from deepfit.models.registry import OutputSpec, create, modalities, tasks

    modality = get_modality(modalities(name)[0])
    task = tasks(name)[0]
    try:
        spec = modality.example_input()
        with torch.device("meta"):
            create(name, spec, OutputSpec(task, 2 if task == "classification" else 1), **settings)
    except SettingsError:
        raise
    except Exception:
        return
