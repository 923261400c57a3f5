"""Whether to use the network, and a quick check that a server answers.

Two settings, so that a classroom or a test run never waits on a network it does not have:

* ``SAMWIDGETS_OFFLINE=1`` (also ``true``/``yes``/``on``): nothing in samwidgets opens a connection. Files
  already in the cache are still used (after their checks); a download that would be needed raises
  :class:`OfflineError` at once, naming the setting. The tests and CI set it, so that no result depends on
  a name lookup failing.
* :func:`can_reach`: a TCP connection to a URL's host, given up after a short timeout (name lookup
  included), so that ``MODEL = "auto"`` decides within seconds when the network is missing.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse

__all__ = ["OFFLINE_ENV", "OfflineError", "can_reach", "check_online", "offline"]

#: The environment variable that switches the network off for samwidgets.
OFFLINE_ENV = "SAMWIDGETS_OFFLINE"

_TRUE = {"1", "true", "yes", "on"}


class OfflineError(ConnectionError):
    """A download was needed while ``SAMWIDGETS_OFFLINE`` is set; the message says what was wanted."""


def offline() -> bool:
    """True when ``$SAMWIDGETS_OFFLINE`` is set to 1, true, yes or on (any case)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE


def check_online(what: str) -> None:
    """Raise :class:`OfflineError` naming ``what`` (e.g. "download of vit_b") when offline mode is on."""
    if offline():
        raise OfflineError(f"{OFFLINE_ENV} is set, so samwidgets does not use the network ({what}). Unset "
                           f"{OFFLINE_ENV} to download it, or put the file in samwidgets' cache first.")


def can_reach(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    """Whether a TCP connection to ``url``'s host and port opens within ``timeout`` seconds, and why not.

    Returns (True, "") or (False, a reason in words). The name lookup counts towards the timeout: it runs in
    a daemon thread that is abandoned when time is up (``getaddrinfo`` itself cannot be interrupted). With
    offline mode on it returns (False, ...) without trying.
    """
    if offline():
        return False, f"{OFFLINE_ENV} is set"
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        return False, f"{url!r} names no host"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: list[str] = []

    def connect() -> None:
        try:
            with socket.create_connection((parts.hostname, port), timeout=timeout):
                outcome.append("")
        except OSError as error:  # refused, unreachable, no such name, timed out
            outcome.append(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)

    thread = threading.Thread(target=connect, name="samwidgets-can-reach", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return False, f"no answer from {parts.hostname}:{port} within {timeout:g} s"
    if outcome[0]:
        return False, f"cannot connect to {parts.hostname}:{port} ({outcome[0]})"
    return True, ""
