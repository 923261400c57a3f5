"""Exercises that check themselves: one module per notebook, one checker per exercise.

A notebook's exercise cell gives the student's answer to a checker, for example::

    answer = None  # your answer here
    check_fewest_clicks(answer, predictor, scene)

A checker has three outcomes, so that the series still runs top to bottom before anyone has answered:

- no answer yet (``None``): it prints what to do and returns ``False``, raising nothing;
- a wrong answer: it raises :class:`ExerciseFailed`, whose message says what is wrong and gives a hint;
- the right answer: it prints why it is right and returns ``True``.

The right answer is never stored in a checker: a checker measures the student's answer (runs the model on
it, recomputes the quantity asked for) and compares the measurement with the goal. The worked answers live
in ``notebooks/solutions/``, one notebook per notebook of the series, under the same name.
"""

from __future__ import annotations

__all__ = ["ExerciseFailed", "not_answered", "passed", "require"]


class ExerciseFailed(AssertionError):
    """A wrong answer: the message says what is wrong and how to get closer."""


def not_answered(task: str) -> bool:
    """Say what the exercise asks for, without failing: the notebook runs on before an answer is given."""
    print(f"Not answered yet: {task}")
    return False


def require(condition: bool, problem: str, hint: str) -> None:
    """Fail with the problem and a hint unless ``condition`` holds."""
    if not condition:
        raise ExerciseFailed(f"{problem}\nHint: {hint}")


def passed(why: str) -> bool:
    """Report a right answer and why it is right."""
    print(f"Correct: {why}")
    return True
