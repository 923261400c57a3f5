"""Checks of a command's arguments that catch a user's mistake before any heavy work (loading a model,
reading data, training): each raises :class:`~samwidgets.errors.UserInputError` whose message names the
flag, what is wrong and the fix, and :func:`samwidgets.cli.main` prints it as one line,
``samwidgets <command>: error: <message>``, with exit status 2 (:func:`error_line`)."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from ..errors import UserInputError
from ..runtime.devices import resolve_device
from ..runtime.threads import configure_threads

#: what a bad file raises when read (torch.load: UnpicklingError, RuntimeError, EOFError; a format: ValueError)
READ_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError)


def one_line(text: str) -> str:
    """``text`` on one line: its lines, stripped, joined with "; " (an error line is one line)."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def error_line(command: str, message: str) -> str:
    """How a command reports a user's mistake: ``samwidgets <command>: error: <message>``, one line."""
    return f"samwidgets {command}: error: {one_line(message)}"


def existing_file(path: str | os.PathLike, flag: str, fix: str) -> Path:
    """``path`` as a Path if it is a file; else a UserInputError: ``<flag> <path>: no such file; <fix>``."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserInputError(f"{flag} {path}: a folder, not a file; {fix}")
    if not path.is_file():
        raise UserInputError(f"{flag} {path}: no such file; {fix}")
    return path


def existing_folder(path: str | os.PathLike, flag: str, fix: str) -> Path:
    """``path`` as a Path if it is a folder; else a UserInputError: ``<flag> <path>: no such folder; <fix>``."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UserInputError(f"{flag} {path}: {'a file' if path.is_file() else 'no such folder'}; {fix}")
    return path


def bsds_folder(root: str | os.PathLike, split: str, flag: str = "--bsds") -> Path:
    """``root`` as a Path if it holds BSDS500's ``images/<split>`` and ``groundTruth/<split>`` with photos."""
    from ..data.bsds import BSDS_SPLITS, BsdsDataset

    root = existing_folder(root, flag, f"pass the BSDS500 folder holding images/{split} and groundTruth/{split} "
                                       "(BSDS500/data of the official archive)")
    if split not in BSDS_SPLITS:
        raise UserInputError(f"--split {split}: BSDS500 has no such split; pass one of {', '.join(BSDS_SPLITS)}")
    try:
        BsdsDataset(root, split)  # lists the split's photos: no photo is read
    except FileNotFoundError as e:  # a folder of another layout, or no photos
        raise UserInputError(f"{flag} {root}: {e}") from e
    return root


def at_least(value: int | float | None, minimum: int | float, flag: str) -> None:
    """A UserInputError unless ``value`` (None: not given) is at least ``minimum``."""
    if value is not None and value < minimum:
        raise UserInputError(f"{flag} must be at least {minimum:g}, got {value:g}")


def in_range(value: float, low: float, high: float, flag: str, *, high_open: bool = False) -> None:
    """A UserInputError unless ``low <= value <= high`` (``< high`` with ``high_open``)."""
    if not (low <= value < high if high_open else low <= value <= high):
        raise UserInputError(f"{flag} must be in [{low:g}, {high:g}{')' if high_open else ']'}, got {value:g}")


def device_flag(value: str, flag: str = "--device") -> torch.device:
    """The device ``--device`` names, or a UserInputError naming what this machine has."""
    try:
        return resolve_device(value)
    except ValueError as e:  # resolve_device raises ValueError only for the request it was given
        raise UserInputError(f"{flag} {value}: {e}") from e


def threads_flag(value: int | None, flag: str = "--threads") -> int:
    """Apply ``--threads`` (:func:`configure_threads`); a UserInputError for a count below 1."""
    at_least(value, 1, flag)
    return configure_threads(value)


@contextmanager
def reading(flag: str, path: str | os.PathLike | None, what: str, fix: str) -> Iterator[None]:
    """Turn an error raised while reading the file a flag names into a UserInputError naming the file.

    Only around a call that reads that file and nothing else: what goes wrong there is the file. With
    ``path`` None (the flag not given: a file of the package) errors pass unchanged.
    """
    if path is None:
        yield
        return
    try:
        yield
    except UserInputError:
        raise
    except READ_ERRORS as e:
        detail = one_line(str(e)).split("; ")[0].split(". ")[0][:300]  # the first sentence: torch's run long
        raise UserInputError(f"{flag} {path}: could not read it as {what} ({type(e).__name__}: {detail}); {fix}"
                             ) from e
