"""Where the widget runs: Colab needs its custom widget manager switched on for third-party widgets."""

from __future__ import annotations

import sys
import warnings

_ENABLED = False


def in_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules


def enable_colab_widgets() -> bool:
    """Enable Colab's custom widget manager (needed by ipycanvas) once per kernel; True if it was enabled."""
    global _ENABLED
    if _ENABLED or not in_colab():
        return _ENABLED
    try:
        from google.colab import output  # type: ignore[import-not-found]

        output.enable_custom_widget_manager()
    except Exception as e:  # the widget may still render; say what to do if not
        warnings.warn(
            f"could not enable Colab's custom widget manager ({e}); if the canvas does not show, run "
            "`from google.colab import output; output.enable_custom_widget_manager()` and display it again",
            stacklevel=3,
        )
        return False
    _ENABLED = True
    return True
