"""MobileSAM (``vit_t``): the official file loads unchanged and our predictor answers as the mobile_sam package does.

The reference outputs were recorded by ``tests/record/record_mobile_sam_parity.py`` with the
mobile_sam package (mobilesam-mirror) at the real TinyViT sizes, with the portable random weights of
``tests/random_weights.py`` that this test makes again from the official key list.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from local_server import serving
from random_weights import random_state_dict, read_shapes

from samwidgets import SamAutomaticMaskGenerator, SamPredictor, from_pretrained, sam_model_registry
from samwidgets.hub.build import guess_model_type
from samwidgets.hub.registry import CheckpointError, CheckpointSpec, register_checkpoint, unregister_checkpoint
from samwidgets.modeling import CONFIGS
from samwidgets.modeling.tiny_vit import TinyViT, attention_bias_index

DATA = Path(__file__).parent / "data"
SHAPES = read_shapes(DATA / "mobile_sam_vit_t_state_dict.txt")
CLASSIFIER = ("image_encoder.head.", "image_encoder.norm_head.")


@pytest.fixture(scope="module")
def record() -> dict:
    return torch.load(DATA / "mobile_sam_parity.pt", weights_only=False)


@pytest.fixture(scope="module")
def official_file(tmp_path_factory) -> Path:
    """A checkpoint in the official format (a plain state dict with every key, the classifier's too)."""
    path = tmp_path_factory.mktemp("mobile_sam") / "mobile_sam.pt"
    torch.save(random_state_dict(SHAPES), path)
    return path


@pytest.fixture(scope="module")
def predictor(official_file, record) -> SamPredictor:
    model = sam_model_registry["vit_t"](checkpoint=official_file)
    predictor = SamPredictor(model)
    predictor.set_image(record["image"].numpy())
    return predictor


def test_the_model_has_the_official_keys_and_shapes():
    model = sam_model_registry["vit_t"]()
    assert isinstance(model.image_encoder, TinyViT)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    official = {k: s for k, s in SHAPES.items() if not k.startswith(CLASSIFIER)}
    assert ours == official
    assert len(SHAPES) - len(official) == 4  # the classifier: head weight and bias, its norm's weight and bias


def test_the_official_file_loads_strictly_and_is_recognised(official_file):
    model = sam_model_registry["vit_t"](checkpoint=official_file)
    state = torch.load(official_file, weights_only=True)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key].to(value.dtype), rtol=0, atol=0)
    assert guess_model_type(state) == "vit_t"
    by_path = from_pretrained(official_file, device="cpu")  # told apart from SAM's ViTs by its shapes
    assert isinstance(by_path.image_encoder, TinyViT)


def test_a_missing_or_unknown_key_is_named(tmp_path):
    state = random_state_dict(SHAPES)
    missing = dict(state)
    del missing["image_encoder.layers.2.blocks.3.attn.attention_biases"]
    with pytest.raises(CheckpointError, match="missing keys: image_encoder.layers.2.blocks.3.attn.attention_biases"):
        sam_model_registry["vit_t"](checkpoint=missing)
    extra = dict(state, **{"image_encoder.layers.3.blocks.2.attn.qkv.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match="unexpected keys: image_encoder.layers.3.blocks.2"):
        sam_model_registry["vit_t"](checkpoint=extra)
    vit_b_file = tmp_path / "vit_b.pt"
    torch.save(sam_model_registry["vit_b"]().state_dict(), vit_b_file)
    with pytest.raises(CheckpointError, match="looks like a 'vit_b' checkpoint"):
        sam_model_registry["vit_t"](checkpoint=vit_b_file)


def test_attention_bias_index_enumerates_offsets_as_the_reference():
    """The reference numbers the offsets (|dy|, |dx|) in the order its double loop over the cells meets them."""
    window = 3
    points = [(i, j) for i in range(window) for j in range(window)]
    offsets: dict[tuple[int, int], int] = {}
    expected = []
    for p1 in points:
        for p2 in points:
            offset = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
            offsets.setdefault(offset, len(offsets))
            expected.append(offsets[offset])
    assert attention_bias_index(window).tolist() == torch.tensor(expected).view(9, 9).tolist()


def test_image_embedding_matches_the_package(predictor, record):
    assert predictor.input_size == tuple(record["input_size"])
    assert predictor.original_size == tuple(record["original_size"])
    embedding = predictor.get_image_embedding()[0]  # 256 x 64 x 64
    torch.testing.assert_close(embedding[:16], record["embedding_head"], atol=1e-4, rtol=0)
    torch.testing.assert_close(embedding.mean(dim=(1, 2)), record["embedding_mean"], atol=1e-5, rtol=0)
    torch.testing.assert_close(embedding.std(dim=(1, 2)), record["embedding_std"], atol=1e-5, rtol=0)


CASES = ["point", "point_single", "points_pos_neg", "box", "box_and_negative_point", "refine_with_mask_input"]


@pytest.mark.parametrize("case", CASES)
def test_predict_matches_the_package(predictor, record, case):
    ref = record["cases"][case]
    masks, iou, low_res = predictor.predict(**ref["inputs"])
    logits, _, _ = predictor.predict(**ref["inputs"], return_logits=True)
    assert masks.dtype == np.bool_ and masks.shape == tuple(ref["masks"].shape)
    np.testing.assert_allclose(logits, ref["logits"].numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(low_res[..., ::4, ::4], ref["low_res_every4"].numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(iou, ref["iou_predictions"].numpy(), atol=1e-4, rtol=0)
    decided = np.abs(ref["logits"].numpy()) > 1e-3
    np.testing.assert_array_equal(masks[decided], ref["masks"].numpy()[decided])


def test_the_reference_outputs_are_not_trivial(record):
    """Parity on constant outputs would prove little: the recorded logits span units, most cases have masks of
    both signs, and the masks differ by prompt."""
    spans = [float(c["logits"].max() - c["logits"].min()) for c in record["cases"].values()]
    assert min(spans) > 1.5
    both_signs = [0.02 < float((c["logits"] > 0).float().mean()) < 0.98 for c in record["cases"].values()]
    assert sum(both_signs) >= 4
    a, b = record["cases"]["point"]["logits"], record["cases"]["box"]["logits"]
    assert float((a[0] > 0).ne(b[0] > 0).float().mean()) > 0.05


def test_fast_and_plain_paths_agree(predictor, record):
    """SamPredictor's default (fast paths on) and the plain modeling code give the same embedding and masks."""
    plain = SamPredictor(sam_model_registry["vit_t"](checkpoint=predictor.model.state_dict()), fast=False)
    plain.set_image(record["image"].numpy())
    torch.testing.assert_close(plain.get_image_embedding(), predictor.get_image_embedding(), atol=1e-4, rtol=0)


def test_the_automatic_mask_generator_runs_on_it(predictor, record):
    generator = SamAutomaticMaskGenerator(predictor.model, points_per_side=4, pred_iou_thresh=0.0,
                                          stability_score_thresh=0.0, box_nms_thresh=1.0)
    masks = generator.generate(record["image"].numpy())
    assert masks and all(m["segmentation"].shape == (96, 128) for m in masks)


def test_the_registry_pins_the_official_file():
    from samwidgets.hub.registry import DESCENDANT_CHECKPOINTS

    for name in ("mobile_sam", "vit_t"):
        spec = DESCENDANT_CHECKPOINTS[name]
        assert spec.config == CONFIGS["vit_t"] and spec.filename == "mobile_sam.pt"
        assert spec.size == 40_728_226
        assert spec.sha256 == "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f"
        assert spec.url.startswith("https://raw.githubusercontent.com/ChaoningZhang/MobileSAM/")


@pytest.fixture()
def served(official_file) -> Iterator[str]:
    """The official-format file served over HTTP on 127.0.0.1 (what from_pretrained downloads)."""
    with serving(official_file) as url:
        yield url


@pytest.mark.usefixtures("local_downloads")
def test_from_pretrained_by_name_downloads_checks_and_builds(served, official_file, tmp_path):
    from samwidgets.hub.checkpoints import DownloadError
    from samwidgets.hub.registry import DESCENDANT_CHECKPOINTS, get_checkpoint_spec

    data = official_file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    wrong = CheckpointSpec("mobile_sam", served, len(data), CONFIGS["vit_t"], sha256="0" * 64)
    right = CheckpointSpec("mobile_sam", served, len(data), CONFIGS["vit_t"], sha256=digest)
    try:
        register_checkpoint(wrong, overwrite=True)
        with pytest.raises(DownloadError, match="sha256"):
            from_pretrained("mobile_sam", cache_dir=tmp_path, progress=False)
        register_checkpoint(right, overwrite=True)
        model = from_pretrained("mobile_sam", cache_dir=tmp_path, device="cpu", progress=False)
    finally:
        unregister_checkpoint("mobile_sam")
    assert get_checkpoint_spec("mobile_sam") == DESCENDANT_CHECKPOINTS["mobile_sam"]  # the built-in one is back
    assert isinstance(model.image_encoder, TinyViT)
    state = torch.load(official_file, weights_only=True)
    torch.testing.assert_close(model.state_dict()["image_encoder.layers.1.blocks.0.attn.attention_biases"],
                               state["image_encoder.layers.1.blocks.0.attn.attention_biases"])
    assert (tmp_path / "checkpoints" / "mobile_sam.pt").read_bytes() == data


def test_the_canvas_session_and_onnx_export_work_with_it(predictor, record, tmp_path):
    """The widget's session (clicks, commit, undo) and the decoder's ONNX export, on MobileSAM."""
    import onnxruntime as ort
    from test_onnx import assert_same, onnx_inputs

    from samwidgets.inference.onnx import export_onnx
    from samwidgets.widget import AnnotationSession

    image = record["image"].numpy()
    session = AnnotationSession(predictor, [image], prefetch=False)
    first = session.add_point(40, 50)
    assert first.masks.shape == (3, 96, 128)
    session.add_point(100, 70, positive=False)
    assert session.commit("thing") is not None and len(session.state.objects) == 1
    session.undo()
    assert len(session.state.objects) == 0
    session.close()

    path = export_onnx(predictor.model, tmp_path / "mobile_sam_decoder.onnx")
    onnx_session = ort.InferenceSession(str(path))
    points, labels = [[40, 50], [100, 70]], [1, 0]
    ours = predictor.predict(np.array(points), np.array(labels), multimask_output=True, return_logits=True)
    assert_same(onnx_session.run(None, onnx_inputs(predictor, points, labels)), ours, slice(1, 4))


def test_the_flop_formula_is_what_the_encoder_runs():
    """encoder_flops (written out like the code) equals PyTorch's count of the encoder's matmuls and convolutions."""
    from torch.utils.flop_counter import FlopCounterMode

    from samwidgets.modeling import Sam, encoder_flops

    config = CONFIGS["vit_t"]
    with torch.device("meta"):
        model = Sam(config)
        pixels = torch.empty(1, 3, config.image_size, config.image_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.image_encoder(pixels)
    assert encoder_flops(config) == counter.get_total_flops()


@pytest.mark.usefixtures("local_downloads")
def test_model_auto_downloads_mobile_sam_on_a_cpu_then_works_offline(served, official_file, tmp_path, monkeypatch,
                                                                      capsys):
    """MODEL = "auto" on a CPU: MobileSAM from the (local) server; later, offline, from the cache."""
    from samwidgets.io.network import OFFLINE_ENV
    from samwidgets.teaching import is_bundled, load_model

    monkeypatch.setenv("SAMWIDGETS_CACHE_DIR", str(tmp_path))
    data = official_file.read_bytes()
    register_checkpoint(CheckpointSpec("mobile_sam", served, len(data), CONFIGS["vit_t"],
                                       sha256=hashlib.sha256(data).hexdigest()), overwrite=True)
    try:
        sam = load_model("auto", device="cpu")
        assert isinstance(sam.image_encoder, TinyViT) and not is_bundled(sam)
        assert "model: mobile_sam (auto: no GPU, and the network answers" in capsys.readouterr().out
        monkeypatch.setenv(OFFLINE_ENV, "1")
        again = load_model("auto", device="cpu")  # offline now: the verified file in the cache
        assert isinstance(again.image_encoder, TinyViT)
        assert "mobile_sam's file is in the cache" in capsys.readouterr().out
    finally:
        unregister_checkpoint("mobile_sam")
