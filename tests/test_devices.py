"""One device resolver for every entry point: what "auto" picks, and clear errors for what is missing."""

from __future__ import annotations

import pytest
import torch

from samwidgets import load_default
from samwidgets.cli.train import parse_args, train
from samwidgets.runtime.devices import available_devices, resolve_device
from samwidgets.runtime.distributed import choose_device


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
