"""Train TinyClip contrastively on crops of procedural scenes, and measure its retrieval accuracy.

    python -m samwidgets train-clip --out runs/tiny_clip.pt   # the bundled one: 17 min on 2 CPU cores

A batch is B masks; each gets a crop (the paper's squared, 1-2x expanded
box, outside zeroed half the time) and a caption that says a random subset of
its facts ("red wheel", "striped circle", ...). Captions are not unique: a
caption matches every crop whose facts include it, so the loss is CLIP's
symmetric cross-entropy with every matching pair a positive (uniform target
over the matches) rather than only the diagonal.

Evaluation (:func:`retrieval_accuracy`, on held-out scenes): for each crop,
is its own full phrase the best of all full phrases of the held-out set
(top-1, top-5)? And per fact: is the right colour / pattern / shape / name
the nearest of all the words of that fact?
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from .crops import mask_crops
from .phrases import FACETS, phrase, sample_keep, scene_vocabulary, split_words
from .scene_bank import SceneBank
from .tiny_clip import TinyClip, TinyClipConfig


def vocabulary_of(bank: SceneBank) -> list[str]:
    """Every word scenes can say, and every word of every fact in the bank ("attic window": "attic", "window")."""
    return sorted(set(scene_vocabulary()) | {w for words in bank.words for fact in words for w in split_words(fact)})


def caption_targets(words: list[tuple], keeps: list[tuple]) -> torch.Tensor:
    """B x B bool: crop i matches caption j when every fact caption j says is a fact of crop i."""
    b = len(words)
    facts = np.array(words, dtype=object)  # B x 4
    said = np.array(keeps, bool)  # B x 4
    match = np.ones((b, b), bool)
    for f in range(len(FACETS)):
        same = facts[:, f][:, None] == facts[:, f][None, :]  # crop i's fact f == caption j's fact f
        match &= same | ~said[None, :, f]
    return torch.from_numpy(match)


def contrastive_loss(crop_emb: torch.Tensor, text_emb: torch.Tensor, match: torch.Tensor,
                     logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric multi-positive InfoNCE: crop_emb, text_emb B x E (unit), match B x B bool (diagonal true)."""
    logits = logit_scale.exp().clamp(max=100) * crop_emb @ text_emb.T  # B x B
    target = match.float()
    crop_to_text = -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, 1)).sum(1).mean()
    text_to_crop = -(target.T / target.T.sum(1, keepdim=True) * F.log_softmax(logits.T, 1)).sum(1).mean()
    return (crop_to_text + text_to_crop) / 2


@torch.no_grad()
def crop_embeddings(clip: TinyClip, bank: SceneBank, indices: np.ndarray, *, expand: float = 1.5,
                    mask_out: float = 0.5, seed: int = 0, chunk: int = 256) -> torch.Tensor:
    """len(indices) x E crop embeddings at a fixed expansion (deterministic)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(0, len(indices), chunk):
        images, masks, index = bank.batch(indices[k : k + chunk])
        crops = mask_crops(images, masks, index, clip.config.crop_size, expand=expand, mask_out=mask_out, rng=rng)
        out.append(clip.encode_crops(crops))
    return torch.cat(out) if out else torch.zeros((0, clip.embed_dim))


@torch.no_grad()
def retrieval_accuracy(clip: TinyClip, bank: SceneBank, *, mask_out: float = 0.5, seed: int = 0) -> dict:
    """Crop-to-text retrieval on ``bank`` (held-out scenes): full phrases top-1/top-5, and per fact top-1."""
    clip.eval()
    indices = np.arange(len(bank))
    crops = crop_embeddings(clip, bank, indices, mask_out=mask_out, seed=seed)  # M x E
    full = [phrase(w) for w in bank.words]
    candidates = sorted(set(full))
    sims = crops @ clip.encode_text(candidates).T  # M x P
    truth = torch.tensor([candidates.index(p) for p in full])
    rank = (sims > sims.gather(1, truth[:, None])).sum(1)  # M: candidates scored above the truth
    result = {"masks": int(len(bank)), "scenes": int(len(bank.images)), "phrases": len(candidates),
              "full_phrase_top1": float((rank < 1).float().mean()),
              "full_phrase_top5": float((rank < 5).float().mean())}
    for f, facet in enumerate(FACETS):
        values = sorted({w[f] for w in bank.words if w[f]})
        has = np.array([bool(w[f]) for w in bank.words])
        if not values or not has.any():
            continue
        pred = (crops[has] @ clip.encode_text(values).T).argmax(1)
        true = torch.tensor([values.index(w[f]) for w, h in zip(bank.words, has) if h])
        result[f"{facet}_top1"] = float((pred == true).float().mean())
        result[f"{facet}_chance"] = 1.0 / len(values)
    return result


def train_tiny_clip(bank: SceneBank, *, steps: int, batch_size: int = 256, lr: float = 2e-3,
                    warmup: int = 50, seed: int = 0, config: TinyClipConfig | None = None,
                    log_every: int = 50, log=print) -> TinyClip:
    """Train a TinyClip on ``bank`` and return it (eval mode)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    clip = TinyClip(vocabulary_of(bank), config)
    opt = torch.optim.AdamW(clip.parameters(), lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s / steps, 1)))))
    start = time.perf_counter()
    running = []
    for step in range(steps):
        clip.train()
        indices = bank.sample(rng, batch_size)
        images, masks, index = bank.batch(indices)
        crops = mask_crops(images, masks, index, clip.config.crop_size, rng=rng)  # B x 3 x s x s
        words = [bank.words[i] for i in indices]
        keeps = [sample_keep(rng, w) for w in words]
        captions = [phrase(w, k) for w, k in zip(words, keeps)]
        loss = contrastive_loss(clip.encode_crops(crops), clip.encode_text(captions),
                                caption_targets(words, keeps), clip.logit_scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if log and ((step + 1) % log_every == 0 or step + 1 == steps):
            log(f"step {step + 1}/{steps}  loss {np.mean(running):.3f}  "
                f"temperature {1 / clip.logit_scale.exp().item():.3f}  {time.perf_counter() - start:.0f} s")
            running = []
    return clip.eval()
