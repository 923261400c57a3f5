"""Teach a SAM model text prompts without text (paper, appendix D.5).

    python -m samwidgets train-text --clip runs/tiny_clip.pt --out runs/default_cnn_text.pt

The model gets a text projection (``SamConfig.text_embed_dim``) and is
fine-tuned from the bundled model. In every step a batch of masks is prompted by
the CLIP-like model's *image* embedding of each mask's crop (squared,
expanded 1-2x, outside zeroed half the time), one token alone, with the 3
ambiguity outputs and the paper's loss (focal + dice 20:1 on the best of 3,
IoU head MSE). As in the paper, only masks larger than 100^2 pixels of a
1024 px image (625 at default_tiny's 256) get text prompts. A few masks per
step get the usual point/box simulation (3 rounds instead of 11), so that
the model keeps those prompts. At inference the text embedding takes the
crop embedding's place.

Two choices of the bundled recipe (the defaults of this command), each
compared with the alternative in short runs (``weights/TEXT_MODEL_CARD.md``):

- the text masks of a step come 4 per image (8 images), so the prompt has
  to tell an object from its neighbours rather than from objects of other
  images;
- the image encoder's last 2 blocks and its neck are trained too, the rest
  stays frozen and runs once per image before training. The paper trains
  the whole model; here the frozen encoder, trained for points and boxes,
  keeps little of what words name (a linear probe reads an object's colour
  from the neck's output less well than from the block before it).

A model with a convolutional encoder (``SamConfig.encoder_type == "cnn"``)
has no blocks to count: there any ``--tune-blocks`` of 1 or more trains its
whole head (attention blocks, pyramid, neck, high-res path) on its frozen
trunk (stem and stages), and ``--image-size`` trains it at another input
size than the bundled model's (a CNN's weights fit any size).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..inference.text_encoder import ClipLike, check_clip_like
from ..modeling import ImageEncoderViT, Sam
from ..modeling.fast import enable_fast_paths, fast_paths_enabled
from ..modeling.image_encoder_cnn import ImageEncoderCNN
from ..training.interactive import interactive_loss
from ..training.losses import sam_loss
from .crops import mask_crops
from .scene_bank import SceneBank


def paper_min_area(image_size: int) -> int:
    """The paper's "masks larger than 100^2 pixels" (of a 1024 px image), scaled to ``image_size``: 625 at 256."""
    return int(round((100 * image_size / 1024) ** 2))


def with_text_prompt(base: Sam, text_embed_dim: int, seed: int = 0) -> Sam:
    """A copy of ``base`` with a new (randomly initialised) text projection taking E = text_embed_dim
    (running the fast paths when ``base`` does)."""
    torch.manual_seed(seed)
    model = Sam(base.config.replace(text_embed_dim=int(text_embed_dim)))
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    if unexpected or any(not k.startswith("prompt_encoder.text_projection.") for k in missing):
        raise ValueError(f"base model does not fit: missing {missing}, unexpected {unexpected}")
    return enable_fast_paths(model.to(base.device), fast_paths_enabled(base))


def crop_size_of(clip: ClipLike) -> int:
    """The side of the crops to cut for ``clip`` (its own input size when it says one, else 224 as CLIP's)."""
    return int(getattr(clip, "crop_size", 224))


@torch.no_grad()
def frozen_features(model: Sam, bank: SceneBank, tune_blocks: int = 0, chunk: int = 32) -> torch.Tensor:
    """What the frozen part of the image encoder gives for every bank image, computed once.

    tune_blocks == 0: the image embeddings, N x C x h x w (any encoder). Otherwise, for a ViT encoder,
    the input of the last ``tune_blocks`` blocks, N x h x w x D (channels last), which
    :func:`encoder_tail` turns into embeddings with the tuned blocks and neck. For a CNN encoder
    (any ``tune_blocks`` >= 1: its head is tuned) the bank's pixels themselves, N x 3 x S x S uint8, a
    view of ``bank.images`` (no copy, on the CPU): the frozen trunk's 4 feature maps, the largest at
    S/4 x S/4, would take far more memory than the pixels, so :func:`encoder_tail` runs the trunk in
    every step instead.
    """
    if bank.image_size != model.image_encoder.img_size:
        raise ValueError(f"the scenes are {bank.image_size} px but the model takes {model.image_encoder.img_size} px: "
                         f"build the bank with image_size={model.image_encoder.img_size}")
    encoder = model.image_encoder
    if model.config.encoder_type == "cnn":
        if tune_blocks < 0:
            raise ValueError(f"tune_blocks must be 0 (encoder frozen) or >= 1 (its head tuned) for a CNN encoder, "
                             f"got {tune_blocks}")
        if tune_blocks > 0:
            return torch.from_numpy(bank.images).permute(0, 3, 1, 2)  # N x 3 x S x S uint8, a view
    elif isinstance(encoder, ImageEncoderViT):
        if not 0 <= tune_blocks <= len(encoder.blocks):
            raise ValueError(f"tune_blocks must be in [0, {len(encoder.blocks)}] for this encoder, got {tune_blocks}")
    elif tune_blocks != 0:  # MobileSAM's TinyViT: its blocks are not tuned here
        raise ValueError(f"tune_blocks must be 0 for a {model.config.encoder_type!r} encoder, got {tune_blocks}")
    out = []
    for k in range(0, len(bank.images), chunk):
        pixels = torch.from_numpy(bank.images[k : k + chunk]).permute(0, 3, 1, 2).float().to(model.device)
        if tune_blocks == 0:
            out.append(encoder(model.preprocess(pixels)))  # b x C x h x w
            continue
        assert isinstance(encoder, ImageEncoderViT), "checked above: only a ViT's blocks are tuned"
        x = encoder.patch_embed(model.preprocess(pixels))  # b x h x w x D
        if encoder.pos_embed is not None:
            x = x + encoder.pos_embed
        for block in encoder.blocks[: len(encoder.blocks) - tune_blocks]:  # the frozen blocks
            x = block(x)
        out.append(x)  # b x h x w x D
    return torch.cat(out)


def encoder_tail(model: Sam, frozen: torch.Tensor, tune_blocks: int) -> torch.Tensor:
    """Image embeddings B x C x h x w from :func:`frozen_features` rows: the rows themselves when
    ``tune_blocks`` is 0; for a ViT the last ``tune_blocks`` blocks and the neck (with grad when they are
    trained); for a CNN (rows of pixels) the trunk without grad, then the head with grad. A CNN with
    high-res features gives B x 3C x h x w (see ``split_image_embedding``)."""
    if tune_blocks == 0:
        return frozen
    encoder = model.image_encoder
    if model.config.encoder_type == "cnn":
        assert isinstance(encoder, ImageEncoderCNN), "encoder_type 'cnn'"
        pixels = frozen.to(model.device).float()  # B x 3 x S x S, 0..255
        with torch.no_grad():  # the frozen trunk keeps no activations for the backward pass
            # B x w1 x S/4 x S/4, B x w2 x S/8 x S/8, B x w3 x S/16 x S/16, B x w4 x S/32 x S/32
            f4, f8, f16, f32 = encoder.trunk(model.preprocess(pixels))
        return encoder.head(f4, f8, f16, f32)  # B x C x h x w (B x 3C x h x w with high-res features)
    assert isinstance(encoder, ImageEncoderViT), "frozen_features tunes only a ViT's blocks or a CNN's head"
    x = frozen  # B x h x w x D
    for block in encoder.blocks[len(encoder.blocks) - tune_blocks :]:
        x = block(x)
    return encoder.neck(x.permute(0, 3, 1, 2))  # B x C x h x w


def features_of_masks(model: Sam, frozen: torch.Tensor, image_ids: np.ndarray, tune_blocks: int) -> torch.Tensor:
    """B x C x h x w image embeddings for masks of images ``image_ids`` (B), each image through the tail once."""
    unique, inverse = np.unique(image_ids, return_inverse=True)
    features = encoder_tail(model, frozen[torch.from_numpy(unique).to(frozen.device)], tune_blocks)  # U x C x h x w
    return features[torch.from_numpy(inverse.reshape(-1)).to(features.device)]  # B x C x h x w


def text_prompt_loss(model: Sam, clip: ClipLike, bank: SceneBank, frozen: torch.Tensor, indices: np.ndarray,
                     rng: np.random.Generator, tune_blocks: int = 0):
    """The paper's loss for masks ``indices`` prompted by their crops' embeddings (one token, 3 outputs).

    frozen: :func:`frozen_features` of the bank for ``tune_blocks``."""
    images, masks, index = bank.batch(indices)
    crops = mask_crops(images, masks, index, crop_size_of(clip), rng=rng)  # B x 3 x s x s
    with torch.no_grad():
        emb = clip.encode_crops(crops.to(model.device)).float()  # B x E
    features = features_of_masks(model, frozen, bank.image_of_mask[indices], tune_blocks)  # B x C x h x w
    sparse, dense = model.prompt_encoder(points=None, boxes=None, masks=None, embeddings=emb)
    low_res, iou_pred = model.mask_decoder(features, model.prompt_encoder.get_dense_pe(),
                                           sparse, dense, multimask_output=True)  # B x 3 x s x s, B x 3
    size = model.image_encoder.img_size
    logits = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)  # B x 3 x S x S
    targets = torch.from_numpy(masks).to(model.device)
    return sam_loss(logits, iou_pred, targets, multimask=True)


def train_text_sam(base: Sam, clip: ClipLike, bank: SceneBank, *, steps: int, text_masks: int = 32,
                   point_masks: int = 4, point_rounds: int = 3, lr: float = 1e-3, projection_lr: float = 3e-3,
                   min_area: int | None = None, warmup: int = 30, seed: int = 0, tune_blocks: int = 0,
                   encoder_lr: float | None = None, text_masks_per_image: int = 1, log_every: int = 50,
                   log=print) -> Sam:
    """Fine-tune a copy of ``base`` with a text projection for ``clip``; returns it in eval mode.

    Text prompts are drawn among masks of at least ``min_area`` pixels (default: the paper's 100^2 of a
    1024 px image, scaled), uniformly; point/box prompts among all masks, each level equally likely.
    With ``text_masks_per_image`` > 1 the text masks of a step come in groups of that many from one image
    (text_masks / text_masks_per_image images), so the prompt must pick its object among its neighbours.
    The image encoder is frozen but for its last ``tune_blocks`` blocks and, when that is above 0, its
    neck, trained at ``encoder_lr`` (default ``lr``); the rest of it runs once per image, before training.
    A CNN encoder (``encoder_type == "cnn"``) has no blocks to count: ``tune_blocks`` 0 keeps it frozen,
    any value >= 1 trains its head (``head_modules()``: attention blocks, pyramid, neck, high-res path)
    while its trunk (stem and stages) stays frozen and runs, without grad, in every step. The encoder
    stays in eval mode throughout, so the CNN's batch norms keep their running statistics.
    """
    if min_area is None:
        min_area = paper_min_area(base.image_encoder.img_size)
    check_clip_like(clip)
    model = with_text_prompt(base, clip.embed_dim, seed)
    encoder = model.image_encoder
    encoder.requires_grad_(False)
    encoder.eval()
    t0 = time.perf_counter()
    # N x C x h x w; with tuning, a ViT's N x h x w x D before the tuned blocks or a CNN's N x 3 x S x S pixels
    frozen = frozen_features(model, bank, tune_blocks)
    cnn = model.config.encoder_type == "cnn"
    if log and cnn and tune_blocks:
        log("CNN encoder: its head is tuned, its frozen trunk runs in every step")
    elif log:
        log(f"frozen encoder on {len(bank.images)} scenes: {time.perf_counter() - t0:.0f} s")
    tuned: list[torch.nn.Parameter] = []
    if tune_blocks:
        # a CNN: its whole head (any tune_blocks >= 1); a ViT: its last tune_blocks blocks and the neck
        if cnn:
            assert isinstance(encoder, ImageEncoderCNN), "encoder_type 'cnn'"
            modules = encoder.head_modules()
        else:
            assert isinstance(encoder, ImageEncoderViT), "frozen_features tunes only a ViT's blocks or a CNN's head"
            modules = [*encoder.blocks[len(encoder.blocks) - tune_blocks :], encoder.neck]
        for module in modules:
            module.requires_grad_(True)
            tuned += list(module.parameters())
    projection = list(model.prompt_encoder.text_projection.parameters())
    ids = {id(p) for p in projection + tuned}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    groups = [{"params": projection, "lr": projection_lr}, {"params": rest, "lr": lr}]
    if tuned:
        groups.append({"params": tuned, "lr": lr if encoder_lr is None else encoder_lr})
    opt = torch.optim.AdamW(groups, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s / steps, 1))))
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    params = [p for g in opt.param_groups for p in g["params"]]
    running: list[tuple[float, float, float]] = []
    for step in range(steps):
        model.train()
        encoder.eval()  # no dropout or batch statistics in it (a CNN's batch norms keep their running stats)
        opt.zero_grad(set_to_none=True)
        if text_masks_per_image > 1:
            text_indices = bank.sample_by_image(rng, max(1, text_masks // text_masks_per_image), text_masks_per_image,
                                                min_area=min_area)
        else:
            text_indices = bank.sample(rng, text_masks, min_area=min_area, balance_levels=False)
        text = text_prompt_loss(model, clip, bank, frozen, text_indices, rng, tune_blocks)
        text.total.backward()
        point_iou = float("nan")
        if point_masks:
            indices = bank.sample(rng, point_masks)
            _, masks, _ = bank.batch(indices)
            features = features_of_masks(model, frozen, bank.image_of_mask[indices], tune_blocks)  # B x C x h x w
            first = "box" if rng.random() < 0.5 else "point"
            _, stats = interactive_loss(model, None, torch.from_numpy(masks).to(model.device),
                                        torch.arange(len(indices), device=model.device), gen, first_prompt=first,
                                        num_rounds=point_rounds, features=features, backward=True)
            point_iou = stats[0].mask_iou
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        best = float(text.true_iou.max(1).values.mean())
        running.append((text.total.item(), best, point_iou))
        if log and ((step + 1) % log_every == 0 or step + 1 == steps):
            loss, best = np.mean(np.array(running)[:, :2], 0)
            points = f"  first-prompt IoU {np.mean([r[2] for r in running]):.3f}" if point_masks else ""
            log(f"step {step + 1}/{steps}  text loss {loss:.3f}  text IoU (best of 3) {best:.3f}{points}  "
                f"{time.perf_counter() - t0:.0f} s")
            running = []
    return model.eval()
