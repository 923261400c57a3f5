"""The FPN neck of SAM 2's image encoder, and the sine position encoding of its outputs.

Hiera gives four feature maps of different widths (C at stride 4 ... 8C at
stride 32). The neck projects each to ``d_model`` (256) channels with a 1 x 1
convolution ("lateral" features) and, for the levels in
``fpn_top_down_levels``, adds the coarser level upsampled x2 (the top-down
path of a Feature Pyramid Network, Lin et al. 2017). The official models add
the top-down path only at strides 16 and 32; the stride-4 and stride-8 maps
stay lateral, and the mask decoder gets them as its high-resolution features.

Each output also gets a sine position encoding (as in DETR). The image path
does not use it (the mask decoder has its own random-Fourier encoding); the
video model's memory attention does. It is computed here so the encoder's
outputs match the reference's ("vision_pos_enc").
Maths and keys follow sam2/modeling/backbones/image_encoder.py and position_encoding.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class PositionEmbeddingSine(nn.Module):
    """Sine/cosine encoding of each cell's (y, x), normalised to (0, 2 pi]: B x C x H x W for a B x ? x H x W input.

    The first C/2 channels encode y, the last C/2 encode x; within each half,
    channel pairs (2i, 2i+1) are sin and cos of the coordinate divided by
    ``temperature ** (2i / (C/2))``.
    """

    def __init__(self, num_pos_feats: int, temperature: int = 10000, normalize: bool = True,
                 scale: float | None = None) -> None:
        super().__init__()
        if num_pos_feats % 2:
            raise ValueError("num_pos_feats must be even")
        if scale is not None and not normalize:
            raise ValueError("normalize should be True if scale is passed")
        self.num_pos_feats = num_pos_feats // 2  # per coordinate
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale
        self.cache: dict[tuple[int, int, torch.device], torch.Tensor] = {}  # (H, W, device) -> C x H x W

    def encode_grid(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        """The encoding of an h x w grid: C x h x w (C = 2 * num_pos_feats)."""
        y = torch.arange(1, h + 1, dtype=torch.float32, device=device)  # 1 .. H
        x = torch.arange(1, w + 1, dtype=torch.float32, device=device)  # 1 .. W
        if self.normalize:
            eps = 1e-6
            y = y / (y[-1:] + eps) * self.scale
            x = x / (x[-1:] + eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / self.num_pos_feats)  # F: the wavelengths, each twice

        def sin_cos(values: torch.Tensor) -> torch.Tensor:  # N -> N x F, sin and cos interleaved
            angles = values[:, None] / dim_t  # N x F
            return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)

        pos_y = sin_cos(y)[:, None, :].expand(h, w, -1)  # H x W x F
        pos_x = sin_cos(x)[None, :, :].expand(h, w, -1)  # H x W x F
        return torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1)  # 2F x H x W

    @torch.no_grad()
    def cached_grid(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        """:meth:`encode_grid`, computed once per size and device: C x h x w (do not write to it)."""
        key = (h, w, device)
        if key not in self.cache:
            self.cache[key] = self.encode_grid(h, w, device)
        return self.cache[key]

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x ? x H x W -> B x C x H x W
        h, w = x.shape[-2:]
        return self.cached_grid(h, w, x.device)[None].repeat(x.shape[0], 1, 1, 1)  # a copy per image


class FpnNeck(nn.Module):
    """A Feature Pyramid Network without output convolutions.

    ``forward(xs)`` takes the trunk's outputs, highest resolution first, and
    returns (features, position encodings), two lists in the same order, every
    map ``d_model`` channels wide.
    """

    def __init__(self, position_encoding: nn.Module, d_model: int, backbone_channel_list: list[int] | tuple[int, ...],
                 kernel_size: int = 1, stride: int = 1, padding: int = 0, fpn_interp_model: str = "bilinear",
                 fuse_type: str = "sum", fpn_top_down_levels: list[int] | tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.position_encoding = position_encoding
        self.d_model = d_model
        self.backbone_channel_list = list(backbone_channel_list)  # lowest resolution first
        # convs[j] projects the trunk's j-th map counted from the lowest resolution
        self.convs = nn.ModuleList()
        for dim in self.backbone_channel_list:
            lateral = nn.Sequential()
            lateral.add_module("conv", nn.Conv2d(dim, d_model, kernel_size=kernel_size, stride=stride,
                                                 padding=padding))
            self.convs.append(lateral)
        if fuse_type not in ("sum", "avg"):
            raise ValueError(f"fuse_type must be 'sum' or 'avg', got {fuse_type!r}")
        self.fpn_interp_model = fpn_interp_model
        self.fuse_type = fuse_type
        levels = range(len(self.convs)) if fpn_top_down_levels is None else fpn_top_down_levels
        self.fpn_top_down_levels = list(levels)

    def _lateral(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """The lateral projection ``convs[index]`` of one trunk map (B x C x h x w): B x d_model x h x w."""
        return self.convs[index](x)

    def _positions(self, x: torch.Tensor) -> torch.Tensor:
        """The position encoding of one output map x (B x d_model x h x w), in x's dtype."""
        return self.position_encoding(x).to(x.dtype)

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if len(xs) != len(self.convs):
            raise ValueError(f"the neck expects {len(self.convs)} feature maps, got {len(xs)}")
        n = len(self.convs) - 1
        features: list[torch.Tensor] = [torch.empty(0)] * len(xs)
        positions: list[torch.Tensor] = [torch.empty(0)] * len(xs)
        coarser = None
        for i in range(n, -1, -1):  # from the lowest resolution (i = n) to the highest (i = 0)
            lateral = self._lateral(n - i, xs[i])  # B x d_model x h_i x w_i
            if i in self.fpn_top_down_levels and coarser is not None:
                top_down = F.interpolate(coarser.to(dtype=torch.float32), scale_factor=2.0, mode=self.fpn_interp_model,
                                         align_corners=None if self.fpn_interp_model == "nearest" else False,
                                         antialias=False)  # the coarser level, x2
                coarser = lateral + top_down
                if self.fuse_type == "avg":
                    coarser = coarser / 2
            else:
                coarser = lateral
            features[i] = coarser
            positions[i] = self._positions(coarser)
        return features, positions
