"""Real-CLIP adapters (samwidgets.text.adapters): the wiring, on tiny random models.

No pretrained CLIP can be downloaded here, so the Hugging Face side uses a
small randomly initialised ``transformers.CLIPModel`` with an in-memory
word-level tokenizer, and the open_clip side (open_clip needs torchvision,
which the project does not install) a fake module with the same two methods.
Random weights prove the plumbing — shapes, padding, pooling at the end
token, preprocessing, the ClipLike protocol, training SAM and prompting it
with text — not the quality of any embedding.

transformers is imported unconditionally: it is a test dependency, and a
missing one must fail here, not skip.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import transformers  # noqa: F401 -- a test dependency: fail loudly when it is missing
from small_configs import SMALL
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from torch import nn
from transformers import CLIPConfig, CLIPModel, PreTrainedTokenizerFast

from samwidgets.inference.predictor import SamPredictor
from samwidgets.modeling import Sam
from samwidgets.text import ClipLike, check_clip_like
from samwidgets.text.adapters import (
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    HFClipAdapter,
    OpenClipAdapter,
    load_hf_clip,
    load_open_clip,
)
from samwidgets.text.scene_bank import build_bank
from samwidgets.text.train_sam import crop_size_of, train_text_sam

WORDS = ("a photo of the red green blue yellow wheel car house tree striped plain noisy circle square "
         "triangle big small").split()
EMBED_DIM = 16
IMAGE_SIZE = 32
MAX_TOKENS = 16


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level CLIP-style tokenizer built in memory: "<bos> words <eos>", padded with <pad> on the right.

    <eos> gets the highest id and is also set as the text config's
    ``eos_token_id``: CLIPTextTransformer pools at the first ``eos_token_id``
    (or, for the legacy id 2, at the argmax id), so either rule finds it.
    """
    vocab = {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    vocab["<bos>"] = len(vocab)
    vocab["<eos>"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>", model_max_length=MAX_TOKENS, padding_side="right")


def tiny_clip_model(tokenizer: PreTrainedTokenizerFast) -> CLIPModel:
    """A 2-layer, 32-wide CLIPModel (text and vision), 32 px images in 8 px patches, 16-d projection."""
    common = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = CLIPConfig(
        text_config=dict(common, vocab_size=len(tokenizer.get_vocab()), max_position_embeddings=MAX_TOKENS,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id),
        vision_config=dict(common, image_size=IMAGE_SIZE, patch_size=8),
        projection_dim=EMBED_DIM,
    )
    torch.manual_seed(0)
    return CLIPModel(config).eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These models are tiny: one intra-op thread is as fast, and avoids OpenMP thrashing on a busy machine
    (with another process on the 2 cores, the end-to-end test took 29 s with 2 threads, 1 s with 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def hf_parts() -> tuple[CLIPModel, PreTrainedTokenizerFast]:
    tokenizer = tiny_tokenizer()
    return tiny_clip_model(tokenizer), tokenizer


@pytest.fixture(scope="module")
def adapter(hf_parts) -> HFClipAdapter:
    return HFClipAdapter(*hf_parts)


# -- Hugging Face ---------------------------------------------------------------------------------

def test_hf_adapter_is_clip_like(adapter):
    assert isinstance(adapter, ClipLike)
    check_clip_like(adapter, EMBED_DIM)
    assert adapter.embed_dim == EMBED_DIM and adapter.crop_size == IMAGE_SIZE
    assert crop_size_of(adapter) == IMAGE_SIZE  # what train_sam cuts crops at
    with pytest.raises(ValueError, match="16-d"):
        check_clip_like(adapter, 128)  # the bundled TinyClip-space SAM cannot take it


def test_hf_adapter_shapes_dtypes_any_crop_size(adapter):
    torch.manual_seed(1)
    for shape in [(3, 3, 32, 32), (2, 3, 64, 64), (1, 3, 17, 17), (2, 3, 40, 70)]:
        emb = adapter.encode_crops(torch.rand(shape) * 255)
        assert emb.shape == (shape[0], EMBED_DIM) and emb.dtype == torch.float32 and not emb.requires_grad
        torch.testing.assert_close(emb.norm(dim=-1), torch.ones(shape[0]))
    text = adapter.encode_text(["red wheel", "a big striped house"])
    assert text.shape == (2, EMBED_DIM) and text.dtype == torch.float32 and not text.requires_grad
    assert adapter.encode_text("red wheel").shape == (1, EMBED_DIM)  # a lone string is one text
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        adapter.encode_crops(torch.rand(3, 32, 32))


def test_hf_adapter_padding_and_end_token_pooling(adapter, hf_parts):
    model, tokenizer = hf_parts
    short, long = "red wheel", "a photo of the big striped red wheel"
    alone = adapter.encode_text([short])
    batch = adapter.encode_text([long, short, "tree"])
    # the short text padded next to a longer one embeds as when alone (causal attention, pooled at <eos>)
    torch.testing.assert_close(batch[1], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batch[0], adapter.encode_text([long])[0], atol=1e-5, rtol=0)
    # pooled at each text's <eos>, not at the shared <bos>: different texts differ
    assert (batch[0] - batch[1]).abs().max() > 1e-3 and (batch[1] - batch[2]).abs().max() > 1e-3
    # ... and it is the projection of the end token's final hidden state, as CLIP defines it
    ids = tokenizer([short], return_tensors="pt")["input_ids"]  # 1 x T
    assert ids[0, -1] == tokenizer.eos_token_id
    with torch.no_grad():
        hidden = model.text_model(input_ids=ids).last_hidden_state[:, -1]  # 1 x D
        expected = model.text_projection(hidden)  # 1 x E
    torch.testing.assert_close(alone, torch.nn.functional.normalize(expected, dim=-1), atol=1e-5, rtol=0)


def test_hf_adapter_preprocessing(adapter, hf_parts):
    """Crops reach the vision tower at its size, normalised with OpenAI CLIP's mean/std."""
    model, _ = hf_parts
    seen = []
    original = model.get_image_features

    def spy(**kwargs):
        seen.append(kwargs["pixel_values"])
        return original(**kwargs)

    model.get_image_features = spy  # an instance attribute shadows the method
    try:
        mean = torch.tensor(OPENAI_CLIP_MEAN)[:, None, None]  # 3 x 1 x 1
        std = torch.tensor(OPENAI_CLIP_STD)[:, None, None]
        grey = (mean * 255).expand(3, 48, 48)[None]  # 1 x 3 x 48 x 48: the mean colour
        white = torch.full((1, 3, 20, 20), 255.0)
        adapter.encode_crops(torch.cat([grey[:, :, :20, :20], white]))
    finally:
        del model.get_image_features
    (pixels,) = seen
    assert pixels.shape == (2, 3, IMAGE_SIZE, IMAGE_SIZE) and pixels.dtype == torch.float32
    torch.testing.assert_close(pixels[0], torch.zeros(3, IMAGE_SIZE, IMAGE_SIZE), atol=1e-4, rtol=0)
    torch.testing.assert_close(pixels[1], ((1 - mean) / std).expand(3, IMAGE_SIZE, IMAGE_SIZE), atol=1e-4, rtol=0)


def test_hf_adapter_takes_tensor_or_model_output(hf_parts, adapter):
    """transformers 4.x returns the projected features as tensors, 5.x as pooler_output of a ModelOutput."""
    model, tokenizer = hf_parts

    class TensorReturning(nn.Module):  # the 4.x behaviour
        def __init__(self) -> None:
            super().__init__()
            self.inner = model
            self.config = model.config

        def get_text_features(self, **kwargs):
            return self.inner.get_text_features(**kwargs).pooler_output

        def get_image_features(self, **kwargs):
            return self.inner.get_image_features(**kwargs, return_dict=False)[1]  # via the tuple form

    old = HFClipAdapter(TensorReturning(), tokenizer)
    crops = torch.rand(2, 3, 32, 32) * 255
    torch.testing.assert_close(old.encode_text(["red wheel"]), adapter.encode_text(["red wheel"]))
    torch.testing.assert_close(old.encode_crops(crops), adapter.encode_crops(crops))


def test_load_hf_clip_from_a_local_folder(tmp_path, hf_parts, adapter):
    model, tokenizer = hf_parts
    model.save_pretrained(tmp_path / "clip")
    tokenizer.save_pretrained(tmp_path / "clip")
    loaded = load_hf_clip(str(tmp_path / "clip"), device="cpu")
    texts = ["red wheel", "a photo of the big striped red wheel"]
    torch.testing.assert_close(loaded.encode_text(texts), adapter.encode_text(texts), atol=1e-5, rtol=0)
    crops = torch.rand(2, 3, 32, 32) * 255
    torch.testing.assert_close(loaded.encode_crops(crops), adapter.encode_crops(crops), atol=1e-5, rtol=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError, match="network access"):
        load_hf_clip(str(tmp_path / "empty"), device="cpu")


def test_loaders_name_the_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails as if not installed
    with pytest.raises(ImportError, match="pip install transformers"):
        load_hf_clip()
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(ImportError, match="pip install open_clip_torch.*torchvision"):
        load_open_clip()


# -- open_clip (a fake with open_clip's two methods) -----------------------------------------------

class FakeOpenClip(nn.Module):
    """encode_text(N x T ids) / encode_image(N x 3 x s x s) -> N x E, as open_clip's CLIP; a few Linear layers."""

    def __init__(self, vocab: int = 32, embed_dim: int = 12, side: int = 16) -> None:
        super().__init__()
        self.visual = nn.Sequential(nn.Flatten(), nn.Linear(3 * side * side, 24), nn.GELU(), nn.Linear(24, embed_dim))
        self.visual.output_dim = embed_dim  # as open_clip's towers say it
        self.token_embedding = nn.Embedding(vocab, 24, padding_idx=0)
        self.text_projection = nn.Linear(24, embed_dim)
        self.last_pixels: torch.Tensor | None = None

    def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        present = (text > 0).float()[..., None]  # N x T x 1
        x = (self.token_embedding(text) * present).sum(1) / present.sum(1).clamp(min=1)  # N x 24
        return self.text_projection(x)  # N x E

    def encode_image(self, image: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        self.last_pixels = image
        return self.visual(image)  # N x E


def fake_open_clip_tokenizer(texts: list[str], context_length: int = 8) -> torch.Tensor:
    """texts -> N x context_length ids, zero-padded, as open_clip's tokenizers return."""
    ids = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, t in enumerate(texts):
        words = [1 + (sum(map(ord, w)) % 30) for w in t.split()][:context_length]
        ids[i, : len(words)] = torch.tensor(words)
    return ids


def test_open_clip_adapter_wiring():
    torch.manual_seed(0)
    fake = FakeOpenClip()
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    clip = OpenClipAdapter(fake, fake_open_clip_tokenizer, mean=mean, std=std, crop_size=16)
    check_clip_like(clip, 12)
    assert clip.embed_dim == 12 and crop_size_of(clip) == 16
    emb = clip.encode_crops(torch.rand(3, 3, 40, 40) * 255)
    assert emb.shape == (3, 12) and emb.dtype == torch.float32 and not emb.requires_grad
    assert fake.last_pixels.shape == (3, 3, 16, 16)
    clip.encode_crops(torch.full((1, 3, 16, 16), 127.5))  # the mean colour -> 0
    torch.testing.assert_close(fake.last_pixels, torch.zeros(1, 3, 16, 16))
    text = clip.encode_text(["red wheel", "a striped red wheel"])
    assert text.shape == (2, 12) and text.dtype == torch.float32
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(clip.encode_text(["red wheel"])[0], text[0])
    # without output_dim, E is found by asking the model
    del fake.visual.output_dim
    assert OpenClipAdapter(fake, fake_open_clip_tokenizer, crop_size=16).embed_dim == 12
    with pytest.raises(TypeError, match="open_clip"):
        OpenClipAdapter(nn.Linear(2, 2), fake_open_clip_tokenizer)


# -- end to end: train SAM's text prompt on the adapter's crops, prompt it with text ----------------

def test_sam_trained_with_hf_adapter_predicts_from_text(adapter):
    bank = build_bank(range(8), image_size=64)
    torch.manual_seed(0)
    base = Sam(SMALL.replace(text_embed_dim=adapter.embed_dim)).eval()
    model = train_text_sam(base, adapter, bank, steps=3, text_masks=4, point_masks=2, log=None)
    assert model.config.text_embed_dim == EMBED_DIM
    predictor = SamPredictor(model, text_encoder=adapter)
    predictor.set_image(bank.images[0])
    masks, scores, low = predictor.predict(text="red wheel")
    assert masks.shape == (3, 64, 64) and masks.dtype == bool and scores.shape == (3,)
    same = predictor.predict(embedding=adapter.encode_text(["red wheel"])[0].numpy())
    np.testing.assert_array_equal(same[0], masks)
