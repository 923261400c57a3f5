"""TinyViT, MobileSAM's image encoder: convolutions first, then windowed attention, then SAM's neck.

MobileSAM (Zhang et al., 2023, "Faster Segment Anything") keeps SAM's prompt encoder and mask
decoder unchanged and replaces the 632M-parameter ViT-H encoder by TinyViT-5M (Wu et al., ECCV 2022),
distilled to give ViT-H's image embedding. The embedding has the same shape (256 x 64 x 64 for a
1024 x 1024 input), so everything after the encoder is SAM's own code.

TinyViT is a hierarchy of four stages, each at a lower resolution and a larger width:

    1 x 3 x 1024 x 1024
    -> patch embedding, two stride-2 3x3 convs            1 x 64 x 256 x 256
    -> stage 0: MBConv blocks (inverted residual convs)   1 x 64 x 256 x 256, merged to 1 x 128 x 128 x 128
    -> stage 1: TinyViT blocks (window attention 7)      128 x 128 x 128, merged to 160 x 64 x 64
    -> stage 2: TinyViT blocks (window attention 14)     160 x 64 x 64, merged (stride 1) to 320 x 64 x 64
    -> stage 3: TinyViT blocks (window attention 7)      320 x 64 x 64
    -> neck (1x1 conv, LayerNorm, 3x3 conv, LayerNorm)   1 x 256 x 64 x 64, SAM's image embedding

The last merge keeps the resolution, so the total stride is 16, as SAM's decoder expects. A
TinyViT block is attention within windows (with a learned bias per head and relative offset,
LeViT's attention bias, instead of position embeddings), a depthwise 3x3 convolution that mixes
neighbouring windows, and an MLP. Convolutions are followed by BatchNorm (``ConvBN``), which in
eval mode is a fixed per-channel scale and shift.

The checkpoint keys are those of the MobileSAM package (``mobile_sam.pt`` loads unchanged). Its
ImageNet classifier (``image_encoder.head``, ``image_encoder.norm_head``) is never used by SAM:
those keys are accepted and dropped when a checkpoint is loaded (:data:`UNUSED_CHECKPOINT_KEYS`).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d
from .config import SamConfig

#: Key prefixes (under ``image_encoder.``) of a MobileSAM checkpoint that SAM never uses: TinyViT's
#: ImageNet classifier. They are accepted when a checkpoint is loaded, and dropped.
UNUSED_CHECKPOINT_KEYS = ("norm_head.", "head.")

#: Width multiplier of the MBConv blocks' hidden layer, and kernel of the blocks' local convolution.
MBCONV_EXPAND_RATIO = 4.0
LOCAL_CONV_SIZE = 3


class ConvBN(nn.Sequential):
    """A convolution without bias followed by BatchNorm (keys ``c.*`` and ``bn.*``)."""

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int = 1, stride: int = 1, padding: int = 0,
                 groups: int = 1) -> None:
        super().__init__()
        self.c = nn.Conv2d(in_chans, out_chans, kernel_size, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_chans)


class PatchEmbed(nn.Module):
    """Two stride-2 3x3 convolutions: B x 3 x H x W -> B x D x H/4 x W/4."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(
            ConvBN(in_chans, embed_dim // 2, 3, stride=2, padding=1),
            nn.GELU(),
            ConvBN(embed_dim // 2, embed_dim, 3, stride=2, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """MobileNetV2's inverted residual: expand (1x1), depthwise 3x3, project (1x1), add, GELU."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = ConvBN(dim, hidden, 1)
        self.act1 = nn.GELU()
        self.conv2 = ConvBN(hidden, hidden, 3, padding=1, groups=hidden)
        self.act2 = nn.GELU()
        self.conv3 = ConvBN(hidden, dim, 1)
        self.act3 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x D x H x W
        y = self.act1(self.conv1(x))  # B x 4D x H x W
        y = self.act2(self.conv2(y))
        y = self.conv3(y)  # B x D x H x W
        return self.act3(x + y)


class PatchMerging(nn.Module):
    """From one stage to the next: 1x1 conv to the new width, depthwise 3x3 conv with ``stride``, 1x1 conv.

    Takes B x D x H x W (after the convolutional stage) or B x (H*W) x D tokens of an H x W grid;
    returns tokens B x (H'*W') x D' (H' = ceil(H / stride)).
    """

    def __init__(self, input_resolution: tuple[int, int], dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.act = nn.GELU()
        self.conv1 = ConvBN(dim, out_dim, 1)
        self.conv2 = ConvBN(out_dim, out_dim, 3, stride=stride, padding=1, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:  # tokens -> an image
            h, w = self.input_resolution
            x = x.view(x.shape[0], h, w, -1).permute(0, 3, 1, 2)  # B x D x H x W
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))  # B x D' x H' x W'
        x = self.conv3(x)
        return x.flatten(2).transpose(1, 2)  # B x (H'*W') x D'


class ConvLayer(nn.Module):
    """Stage 0: MBConv blocks on the image, then the merge to stage 1."""

    def __init__(self, dim: int, depth: int, downsample: PatchMerging | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, MBCONV_EXPAND_RATIO) for _ in range(depth))
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x D x H x W
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


@functools.cache
def attention_bias_index(window: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """For each (query, key) pair of a window x window grid, the row of its bias in the table: N x N, N = window^2.

    LeViT's attention bias depends only on the absolute offset (|dy|, |dx|) between the two cells;
    offset (dy, dx) is row ``dy * window + dx`` of the learned table (the order in which the
    reference enumerates the offsets). Made once per window size and device (read-only).
    """
    y, x = torch.meshgrid(torch.arange(window, device=device), torch.arange(window, device=device), indexing="ij")
    y, x = y.flatten(), x.flatten()  # N, row-major cells
    dy = (y[:, None] - y[None, :]).abs()  # N x N
    dx = (x[:, None] - x[None, :]).abs()
    return dy * window + dx


class Attention(nn.Module):
    """Multi-head self-attention within one window, with LayerNorm first and a learned bias per offset.

    The qkv projection's output is laid out per head as [q | k | v] (not q, k, v of all heads in
    turn, as in SAM's ViT): B x N x heads x 3d.
    """

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        # one learned bias per head and per offset (|dy|, |dx|) in the window: heads x window^2
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window * window))
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x N x D tokens of windows (N = window^2) -> B x N x D."""
        b, n, _ = x.shape
        x = self.norm(x)
        qkv = self.qkv(x).view(b, n, self.num_heads, 3 * self.head_dim)  # B x N x heads x 3d
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.head_dim, dim=-1)  # each B x heads x N x d
        bias = self.attention_biases[:, attention_bias_index(self.window, x.device)]  # heads x N x N
        attn = (q @ k.transpose(-2, -1)) * self.scale + bias  # B x heads x N x N
        x = attn.softmax(dim=-1) @ v  # B x heads x N x d
        return self.proj(x.transpose(1, 2).reshape(b, n, -1))


class Mlp(nn.Module):
    """LayerNorm -> Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """B x H x W x D (H, W multiples of window) -> (B * windows) x window^2 x D, windows in row-major order."""
    b, h, w, d = x.shape
    x = x.view(b, h // window, window, w // window, window, d).transpose(2, 3)  # B x nH x nW x ws x ws x D
    return x.reshape(-1, window * window, d)


def window_unpartition(x: torch.Tensor, window: int, hw: tuple[int, int]) -> torch.Tensor:
    """The inverse of :func:`window_partition`: (B * windows) x window^2 x D -> B x H x W x D."""
    h, w = hw
    d = x.shape[-1]
    x = x.view(-1, h // window, w // window, window, window, d).transpose(2, 3)  # B x nH x ws x nW x ws x D
    return x.reshape(-1, h, w, d)


class TinyViTBlock(nn.Module):
    """Window attention (the grid zero-padded to whole windows), a depthwise 3x3 conv, an MLP; residuals."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], num_heads: int, window: int,
                 mlp_ratio: float) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.window = window
        self.attn = Attention(dim, num_heads, window)
        self.local_conv = ConvBN(dim, dim, LOCAL_CONV_SIZE, padding=LOCAL_CONV_SIZE // 2, groups=dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x (H*W) x D -> B x (H*W) x D."""
        h, w = self.input_resolution
        b, n, d = x.shape
        shortcut = x
        if (h, w) == (self.window, self.window):  # the grid is one window
            x = self.attn(x)
        else:
            # Pad the grid on the bottom and right with zero tokens to whole windows. The padding is
            # attended to as keys (the reference masks nothing), then cropped away.
            ws = self.window
            pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
            x = F.pad(x.view(b, h, w, d), (0, 0, 0, pad_r, 0, pad_b))  # B x H+pb x W+pr x D
            hp, wp = h + pad_b, w + pad_r
            x = self.attn(window_partition(x, ws))  # (B * windows) x ws^2 x D
            x = window_unpartition(x, ws, (hp, wp))[:, :h, :w]  # B x H x W x D
            x = x.reshape(b, n, d)
        x = shortcut + x
        # The depthwise convolution mixes each token with its neighbours, across window borders.
        x = x.transpose(1, 2).reshape(b, d, h, w)  # B x D x H x W
        x = self.local_conv(x).view(b, d, n).transpose(1, 2)  # B x (H*W) x D
        return x + self.mlp(x)


class BasicLayer(nn.Module):
    """Stages 1-3: TinyViT blocks on an H x W token grid, then the merge to the next stage (if any)."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], depth: int, num_heads: int, window: int,
                 mlp_ratio: float, downsample: PatchMerging | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(dim, input_resolution, num_heads, window, mlp_ratio) for _ in range(depth)
        )
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B x (H*W) x D
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


class TinyViT(nn.Module):
    """MobileSAM's image encoder: B x 3 x S x S normalised pixels -> B x C x S/16 x S/16 embedding."""

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        c = config
        widths, depths = c.tiny_vit_widths, c.tiny_vit_depths
        self.img_size = c.image_size
        self.patch_embed = PatchEmbed(3, widths[0])
        side = c.image_size // 4  # the patch embedding's grid
        self.layers = nn.ModuleList()
        for i, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            last = i == len(widths) - 1
            # Each merge halves the grid, except the last one: stride 4 * 2 * 2 * 1 = 16, SAM's.
            stride = 1 if i == len(widths) - 2 else 2
            merge = None if last else PatchMerging((side, side), width, widths[i + 1], stride)
            if i == 0:
                layer: nn.Module = ConvLayer(width, depth, merge)
            else:
                layer = BasicLayer(width, (side, side), depth, c.tiny_vit_heads[i], c.tiny_vit_windows[i],
                                   c.mlp_ratio, merge)
            self.layers.append(layer)
            if not last:
                side = -(-side // stride)
        self.grid = side  # S / 16
        self.neck = nn.Sequential(
            nn.Conv2d(widths[-1], c.prompt_embed_dim, kernel_size=1, bias=False),
            LayerNorm2d(c.prompt_embed_dim),
            nn.Conv2d(c.prompt_embed_dim, c.prompt_embed_dim, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(c.prompt_embed_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # B x D0 x S/4 x S/4
        x = self.layers[0](x)  # B x (S/8)^2 x D1 tokens
        for layer in self.layers[1:]:
            x = layer(x)  # B x (S/16)^2 x D3 after the last stage
        b, _, d = x.shape
        x = x.view(b, self.grid, self.grid, d).permute(0, 3, 1, 2)  # B x D3 x S/16 x S/16
        return self.neck(x)  # B x C x S/16 x S/16


def tiny_vit_flops(config: SamConfig) -> int:
    """Multiply-adds x 2 of one image through TinyViT (convolutions, projections, attention and MLPs)."""
    c = config
    widths = c.tiny_vit_widths
    side = c.image_size // 4
    e = widths[0]
    flops = 2 * (side * 2) ** 2 * 3 * (e // 2) * 9 + 2 * side**2 * (e // 2) * e * 9  # patch embedding
    for i, (d, depth) in enumerate(zip(widths, c.tiny_vit_depths, strict=True)):
        n = side * side
        if i == 0:
            hidden = int(d * MBCONV_EXPAND_RATIO)
            flops += depth * 2 * n * (d * hidden * 2 + hidden * 9)  # expand, depthwise, project
        else:
            ws = c.tiny_vit_windows[i]
            padded = -(-side // ws) * ws
            tokens = padded * padded
            per_block = 2 * tokens * d * 4 * d  # qkv and proj, on the padded windows
            per_block += 2 * tokens * ws * ws * d * 2  # q.k and attn.v within windows
            per_block += 2 * n * d * 9  # local depthwise conv
            per_block += 2 * n * d * int(d * c.mlp_ratio) * 2  # MLP
            flops += depth * per_block
        if i < len(widths) - 1:
            stride = 1 if i == len(widths) - 2 else 2
            out = widths[i + 1]
            side_out = -(-side // stride)
            flops += 2 * n * d * out + 2 * side_out**2 * out * (9 + out)
            side = side_out
    p = c.prompt_embed_dim
    flops += 2 * side * side * (widths[-1] * p + p * p * 9)  # neck
    return flops
