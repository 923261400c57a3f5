"""The Sam module: image encoder + prompt encoder + mask decoder, with the
pixel normalisation, padding and mask post-processing of the reference.

This is the plain algorithm. ``SamPredictor`` switches a model to faster
equivalents of its parts (same weights, same outputs within float rounding):
see :mod:`samwidgets.modeling.fast`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .click_maps import ClickMapPromptEncoder
from .config import SamConfig
from .high_res_decoder import HighResMaskDecoder
from .image_encoder import ImageEncoderViT
from .image_encoder_cnn import ImageEncoderCNN
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .tiny_vit import TinyViT

#: Any of SAM's image encoders: the same interface (B x 3 x S x S -> B x C x S/16 x S/16, and ``img_size`` = S).
ImageEncoder = ImageEncoderViT | TinyViT | ImageEncoderCNN
#: The image encoder of each SamConfig.encoder_type.
IMAGE_ENCODERS: dict[str, type[ImageEncoder]] = {"vit": ImageEncoderViT, "tiny_vit": TinyViT, "cnn": ImageEncoderCNN}


class Sam(nn.Module):
    """Segment Anything: predicts object masks from an image and prompts."""

    mask_threshold: float = 0.0
    image_format: str = "RGB"
    image_encoder: ImageEncoder
    # the normalisation buffers, 3 x 1 x 1 (registered in reset_pixel_buffers)
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        self.config = config
        # the official ViT, MobileSAM's TinyViT, or the convolutional encoder of recipes/bsds_cnn
        self.image_encoder = IMAGE_ENCODERS[config.encoder_type](config)
        # the bundled CNN model's extensions (click maps, early features) subclass the plain parts
        self.prompt_encoder = (ClickMapPromptEncoder if config.dense_prompts else PromptEncoder)(config)
        self.mask_decoder = (HighResMaskDecoder if config.high_res_features else MaskDecoder)(config)
        self.reset_pixel_buffers()

    def reset_pixel_buffers(self) -> None:
        """(Re)create the normalisation buffers from the config; they are not saved in
        checkpoints (as in the official files), so a model built on the meta device
        gets real ones here."""
        device = next(self.image_encoder.parameters()).device
        mean = torch.tensor(self.config.pixel_mean, device=device).view(-1, 1, 1)
        std = torch.tensor(self.config.pixel_std, device=device).view(-1, 1, 1)
        self.register_buffer("pixel_mean", mean, persistent=False)
        self.register_buffer("pixel_std", std, persistent=False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise B x 3 x h x w pixels (0..255) and zero-pad to image_size x image_size."""
        x = (x - self.pixel_mean) / self.pixel_std
        h, w = x.shape[-2:]
        size = self.image_encoder.img_size
        return F.pad(x, (0, size - w, 0, size - h))

    def postprocess_masks(self, masks: torch.Tensor, input_size: tuple[int, ...],
                          original_size: tuple[int, ...]) -> torch.Tensor:
        """Low-res logits B x M x S x S (S = config.low_res_mask_size) -> B x M x H x W logits at the original size.

        Upsample to the padded input square, crop away the padding, resize to
        the original image, as the reference. input_size: (h, w) of the resized
        image before padding; original_size: (H, W) of the image before resizing.
        """
        size = self.image_encoder.img_size
        masks = F.interpolate(masks, (size, size), mode="bilinear", align_corners=False)  # B x M x S' x S'
        masks = masks[..., : input_size[0], : input_size[1]]  # B x M x h x w: the padding cropped away
        return F.interpolate(masks, tuple(original_size), mode="bilinear", align_corners=False)  # B x M x H x W

    @torch.no_grad()
    def forward(self, batched_input: list[dict[str, Any]], multimask_output: bool) -> list[dict[str, torch.Tensor]]:
        """End-to-end prediction over a list of images, as in the reference.

        Each dict has "image" (3 x H x W, already resized so the longest side is
        image_size), "original_size" (H, W) and optionally "point_coords"
        (B x N x 2), "point_labels" (B x N), "boxes" (B x 4), "mask_inputs"
        (B x 1 x S x S), "embeddings" (B x E, text-prompt models), all in the resized frame. Returns per image
        "masks" (B x M x H x W bool), "iou_predictions" (B x M), "low_res_logits".
        """
        input_images = torch.stack([self.preprocess(x["image"]) for x in batched_input], dim=0)
        image_embeddings = self.image_encoder(input_images)
        outputs = []
        for record, emb in zip(batched_input, image_embeddings, strict=True):
            points = (record["point_coords"], record["point_labels"]) if "point_coords" in record else None
            sparse, dense = self.prompt_encoder(points=points, boxes=record.get("boxes"),
                                                masks=record.get("mask_inputs"), embeddings=record.get("embeddings"))
            low_res, iou = self.mask_decoder(emb.unsqueeze(0), self.prompt_encoder.get_dense_pe(), sparse, dense,
                                             multimask_output)
            masks = self.postprocess_masks(low_res, record["image"].shape[-2:], record["original_size"])
            outputs.append({"masks": masks > self.mask_threshold, "iou_predictions": iou, "low_res_logits": low_res})
        return outputs
