"""Shared fixtures: the reference-parity data and a tiny model built from it, the small SAM 2 model's file
(``small``), and the device the device-aware tests run on (``test_device``: $SAMWIDGETS_TEST_DEVICE, the CPU by
default; see tests/on_device.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings
from on_device import device_from_env, full_precision
from sam2_small import load_small

from samwidgets import SamConfig, SamPredictor, build_sam
from samwidgets.io.network import OFFLINE_ENV
from samwidgets.teaching.models import MODEL_ENV

# Tests, and the notebooks that nbval runs in kernels started from this process, never use the network:
# samwidgets' offline mode is on for the whole run, and a teacher's $SAMWIDGETS_MODEL does not leak in (the
# series is tested with the bundled model). Tests of downloads from their own server on 127.0.0.1 turn the
# offline mode off for themselves with the ``local_downloads`` fixture.
os.environ[OFFLINE_ENV] = "1"
os.environ.pop(MODEL_ENV, None)

# Property tests draw the same examples on every run (CI fails for a reason, not by luck of the draw);
# HYPOTHESIS_PROFILE=explore draws new ones, to look for failures on purpose.
settings.register_profile("derandomized", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derandomized"))

DATA = Path(__file__).parent / "data"
PARITY_FILE = DATA / "sam_parity_tiny.pt"


@pytest.fixture(scope="session")
def parity() -> dict:
    """Outputs of the reference segment-anything 1.0 predictor for a small random model."""
    return torch.load(PARITY_FILE, weights_only=False)


@pytest.fixture(scope="session")
def tiny_config(parity) -> SamConfig:
    return SamConfig.from_reference_config(parity["config"])


@pytest.fixture()
def tiny_sam(parity, tiny_config):
    return build_sam(tiny_config, parity["state_dict"])


@pytest.fixture()
def tiny_predictor(tiny_sam, parity) -> SamPredictor:
    predictor = SamPredictor(tiny_sam)
    predictor.set_image(parity["image"].numpy())
    return predictor


@pytest.fixture(scope="module")
def small() -> dict:
    """The small SAM 2 model's file, sam2_parity_small.pt (see tests/sam2_small.py, which builds the model)."""
    return load_small()


@pytest.fixture(scope="session")
def test_device() -> torch.device:
    """The device of the device-aware tests: $SAMWIDGETS_TEST_DEVICE ("cpu" when unset), TF32 off on a GPU.

    A device this machine lacks fails every test that asks for it (pytest.fail, never a skip): a GPU run that
    finds no GPU must not pass on the CPU. tests/device/run.sh runs the device-aware tests with "cuda".
    """
    try:
        device = device_from_env()
    except ValueError as error:
        pytest.fail(str(error), pytrace=False)
    full_precision(device)
    return device


@pytest.fixture()
def device_sam(parity, tiny_config, test_device):
    """The tiny reference-parity model on the test device (``tiny_sam`` stays on the CPU for the other tests)."""
    return build_sam(tiny_config, parity["state_dict"]).to(test_device)


@pytest.fixture()
def device_predictor(device_sam, parity) -> SamPredictor:
    """``tiny_predictor`` on the test device: the tiny model, the parity image set."""
    predictor = SamPredictor(device_sam)
    predictor.set_image(parity["image"].numpy())
    return predictor


@pytest.fixture()
def local_downloads(monkeypatch):
    """Downloads allowed, for tests that serve their files on 127.0.0.1: samwidgets' offline mode off, and no
    proxy (from the environment of the machine running the tests) between the client and 127.0.0.1."""
    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture()
def without_onnx(monkeypatch):
    """``import onnx`` fails (ImportError) for the test, as on a machine without the package installed: for the
    tests of the message that says what to install (the ONNX exports of SAM and SAM 2)."""
    import builtins

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx":
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)


def pytest_addoption(parser):
    parser.addoption(
        "--series-model", action="append", default=[], choices=["vit_b", "mobile_sam"],
        help="run the notebook series with a random checkpoint of this official model, given by path through "
             "$SAMWIDGETS_MODEL (tests/test_series_any_model.py; outside CI: about an hour for vit_b on 2 cores)")
