"""SamPredictor: set an image once, then prompt it many times.

Drop-in for ``segment_anything.SamPredictor`` (same methods, arguments,
output shapes and dtypes), with three additions: image embeddings are cached
(memory LRU, optionally on disk) by image content and model identity, inputs
of many kinds are accepted and converted, and prompts are validated with
messages that say what to fix.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from ..errors import UserInputError
from ..modeling import Sam
from .cache import CachedEmbedding, EmbeddingCache, image_digest, model_fingerprint
from .images import ImageLike, as_rgb_uint8
from .predictor_base import CachingPredictor
from .prompts import check_box, check_mask_input, check_points
from .text_encoder import ClipLike, check_clip_like
from .transforms import ResizeLongestSide

#: Above this many output pixels (masks x H x W), masks are upsampled one at a time.
_CHUNKED_POSTPROCESS_PIXELS = 32_000_000


def _version(t: torch.Tensor) -> int:
    """t's in-place modification counter; tensors made under ``torch.inference_mode`` have none (0)."""
    return 0 if t.is_inference() else t._version


def _versions(module: torch.nn.Module) -> tuple:
    """Changes whenever a parameter of module is replaced or modified in place."""
    return tuple((p.data_ptr(), _version(p)) for p in module.parameters())


def _is_dynamo_error(e: BaseException) -> bool:
    """Whether e is one of torch.compile's own errors (asked only once torch.compile has imported torch._dynamo)."""
    from torch._dynamo.exc import TorchDynamoException

    return isinstance(e, TorchDynamoException)


#: Precisions of SamPredictor: the exact path and the labelled fast mode.
PRECISIONS = ("fp32", "bf16")


class SamPredictor(CachingPredictor[Sam]):
    """Predict masks for one image from points, boxes and mask prompts.

    Args:
        sam_model: the model.
        cache_size: image embeddings kept in memory (LRU); 0 disables the memory cache.
        disk_cache: False (default), True for the user cache directory
            (``$SAMWIDGETS_CACHE_DIR`` or platformdirs), or a directory path.
        cache: an :class:`EmbeddingCache` to share between predictors (overrides the two above).
        precision: "fp32" (default: the exact path, the reference's outputs within the parity
            tolerances) or "bf16", a labelled fast mode: the image encoder runs under bfloat16
            autocast (fast on GPUs and on CPUs with AVX-512 BF16 / AMX; slower than fp32 on CPUs
            without them), the decoder stays in fp32. Its cost in mask IoU against the exact path
            is measured by ``python -m samwidgets bench --precision``. Embeddings are cached
            per precision.
        text_encoder: a CLIP-like model (:class:`samwidgets.text.ClipLike`) for
            ``predict(text=...)``, with a model trained with text prompts; e.g.
            ``samwidgets.text.load_tiny_clip()`` with ``samwidgets.text.load_default_text_model()``.
        compile: False (default) or True, a labelled fast mode: the image encoder runs through
            ``torch.compile(sam_model.image_encoder, dynamic=False)``, made on the first encode
            (sam_model itself is not changed). That first encode compiles: it can take a minute
            on a CPU and needs a working C++ compiler; a RuntimeError says when compiling fails
            (``compile=False`` is the fix). The embeddings match the exact path within float
            tolerance, not bit for bit; ``python -m samwidgets bench --precision --compile``
            measures the speed and the mask IoU against the exact path.
        fast: True (default) switches ``sam_model`` to the fast paths of
            :mod:`samwidgets.modeling.fast`: the same outputs within float tolerance.
            False runs the plain modeling code a reader sees. The switch is made on the model,
            in place: predictors that share a model share its mode (use a copy to compare the two).
    """

    # The current image (see set_image), None while none is set: its embedding 1 x C x h x w,
    # its size (h, w) after resizing the longest side to img_size and (H, W) as given.
    features: torch.Tensor | None
    input_size: tuple[int, int] | None
    original_size: tuple[int, int] | None

    def __init__(self, sam_model: Sam, *, cache_size: int = 16, disk_cache: bool | str | os.PathLike = False,
                 cache: EmbeddingCache | None = None, precision: str = "fp32", compile: bool = False,
                 text_encoder: ClipLike | None = None, fast: bool = True) -> None:
        if precision not in PRECISIONS:
            raise UserInputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        # Not part of the cache key (precision is): compiled embeddings equal the exact path's within float
        # tolerance, as the exact path's own do across thread counts and CPUs, which the key leaves out too;
        # bf16 moves them by far more, so it gets a key of its own.
        self.compile = compile
        self._compiled_encoder: Any = None  # torch.compile of model.image_encoder, made on the first encode
        if text_encoder is not None:
            check_clip_like(text_encoder, sam_model.config.text_embed_dim or None)
        super().__init__(sam_model, fast=fast, cache=cache, cache_size=cache_size, disk_cache=disk_cache)
        #: the CLIP-like model that embeds ``predict(text=...)`` (see samwidgets.text)
        self.text_encoder = text_encoder
        self.transform = ResizeLongestSide(sam_model.image_encoder.img_size)
        self._dense_pe: tuple[tuple, torch.Tensor] | None = None
        self._prepared: tuple[tuple, object | None] | None = None  # (weights' and image's key, the decoder's answer)
        self.reset_image()

    @property
    def device(self) -> torch.device:
        return self.model.device

    # -- images ---------------------------------------------------------------
    def set_image(self, image: ImageLike, image_format: str = "RGB") -> None:
        """Compute (or fetch from the cache) the embedding of ``image``.

        image: H x W x 3 uint8 in ``image_format`` ("RGB" or "BGR"), or any
        input :func:`samwidgets.inference.images.as_rgb_uint8` accepts.
        """
        rgb = as_rgb_uint8(image, image_format)  # H x W x 3 uint8 RGB
        key = self.cache_key(rgb)
        entry = self.cache.get(key, device=self.device)
        if entry is not None:
            self._use(entry, cached=True)
            return
        input_torch = self._model_input(rgb)
        self.set_torch_image(input_torch, rgb.shape[:2])
        self.cache.put(key, self._current())

    def precompute(self, image: ImageLike, image_format: str = "RGB") -> float:
        """Put the embedding of ``image`` in the cache without making it the current image.

        Safe to call from a background thread while this predictor answers
        prompts on another image (the widget encodes the next image of a set
        this way). Returns the seconds spent in the encoder, 0.0 when it was
        already cached.
        """
        rgb = as_rgb_uint8(image, image_format)  # H x W x 3 uint8 RGB
        key = self.cache_key(rgb)
        if key in self.cache:
            return 0.0
        input_torch = self._model_input(rgb)  # 1 x 3 x h x w
        start = time.perf_counter()
        with torch.no_grad():
            features = self._encode(self.model.preprocess(input_torch))  # 1 x C x h' x w'
        seconds = time.perf_counter() - start
        self.cache.put(key, CachedEmbedding(features, (input_torch.shape[-2], input_torch.shape[-1]), rgb.shape[:2]))
        return seconds

    def _model_input(self, rgb: np.ndarray) -> torch.Tensor:
        """H x W x 3 uint8 -> 1 x 3 x h x w uint8 tensor, longest side img_size."""
        input_image = np.array(self.transform.apply_image(rgb))  # h x w x 3, a writable copy for torch
        return torch.as_tensor(input_image, device=self.device).permute(2, 0, 1).contiguous()[None]

    def cache_key(self, rgb: np.ndarray) -> str:
        """Cache key of an RGB uint8 image for this predictor's model (weights, config, dtype) and precision."""
        key = f"{model_fingerprint(self.model)}-{image_digest(rgb)}"
        return key if self.precision == "fp32" else f"{key}-{self.precision}"

    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """The image encoder at this predictor's precision, compiled with ``compile``:
        1 x 3 x S x S normalised -> 1 x C x h x w float32."""
        encoder = self.model.image_encoder
        try:
            if self.compile:
                if self._compiled_encoder is None:
                    self._compiled_encoder = torch.compile(encoder, dynamic=False)
                encoder = self._compiled_encoder  # compiles on the first call (and on a new device or dtype)
            if self.precision == "bf16":
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                    features = encoder(pixels)
                return features.float()
            return encoder(pixels)
        except Exception as e:
            if not self.compile or not (self._compiled_encoder is None or _is_dynamo_error(e)):
                raise  # the exact path's errors, and the model's own, as they are
            first_line = (str(e).strip().splitlines() or [""])[0]
            raise RuntimeError(
                f"torch.compile of the image encoder failed ({type(e).__name__}: {first_line}). On a CPU it "
                "needs a working C++ compiler. SamPredictor(..., compile=False), the exact path, needs none"
            ) from e

    @torch.no_grad()
    def set_torch_image(self, transformed_image: torch.Tensor, original_image_size: tuple[int, ...]) -> None:
        """Compute the embedding of an image already resized to the model frame.

        transformed_image: 1 x 3 x h x w with max(h, w) == img_size (as from
        ``predictor.transform.apply_image``); original_image_size: (H, W) before resizing.
        """
        size = self.model.image_encoder.img_size
        shape = tuple(transformed_image.shape)
        if len(shape) != 4 or shape[0] != 1 or shape[1] != 3 or max(shape[2:]) != size:
            raise UserInputError(
                f"set_torch_image expects a 1 x 3 x h x w tensor with longest side {size}, got {shape}; "
                "use set_image for ordinary images"
            )
        self.reset_image()
        start = time.perf_counter()
        input_image = self.model.preprocess(transformed_image.to(self.device))
        features = self._encode(input_image)  # 1 x C x h' x w'
        self.last_encode_seconds = time.perf_counter() - start
        self._use(CachedEmbedding(features, (shape[2], shape[3]),
                                  (int(original_image_size[0]), int(original_image_size[1]))), cached=False)

    def _use(self, entry: CachedEmbedding, cached: bool) -> None:
        self._prepared = None
        self.features = entry.features
        self.input_size = (entry.input_size[0], entry.input_size[1])
        self.original_size = (entry.original_size[0], entry.original_size[1])
        self.orig_h, self.orig_w = self.original_size
        self.input_h, self.input_w = self.input_size
        self.is_image_set = True
        self.last_set_image_cached = cached
        if cached:
            self.last_encode_seconds = 0.0

    def get_image_embedding(self) -> torch.Tensor:
        """The embedding of the current image: 1 x C x h x w."""
        return self._current().features

    def reset_image(self) -> None:
        """Forget the current image (cached embeddings stay in the cache)."""
        self.is_image_set = False
        self.features = None
        self._prepared = None
        self.orig_h = self.orig_w = self.input_h = self.input_w = None
        self.original_size = self.input_size = None

    def _require_image(self) -> None:
        if not self.is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")

    def _current(self) -> CachedEmbedding:
        """The current image's embedding and sizes (a RuntimeError when no image is set)."""
        self._require_image()
        assert self.features is not None and self.input_size is not None and self.original_size is not None, \
            "set with is_image_set"
        return CachedEmbedding(self.features, self.input_size, self.original_size)

    # -- prompts --------------------------------------------------------------
    def predict(self, point_coords: ArrayLike | None = None, point_labels: ArrayLike | None = None,
                box: ArrayLike | None = None, mask_input: ArrayLike | None = None,
                multimask_output: bool = True,
                return_logits: bool = False, *, text: str | None = None,
                embedding: np.ndarray | torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for the current image from prompts in original-image pixels.

        point_coords: N x 2 (x, y); point_labels: N (1 foreground, 0 background);
        box: XYXY of shape 4; mask_input: 1 x S x S low-res logits of an
        earlier call (to refine). Returns masks M x H x W (bool, or float32
        logits with return_logits), IoU predictions M (float32) and low-res
        logits M x S x S (float32), M = 3 with multimask_output else 1.
        S = ``model.config.low_res_mask_size``: 256 for the official models, 128 for the bundled model.

        text: a phrase ("red striped wheel"), embedded by this predictor's
        ``text_encoder``; embedding: an E vector from a CLIP-like model (e.g.
        the embedding of an exemplar crop) used the same way. Both need a model
        trained with text prompts (``config.text_embed_dim > 0``; see
        :mod:`samwidgets.text`), and may be combined with points and a box
        (the bundled text model was trained with text alone: there a phrase
        with a point does a little worse than the point alone; see
        ``weights/TEXT_MODEL_CARD.md``).
        """
        hw = self._current().original_size
        embeddings_torch = self._embedding_prompt(text, embedding)  # 1 x E or None
        coords_torch = labels_torch = box_torch = mask_torch = None
        if point_coords is not None:
            coords, labels = check_points(point_coords, point_labels, hw)
            coords = self.transform.apply_coords(coords, hw)
            coords_torch = torch.as_tensor(coords, dtype=torch.float, device=self.device)[None]  # 1 x N x 2
            labels_torch = torch.as_tensor(labels, dtype=torch.int, device=self.device)[None]  # 1 x N
        elif point_labels is not None:
            raise UserInputError("point_labels given without point_coords")
        if box is not None:
            box_arr = self.transform.apply_boxes(check_box(box, hw), hw)
            box_torch = torch.as_tensor(box_arr, dtype=torch.float, device=self.device)  # 1 x 4
        if mask_input is not None:
            mask = check_mask_input(mask_input, self.model.config.low_res_mask_size)
            mask_torch = torch.as_tensor(mask, dtype=torch.float, device=self.device)[None]  # 1 x 1 x S x S
        masks, iou, low_res = self.predict_torch(coords_torch, labels_torch, box_torch, mask_torch,
                                                 bool(multimask_output), return_logits=return_logits,
                                                 embeddings=embeddings_torch)
        return masks[0].cpu().numpy(), iou[0].float().cpu().numpy(), low_res[0].float().cpu().numpy()

    def _embedding_prompt(self, text: str | None, embedding: Any) -> torch.Tensor | None:
        """A text or an embedding prompt as a 1 x E tensor on the model's device (None when neither is given)."""
        if text is None and embedding is None:
            return None
        if text is not None and embedding is not None:
            raise UserInputError("give text or embedding, not both")
        width = self.model.config.text_embed_dim
        if width == 0:
            raise UserInputError(
                "this model takes no text prompt (config.text_embed_dim == 0, as the official checkpoints); "
                "load one trained with text prompts, e.g. samwidgets.text.load_default_text_model()"
            )
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise UserInputError(f"text must be a non-empty string, got {text!r}")
            if self.text_encoder is None:
                raise UserInputError(
                    "predict(text=...) needs a text encoder: SamPredictor(model, text_encoder=clip), e.g. "
                    "samwidgets.text.load_tiny_clip() for the bundled text model"
                )
            with torch.no_grad():
                embedding = self.text_encoder.encode_text([text])  # 1 x E
        emb = torch.as_tensor(np.asarray(embedding, dtype=np.float32) if not torch.is_tensor(embedding)
                              else embedding.detach()).float().to(self.device)
        if emb.ndim == 1:
            emb = emb[None]
        if emb.shape != (1, width):
            raise UserInputError(f"the embedding must have {width} values for this model, got shape {tuple(emb.shape)}")
        if not torch.isfinite(emb).all() or not emb.abs().sum() > 0:
            raise UserInputError("the embedding must be finite and not all zero")
        return emb

    @torch.no_grad()
    def predict_torch(self, point_coords: torch.Tensor | None, point_labels: torch.Tensor | None,
                      boxes: torch.Tensor | None = None, mask_input: torch.Tensor | None = None,
                      multimask_output: bool = True,
                      return_logits: bool = False,
                      embeddings: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batched prediction with prompts already in the resized frame (see ``predictor.transform``).

        point_coords: B x N x 2, point_labels: B x N (1, 0, or -1 for padding),
        boxes: B x 4, mask_input: B x 1 x S x S, embeddings: B x E text/image
        embeddings (text-prompt models only). Returns masks B x M x H x W,
        IoU predictions B x M and low-res logits B x M x S x S (S = config.low_res_mask_size).
        """
        self._require_image()
        self._check_torch_prompts(point_coords, point_labels, boxes, mask_input, embeddings)
        # both or neither (checked above)
        points = (point_coords, point_labels) if point_coords is not None and point_labels is not None else None
        sparse, dense = self.model.prompt_encoder(points=points, boxes=boxes, masks=mask_input, embeddings=embeddings)
        prepared = self.prepared_image() if self.model.prompt_encoder.dense_is_no_mask(points, boxes, mask_input) \
            else None
        low_res, iou = self.model.mask_decoder(
            image_embeddings=self.features,
            image_pe=self.dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            prepared=prepared,
        )  # B x M x S x S, B x M
        masks = self.postprocess(low_res, return_logits)
        return masks, iou, low_res

    def postprocess(self, low_res: torch.Tensor, return_logits: bool = False) -> torch.Tensor:
        """Low-res logits B x M x S x S -> masks (bool, or logits) B x M x H x W at the original size.

        Very large images are done one mask at a time so that only one float
        mask of the full size exists at once.
        """
        b, m = low_res.shape[:2]
        current = self._current()
        h, w = current.original_size
        if b * m * h * w <= _CHUNKED_POSTPROCESS_PIXELS:
            masks = self.model.postprocess_masks(low_res, current.input_size, current.original_size)
            return masks if return_logits else masks > self.model.mask_threshold
        out = torch.empty((b, m, h, w), dtype=low_res.dtype if return_logits else torch.bool, device=low_res.device)
        for i in range(b):
            for j in range(m):
                logits = self.model.postprocess_masks(low_res[i : i + 1, j : j + 1], current.input_size,
                                                      current.original_size)[0, 0]
                out[i, j] = logits if return_logits else logits > self.model.mask_threshold
        return out

    def prepared_image(self) -> object | None:
        """The decoder's prompt-independent work on the current image (``mask_decoder.prepare_image``), done
        once per image and weights; None when the model runs the plain code (``fast=False``), which has none.
        """
        features = self._current().features
        key = (type(self.model.mask_decoder), id(features), _version(features), _versions(self.model.mask_decoder),
               _versions(self.model.prompt_encoder))
        if self._prepared is None or self._prepared[0] != key:
            no_mask = self.model.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
            self._prepared = (key, self.model.mask_decoder.prepare_image(features, self.dense_pe(), no_mask))
        return self._prepared[1]

    def dense_pe(self) -> torch.Tensor:
        """Positional encoding of the embedding grid (1 x C x h x w), computed once per weights."""
        gaussian = self.model.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix
        version = (gaussian.data_ptr(), _version(gaussian), gaussian.device)
        if self._dense_pe is None or self._dense_pe[0] != version:
            self._dense_pe = (version, self.model.prompt_encoder.get_dense_pe())
        return self._dense_pe[1]

    def _check_torch_prompts(self, coords: Any, labels: Any, boxes: Any, masks: Any, embeddings: Any = None) -> None:
        batch = set()
        if embeddings is not None:
            width = self.model.config.text_embed_dim
            if embeddings.ndim != 2 or embeddings.shape[1] != width or width == 0:
                raise UserInputError(f"embeddings must be B x {width} for this model (config.text_embed_dim), "
                                 f"got {tuple(embeddings.shape)}")
            batch.add(embeddings.shape[0])
        if (coords is None) != (labels is None):
            raise UserInputError("point_coords and point_labels must be given together")
        if coords is not None:
            if coords.ndim != 3 or coords.shape[-1] != 2 or labels.shape != coords.shape[:2]:
                raise UserInputError(
                    f"point_coords must be B x N x 2 and point_labels B x N, got {tuple(coords.shape)} "
                    f"and {tuple(labels.shape)}"
                )
            batch.add(coords.shape[0])
        if boxes is not None:
            if boxes.ndim == 3 and boxes.shape[1] == 1:  # B x 1 x 4, as the reference's predict passes
                boxes = boxes[:, 0]
            if boxes.ndim != 2 or boxes.shape[-1] != 4:
                raise UserInputError(f"boxes must be B x 4 (XYXY), got {tuple(boxes.shape)}")
            batch.add(boxes.shape[0])
        if masks is not None:
            s = self.model.config.low_res_mask_size
            if masks.ndim != 4 or tuple(masks.shape[1:]) != (1, s, s):
                raise UserInputError(f"mask_input must be B x 1 x {s} x {s}, got {tuple(masks.shape)}")
            batch.add(masks.shape[0])
        if len(batch) > 1:
            raise UserInputError(f"prompts disagree on the batch size: {sorted(batch)}")
