"""The interactive canvas: :class:`SamCanvas`, and the widget-free :class:`AnnotationSession` behind it."""

from .canvas import KEY_ACTIONS, SamCanvas
from .environment import enable_colab_widgets, in_colab
from .session import AnnotationSession
from .state import AnnotatedObject, ImageState, Prediction, Prompt

__all__ = [
    "KEY_ACTIONS",
    "AnnotatedObject",
    "AnnotationSession",
    "ImageState",
    "Prediction",
    "Prompt",
    "SamCanvas",
    "enable_colab_widgets",
    "in_colab",
]
