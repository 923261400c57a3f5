"""One device resolver for the whole kit: a user's request ("auto", "cuda", "cuda:1", "mps", "cpu", a
``torch.device`` or None) becomes a ``torch.device`` this machine has, or a clear error.

"auto" (and None) picks CUDA when torch sees a GPU, else the CPU. Apple's MPS is used when asked for by
name (``"mps"``) but not picked by "auto": this kit's kernels are written for the CPU and CUDA only (tested
on the CPU; tests/device/run.sh runs them on CUDA, which no GPU has run yet), and a missing MPS kernel would turn
a working default into an error on every Mac.
"""

from __future__ import annotations

import torch

__all__ = ["DEVICE_CHOICES", "available_devices", "resolve_device"]

#: What command lines accept for ``--device`` (plus "cuda:N").
DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The ``torch.device`` for a request; "auto" or None: CUDA if available, else the CPU.

    Raises ValueError naming what this machine has when the request is unknown or its device is missing.
    """
    if isinstance(device, torch.device):
        requested = str(device)
    else:
        requested = "auto" if device is None else str(device).strip().lower()
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(requested)
    except RuntimeError as e:
        raise ValueError(f"unknown device {device!r}: use one of {', '.join(DEVICE_CHOICES)} or cuda:N") from e
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} was asked for but torch sees no CUDA GPU "
                             f"(this machine has: {', '.join(available_devices())}): use 'auto' or 'cpu'")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"device {requested!r} was asked for but this machine has {count} GPU(s): "
                             f"use cuda:0 to cuda:{count - 1}")
    elif resolved.type == "mps" and not _mps_available():
        raise ValueError(f"device 'mps' was asked for but this torch has no usable Apple MPS backend "
                         f"(this machine has: {', '.join(available_devices())}): use 'auto' or 'cpu'")
    elif resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {requested!r} is not supported by samwidgets: use one of "
                         f"{', '.join(DEVICE_CHOICES)} or cuda:N")
    return resolved


def available_devices() -> list[str]:
    """The device names this machine offers, e.g. ["cuda", "cpu"]."""
    names = ["cuda"] if torch.cuda.is_available() else []
    if _mps_available():
        names.append("mps")
    return names + ["cpu"]
