"""The kit's error for a user's mistake: one class, raised wherever samwidgets checks what it was given.

A :class:`UserInputError` means "what you passed or did is not valid here", and its message says what was
wrong and how to fix it (the canvas shows it in its status line). Any other exception raised by samwidgets
is a bug of ours. The distinction is what lets a test tell the two apart: the canvas fuzzer accepts a
``UserInputError`` after a random event and fails on anything else.

``UserInputError`` is a ``ValueError`` (code written for the reference package, which raises ``ValueError``,
keeps working); the lookups that raised ``KeyError`` or ``IndexError`` raise subclasses that are those too.
"""

from __future__ import annotations

__all__ = ["UnknownObjectError", "UserInputError", "OutOfRangeError"]


class UserInputError(ValueError):
    """Something the user passed or did is not valid; the message names the problem and the fix."""


class UnknownObjectError(UserInputError, KeyError):
    """An object id that is not on this image (also a ``KeyError``, as a lookup by key would raise)."""

    def __str__(self) -> str:  # KeyError's own __str__ would show the message in quotes
        return Exception.__str__(self)


class OutOfRangeError(UserInputError, IndexError):
    """An index past the end of a sequence (also an ``IndexError``), such as an image number."""
