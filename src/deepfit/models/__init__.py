"""Models by name: `create(name, input_spec, output_spec, **settings)`."""

from deepfit.models import mlp  # noqa: F401  (registers "mlp")
from deepfit.models.registry import InputSpec, OutputSpec, available, create, resolve_settings

__all__ = ["InputSpec", "OutputSpec", "available", "create", "resolve_settings"]
