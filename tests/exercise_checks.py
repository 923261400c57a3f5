"""The three outcomes every exercise checker must have, as assertions shared by the exercise tests."""

from __future__ import annotations

import pytest

from samwidgets.teaching.exercises import ExerciseFailed


def rejected(check, *args) -> str:
    """The message of the ExerciseFailed that ``check(*args)`` raises; it must carry a hint."""
    with pytest.raises(ExerciseFailed) as failure:
        check(*args)
    message = str(failure.value)
    assert "\nHint: " in message, message
    return message


def accepted(check, *args, capsys) -> str:
    """What ``check(*args)`` prints when it accepts the answer: it returns True and says "Correct:"."""
    assert check(*args) is True
    printed = capsys.readouterr().out
    assert "Correct: " in printed, printed
    return printed


def unanswered(check, *args, capsys) -> None:
    """``check(None, ...)`` returns False and prints what to do, raising nothing."""
    assert check(None, *args) is False
    assert "Not answered yet: " in capsys.readouterr().out
