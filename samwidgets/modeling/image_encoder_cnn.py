"""A convolutional image encoder for small SAMs trained on little data (``recipes/bsds_cnn``).

SAM's efficient descendants keep the prompt encoder and mask decoder and
replace only the ViT (MobileSAM: TinyViT; EdgeSAM: a pure CNN; EfficientViT-SAM):
the interface stays a C-channel image embedding at 1/16 of the input.
Convolutions bring the locality prior that a ViT must otherwise learn from
data, which is what a model trained from scratch on a few hundred photos needs.

The network, for a 512 x 512 input (``recipes/bsds_cnn/cnn_512.json``)::

    stem      3x3 conv, stride 2                        B x w0 x 256 x 256
    stage 1   stride 2, residual blocks                 B x w1 x 128 x 128   (1/4)
    stage 2                                             B x w2 x 64 x 64     (1/8)
    stage 3                                             B x w3 x 32 x 32     (1/16)
    stage 4   + global self-attention blocks            B x w4 x 16 x 16     (1/32)
    top-down  (a feature pyramid) back to 1/16, then the neck of the ViT encoder:
              the image embedding                       B x C x 32 x 32

``forward`` is ``head(*trunk(x))``: :meth:`ImageEncoderCNN.trunk` is the stem
and the 4 stages (bottom-up), :meth:`ImageEncoderCNN.head` the rest (the
attention blocks, the pyramid, the neck, the high-res path), so that a
fine-tuning can train the head on top of a frozen trunk.

With ``config.high_res_features`` the pyramid goes on down to 1/4 and gives
C/8 channels at 128 x 128, which the mask decoder (high_res_decoder.py) adds to its upscaled
features (as HQ-SAM adds early encoder features) so that mask boundaries
can follow the photo's edges rather than the 16-pixel token grid. They travel
*inside* the embedding tensor, packed space-to-depth (see
:func:`pack_high_res`), so everything that caches, batches or indexes image
embeddings works unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d, MLPBlock
from .config import SamConfig


def conv_bn(in_chans: int, out_chans: int, stride: int = 1, act: bool = True) -> nn.Sequential:
    """3x3 convolution, batch norm and (optionally) GELU."""
    layers: list[nn.Module] = [nn.Conv2d(in_chans, out_chans, 3, stride, 1, bias=False), nn.BatchNorm2d(out_chans)]
    if act:
        layers.append(nn.GELU())
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """The ResNet basic block: two 3x3 convolutions and a skip connection."""

    def __init__(self, chans: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(chans, chans)
        self.conv2 = conv_bn(chans, chans, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x C x H x W
        return F.gelu(x + self.conv2(self.conv1(x)))


class GlobalAttentionBlock(nn.Module):
    """A pre-norm transformer block over every position of a B x C x H x W map.

    A depthwise 3x3 convolution in front gives the tokens their position (a
    "conditional position encoding", so any grid size works without a table).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.pos = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos(x)
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)  # B x HW x C
        y = self.norm1(t)
        t = t + self.attn(y, y, y, need_weights=False)[0]
        t = t + self.mlp(self.norm2(t))
        return t.transpose(1, 2).reshape(b, c, h, w)


def pack_high_res(features: torch.Tensor) -> torch.Tensor:
    """B x c x 4h x 4w -> B x 16c x h x w, each 4 x 4 block of pixels stacked into channels.

    The channel order is the mask decoder's (see ``FastMaskDecoder.masks_from_hypernetworks``, fast.py):
    pixel (4y + 2*i1 + i2, 4x + 2*j1 + j2) goes to channels [(i1, j1, i2, j2, c)] of cell (y, x).
    """
    b, c, hh, ww = features.shape
    h, w = hh // 4, ww // 4
    x = features.reshape(b, c, h, 2, 2, w, 2, 2)  # b, c, y, i1, i2, x, j1, j2
    x = x.permute(0, 3, 6, 4, 7, 1, 2, 5)  # b, i1, j1, i2, j2, c, y, x
    return x.reshape(b, 16 * c, h, w)


def unpack_high_res(packed: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`pack_high_res`, in the fast decoder's layout:
    B x 16c x h x w -> B x h x w x 2 x 2 x 2 x 2 x c."""
    b, cc, h, w = packed.shape
    return packed.reshape(b, 2, 2, 2, 2, cc // 16, h, w).permute(0, 6, 7, 1, 2, 3, 4, 5)


def high_res_image(packed: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`pack_high_res` as an image: B x 16c x h x w -> B x c x 4h x 4w."""
    x = unpack_high_res(packed)  # b, y, x, i1, j1, i2, j2, c
    b, h, w = x.shape[:3]
    return x.permute(0, 7, 1, 3, 5, 2, 4, 6).reshape(b, -1, 4 * h, 4 * w)  # b, c, (y, i1, i2), (x, j1, j2)


def split_image_embedding(embeddings: torch.Tensor, config: SamConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(image embedding B x C x h x w, packed high-res features B x 2C x h x w or None) of an encoder output."""
    if not config.high_res_features:
        return embeddings, None
    c = config.prompt_embed_dim
    if embeddings.shape[1] != 3 * c:
        raise ValueError(f"this model's image embeddings have {3 * c} channels ({c} + {2 * c} packed high-res "
                         f"features), got {embeddings.shape[1]}: were they made by another model?")
    return embeddings[:, :c], embeddings[:, c:]


class ImageEncoderCNN(nn.Module):
    """A residual CNN with a feature pyramid: B x 3 x S x S pixels -> B x C x S/16 x S/16 (see the module docstring)."""

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        c = config
        if c.patch_size != 16:
            raise ValueError("the CNN encoder has stride 16: set patch_size=16")
        if len(c.cnn_widths) != 5 or len(c.cnn_depths) != 4:
            raise ValueError("cnn_widths has 5 entries (stem, stages 1-4), cnn_depths 4 (stages 1-4)")
        self.img_size = c.image_size
        self.high_res = c.high_res_features
        w0, w1, w2, w3, w4 = c.cnn_widths
        dim = c.prompt_embed_dim
        self.stem = conv_bn(3, w0, stride=2)
        self.stages = nn.ModuleList(
            nn.Sequential(conv_bn(cin, cout, stride=2), *[ResidualBlock(cout) for _ in range(depth)])
            for cin, cout, depth in zip((w0, w1, w2, w3), (w1, w2, w3, w4), c.cnn_depths)
        )
        self.context = nn.Sequential(*[GlobalAttentionBlock(w4, c.cnn_attention_heads)
                                       for _ in range(c.cnn_attention_depth)])
        # Top-down pathway: 1/32 -> 1/16, then the ViT encoder's neck (1x1 conv, LN, 3x3 conv, LN).
        self.lateral16 = nn.Conv2d(w3, w4, 1)
        self.neck = nn.Sequential(
            nn.Conv2d(w4, dim, 1, bias=False), LayerNorm2d(dim),
            nn.Conv2d(dim, dim, 3, padding=1, bias=False), LayerNorm2d(dim),
        )
        if self.high_res:
            # On down to 1/8 and 1/4 for the mask decoder: C/8 channels, its upscaled features' width.
            hr = dim // 8
            self.lateral8 = nn.Conv2d(w2, hr * 2, 1)
            self.top8 = nn.Conv2d(dim, hr * 2, 1)
            self.lateral4 = nn.Conv2d(w1, hr, 1)
            self.top4 = nn.Conv2d(hr * 2, hr, 1)
            self.high_res_out = nn.Sequential(conv_bn(hr, hr), nn.Conv2d(hr, hr, 3, padding=1))

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The bottom-up half: the stem and the 4 stages, B x 3 x S x S -> (f4, f8, f16, f32).

        Each feature map is named by its stride. The head reads all four; text training keeps this
        half frozen and runs it without grad (see ``samwidgets.text.train_sam``).
        """
        x = self.stem(x)  # B x w0 x S/2 x S/2
        f4 = self.stages[0](x)  # B x w1 x S/4 x S/4
        f8 = self.stages[1](f4)  # B x w2 x S/8 x S/8
        f16 = self.stages[2](f8)  # B x w3 x S/16 x S/16
        f32 = self.stages[3](f16)  # B x w4 x S/32 x S/32
        return f4, f8, f16, f32

    def head(self, f4: torch.Tensor, f8: torch.Tensor, f16: torch.Tensor, f32: torch.Tensor) -> torch.Tensor:
        """The top-down half: global attention on the stride-32 map, the pyramid back to 1/16, the neck and
        (with ``high_res_features``) the path down to 1/4, packed behind the embedding.

        Returns B x C x S/16 x S/16, or B x 3C x S/16 x S/16 with the packed high-res features.
        Its modules are :meth:`head_modules`.
        """
        f32 = self.context(f32)  # B x w4 x S/32 x S/32
        p16 = self.lateral16(f16) + F.interpolate(f32, scale_factor=2.0, mode="nearest")  # B x w4 x S/16 x S/16
        embedding = self.neck(p16)  # B x C x S/16 x S/16
        if not self.high_res:
            return embedding
        up8 = F.interpolate(self.top8(embedding), scale_factor=2.0, mode="nearest")  # B x C/4 x S/8 x S/8
        p8 = self.lateral8(f8) + up8  # B x C/4 x S/8 x S/8
        up4 = F.interpolate(self.top4(F.gelu(p8)), scale_factor=2.0, mode="nearest")  # B x C/8 x S/4 x S/4
        p4 = self.lateral4(f4) + up4  # B x C/8 x S/4 x S/4
        high_res = self.high_res_out(F.gelu(p4))  # B x C/8 x S/4 x S/4
        return torch.cat([embedding, pack_high_res(high_res)], dim=1)  # B x 3C x S/16 x S/16

    def head_modules(self) -> list[nn.Module]:
        """The modules :meth:`head` uses (every module but the stem and the stages): what is trained when
        the encoder is tuned on top of a frozen trunk."""
        modules: list[nn.Module] = [self.context, self.lateral16, self.neck]
        if self.high_res:
            modules += [self.lateral8, self.top8, self.lateral4, self.top4, self.high_res_out]
        return modules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x 3 x S x S normalised pixels -> the image embedding (see :meth:`head`)."""
        return self.head(*self.trunk(x))


def cnn_encoder_flops(config: SamConfig) -> int:
    """Multiply-adds x 2 of the CNN encoder on one image (convolutions, attention and linear layers)."""
    model = ImageEncoderCNN(config)
    flops = 0

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal flops
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            flops += 2 * k * output.numel()
        elif isinstance(module, nn.Linear):
            flops += 2 * module.in_features * output.numel()
        elif isinstance(module, nn.MultiheadAttention):
            t, d = inputs[0].shape[1], module.embed_dim
            flops += 2 * 4 * t * d * d + 2 * 2 * t * t * d  # projections + scores and weighted sum

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear, nn.MultiheadAttention))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, config.image_size, config.image_size))
    for h in hooks:
        h.remove()
    return flops
