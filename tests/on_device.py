"""The device the device-aware tests run on, and their float tolerances there.

``$SAMWIDGETS_TEST_DEVICE`` names it: "cpu" (the default, what CI runs), "cuda" or "cuda:N" on a GPU machine
(tests/device/run.sh sets it). A device this machine lacks is an error, never a quiet fallback to the CPU: a GPU
run that silently tested the CPU would say CUDA works when nobody knows. The ``test_device`` fixture
(tests/conftest.py) turns that error into a failed test.

The device-aware tests (the fast paths against the plain ones, the predictor, the widget's session, the
interactive loss) put their models and inputs on ``test_device`` and bring results back with ``.cpu()``. On the
CPU their behaviour and tolerances are exactly what they were before the fixture existed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import torch

from samwidgets.runtime.devices import resolve_device

#: The environment variable that names the test device.
TEST_DEVICE_ENV = "SAMWIDGETS_TEST_DEVICE"

#: On a GPU each float tolerance of a device-aware test is this many times its CPU value. TF32 is off there
#: (:func:`full_precision`), so fp32 sums differ from the CPU's only in their order (cuBLAS, cuDNN and SDPA's
#: kernels): errors of the same size as the CPU's own, which the CPU tolerances leave some room above. A guess,
#: until tests/device/run.sh has run on a GPU: the first run says whether it is too tight (a failure to read,
#: not a factor to raise blindly). Exact comparisons (``torch.equal``: data movement, bit-identical claims) stay
#: exact on every device.
GPU_TOLERANCE_FACTOR = 10.0


def device_from_env(environ: Mapping[str, str] = os.environ) -> torch.device:
    """The device ``$SAMWIDGETS_TEST_DEVICE`` names ("cpu" when unset); ValueError naming the problem otherwise."""
    name = environ.get(TEST_DEVICE_ENV, "").strip().lower() or "cpu"
    if name == "auto":  # a test run says what it tests: "auto" would be the CPU wherever the GPU is missing
        raise ValueError(f"${TEST_DEVICE_ENV}='auto' is not a test device: name it (cpu, cuda or cuda:N)")
    try:
        return resolve_device(name)
    except ValueError as error:
        raise ValueError(f"${TEST_DEVICE_ENV}={name!r}: {error}") from None


def full_precision(device: torch.device) -> None:
    """fp32 matrix products and convolutions in full fp32 on a GPU (no TF32: 10-bit mantissas), for the session.

    cuDNN's convolutions default to TF32 on Ampere and later GPUs (relative errors near 1e-3, a hundred times the
    CPU tolerances); the legacy switches are used because torch keeps them and its newer per-backend settings in
    step (setting only the newer ones leaves the legacy ones disagreeing, which some torch versions refuse).
    """
    if device.type != "cuda":
        return
    with warnings.catch_warnings():  # some torch versions announce the newer settings when these are used
        warnings.simplefilter("ignore")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def tolerance(device: torch.device, **tolerances: float) -> dict[str, float]:
    """``atol``/``rtol`` keyword arguments for ``device``: unchanged on the CPU, x GPU_TOLERANCE_FACTOR elsewhere."""
    factor = 1.0 if device.type == "cpu" else GPU_TOLERANCE_FACTOR
    return {name: value * factor for name, value in tolerances.items()}
