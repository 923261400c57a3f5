"""Memory of this process as Linux reports it: the resident set and its peak, for the benchmarks.

``/proc/self/status`` gives VmRSS (now) and VmHWM (the peak); writing 5 to ``/proc/self/clear_refs``
resets the peak, so one encode's peak can be measured on its own. Elsewhere both report nothing.
"""

from __future__ import annotations

from pathlib import Path


def rss_mib(field: str) -> float | None:
    """A memory field of /proc/self/status in MiB ("VmRSS", "VmHWM"); None where there is no such file."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False
