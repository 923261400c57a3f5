"""A latest-wins rate limiter for work that the pointer asks for faster than it can be done.

The hover preview runs SAM's decoder for the point under the pointer. The
browser sends a mouse move every few milliseconds; answering each would build
a queue behind a slow model, and the preview would trail the pointer. The
:class:`Throttle` keeps only the newest request and runs it at most once per
``interval``; the interval grows with the time the work takes (``headroom``
times it), so a slow model previews less often instead of lagging, and the
kernel stays free for clicks between previews. :meth:`Throttle.cancel` drops
what is waiting: a click takes priority over any preview.

The waiting request runs from the kernel's event loop (``asyncio`` call_later,
the loop that delivers the widget's messages). Outside a running loop, in a
script or a test, a request that is not yet due waits for :meth:`flush`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class Timer(Protocol):
    def cancel(self) -> Any: ...


def call_later_in_running_loop(delay: float, callback: Callable[[], None]) -> Timer | None:
    """Schedule ``callback`` on the running asyncio loop (a Jupyter kernel's); None where no loop runs."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop.call_later(delay, callback)


@dataclass(eq=False)
class Throttle:
    """Run ``work(*args)`` for the newest request, at most once per interval.

    Args:
        work: the function to run with the newest request's arguments.
        min_interval: seconds between two runs at least (1/30: thirty previews a second at most).
        headroom: the interval is at least this many times the last run's duration (2: the work takes at most
            half of the kernel's time).
        clock, call_later: injectable for tests (``call_later(delay, callback)`` returns a cancellable timer,
            or None when it cannot schedule).
    """

    work: Callable[..., Any]
    min_interval: float = field(default=1 / 30, kw_only=True)
    headroom: float = field(default=2.0, kw_only=True)
    clock: Callable[[], float] = field(default=time.perf_counter, kw_only=True)
    call_later: Callable[[float, Callable[[], None]], Timer | None] = field(default=call_later_in_running_loop,
                                                                            kw_only=True)
    #: seconds between two runs now: min_interval, or headroom times the last run's duration when longer
    interval: float = field(init=False)
    #: requests replaced by a newer one before they ran
    dropped: int = field(default=0, init=False)
    _pending: tuple | None = field(default=None, init=False)
    _timer: Timer | None = field(default=None, init=False)
    _next_due: float = field(default=float("-inf"), init=False)
    _runs: deque[float] = field(default_factory=lambda: deque(maxlen=64), init=False)  # start times of the latest runs

    def __post_init__(self) -> None:
        self.interval = self.min_interval

    @property
    def pending(self) -> bool:
        """Whether a request waits to run."""
        return self._pending is not None

    def request(self, *args: Any) -> None:
        """Ask for ``work(*args)``; replaces any request still waiting. Runs now if one is due."""
        if self._pending is not None:
            self.dropped += 1
        self._pending = args
        if self._timer is not None:
            return  # the scheduled run will take the newest arguments
        delay = self._next_due - self.clock()
        if delay <= 0:
            self._run()
        else:
            self._timer = self.call_later(delay, self._fire)

    def cancel(self) -> None:
        """Drop the waiting request (a click came first)."""
        self._pending = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def flush(self) -> None:
        """Run the waiting request now, due or not (where no event loop runs it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._run()

    def rate(self, window: float = 1.0) -> float:
        """Runs per second over the last ``window`` seconds."""
        now = self.clock()
        return sum(1 for t in self._runs if now - t <= window) / window

    def _fire(self) -> None:
        self._timer = None
        self._run()

    def _run(self) -> None:
        if self._pending is None:
            return
        args, self._pending = self._pending, None
        start = self.clock()
        self._runs.append(start)
        try:
            self.work(*args)
        finally:
            took = self.clock() - start
            self.interval = max(self.min_interval, self.headroom * took)
            self._next_due = start + self.interval
