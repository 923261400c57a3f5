"""How many torch CPU threads to use: one per physical core this process may run on.

Hyperthreads share a core's floating-point units, so the encoder's matrix
products gain nothing from a second thread per core and lose to the
contention; and in a container or under ``taskset`` the process may use
fewer CPUs than the machine has. The command-line tools (bench, generate,
embed, train) call :func:`configure_threads` with their ``--threads``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

#: Set by the user (or by torchrun, 1 per process) to choose the thread count: then it is left alone.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def count_physical_cores(cpuinfo: str, allowed: set[int] | None = None) -> int | None:
    """Distinct (physical id, core id) pairs in ``/proc/cpuinfo`` text, among the processors in ``allowed``.

    None when the text does not name them (some virtual machines and non-x86
    kernels), or names none of the allowed processors.
    """
    cores = set()
    for block in cpuinfo.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if "processor" not in fields or "core id" not in fields:
            continue
        if allowed is not None and int(fields["processor"]) not in allowed:
            continue
        cores.add((fields.get("physical id", "0"), fields["core id"]))
    return len(cores) or None


def physical_cores() -> int:
    """Physical cores among the CPUs this process may use (at least 1).

    From /proc/cpuinfo on Linux, else psutil if it is installed, else the
    logical CPU count; never more than the CPUs of this process's affinity mask.
    """
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    logical = len(allowed) if allowed else (os.cpu_count() or 1)
    try:
        cores = count_physical_cores(Path("/proc/cpuinfo").read_text(), allowed)
    except (OSError, ValueError):
        cores = None
    if cores is None:
        try:
            import psutil

            cores = psutil.cpu_count(logical=False)  # the whole machine's: capped by the affinity below
        except ImportError:
            cores = None
    return max(1, min(cores or logical, logical))


def configure_threads(requested: int | None = None) -> int:
    """Set torch's CPU thread count for a command-line run; returns the count in use.

    ``requested`` (``--threads``) wins. Without it, a count the user chose is
    kept: ``$OMP_NUM_THREADS`` / ``$MKL_NUM_THREADS`` (torch reads them at
    start), or a lower count already set in this process with
    ``torch.set_num_threads`` (torch's own default is never below the
    physical cores, so a lower one was chosen, e.g. by a notebook or a test
    calling a CLI's ``main``). Otherwise torch gets :func:`physical_cores`:
    its default counts every core of the machine even where this process may
    use only some of them.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"the number of threads must be at least 1, got {requested}")
        torch.set_num_threads(requested)
    elif not any(os.environ.get(name) for name in THREAD_ENV_VARS):
        cores = physical_cores()
        if torch.get_num_threads() > cores:
            torch.set_num_threads(cores)
    return torch.get_num_threads()
