"""Share batch work between the processes of a ``torchrun`` launch (one per GPU, or several on a CPU).

The batch commands (``python -m samwidgets generate``, ``python -m samwidgets embed``)
use this module so that the same command line runs as one process or, under
``torchrun``, as one process per rank, each doing a disjoint part of the images:

    with distributed_session() as dist:             # the process group, when there is more than one rank
        mine = shard(images, dist.rank, dist.world_size)
        device = choose_device("auto", dist.local_rank)
        ...                                          # work on `mine` only, write outputs atomically
        totals = sum_over_ranks([written, skipped, failed])   # rank 0 prints them

Ranks talk to each other only to add up their counts at the end: every rank
decides what to do from the image list and the files already written, so a
rank that failed is re-done by running the same command again (its finished
outputs are skipped, those of the other ranks too), and nothing is written twice.
Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) there is one rank
and no process group at all.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, NoReturn, TypeVar

import torch
import torch.distributed as dist

from .devices import resolve_device

T = TypeVar("T")

#: How long a rank waits in a collective for the others. The only collective after start-up is
#: the count of results at the end, where a rank whose share went fast waits for the slowest one;
#: torch's default (10 to 30 minutes) would make it give up, fail, and so get the slow rank killed.
COLLECTIVE_TIMEOUT = timedelta(hours=48)

#: Whether this process has joined a process group (see :func:`exit_process`).
_joined_group = False


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the launch: its rank among world_size, and its rank on this machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        """Whether there is more than one process (and so a process group)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that draws the progress bar and prints the totals."""
        return self.rank == 0

    def prefix(self) -> str:
        """``"[rank 1/4] "`` to start a printed line with under torchrun, so interleaved output can be told apart;
        empty for a single process."""
        return f"[rank {self.rank}/{self.world_size}] " if self.is_distributed else ""


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer; torchrun sets it, "
                         "so unset it or launch with torchrun") from None


def dist_info(env: Mapping[str, str] | None = None) -> DistInfo:
    """Rank, world size and local rank from the variables ``torchrun`` sets (RANK, WORLD_SIZE, LOCAL_RANK).

    No WORLD_SIZE means a plain single process. The values are checked, so a
    half-set environment fails here with the fix rather than hanging later.
    """
    env = os.environ if env is None else env
    world_size = _env_int(env, "WORLD_SIZE", 1)
    if world_size < 1:
        raise ValueError(f"WORLD_SIZE={world_size}: it must be at least 1")
    if world_size > 1 and "RANK" not in env:
        raise ValueError(f"WORLD_SIZE={world_size} is set but RANK is not: launch with torchrun "
                         "(python -m torch.distributed.run), which sets both, or unset WORLD_SIZE")
    rank = _env_int(env, "RANK", 0)
    local_rank = _env_int(env, "LOCAL_RANK", rank)
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} is outside 0..{world_size - 1} (WORLD_SIZE={world_size})")
    if local_rank < 0:
        raise ValueError(f"LOCAL_RANK={local_rank} must not be negative")
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def shard(items: Sequence[T], rank: int, world_size: int, *,
          mode: Literal["strided", "contiguous"] = "strided",
          key: Callable[[T], Any] | None = None) -> list[T]:
    """The items rank ``rank`` of ``world_size`` works on: a split of ``sorted(items, key=key)``.

    Sorting first makes the split independent of the order the items were
    given in, so every rank (and every re-run) computes the same shards; each
    item is in exactly one shard, and shard sizes differ by at most one
    (ranks beyond the number of items get nothing). ``"strided"`` (the
    default) gives rank r the items r, r + world_size, ...: neighbours in
    sorted order, often alike in size (a folder of tiles, a folder of large
    photos), are spread over all ranks, which keeps their loads even.
    ``"contiguous"`` gives each rank one run of neighbouring items.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in 0..{world_size - 1}, got {rank}")
    ordered = sorted(items, key=key)  # type: ignore[arg-type, type-var]
    if mode == "strided":
        return ordered[rank::world_size]
    if mode == "contiguous":
        n = len(ordered)
        return ordered[rank * n // world_size:(rank + 1) * n // world_size]
    raise ValueError(f"unknown shard mode {mode!r}: use 'strided' or 'contiguous'")


def choose_device(requested: str = "auto", local_rank: int = 0) -> torch.device:
    """The device for this rank: ``cuda:LOCAL_RANK`` when CUDA is available (or asked for), else the CPU.

    "auto" picks CUDA by itself when there is one, so a GPU machine needs no
    option; "cuda" means this rank's GPU; "cpu", "mps" or an explicit "cuda:N"
    are taken as given (checked by :func:`samwidgets.runtime.devices.resolve_device`).
    """
    device = resolve_device(requested)
    if device.type == "cuda" and device.index is None:  # "auto" or "cuda": this rank's GPU
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise ValueError(f"LOCAL_RANK={local_rank} but this machine has {count} GPU(s): start at most "
                             f"{count} processes per node (torchrun --nproc_per_node={count})")
        return torch.device("cuda", local_rank)
    return device


def init_distributed(info: DistInfo | None = None, timeout: timedelta = COLLECTIVE_TIMEOUT) -> DistInfo:
    """Join the process group when there is more than one rank (nccl on CUDA, gloo on CPU); return the info.

    On CUDA the rank's GPU (LOCAL_RANK) becomes the current device first, as
    nccl needs. A single process, or a group already initialised, is left alone.
    timeout bounds every collective (see :data:`COLLECTIVE_TIMEOUT`).
    """
    global _joined_group
    info = dist_info() if info is None else info
    if not info.is_distributed or dist.is_initialized():
        return info
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={info.world_size} but this torch build has no torch.distributed: "
                           "run as a single process (without torchrun) or install a torch with it")
    if torch.cuda.is_available():
        device = choose_device("cuda", info.local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl", device_id=device, timeout=timeout)
    else:
        dist.init_process_group(backend="gloo", timeout=timeout)
    _joined_group = True
    return info


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for in a single process)."""
    if dist.is_available() and dist.is_initialized():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def cleanup() -> None:
    """Leave the process group, if this process joined one, so the process exits without warnings."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def distributed_session(info: DistInfo | None = None) -> Iterator[DistInfo]:
    """``init_distributed`` on entry, ``cleanup`` on exit (also after an error)."""
    info = init_distributed(info)
    try:
        yield info
    finally:
        cleanup()


def exit_process(code: int) -> NoReturn:
    """End a batch command with exit status ``code``; after a process group, without interpreter teardown.

    With torch 2.14 on a CPU, a gloo worker thread can outlive
    ``destroy_process_group`` and drop its last reference to the final
    all-reduce's tensor while Python is finalising; freeing that tensor then
    needs the GIL, Python ends the thread, and the process aborts
    ("terminate called without an active exception", exit -6) after all its
    work is done (about 1 run in 25 here; a core dump showed the gloo run
    loop exiting during ``Py_FinalizeEx``'s garbage collection). So a rank
    that joined a group flushes its output and leaves with ``os._exit``:
    its files are already complete (every output is written atomically), and
    torchrun sees the true status. A single process exits normally.
    """
    if _joined_group:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def sum_over_ranks(counts: Sequence[int]) -> list[int]:
    """Element-wise sum of ``counts`` over all ranks (all_reduce); the counts themselves in a single process.

    Every rank must call it (it is a collective), with as many counts; it
    also acts as a barrier, so a rank that finished early waits for the rest.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return [int(c) for c in counts]
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    total = torch.tensor([int(c) for c in counts], dtype=torch.int64, device=device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return [int(c) for c in total.tolist()]
