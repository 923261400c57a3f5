"""Faster equivalents of TinyViT's modules (MobileSAM's encoder), behind the same switch as :mod:`.fast`.

``enable_fast_paths(model)`` swaps these classes in for the plain ones of :mod:`.tiny_vit` (the
mechanism is described in :mod:`.fast`: same parameters, only the code that runs changes). They
compute the same function within float rounding, in eval mode; in training mode each falls back to
the plain code (BatchNorm then uses the batch's statistics, which cannot be folded).

The speed-ups:

* **BatchNorm folded into the convolution.** In eval mode BN is ``(y - mean) / sqrt(var + eps) *
  gamma + beta``, a per-channel scale and shift of the convolution's output ``y``, so the
  convolution with weights ``w * s`` and bias ``beta - mean * s`` (``s = gamma / sqrt(var + eps)``)
  gives the same values in one pass instead of two (:func:`fold_conv_bn`).
* **Channels last.** The convolutional stage runs on B x H x W x C tensors: its 1x1 convolutions
  are then plain matrix products (``F.linear``) and its depthwise 3x3 convolutions read the same
  memory as a channels-last tensor, with no copy between them. Stage 0 works on 256 x 256 maps of
  up to 256 channels, half of the encoder's time in the plain code.
* **The blocks' depthwise convolution without copies**: the tokens B x (H*W) x C already are a
  channels-last image, so the convolution reads them as one.
* **Attention scores with the bias in one call** (``torch.baddbmm``: scale * q k^T + bias).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from . import tiny_vit
from .tiny_vit import attention_bias_index


def fold_conv_bn(module: tiny_vit.ConvBN) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of one convolution equal to ``module`` (conv, then BatchNorm in eval mode)."""
    conv, bn = module.c, module.bn
    assert bn.running_mean is not None and bn.running_var is not None, "TinyViT's BatchNorms track running statistics"
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # C_out
    return conv.weight * scale[:, None, None, None], bn.bias - bn.running_mean * scale


def pointwise(module: tiny_vit.ConvBN, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 ConvBN on a channels-last B x H x W x C_in tensor: a matrix product -> B x H x W x C_out."""
    weight, bias = fold_conv_bn(module)
    return F.linear(x, weight[:, :, 0, 0], bias)


def spatial(module: tiny_vit.ConvBN, x: torch.Tensor) -> torch.Tensor:
    """A k x k ConvBN (depthwise here) on B x H x W x C, read as a channels-last image -> B x H' x W' x C_out."""
    weight, bias = fold_conv_bn(module)
    conv = module.c
    y = F.conv2d(x.permute(0, 3, 1, 2), weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    return y.permute(0, 2, 3, 1)  # channels-last memory: this view is contiguous


class FastMBConv(tiny_vit.MBConv):
    """MBConv on channels-last tensors with BN folded (:meth:`forward_channels_last`)."""

    def forward_channels_last(self, x: torch.Tensor) -> torch.Tensor:  # B x H x W x D
        y = F.gelu(pointwise(self.conv1, x))  # B x H x W x 4D
        y = F.gelu(spatial(self.conv2, y))
        return F.gelu(x + pointwise(self.conv3, y))


class FastPatchMerging(tiny_vit.PatchMerging):
    """PatchMerging on channels-last tensors with BN folded."""

    def forward_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        """B x H x W x D -> tokens B x (H'*W') x D'."""
        x = F.gelu(pointwise(self.conv1, x))
        x = F.gelu(spatial(self.conv2, x))
        return pointwise(self.conv3, x).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        if x.ndim == 4:  # B x D x H x W from a plain stage 0
            return self.forward_channels_last(x.permute(0, 2, 3, 1))
        h, w = self.input_resolution
        return self.forward_channels_last(x.view(x.shape[0], h, w, -1))  # tokens B x (H*W) x D as an image


class FastConvLayer(tiny_vit.ConvLayer):
    """Stage 0 on one channels-last tensor from the first block to the merge."""

    downsample: FastPatchMerging | None  # the switch makes the merge fast too

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        x = x.permute(0, 2, 3, 1).contiguous()  # B x D x H x W -> B x H x W x D
        for block in self.blocks:
            x = cast(FastMBConv, block).forward_channels_last(x)  # the switch made every block a FastMBConv
        if self.downsample is None:
            return x.flatten(1, 2)
        return self.downsample.forward_channels_last(x)


class FastAttention(tiny_vit.Attention):
    """Window attention whose scaled scores and bias are one ``baddbmm``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        h, d = self.num_heads, self.head_dim
        x = self.norm(x)
        qkv = self.qkv(x).view(b, n, h, 3 * d).permute(0, 2, 1, 3)  # B x heads x N x 3d
        q, k, v = (t.reshape(b * h, n, d) for t in qkv.split(d, dim=-1))  # each (B*heads) x N x d
        bias = self.attention_biases[:, attention_bias_index(self.window, x.device)]  # heads x N x N
        bias = bias.expand(b, h, n, n).reshape(b * h, n, n)
        attn = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=self.scale).softmax(dim=-1)  # (B*heads) x N x N
        x = torch.bmm(attn, v).view(b, h, n, d).transpose(1, 2).reshape(b, n, h * d)
        return self.proj(x)


class FastTinyViTBlock(tiny_vit.TinyViTBlock):
    """The block whose depthwise convolution reads the tokens as a channels-last image (BN folded)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        h, w = self.input_resolution
        b, n, d = x.shape
        shortcut = x
        if (h, w) == (self.window, self.window):
            x = self.attn(x)
        else:
            ws = self.window
            pad_b, pad_r = (ws - h % ws) % ws, (ws - w % ws) % ws
            x = F.pad(x.view(b, h, w, d), (0, 0, 0, pad_r, 0, pad_b))
            x = self.attn(tiny_vit.window_partition(x, ws))
            x = tiny_vit.window_unpartition(x, ws, (h + pad_b, w + pad_r))[:, :h, :w].reshape(b, n, d)
        x = shortcut + x
        x = spatial(self.local_conv, x.view(b, h, w, d)).reshape(b, n, d)
        return x + self.mlp(x)


#: plain TinyViT class -> its fast subclass (merged into :data:`samwidgets.modeling.fast.FAST_CLASSES`)
FAST_CLASSES: dict[type[nn.Module], type[nn.Module]] = {
    tiny_vit.MBConv: FastMBConv,
    tiny_vit.PatchMerging: FastPatchMerging,
    tiny_vit.ConvLayer: FastConvLayer,
    tiny_vit.Attention: FastAttention,
    tiny_vit.TinyViTBlock: FastTinyViTBlock,
}
