"""The kinds of data deepfit trains on, each a folder behind one interface (base.Modality):
its readers, preprocessor, audit, default model, batches, benchmark inputs and predict input.

Adding one is a new folder (or a module of your own) with a Modality subclass, and one
`register_modality(...)` line: here for deepfit's own, anywhere for yours.
"""

from deepfit.modalities.base import (
    Modality,
    get_modality,
    modality_names,
    preprocessor_from_dict,
    preprocessor_to_dict,
    register_modality,
)
from deepfit.modalities.image.modality import Image
from deepfit.modalities.load import load_source
from deepfit.modalities.sequence.modality import Sequence
from deepfit.modalities.tabular.modality import Tabular
from deepfit.modalities.text.modality import Text

register_modality(Tabular())
register_modality(Sequence())
register_modality(Image())
register_modality(Text())

__all__ = ["Modality", "get_modality", "load_source", "modality_names", "preprocessor_from_dict",
           "preprocessor_to_dict", "register_modality"]
