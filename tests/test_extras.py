"""A missing optional package is a named error that says which extra installs it."""

from __future__ import annotations

import pytest

from deepfit.core.extras import import_extra
from deepfit.errors import DeepfitError, MissingExtraError


def test_a_missing_extra_names_the_extra_to_install():
    with pytest.raises(MissingExtraError, match=r"pip install 'deepfit\[tune\]'") as info:
        import_extra("no_such_package_deepfit_test", "tune", "deepfit tune")
    assert isinstance(info.value, DeepfitError) and "deepfit tune needs" in str(info.value)


def test_an_installed_extra_is_the_module():
    import json

    assert import_extra("json", "none") is json
