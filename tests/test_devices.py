"""One device resolver for every entry point: what "auto" picks, and clear errors for what is missing; and the
device the device-aware tests run on ($SAMWIDGETS_TEST_DEVICE, tests/on_device.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from on_device import TEST_DEVICE_ENV, device_from_env, tolerance

from samwidgets import load_default
from samwidgets.cli.train import parse_args, train
from samwidgets.runtime.devices import available_devices, resolve_device
from samwidgets.runtime.distributed import choose_device
from samwidgets.teaching import load_model


def test_auto_and_none_pick_cuda_when_there_is_one_else_the_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected and resolve_device(None).type == expected
    assert resolve_device("CPU") == torch.device("cpu") and resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert available_devices()[-1] == "cpu"


def test_auto_does_not_pick_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("samwidgets.runtime.devices._mps_available", lambda: True)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("mps") == torch.device("mps")
    assert available_devices() == ["mps", "cpu"]


def test_missing_or_unknown_devices_are_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("samwidgets.runtime.devices._mps_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU.*this machine has: cpu"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="no usable Apple MPS"):
        resolve_device("mps")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match="not supported"):
        resolve_device("meta")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match="has 2 GPU"):
        resolve_device("cuda:2")
    assert choose_device("cuda", local_rank=1) == torch.device("cuda", 1)  # this rank's GPU
    with pytest.raises(ValueError, match="LOCAL_RANK=2"):
        choose_device("auto", local_rank=2)


def test_entry_points_share_the_resolver(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        load_default("cuda")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        train(parse_args(["--device", "cuda", "--steps", "1", "--out", str(tmp_path / "run")]))


def test_the_test_device_is_named_and_a_missing_one_is_an_error(monkeypatch):
    assert device_from_env({}) == torch.device("cpu") and device_from_env({TEST_DEVICE_ENV: " CPU "}).type == "cpu"
    with pytest.raises(ValueError, match="'auto' is not a test device"):
        device_from_env({TEST_DEVICE_ENV: "auto"})
    with pytest.raises(ValueError, match="SAMWIDGETS_TEST_DEVICE='gpu': unknown device"):
        device_from_env({TEST_DEVICE_ENV: "gpu"})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="SAMWIDGETS_TEST_DEVICE='cuda': .*no CUDA GPU"):
        device_from_env({TEST_DEVICE_ENV: "cuda"})


def test_tolerances_are_the_cpus_own_on_the_cpu_and_wider_on_a_gpu():
    assert tolerance(torch.device("cpu"), atol=1e-4, rtol=0) == {"atol": 1e-4, "rtol": 0}
    wider = tolerance(torch.device("cuda"), atol=1e-4, rtol=1e-5)
    assert wider["atol"] > 1e-4 and wider["rtol"] > 1e-5


def test_the_notebooks_model_is_on_the_test_device(test_device):
    """The notebooks call load_model(MODEL) without a device: the GPU when there is one. On the GPU run
    (tests/device/run.sh, SAMWIDGETS_TEST_DEVICE=cuda) this says the notebook series runs its model on CUDA."""
    sam = load_model("default_cnn")
    assert sam.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if test_device.type == "cuda":
        assert sam.device.type == "cuda" and not torch.backends.cuda.matmul.allow_tf32
        assert not torch.backends.cudnn.allow_tf32  # the fixture turned TF32 off for the session


def test_a_missing_test_device_fails_the_tests_that_ask_for_it():
    """SAMWIDGETS_TEST_DEVICE=cuda where torch sees no GPU: the test errors at its fixture, never skips."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, TEST_DEVICE_ENV: "cuda", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "tests/test_fast_paths.py::test_window_partition_filled"],
                            cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "1 error" in result.stdout and "skipped" not in result.stdout
    assert "SAMWIDGETS_TEST_DEVICE='cuda': device 'cuda' was asked for but torch sees no CUDA GPU" in result.stdout
