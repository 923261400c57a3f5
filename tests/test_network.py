"""samwidgets' offline mode and its quick reachability check (samwidgets.io.network), and MODEL = "auto"'s
choice without a download (samwidgets.teaching.models.choose_model)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import torch

from samwidgets.hub.checkpoints import checkpoint_path
from samwidgets.io import download as download_module
from samwidgets.io import network
from samwidgets.io.download import download
from samwidgets.io.network import OFFLINE_ENV, OfflineError, can_reach, offline
from samwidgets.teaching import models
from samwidgets.teaching.models import MODEL_ENV, choose_model, load_model


def no_network(*args, **kwargs):
    raise AssertionError("a connection was attempted")


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                                 ("0", False), ("", False), ("no", False)])
def test_offline_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(OFFLINE_ENV, value)
    assert offline() is expected


def test_the_tests_run_offline():
    """conftest.py switches the network off for the whole run (and for the notebooks' kernels)."""
    assert offline()


def test_offline_download_uses_the_cache_and_never_connects(monkeypatch, tmp_path):
    monkeypatch.setattr(download_module.urllib.request, "urlopen", no_network)
    cached = tmp_path / "weights.pt"
    cached.write_bytes(b"12345")
    assert download("http://example.invalid/weights.pt", cached, 5, progress=False) == cached
    with pytest.raises(OfflineError, match=f"{OFFLINE_ENV} is set.*example.invalid/missing.pt"):
        download("http://example.invalid/missing.pt", tmp_path / "missing.pt", 5, progress=False)
    assert not (tmp_path / "missing.pt.part").exists()


def test_can_reach_a_listening_port_and_not_a_closed_one(local_downloads):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        assert can_reach(f"http://127.0.0.1:{port}/x", timeout=2.0) == (True, "")
    finally:
        listener.close()
    ok, reason = can_reach(f"http://127.0.0.1:{port}/x", timeout=2.0)
    assert not ok and f"127.0.0.1:{port}" in reason and "Refused" in reason


def test_can_reach_gives_up_on_a_lookup_that_hangs(local_downloads, monkeypatch):
    release = threading.Event()

    def hang(*args, **kwargs):  # a name lookup that never answers (released when the test ends)
        release.wait(30)
        raise OSError("released")

    monkeypatch.setattr(network.socket, "create_connection", hang)
    start = time.perf_counter()
    ok, reason = can_reach("https://hangs.example/x", timeout=0.3)
    release.set()
    assert not ok and "no answer from hangs.example:443 within 0.3 s" in reason
    assert time.perf_counter() - start < 2.0


def test_can_reach_tries_nothing_offline(monkeypatch):
    monkeypatch.setattr(network.socket, "create_connection", no_network)
    assert can_reach("https://example.com") == (False, f"{OFFLINE_ENV} is set")


def test_auto_offline_is_the_bundled_model_at_once(monkeypatch, tmp_path):
    monkeypatch.setenv("SAMWIDGETS_CACHE_DIR", str(tmp_path))  # an empty cache
    monkeypatch.setattr(network.socket, "create_connection", no_network)
    choice = choose_model("auto", device="cpu")
    assert choice.name == "default_cnn" and choice.auto
    assert "mobile_sam cannot be downloaded" in choice.reason and OFFLINE_ENV in choice.reason


def test_auto_wants_vit_b_on_a_gpu_and_mobile_sam_on_a_cpu(local_downloads, monkeypatch, tmp_path):
    monkeypatch.setenv("SAMWIDGETS_CACHE_DIR", str(tmp_path))
    asked = []
    monkeypatch.setattr(models, "can_reach", lambda url, timeout: (asked.append(url), (True, ""))[1])
    assert choose_model("auto", device="cpu").name == "mobile_sam"
    monkeypatch.setattr(models, "resolve_device", lambda device: torch.device("cuda"))
    choice = choose_model("auto")
    assert choice.name == "vit_b" and "a GPU is present" in choice.reason and "375 MB" in choice.reason
    assert "MobileSAM" in asked[0] and "dl.fbaipublicfiles.com" in asked[1]


def test_auto_takes_a_cached_file_without_asking_the_network(monkeypatch, tmp_path):
    monkeypatch.setenv("SAMWIDGETS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(network.socket, "create_connection", no_network)
    path = checkpoint_path("mobile_sam")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"stands in for the file")
    choice = choose_model("auto", device="cpu")
    assert choice.name == "mobile_sam" and "in the cache" in choice.reason


def test_the_environment_overrides_model(monkeypatch, capsys):
    monkeypatch.setenv(MODEL_ENV, "default_cnn")
    choice = choose_model("vit_h")
    assert choice.name == "default_cnn" and not choice.auto
    assert choice.reason == f"${MODEL_ENV} = 'default_cnn' overrides MODEL = 'vit_h'"
    sam = load_model("vit_h")  # no download: the environment says the bundled model
    assert models.is_bundled(sam)
    assert f"model: default_cnn (${MODEL_ENV}" in capsys.readouterr().out


def test_a_named_model_is_not_replaced_when_its_download_fails(monkeypatch):
    """Only "auto" falls back to the bundled model; a model asked for by name raises with the reason."""
    with pytest.raises(OfflineError):
        load_model("vit_b")


def test_auto_falls_back_when_the_download_fails(monkeypatch):
    monkeypatch.setattr(models, "choose_model", lambda name, device: models.ModelChoice("mobile_sam", "test", True))
    with pytest.warns(UserWarning, match="mobile_sam could not be loaded.*OFFLINE.*bundled model"):
        sam = load_model("auto")
    assert models.is_bundled(sam)
