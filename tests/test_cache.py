"""Embeddings are computed once per (image, model) and reused; disk entries survive and never lie.

The model runs on ``test_device`` (tests/on_device.py): entries read from disk come back onto its device."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from samwidgets import EmbeddingCache, SamPredictor
from samwidgets.inference.cache import model_fingerprint


class EncoderCounter:
    """Counts forward calls of the image encoder."""

    def __init__(self, model):
        self.calls = 0
        model.image_encoder.register_forward_hook(self._hook)

    def _hook(self, *args):
        self.calls += 1


def _image(seed: int, shape=(60, 80, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def test_seen_image_is_not_encoded_again(device_sam):
    counter = EncoderCounter(device_sam)
    predictor = SamPredictor(device_sam)
    a, b = _image(0), _image(1)
    predictor.set_image(a)
    emb_a = predictor.get_image_embedding().clone()
    predictor.set_image(b)
    predictor.set_image(a.copy())  # same content, another array
    assert counter.calls == 2
    assert predictor.last_set_image_cached and predictor.last_encode_seconds == 0.0
    torch.testing.assert_close(predictor.get_image_embedding(), emb_a)
    assert predictor.original_size == (60, 80)
    predictor.set_image(a[:, :, ::-1], image_format="BGR")  # same RGB content
    assert counter.calls == 2


def test_lru_evicts_oldest(device_sam):
    counter = EncoderCounter(device_sam)
    predictor = SamPredictor(device_sam, cache_size=2)
    for seed in (0, 1, 2):
        predictor.set_image(_image(seed))
    predictor.set_image(_image(2))
    predictor.set_image(_image(1))
    assert counter.calls == 3
    predictor.set_image(_image(0))  # evicted
    assert counter.calls == 4


def test_changed_weights_give_a_new_key(device_sam):
    counter = EncoderCounter(device_sam)
    predictor = SamPredictor(device_sam)
    image = _image(0)
    predictor.set_image(image)
    before = model_fingerprint(device_sam)
    with torch.no_grad():
        device_sam.image_encoder.neck[1].weight.mul_(2.0)  # in place, as an optimiser step does
    assert model_fingerprint(device_sam) != before
    predictor.set_image(image)
    assert counter.calls == 2


def test_fingerprint_depends_on_weights_not_object(device_sam, parity, tiny_config):
    from samwidgets import build_sam

    twin = build_sam(tiny_config, parity["state_dict"])  # on the CPU: the key is the same wherever the weights are
    assert model_fingerprint(twin) == model_fingerprint(device_sam)


def test_disk_cache_is_shared_across_predictors(device_sam, tmp_path):
    image = _image(3)
    first = SamPredictor(device_sam, disk_cache=tmp_path)
    first.set_image(image)
    files = list(tmp_path.glob("*.pt"))
    assert len(files) == 1
    counter = EncoderCounter(device_sam)
    second = SamPredictor(device_sam, disk_cache=tmp_path)
    second.set_image(image)
    assert counter.calls == 0 and second.last_set_image_cached
    torch.testing.assert_close(second.get_image_embedding(), first.get_image_embedding())
    assert second.input_size == first.input_size and second.original_size == first.original_size


def test_disk_cache_default_dir_from_env(device_sam, tmp_path, monkeypatch):
    monkeypatch.setenv("SAMWIDGETS_CACHE_DIR", str(tmp_path))
    SamPredictor(device_sam, disk_cache=True).set_image(_image(4))
    assert len(list((tmp_path / "embeddings").glob("*.pt"))) == 1


@pytest.mark.parametrize("damage", ["truncate", "flip_bytes", "garbage"])
def test_corrupt_disk_entry_is_discarded_and_recomputed(device_sam, tmp_path, damage):
    image = _image(5)
    SamPredictor(device_sam, disk_cache=tmp_path).set_image(image)
    (path,) = tmp_path.glob("*.pt")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip_bytes":  # same length, payload bytes changed: only the checksum can tell
        raw = bytearray(data)
        start = raw.find(b"data/0") + 200  # inside the stored tensor bytes
        raw[start : start + 64] = bytes(64)
        path.write_bytes(bytes(raw))
    else:
        path.write_bytes(b"not a torch file")
    counter = EncoderCounter(device_sam)
    predictor = SamPredictor(device_sam, disk_cache=tmp_path)
    with pytest.warns(RuntimeWarning, match="discarding corrupt embedding cache file"):
        predictor.set_image(image)
    assert counter.calls == 1 and not predictor.last_set_image_cached
    fresh = SamPredictor(device_sam, cache_size=0)
    fresh.set_image(image)
    torch.testing.assert_close(predictor.get_image_embedding(), fresh.get_image_embedding())
    # the recomputed entry was written back, whole
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert EmbeddingCache(disk_dir=tmp_path).get(path.stem) is not None


def test_crash_during_write_leaves_no_trusted_file(device_sam, tmp_path, monkeypatch):
    real_save = torch.save

    def crashing_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(torch, "save", crashing_save)
    predictor = SamPredictor(device_sam, disk_cache=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        predictor.set_image(_image(6))
    monkeypatch.setattr(torch, "save", real_save)
    assert os.listdir(tmp_path) == []  # neither the final file nor the temporary one


def test_cache_hit_costs_far_less_than_an_encode(device_sam):
    """Functional check (timing targets live in the benchmark): a hit runs no encoder and no resize."""
    predictor = SamPredictor(device_sam)
    image = _image(7, shape=(300, 400, 3))
    predictor.set_image(image)
    calls = []
    predictor.transform.apply_image = lambda *a: calls.append(a)  # would fail the call if used
    predictor.set_image(image)
    assert calls == [] and predictor.cache.hits >= 1
