"""Old names kept for a while after a rename (one name for each thing, issue 28): each still gives the same
object, with a DeprecationWarning that names the new one; an unknown name is still an AttributeError."""

from __future__ import annotations

import importlib

import pytest

RENAMED = [  # (module, old name, new name, where the new name lives)
    ("samwidgets.hub.default_model", "DEFAULT_MODEL_NAME", "BUNDLED_MODEL_NAME", "samwidgets.hub.registry"),
    ("samwidgets.hub.default_model", "DEFAULT_WEIGHTS", "BUNDLED_WEIGHTS", "samwidgets.hub.registry"),
    ("samwidgets.hub.checkpoints", "CACHE_ENV_VAR", "CACHE_ENV", "samwidgets.io.paths"),
    ("samwidgets.hub.checkpoints", "load_model", "model_from_flags", "samwidgets.hub.checkpoints"),
]


@pytest.mark.parametrize(("module", "old", "new", "home"), RENAMED)
def test_an_old_name_warns_and_gives_the_new_object(module, old, new, home):
    with pytest.warns(DeprecationWarning, match=f"{old} is now {new}"):
        value = getattr(importlib.import_module(module), old)
    assert value is getattr(importlib.import_module(home), new)


@pytest.mark.parametrize("module", sorted({row[0] for row in RENAMED}))
def test_an_unknown_name_is_still_an_attribute_error(module):
    with pytest.raises(AttributeError, match="no attribute 'NOT_A_NAME'"):
        _ = importlib.import_module(module).NOT_A_NAME
