"""SAM 2 in the rest of the kit: the feature cache, the canvas and its session, download by name."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from local_server import serving
from sam2_small import build_small, float_state_dict

from samwidgets import SamCanvas, from_pretrained
from samwidgets.hub.checkpoints import DownloadError
from samwidgets.hub.registry import (
    SAM2_CHECKPOINTS,
    CheckpointSpec,
    get_checkpoint_spec,
    register_checkpoint,
    unregister_checkpoint,
)
from samwidgets.modeling import CONFIGS
from samwidgets.sam2 import SAM2Base, SAM2ImagePredictor, VideoWeightsIgnoredWarning
from samwidgets.sam2.predictor import pack_features, unpack_features
from samwidgets.widget import AnnotationSession


@pytest.fixture(scope="module")
def small_model(small) -> SAM2Base:
    return build_small(small)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    out = []
    for _ in range(2):
        image = rng.integers(0, 60, (72, 96, 3), dtype=np.uint8)
        image[20:50, 30:70] = (210, 90, 40)  # an object
        out.append(image)
    return out


def test_features_pack_into_one_tensor_and_back_exactly():
    embed, s0, s1 = torch.randn(1, 16, 4, 4), torch.randn(1, 2, 16, 16), torch.randn(1, 4, 8, 8)
    packed = pack_features(embed, [s0, s1])
    assert packed.shape == (1, 16 + 32 + 16, 4, 4)
    back_embed, (back_s0, back_s1) = unpack_features(packed, (16, 2, 4))
    assert torch.equal(back_embed, embed) and torch.equal(back_s0, s0) and torch.equal(back_s1, s1)


def test_an_image_seen_before_is_not_encoded_again(small_model, images):
    predictor = SAM2ImagePredictor(small_model)
    predictor.set_image(images[0])
    assert not predictor.last_set_image_cached and predictor.last_encode_seconds > 0
    first = predictor.predict(point_coords=[[50, 35]], point_labels=[1], return_logits=True)
    features = [predictor._features["image_embed"], *predictor._features["high_res_feats"]]

    encoder_calls = []
    hook = small_model.image_encoder.register_forward_hook(lambda *args: encoder_calls.append(1))
    try:
        predictor.set_image(images[1])
        predictor.set_image(images[0])  # back to the first image: from the cache
        assert len(encoder_calls) == 1 and predictor.last_set_image_cached and predictor.last_encode_seconds == 0
        again = [predictor._features["image_embed"], *predictor._features["high_res_feats"]]
        for a, b in zip(features, again, strict=True):
            assert torch.equal(a, b)
        second = predictor.predict(point_coords=[[50, 35]], point_labels=[1], return_logits=True)
        for a, b in zip(first, second, strict=True):  # equal features; the kernels' rounding may differ by 1e-6
            np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
        assert predictor.precompute(images[1]) == 0.0  # cached already: nothing to do
        assert len(encoder_calls) == 1
    finally:
        hook.remove()


def test_changed_weights_are_never_served_stale_features(small_model, images):
    predictor = SAM2ImagePredictor(small_model)
    predictor.set_image(images[0])
    with torch.no_grad():
        small_model.no_mem_embed.add_(1.0)
    try:
        predictor.set_image(images[0])
        assert not predictor.last_set_image_cached
    finally:
        with torch.no_grad():
            small_model.no_mem_embed.sub_(1.0)


def test_the_session_segments_commits_and_undoes_with_sam2(small_model, images):
    session = AnnotationSession(SAM2ImagePredictor(small_model), images, prefetch=True)
    try:
        first = session.add_point(50, 35)
        assert first.masks.dtype == bool and first.masks.shape[1:] == (72, 96)
        refined = session.add_point(10, 10, positive=False)  # refines the kept mask (a low-res mask prompt)
        assert refined.masks.shape == (1, 72, 96)
        assert session.commit("thing") is not None and len(session.state.objects) == 1
        assert session.undo() and len(session.state.objects) == 0
        assert session.next() and session.encode_source in ("prefetched", "cached")  # encoded in the background
    finally:
        session.close()


def test_the_canvas_takes_a_sam2_predictor_or_model(small_model, images):
    canvas = SamCanvas(SAM2ImagePredictor(small_model), images, width=192, prefetch=False)
    try:
        assert isinstance(canvas.session.predictor, SAM2ImagePredictor)
        canvas._on_mouse_down(100, 70)  # display pixels: twice the image's
        canvas._on_mouse_up(100, 70)
        assert canvas.last_error is None and canvas.session.current_mask is not None
        # the hover preview, several boxes in one call and a zoomed click work with SAM 2 as with SAM
        canvas.preview_enabled = True
        canvas._on_mouse_move(40, 30)
        assert canvas.previews == 1 and canvas.last_error is None
        canvas.add_boxes([(5, 5, 40, 30), (50, 10, 90, 60)])
        assert canvas.last_error is None and len(canvas.objects) == 2
        assert [o.mask.shape for o in canvas.objects] == [images[0].shape[:2]] * 2
        canvas.zoom_by(2.0, 0, 0)
        canvas._on_mouse_down(100, 70)
        canvas._on_mouse_up(100, 70)
        assert canvas.session.state.edit.prompt.points[-1] == pytest.approx((25.0, 17.5))
    finally:
        canvas.close()
    canvas = SamCanvas(small_model, images[0], prefetch=False)
    try:
        assert isinstance(canvas.session.predictor, SAM2ImagePredictor)
        assert canvas.model_name == "SAM 2"  # a model of its own configuration (the official ones by name)
    finally:
        canvas.close()


def test_the_registry_pins_the_eight_official_files():
    expected = {"sam2.1_hiera_tiny": 156_008_466, "sam2.1_hiera_small": 184_416_285,
                "sam2.1_hiera_base_plus": 323_606_802, "sam2.1_hiera_large": 898_083_611,
                "sam2_hiera_tiny": 155_906_050, "sam2_hiera_small": 184_309_650,
                "sam2_hiera_base_plus": 323_493_298, "sam2_hiera_large": 897_952_466}
    assert {name: spec.size for name, spec in SAM2_CHECKPOINTS.items()} == expected
    for name, spec in SAM2_CHECKPOINTS.items():
        assert spec.family == "sam2" and len(spec.sha256) == 64
        release = "092824" if name.startswith("sam2.1") else "072824"
        assert spec.url == f"https://dl.fbaipublicfiles.com/segment_anything_2/{release}/{name}.pt"
    assert SAM2_CHECKPOINTS["sam2.1_hiera_tiny"].config == "configs/sam2.1/sam2.1_hiera_t.yaml"
    assert SAM2_CHECKPOINTS["sam2_hiera_base_plus"].config == "configs/sam2/sam2_hiera_b+.yaml"
    with pytest.raises(ValueError, match="names its configuration"):
        CheckpointSpec("x", "http://example.invalid/x.pt", 10, CONFIGS["vit_b"], family="sam2")
    with pytest.raises(ValueError, match="names its configuration"):
        CheckpointSpec("x", "http://example.invalid/x.pt", 10, "configs/sam2.1/sam2.1_hiera_t.yaml")


@pytest.fixture()
def served_small(small, tmp_path) -> Iterator[tuple[str, bytes]]:
    """The small model's weights in the official file format, served over HTTP on 127.0.0.1."""
    path = tmp_path / "served" / "sam2_small.pt"
    path.parent.mkdir()
    torch.save({"model": float_state_dict(small)}, path)
    with serving(path) as url:
        yield url, path.read_bytes()


@pytest.mark.usefixtures("local_downloads")
def test_from_pretrained_by_name_downloads_checks_and_builds_sam2(served_small, small, small_model, tmp_path,
                                                                  monkeypatch):
    """A SAM 2 name downloads its file (size and sha256 checked) and builds SAM2Base from its configuration."""
    from samwidgets.sam2 import CONFIGS as SAM2_CONFIGS

    url, data = served_small
    name = "sam2.1_hiera_tiny"
    # the small model's configuration under an official name, for this test only
    config_name = small["base_config"]
    monkeypatch.setitem(SAM2_CONFIGS, config_name, small_model.config)
    digest = hashlib.sha256(data).hexdigest()
    try:
        register_checkpoint(CheckpointSpec(name, url, len(data), config_name, sha256="0" * 64, family="sam2"),
                            overwrite=True)
        with pytest.raises(DownloadError, match="sha256"):
            from_pretrained(name, cache_dir=tmp_path, progress=False)
        register_checkpoint(CheckpointSpec(name, url, len(data), config_name, sha256=digest, family="sam2"),
                            overwrite=True)
        with pytest.warns(VideoWeightsIgnoredWarning, match="video"):
            model = from_pretrained(name, cache_dir=tmp_path, device="cpu", progress=False)
    finally:
        unregister_checkpoint(name)
    assert get_checkpoint_spec(name) == SAM2_CHECKPOINTS[name]  # the built-in one is back
    assert isinstance(model, SAM2Base) and not model.training
    for key, value in small_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
