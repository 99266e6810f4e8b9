"""Models by name: `create(name, input_spec, output_spec, **settings)`."""

from deepfit.models import autoencoder, cnn, mlp, resmlp, resnet, sequence, text, transfer  # noqa: F401  (register their models)
from deepfit.models.registry import (
    InputSpec,
    OutputSpec,
    available,
    check_task,
    create,
    modalities,
    resolve_settings,
    tasks,
)

__all__ = ["InputSpec", "OutputSpec", "available", "check_task", "create", "modalities",
           "resolve_settings", "tasks"]
