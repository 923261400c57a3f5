"""``SAM2ImagePredictor``: embed an image once, then turn prompts into masks (the reference's API).

Usage, as with the reference package::

    from samwidgets.sam2 import build_sam2, SAM2ImagePredictor
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt")
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(image)                       # H x W x 3 RGB uint8
    masks, scores, low_res = predictor.predict(point_coords=[[500, 375]], point_labels=[1])

What happens per call:

* ``set_image`` stretches the image to 1024 x 1024 (``transforms.py``), runs the
  image encoder once and keeps the image embedding (1 x 256 x 64 x 64) and the
  two high-resolution maps (1 x 32 x 256 x 256, 1 x 64 x 128 x 128).
* ``predict`` maps the prompts to the 1024 frame. A box becomes two points
  with labels 2 and 3, put in front of the clicks; several boxes at once
  (B x 4) are B prompts decoded in one batch. The decoder gives 256 x 256
  logits, resized to the image's H x W and thresholded at ``mask_threshold``.

Return types, dtypes and shapes are the reference's: masks float32 (0/1, or
logits with ``return_logits``) M x H x W (B x M x H x W for several boxes),
scores float32, low-res logits clamped to [-32, 32].

What it adds, as ``SamPredictor`` does for SAM: the image features are cached
(:class:`~samwidgets.inference.cache.EmbeddingCache`, keyed by the image's bytes
and the model's weights; in memory and optionally on disk), so an image seen
before is not encoded again, and :meth:`precompute` fills the cache from a
background thread (the canvas encodes the next image of a set this way).
"""

from __future__ import annotations

import logging
import os
import time
from typing import TypedDict

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike

from ..inference.cache import CachedEmbedding, EmbeddingCache, image_digest, model_fingerprint
from ..inference.predictor_base import CachingPredictor
from .model import SAM2Base
from .transforms import SAM2Transforms

logger = logging.getLogger(__name__)


class ImageFeatures(TypedDict):
    """What the predictor keeps of the image(s) set (a plain dict at run time, as the reference's)."""

    image_embed: torch.Tensor  # B x C x h x w
    high_res_feats: list[torch.Tensor]  # [B x C0 x 4h x 4w, B x C1 x 2h x 2w], or [] without them


def _is_pil_image(image) -> bool:
    """True for a PIL image (checked without importing PIL)."""
    return type(image).__module__.startswith("PIL.") and hasattr(image, "size") and hasattr(image, "mode")


def pack_features(image_embed: torch.Tensor, high_res_feats: list[torch.Tensor]) -> torch.Tensor:
    """The feature maps of one image as one tensor on the embedding's grid (for the cache).

    1 x C x h x w, 1 x C0 x 4h x 4w and 1 x C1 x 2h x 2w -> 1 x (C + 16 C0 + 4 C1) x h x w: each finer map
    folded into channels by ``pixel_unshuffle`` (a rearrangement, exactly undone by :func:`unpack_features`).
    A model without the finer maps (an empty list) keeps its embedding alone.
    """
    if not high_res_feats:
        return image_embed
    s0, s1 = high_res_feats
    return torch.cat([image_embed, F.pixel_unshuffle(s0, 4), F.pixel_unshuffle(s1, 2)], dim=1)


def unpack_features(packed: torch.Tensor, channels: tuple[int, int, int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The inverse of :func:`pack_features`, given the maps' channels (C, C0, C1; C0 = C1 = 0 without them)."""
    c, c0, c1 = channels
    if c0 == 0:
        return packed.contiguous(), []
    embed, s0, s1 = packed.split([c, 16 * c0, 4 * c1], dim=1)
    # contiguous as the encoder made them, so that the decoder runs the same kernels on them
    return embed.contiguous(), [F.pixel_shuffle(s0, 4).contiguous(), F.pixel_shuffle(s1, 2).contiguous()]


class SAM2ImagePredictor(CachingPredictor[SAM2Base]):
    """Computes an image's embedding once (:meth:`set_image`) and predicts masks from prompts (:meth:`predict`)."""

    def __init__(self, sam_model: SAM2Base, mask_threshold: float = 0.0, max_hole_area: float = 0.0,
                 max_sprinkle_area: float = 0.0, *, cache_size: int = 16,
                 disk_cache: bool | str | os.PathLike = False, cache: EmbeddingCache | None = None,
                 fast: bool = True) -> None:
        """
        sam_model: the SAM 2 model (``build_sam2``).
        mask_threshold: logits above it are foreground.
        max_hole_area / max_sprinkle_area: with a value > 0, background holes / foreground specks of at most
        that many low-res pixels are filled / removed before the masks are resized (``transforms.py``).
        cache_size, disk_cache, cache: the feature cache, as in ``SamPredictor`` (images kept in memory, 0 for
        none; True or a directory to also keep them on disk; or an :class:`EmbeddingCache` to share).
        fast: True (default) switches ``sam_model`` to the kit's fast paths (Hiera's blocks run a slab of rows
            at a time, :mod:`samwidgets.sam2.fast_encoder`; SAM's decoder parts as in ``SamPredictor``): the same
            outputs within float tolerance. False switches it back to the plain code. The switch changes the
            model in place, as ``SamPredictor``'s does.
        """
        super().__init__(sam_model, fast=fast, cache=cache, cache_size=cache_size, disk_cache=disk_cache)
        self._transforms = SAM2Transforms(resolution=sam_model.image_size, mask_threshold=mask_threshold,
                                          max_hole_area=max_hole_area, max_sprinkle_area=max_sprinkle_area,
                                          mean=sam_model.config.pixel_mean, std=sam_model.config.pixel_std)
        self.mask_threshold = mask_threshold
        # the sides of the kept feature maps, highest resolution first: strides 4, 8, 16 (256, 128, 64 at 1024 px)
        size = sam_model.image_size
        self._bb_feat_sizes = [(size // 4, size // 4), (size // 8, size // 8), (size // 16, size // 16)]
        self.reset_predictor()

    @property
    def device(self) -> torch.device:
        return self.model.device

    def reset_predictor(self) -> None:
        """Forget the image (embeddings, size, batch mode)."""
        self._is_image_set = False
        self._features: ImageFeatures | None = None
        self._orig_hw: list[tuple[int, int]] | None = None
        self._is_batch = False

    @torch.no_grad()
    def set_image(self, image) -> None:
        """Embed one image: an H x W x 3 RGB numpy array (uint8, or floats in [0, 1]) or a PIL image."""
        self.reset_predictor()
        if isinstance(image, np.ndarray):
            self._orig_hw = [tuple(image.shape[:2])]
        elif _is_pil_image(image):
            w, h = image.size
            self._orig_hw = [(h, w)]
        else:
            raise NotImplementedError(f"Image format not supported: {type(image).__name__} "
                                      "(give an H x W x 3 numpy array or a PIL image)")
        key = self.cache_key(image)
        entry = self.cache.get(key, device=self.device)
        if entry is not None:
            image_embed, high_res_feats = unpack_features(entry.features, self._feature_channels())
            self.last_set_image_cached, self.last_encode_seconds = True, 0.0
        else:
            image_embed, high_res_feats, self.last_encode_seconds = self._encode(image)
            self.last_set_image_cached = False
            self.cache.put(key, CachedEmbedding(pack_features(image_embed, high_res_feats),
                                                (self.model.image_size, self.model.image_size), self._orig_hw[0]))
        self._features = {"image_embed": image_embed, "high_res_feats": high_res_feats}
        self._is_image_set = True

    def _encode(self, image) -> tuple[torch.Tensor, list[torch.Tensor], float]:
        """The image's features (embedding 1 x C x h x w, the two finer maps) and the seconds the encoder took."""
        input_image = self._transforms(image)[None].to(self.device)  # 1 x 3 x S x S
        if input_image.ndim != 4 or input_image.shape[1] != 3:
            raise ValueError(f"input_image must be of size 1x3xHxW, got {tuple(input_image.shape)}")
        logger.info("Computing image embeddings for the provided image...")
        start = time.perf_counter()
        with torch.no_grad():
            image_embed, high_res_feats = self.model.image_features(input_image)
        return image_embed, high_res_feats, time.perf_counter() - start

    def _feature_channels(self) -> tuple[int, int, int]:
        """Channels of the embedding and of the two finer maps (256, 32, 64 for the official models)."""
        decoder = self.model.sam_mask_decoder
        if not hasattr(decoder, "conv_s0"):  # no high-resolution features
            return self.model.config.d_model, 0, 0
        return self.model.config.d_model, decoder.conv_s0.out_channels, decoder.conv_s1.out_channels

    def cache_key(self, image) -> str:
        """The cache key of an image (numpy array or PIL image) for this predictor's model."""
        pixels = np.asarray(image)
        return f"sam2-{model_fingerprint(self.model)}-{image_digest(pixels)}"

    def precompute(self, image) -> float:
        """Put the features of ``image`` in the cache without making it the current image (thread-safe with
        :meth:`predict` on another image); the encoder's seconds, 0.0 when it was already cached."""
        key = self.cache_key(image)
        if key in self.cache:
            return 0.0
        h, w = np.asarray(image).shape[:2]
        image_embed, high_res_feats, seconds = self._encode(image)
        self.cache.put(key, CachedEmbedding(pack_features(image_embed, high_res_feats),
                                            (self.model.image_size, self.model.image_size), (h, w)))
        return seconds

    @torch.no_grad()
    def set_image_batch(self, image_list: list[np.ndarray]) -> None:
        """Embed several images (a list of H x W x 3 numpy arrays, any sizes) for :meth:`predict_batch`."""
        self.reset_predictor()
        if not isinstance(image_list, list):
            raise TypeError("set_image_batch takes a list of images")
        for image in image_list:
            if not isinstance(image, np.ndarray):
                raise TypeError("Images are expected to be an np.ndarray in RGB format, and of shape HWC")
        self._orig_hw = [tuple(image.shape[:2]) for image in image_list]
        img_batch = self._transforms.forward_batch(image_list).to(self.device)  # B x 3 x S x S
        logger.info("Computing image embeddings for the provided images...")
        image_embed, high_res_feats = self.model.image_features(img_batch)
        self._features = {"image_embed": image_embed, "high_res_feats": high_res_feats}
        self._is_image_set = True
        self._is_batch = True

    def predict_batch(self, point_coords_batch: list[np.ndarray] | None = None,
                      point_labels_batch: list[np.ndarray] | None = None, box_batch: list[np.ndarray] | None = None,
                      mask_input_batch: list[np.ndarray] | None = None, multimask_output: bool = True,
                      return_logits: bool = False, normalize_coords: bool = True,
                      ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """:meth:`predict` for each image of :meth:`set_image_batch`, with one entry per image in each list.

        Returns three lists (masks, IoU predictions, low-res logits), one entry per image.
        """
        if not self._is_batch:
            raise RuntimeError("predict_batch needs images set with set_image_batch(...) (batched mode)")
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image_batch(...) before mask prediction.")
        assert self._features is not None, "set_image_batch sets the features with _is_image_set"
        all_masks, all_ious, all_low_res = [], [], []
        for img_idx in range(len(self._features["image_embed"])):
            point_coords, point_labels, box, mask_logits = (
                batch[img_idx] if batch is not None else None
                for batch in (point_coords_batch, point_labels_batch, box_batch, mask_input_batch))
            mask_input, coords, labels, boxes = self._prep_prompts(point_coords, point_labels, box, mask_logits,
                                                                   normalize_coords, img_idx=img_idx)
            masks, iou_predictions, low_res_masks = self._predict(coords, labels, boxes, mask_input, multimask_output,
                                                                  return_logits=return_logits, img_idx=img_idx)
            all_masks.append(masks.squeeze(0).float().detach().cpu().numpy())
            all_ious.append(iou_predictions.squeeze(0).float().detach().cpu().numpy())
            all_low_res.append(low_res_masks.squeeze(0).float().detach().cpu().numpy())
        return all_masks, all_ious, all_low_res

    def predict(self, point_coords: ArrayLike | None = None, point_labels: ArrayLike | None = None,
                box: ArrayLike | None = None, mask_input: ArrayLike | None = None, multimask_output: bool = True,
                return_logits: bool = False, normalize_coords: bool = True,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predict masks for prompts on the image of :meth:`set_image`.

        point_coords: N x 2 (x, y) pixels of the image (or B x N x 2 with B boxes); point_labels: N
        (1 foreground, 0 background); box: 4 (XYXY pixels) or B x 4, several boxes decoded at once;
        mask_input: 1 x 256 x 256 low-res logits of a previous prediction (B x 1 x 256 x 256 with B boxes);
        multimask_output: three masks (for an ambiguous prompt) or one; return_logits: logits instead of
        0/1 masks; normalize_coords: False if the coordinates are already in [0, 1] of the image.

        Returns masks C x H x W (float32: 0/1, or logits), IoU predictions C and low-res logits C x 256 x 256
        (C = 3 or 1); with B boxes each has a leading B.
        """
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        mask_t, coords, labels, boxes = self._prep_prompts(point_coords, point_labels, box, mask_input,
                                                           normalize_coords)
        masks, iou_predictions, low_res_masks = self._predict(coords, labels, boxes, mask_t, multimask_output,
                                                              return_logits=return_logits)
        masks_np = masks.squeeze(0).float().detach().cpu().numpy()
        iou_np = iou_predictions.squeeze(0).float().detach().cpu().numpy()
        low_res_np = low_res_masks.squeeze(0).float().detach().cpu().numpy()
        return masks_np, iou_np, low_res_np

    def _prep_prompts(self, point_coords, point_labels, box, mask_logits, normalize_coords: bool, img_idx: int = -1,
                      ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Prompts as tensors in the model's input frame.

        Returns (mask_input B x 1 x h x w, coords B x N x 2, labels B x N, boxes B x 2 x 2), each None if not given.
        """
        coords = labels = boxes = mask_input = None
        assert self._orig_hw is not None, "set_image sets the image sizes with _is_image_set"
        orig_hw = self._orig_hw[img_idx]
        if point_coords is not None:
            if point_labels is None:
                raise ValueError("point_labels must be supplied if point_coords is supplied.")
            point_coords = torch.as_tensor(point_coords, dtype=torch.float, device=self.device)
            coords = self._transforms.transform_coords(point_coords, normalize=normalize_coords, orig_hw=orig_hw)
            labels = torch.as_tensor(point_labels, dtype=torch.int, device=self.device)
            if coords.ndim == 2:  # N x 2 -> 1 x N x 2: one prompt
                coords, labels = coords[None], labels[None]
        if box is not None:
            box = torch.as_tensor(box, dtype=torch.float, device=self.device)
            boxes = self._transforms.transform_boxes(box, normalize=normalize_coords, orig_hw=orig_hw)  # B x 2 x 2
        if mask_logits is not None:
            mask_input = torch.as_tensor(mask_logits, dtype=torch.float, device=self.device)
            if mask_input.ndim == 3:  # 1 x h x w -> 1 x 1 x h x w
                mask_input = mask_input[None]
        return mask_input, coords, labels, boxes

    @torch.no_grad()
    def _predict(self, point_coords: torch.Tensor | None, point_labels: torch.Tensor | None,
                 boxes: torch.Tensor | None = None, mask_input: torch.Tensor | None = None,
                 multimask_output: bool = True, return_logits: bool = False,
                 img_idx: int = -1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Predict from prompts already in the input frame (B x N x 2 points, B x N labels, B x 4 or B x 2 x 2
        boxes, B x 1 x 256 x 256 mask logits). Returns masks B x C x H x W (bool, or logits), IoU B x C and
        low-res logits B x C x 256 x 256 clamped to [-32, 32]."""
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        assert self._features is not None and self._orig_hw is not None, "set with _is_image_set"
        points = None
        if point_coords is not None:
            if point_labels is None:
                raise ValueError("point_labels must be supplied if point_coords is supplied.")
            points = (point_coords, point_labels)

        if boxes is not None:  # a box is two points labelled 2 (top-left) and 3 (bottom-right), before the clicks
            box_coords = boxes.reshape(-1, 2, 2)  # B x 2 x 2
            box_labels = torch.tensor([[2, 3]], dtype=torch.int, device=boxes.device).repeat(boxes.shape[0], 1)
            if points is not None:
                if points[0].shape[0] != box_coords.shape[0]:
                    raise ValueError(f"{box_coords.shape[0]} boxes but points for {points[0].shape[0]} prompts: give "
                                     "the points as B x N x 2 (one row of points per box)")
                points = (torch.cat([box_coords, points[0]], dim=1), torch.cat([box_labels, points[1]], dim=1))
            else:
                points = (box_coords, box_labels)

        sparse, dense = self.model.sam_prompt_encoder(points=points, boxes=None, masks=mask_input)

        several_prompts = points is not None and points[0].shape[0] > 1  # B prompts share one image
        high_res_features = [level[img_idx].unsqueeze(0) for level in self._features["high_res_feats"]]
        low_res_masks, iou_predictions, _, _ = self.model.sam_mask_decoder(
            image_embeddings=self._features["image_embed"][img_idx].unsqueeze(0),
            image_pe=self.model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask_output,
            repeat_image=several_prompts, high_res_features=high_res_features)

        masks = self._transforms.postprocess_masks(low_res_masks, self._orig_hw[img_idx])  # B x C x H x W logits
        low_res_masks = torch.clamp(low_res_masks, -32.0, 32.0)
        if not return_logits:
            masks = masks > self.mask_threshold
        return masks, iou_predictions, low_res_masks

    def get_image_embedding(self) -> torch.Tensor:
        """The image embedding of the image(s) set: B x C x h x w (1 x 256 x 64 x 64 for one 1024 px image)."""
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) to generate an embedding.")
        assert self._features is not None, "set_image sets the features with _is_image_set"
        return self._features["image_embed"]
