"""Thread count of the command-line tools: physical cores, unless the user chose."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from samwidgets.runtime import threads
from samwidgets.runtime.threads import configure_threads, count_physical_cores, physical_cores


def cpuinfo(*cpus: tuple[int, int, int]) -> str:
    """/proc/cpuinfo text for (processor, physical id, core id) triples."""
    return "\n\n".join(f"processor\t: {p}\nvendor_id\t: GenuineIntel\nphysical id\t: {s}\nsiblings\t: 4\n"
                       f"core id\t\t: {c}\ncpu cores\t: 2" for p, s, c in cpus) + "\n\n"


#: One socket, 2 cores with 2 hyperthreads each, numbered as Linux does (siblings 0 & 2, 1 & 3).
HYPERTHREADED = cpuinfo((0, 0, 0), (1, 0, 1), (2, 0, 0), (3, 0, 1))


def test_hyperthreads_count_once():
    assert count_physical_cores(HYPERTHREADED) == 2
    assert count_physical_cores(cpuinfo((0, 0, 0), (1, 1, 0))) == 2  # same core id on two sockets


def test_only_the_cpus_this_process_may_use():
    assert count_physical_cores(HYPERTHREADED, allowed={0, 2}) == 1  # two hyperthreads of one core
    assert count_physical_cores(HYPERTHREADED, allowed={2, 3}) == 2
    assert count_physical_cores(HYPERTHREADED, allowed={7}) is None


def test_no_core_ids_means_unknown():
    assert count_physical_cores("processor\t: 0\nBogoMIPS\t: 48.00\n\nprocessor\t: 1\nBogoMIPS\t: 48.00\n") is None
    assert count_physical_cores("") is None


def test_physical_cores_never_exceeds_the_affinity_mask(monkeypatch):
    assert 1 <= physical_cores() <= (os.cpu_count() or 1)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert physical_cores() == 1
    monkeypatch.setattr(threads, "count_physical_cores", lambda text, allowed=None: None)  # unknown: logical CPUs
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setitem(sys.modules, "psutil", None)  # psutil not installed
    assert physical_cores() == 3


@pytest.fixture()
def torch_threads(monkeypatch):
    """No thread variables in the environment; torch's thread count restored afterwards."""
    for name in threads.THREAD_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_default_is_physical_cores(torch_threads, monkeypatch):
    monkeypatch.setattr(threads, "physical_cores", lambda: 1)
    torch.set_num_threads(2)  # torch's default counts hyperthreads and CPUs outside the affinity mask
    assert configure_threads(None) == 1 == torch.get_num_threads()


def test_a_lower_count_set_in_this_process_is_kept(torch_threads, monkeypatch):
    monkeypatch.setattr(threads, "physical_cores", lambda: 2)
    torch.set_num_threads(1)
    assert configure_threads(None) == 1 == torch.get_num_threads()


@pytest.mark.parametrize("name", threads.THREAD_ENV_VARS)
def test_environment_variable_is_respected(torch_threads, monkeypatch, name):
    monkeypatch.setenv(name, "2")
    monkeypatch.setattr(threads, "physical_cores", lambda: 1)
    torch.set_num_threads(2)
    assert configure_threads(None) == 2 == torch.get_num_threads()


def test_explicit_request_wins(torch_threads, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr(threads, "physical_cores", lambda: 2)
    torch.set_num_threads(2)
    assert configure_threads(1) == 1 == torch.get_num_threads()
    with pytest.raises(ValueError, match="at least 1"):
        configure_threads(0)
