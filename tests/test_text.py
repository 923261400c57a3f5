"""The text / embedding prompt path: prompt encoder, crops, TinyClip, training, predictor (issue 7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from small_configs import CNN_SMALL, SMALL

from samwidgets import SamPredictor
from samwidgets.modeling import CONFIGS, Sam
from samwidgets.text import TinyClip, TinyClipConfig, load_default_text_model, save_text_model
from samwidgets.text.crops import crop_object, mask_box, mask_crops
from samwidgets.text.phrases import mask_words, phrase, sample_keep, split_words
from samwidgets.text.scene_bank import build_bank
from samwidgets.text.train_clip import (
    caption_targets,
    contrastive_loss,
    retrieval_accuracy,
    train_tiny_clip,
    vocabulary_of,
)
from samwidgets.text.train_sam import encoder_tail, frozen_features, train_text_sam, with_text_prompt

SMALL_CLIP = TinyClipConfig(embed_dim=16, crop_size=32, stem_stride=4, widths=(8, 16), depths=(1, 1), word_dim=16,
                            hidden_dim=32)


@pytest.fixture(scope="module")
def bank():
    return build_bank(range(12), image_size=64)


@pytest.fixture(scope="module")
def small_clip(bank):
    torch.manual_seed(0)
    return TinyClip(vocabulary_of(bank), SMALL_CLIP).eval()


def small_text_sam(dim: int = 16) -> Sam:
    torch.manual_seed(0)
    return Sam(SMALL.replace(text_embed_dim=dim)).eval()


# -- the prompt encoder -------------------------------------------------------------------------

def test_official_configs_have_no_text_projection():
    for name in ("vit_b", "default_tiny", "default_cnn"):
        assert CONFIGS[name].text_embed_dim == 0
    keys = Sam(SMALL).state_dict().keys()
    assert not any("text_projection" in k for k in keys)
    assert any("text_projection" in k for k in small_text_sam().state_dict().keys())


def test_embedding_prompt_adds_one_token_and_ignores_scale():
    pe = small_text_sam().prompt_encoder
    coords, labels = torch.rand(2, 3, 2) * 64, torch.ones(2, 3, dtype=torch.int)
    emb = torch.randn(2, 16)
    with torch.no_grad():
        sparse_pts, _ = pe(points=(coords, labels), boxes=None, masks=None)
        sparse_both, _ = pe(points=(coords, labels), boxes=None, masks=None, embeddings=emb)
        alone, dense = pe(points=None, boxes=None, masks=None, embeddings=emb)
        scaled, _ = pe(points=None, boxes=None, masks=None, embeddings=5 * emb)
    assert sparse_both.shape == (2, sparse_pts.shape[1] + 1, 32)
    torch.testing.assert_close(sparse_both[:, :-1], sparse_pts)  # points are encoded as before
    assert alone.shape == (2, 1, 32) and dense.shape[0] == 2
    torch.testing.assert_close(alone, scaled)  # L2-normalised first


def test_embedding_prompt_errors_name_the_fix():
    with pytest.raises(ValueError, match="text_embed_dim=0"):
        Sam(SMALL).prompt_encoder(points=None, boxes=None, masks=None, embeddings=torch.randn(1, 16))
    with pytest.raises(ValueError, match="B x 16"):
        small_text_sam().prompt_encoder(points=None, boxes=None, masks=None, embeddings=torch.randn(1, 7))


def test_adding_a_text_projection_keeps_point_outputs(bank):
    base = Sam(SMALL).eval()
    text_model = with_text_prompt(base, 16).eval()
    image = bank.images[0]
    out = []
    for model in (base, text_model):
        p = SamPredictor(model)
        p.set_image(image)
        out.append(p.predict(np.array([[20.0, 30.0]]), np.array([1]), return_logits=True))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


# -- crops, phrases, contrastive loss -----------------------------------------------------------

def test_crops_are_centred_squares_with_optional_zeroing(bank):
    images, masks, index = bank.batch(np.arange(6))
    box = mask_box(masks[0])
    rows, cols = np.nonzero(masks[0])
    assert tuple(box) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    img = images[index[0]]
    full = crop_object(img, masks[0], size=int(max(box[2] - box[0], box[3] - box[1])), expand=1.0)
    alone = crop_object(img, masks[0], size=full.shape[0], expand=1.0, zero_outside=True)
    assert full.shape[:2] == alone.shape[:2] and full.shape[2] == 3
    assert (alone <= full).all() and alone.sum() < full.sum() or masks[0].all()
    crops = mask_crops(images, masks, index, 24, mask_out=1.0)
    assert crops.shape == (6, 3, 24, 24) and crops.dtype == torch.float32
    with pytest.raises(ValueError, match="masks must be"):
        mask_crops(images, masks[:, :10], index, 24)


def test_phrases_and_caption_matches():
    words = [("striped", "red", "circle", "wheel"), ("plain", "red", "", "car"), ("striped", "blue", "circle", "wheel")]
    assert phrase(words[0]) == "striped red circle wheel"
    assert phrase(words[1]) == "plain red car"
    assert split_words("Red, striped WHEEL!") == ["red", "striped", "wheel"]
    keeps = [(False, True, False, False), (False, False, False, True), (True, False, True, True)]
    match = caption_targets(words, keeps).numpy()
    # "red" fits crops 0 and 1; "car" only crop 1; "striped circle wheel" crops 0 and 2
    np.testing.assert_array_equal(match, [[True, False, True], [True, True, False], [False, False, True]])
    rng = np.random.default_rng(0)
    for _ in range(50):
        keep = sample_keep(rng, words[1])
        assert any(keep) and not keep[2]  # never says the missing shape


def test_contrastive_loss_prefers_aligned_pairs():
    emb = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    match = torch.eye(8, dtype=torch.bool)
    scale = torch.tensor(np.log(1 / 0.07))
    aligned = contrastive_loss(emb, emb, match, scale)
    shuffled = contrastive_loss(emb, emb.roll(1, 0), match, scale)
    assert aligned < shuffled


def test_mask_words_of_a_scene():
    from samwidgets.data import SceneGenerator

    scene = SceneGenerator(128)(1)
    for i in range(len(scene)):
        pattern, colour, shape, name = mask_words(scene, i)
        assert name == scene.names[i] and colour == scene.attributes[i]["colour"]
        assert shape != name


# -- TinyClip -----------------------------------------------------------------------------------

def test_tiny_clip_encodes_texts_and_crops(small_clip, bank):
    t = small_clip.encode_text(["red wheel", "Striped, blue"])
    assert t.shape == (2, 16)
    torch.testing.assert_close(t.norm(dim=-1), torch.ones(2))
    c = small_clip.encode_crops(torch.rand(3, 3, 50, 50) * 255)  # resized to 32 inside
    assert c.shape == (3, 16)
    with pytest.raises(ValueError, match="does not know"):
        small_clip.encode_text(["a flying saucer"])
    with pytest.raises(ValueError, match="no words"):
        small_clip.encode_text(["  ,"])


def test_tiny_clip_round_trip(tmp_path, small_clip):
    small_clip.save(tmp_path / "clip.pt")
    back = TinyClip.load(tmp_path / "clip.pt")
    assert back.vocabulary == small_clip.vocabulary
    texts = ["red", "wheel"]
    torch.testing.assert_close(back.encode_text(texts), small_clip.encode_text(texts), atol=2e-3, rtol=0)
    with pytest.raises(ValueError, match="not a TinyClip"):
        torch.save({"x": 1}, tmp_path / "other.pt")
        TinyClip.load(tmp_path / "other.pt")


@pytest.mark.slow
def test_training_tiny_clip_lowers_the_loss(bank):
    losses = []
    clip = train_tiny_clip(bank, steps=30, batch_size=32, lr=3e-3, config=SMALL_CLIP, log_every=10,
                           log=lambda line: losses.append(float(line.split("loss ")[1].split()[0])))
    assert losses[-1] < losses[0]
    result = retrieval_accuracy(clip, build_bank(range(100, 104), image_size=64))
    for key in ("full_phrase_top1", "full_phrase_top5", "colour_top1", "name_top1"):
        assert 0.0 <= result[key] <= 1.0
    assert result["full_phrase_top5"] >= result["full_phrase_top1"]


# -- SAM with text prompts ----------------------------------------------------------------------

@pytest.mark.slow
def test_text_sam_training_and_predict(tmp_path, bank, small_clip):
    base = Sam(SMALL).eval()
    model = train_text_sam(base, small_clip, bank, steps=3, text_masks=4, point_masks=2, log=None)
    assert model.config.text_embed_dim == 16
    # the frozen encoder is untouched
    for (k, a), b in zip(base.image_encoder.state_dict().items(), model.image_encoder.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    predictor = SamPredictor(model, text_encoder=small_clip)
    predictor.set_image(bank.images[0])
    masks, scores, low = predictor.predict(text="red wheel")
    assert masks.shape == (3, 64, 64) and masks.dtype == bool and scores.shape == (3,)
    same = predictor.predict(embedding=small_clip.encode_text(["red wheel"])[0])
    np.testing.assert_array_equal(same[0], masks)
    both = predictor.predict(np.array([[10.0, 10.0]]), np.array([1]), text="wheel", multimask_output=False)
    assert both[0].shape == (1, 64, 64)
    save_text_model(model, tmp_path / "text.pt")
    back = load_default_text_model(tmp_path / "text.pt", device="cpu")
    predictor2 = SamPredictor(back, text_encoder=small_clip)
    predictor2.set_image(bank.images[0])
    np.testing.assert_array_equal(predictor2.predict(text="red wheel")[0], masks)


def test_frozen_part_and_tail_give_the_encoder_output(bank):
    torch.manual_seed(0)
    model = Sam(SMALL).eval()
    with torch.no_grad():
        full = frozen_features(model, bank, tune_blocks=0)  # N x C x h x w
        for k in (1, 2):
            torch.testing.assert_close(encoder_tail(model, frozen_features(model, bank, tune_blocks=k), k), full,
                                       atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="tune_blocks must be in"):
        frozen_features(model, bank, tune_blocks=3)


def test_masks_sampled_by_image(bank):
    rng = np.random.default_rng(0)
    indices = bank.sample_by_image(rng, images=3, per_image=2, min_area=50)
    owners = bank.image_of_mask[indices]
    assert len(np.unique(owners)) == 3 and len(set(indices.tolist())) == len(indices) <= 6
    assert all((owners == o).sum() <= 2 for o in owners) and (bank.areas[indices] >= 50).all()
    with pytest.raises(ValueError, match="no mask"):
        bank.sample_by_image(rng, 1, 1, min_area=10**9)


def test_tuned_encoder_layers_train_and_the_delta_file_keeps_them(tmp_path, bank, small_clip, monkeypatch):
    torch.manual_seed(1)
    base = Sam(SMALL).eval()
    model = train_text_sam(base, small_clip, bank, steps=2, text_masks=4, point_masks=2, tune_blocks=1,
                           text_masks_per_image=2, log=None)
    encoder, base_encoder = model.image_encoder.state_dict(), base.image_encoder.state_dict()
    for k, v in encoder.items():  # the frozen part is untouched ...
        if not k.startswith(("blocks.1.", "neck.")):
            torch.testing.assert_close(v, base_encoder[k], msg=k)
    for k in ("blocks.1.attn.qkv.weight", "neck.0.weight"):  # ... the last block and the neck have moved
        assert not torch.equal(encoder[k], base_encoder[k]), k
    # a delta file against "default_tiny" (here: the small base) holds only what moved, and loads back whole
    import samwidgets.hub.default_model as default_model

    monkeypatch.setattr(default_model, "load_default", lambda device="cpu": base)
    save_text_model(model, tmp_path / "delta.pt", delta=True)
    saved = torch.load(tmp_path / "delta.pt", weights_only=True)["state_dict"]
    assert "prompt_encoder.text_projection.0.weight" in saved and "image_encoder.neck.0.weight" in saved
    assert not any(k.startswith(("image_encoder.patch_embed", "image_encoder.blocks.0.")) for k in saved)
    back = load_default_text_model(tmp_path / "delta.pt", device="cpu")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v, msg=k)


def test_cnn_tail_runs_the_trunk_on_the_banks_pixels(bank):
    torch.manual_seed(0)
    model = Sam(CNN_SMALL).eval()
    pixels = frozen_features(model, bank, tune_blocks=1)  # N x 3 x S x S uint8, a view of the bank
    assert pixels.shape == (12, 3, 64, 64) and pixels.dtype == torch.uint8
    assert pixels.data_ptr() == torch.from_numpy(bank.images).data_ptr()  # no copy
    with torch.no_grad():
        full = frozen_features(model, bank, tune_blocks=0)  # N x 3C x h x w: embedding + packed high-res features
        assert full.shape == (12, 3 * 32, 4, 4)
        for k in (1, 5):  # any tune_blocks >= 1: the whole head
            torch.testing.assert_close(encoder_tail(model, frozen_features(model, bank, tune_blocks=k), k), full,
                                       atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="CNN encoder"):
        frozen_features(model, bank, tune_blocks=-1)


def test_cnn_text_training_tunes_the_head_on_a_frozen_trunk(bank, small_clip):
    torch.manual_seed(2)
    base = Sam(CNN_SMALL).eval()
    for module in base.image_encoder.modules():  # running statistics that batch statistics would move
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    model = train_text_sam(base, small_clip, bank, steps=2, text_masks=4, point_masks=2, tune_blocks=1,
                           text_masks_per_image=2, log=None)
    encoder, base_encoder = model.image_encoder.state_dict(), base.image_encoder.state_dict()
    stats = [k for k in encoder if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert any(k.startswith("high_res_out.") for k in stats) and any(k.startswith("stages.") for k in stats)
    for k, v in encoder.items():  # the trunk and every batch norm's statistics (trunk and head) are untouched
        if k.startswith(("stem.", "stages.")) or k in stats:
            assert torch.equal(v, base_encoder[k]), k
    for k in ("context.0.attn.in_proj_weight", "lateral16.weight", "neck.0.weight", "high_res_out.0.0.weight"):
        assert not torch.equal(encoder[k], base_encoder[k]), k  # ... the head has moved


def test_train_sam_main_at_another_image_size(tmp_path, small_clip, monkeypatch):
    """--image-size: a CNN base is rebuilt at that size, and the delta file loads back at it."""
    import samwidgets.hub.default_model as default_model
    from samwidgets.cli import train_text
    from samwidgets.cli.train_text import main

    small_clip.save(tmp_path / "clip.pt")
    args = ["--clip", str(tmp_path / "clip.pt"), "--out", str(tmp_path / "text.pt"), "--scenes", "2", "--steps", "1",
            "--text-masks", "2", "--point-masks", "1", "--text-masks-per-image", "2", "--tune-blocks", "1",
            "--image-size", "96", "--processes", "1", "--device", "cpu", "--delta"]
    torch.manual_seed(0)
    vit = Sam(SMALL).eval()  # a ViT "default", the base and what the delta is taken against
    monkeypatch.setattr(train_text, "model_from_flags", lambda model, weights, device: vit)
    monkeypatch.setattr(default_model, "load_default", lambda device=None: vit)
    with pytest.raises(ValueError, match="position embeddings"):
        main(args)
    base = Sam(CNN_SMALL).eval()  # a 64 px CNN "default"
    monkeypatch.setattr(train_text, "model_from_flags", lambda model, weights, device: base)
    monkeypatch.setattr(default_model, "load_default", lambda device=None: base)
    assert main(args) == 0
    saved = torch.load(tmp_path / "text.pt", weights_only=True)
    assert saved["config"]["image_size"] == 96 and saved["training"]["image_size"] == 96
    assert not any(k.startswith("image_encoder.stem.") for k in saved["state_dict"])  # the frozen trunk is not saved
    back = load_default_text_model(tmp_path / "text.pt", device="cpu")
    assert back.image_encoder.img_size == 96 and back.config == base.config.replace(image_size=96, text_embed_dim=16)
    for k, v in base.image_encoder.state_dict().items():
        if k.startswith(("stem.", "stages.")):
            assert torch.equal(back.image_encoder.state_dict()[k], v), k
    predictor = SamPredictor(back, text_encoder=small_clip)
    predictor.set_image(np.zeros((96, 96, 3), np.uint8))
    assert predictor.predict(text="red")[0].shape == (3, 96, 96)


def test_text_prompt_errors(bank, small_clip):
    plain = SamPredictor(Sam(SMALL).eval(), text_encoder=small_clip)
    plain.set_image(bank.images[0])
    with pytest.raises(ValueError, match="takes no text prompt"):
        plain.predict(text="red")
    model = small_text_sam()
    no_encoder = SamPredictor(model)
    no_encoder.set_image(bank.images[0])
    with pytest.raises(ValueError, match="needs a text encoder"):
        no_encoder.predict(text="red")
    with pytest.raises(ValueError, match="16 values"):
        no_encoder.predict(embedding=np.ones(5))
    with pytest.raises(ValueError, match="not both"):
        no_encoder.predict(text="red", embedding=np.ones(16))
    with pytest.raises(ValueError, match="takes 8-d ones"):
        SamPredictor(small_text_sam(dim=8), text_encoder=small_clip)
    with pytest.raises(TypeError, match="not CLIP-like"):
        SamPredictor(model, text_encoder=object())


# -- evaluation -----------------------------------------------------------------------------------

def test_unambiguous_phrases_exclude_look_alikes(bank):
    from samwidgets.text.evaluate import QUERY_KINDS, unambiguous

    full = unambiguous(bank, QUERY_KINDS["full phrase"])
    name_only = unambiguous(bank, QUERY_KINDS["name"])
    assert full.any()
    # a mask named alone by its name is named alone by its full phrase too
    assert not (name_only & ~full).any()
    for m in np.flatnonzero(full):
        same = [i for i in np.flatnonzero(bank.image_of_mask == bank.image_of_mask[m])
                if bank.words[i] == bank.words[m]]
        assert same == [m]


def test_evaluate_text_prompts_reports_every_query_kind(bank, small_clip):
    from samwidgets.text.evaluate import QUERY_KINDS, evaluate_text_prompts, markdown

    small = build_bank(range(3), image_size=64)
    model = small_text_sam()
    result = evaluate_text_prompts(model, small_clip, small, base_model=Sam(SMALL).eval(), min_area=0)
    assert set(result["queries"]) == set(QUERY_KINDS)
    full = result["queries"]["full phrase"]
    assert full["count"] == result["same_masks"]["count"] == result["base_same_masks"]["count"] > 0
    for q in result["queries"].values():
        if q["count"]:
            assert 0.0 <= q["miou"] <= q["oracle_miou"] <= 1.0
    assert sum(c for c, _ in result["by_word"]["level"].values()) == full["count"]
    assert "| full phrase |" in markdown(result, min_count=1)


def test_batched_forward_takes_embeddings(bank):
    model = small_text_sam()
    image = torch.from_numpy(bank.images[0]).permute(2, 0, 1).float()
    out = model([{"image": image, "original_size": (64, 64), "embeddings": torch.randn(2, 16)}],
                multimask_output=True)[0]
    assert out["masks"].shape == (2, 3, 64, 64) and out["iou_predictions"].shape == (2, 3)


def test_frozen_features_of_a_tiny_vit_encoder(bank):
    """MobileSAM's TinyViT has no ``blocks``: its embeddings are frozen features too (this crashed once)."""
    torch.manual_seed(0)
    model = Sam(SMALL.replace(encoder_type="tiny_vit", patch_size=16, tiny_vit_widths=(8, 16, 16, 32),
                              tiny_vit_depths=(1, 1, 1, 1),
                              tiny_vit_heads=(1, 2, 2, 4), tiny_vit_windows=(2, 2, 2, 2))).eval()
    with torch.no_grad():
        features = frozen_features(model, bank, tune_blocks=0)  # N x C x h x w
        torch.testing.assert_close(features[:2], model.image_encoder(model.preprocess(
            torch.from_numpy(bank.images[:2]).permute(0, 3, 1, 2).float())))
    with pytest.raises(ValueError, match="tune_blocks must be 0"):
        frozen_features(model, bank, tune_blocks=1)
