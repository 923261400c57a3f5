"""The canvas's toolbar as data: one specification that the live widget builds its buttons from and the
still snapshot draws, so that the two always show the same tools, in the same order, with the same icons.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tool:
    """One button of the toolbar, after the positive / negative clicks switch that opens it."""

    name: str  # the canvas's name for it (its action, or its toggle's)
    text: str  # its label ("" for an icon alone)
    icon: str  # a Font Awesome 4 name, as ipywidgets takes it
    tooltip: str  # the keyboard shortcut first, then what it does
    toggle: bool = False  # a toggle (shown coloured while on) rather than a button


#: The clicks switch's labels and width (pixels): the toolbar's first control.
MODE_TEXT = {False: "positive clicks", True: "negative clicks"}
MODE_TOOLTIP = "n: switch between positive and negative clicks"
MODE_WIDTH = 140

#: The toolbar, in its order.
TOOLBAR: tuple[Tool, ...] = (
    Tool("new_object", "new object", "plus", "Enter / a: keep this mask as an object, start the next"),
    Tool("undo", "undo", "undo", "z"),
    Tool("redo", "redo", "repeat", "y"),
    Tool("clear", "clear", "eraser", "Esc / c: clear the object being edited"),
    Tool("previous", "", "arrow-left", "←: previous image"),
    Tool("next", "", "arrow-right", "→: next image"),
    Tool("preview", "preview", "eye", "p: show the mask under the pointer before you click", toggle=True),
    Tool("boxes", "several boxes", "clone", "b: each drag adds a box; Enter makes one object per box", toggle=True),
    Tool("zoom_in", "", "search-plus", "+ or the wheel: zoom in"),
    Tool("zoom_out", "", "search-minus", "-: zoom out"),
    Tool("reset_zoom", "", "expand", "0: the whole image"),
    Tool("pan", "", "arrows", "m: pan mode, a drag moves the image (or Shift + arrows)", toggle=True),
)
