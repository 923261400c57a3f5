"""Classical edge filters shared by SAM's edge maps and the baseline, and the baseline itself.

- :func:`sobel`: batched Sobel derivatives (torch);
- :func:`mask_boundary_band`: where a mask's Sobel responses are kept (near its outer boundary);
- :func:`edge_nms` and :func:`thin_edges`: reduce wide responses to one-pixel edges;
- :func:`postprocess_edges`: normalise, NMS, thin: the common tail of every edge map here, so SAM
  and the baseline differ only in where their gradients come from;
- :func:`sobel_baseline`: a plain Sobel of the image, the reference a learned detector must beat.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...inference.images import ImageLike, as_rgb_uint8
from ._optional import skimage_thin

__all__ = ["edge_nms", "mask_boundary_band", "postprocess_edges", "sobel", "sobel_baseline", "thin_edges"]


def sobel(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel derivatives of a batch of maps: N x H x W -> (gx, gy), each N x H x W float32.

    Borders are replicated, so the image frame itself gives no response.
    gx grows to the right (+x), gy downwards (+y).
    """
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=maps.device) / 8.0  # 3 x 3
    kernels = torch.stack([kx, kx.T])[:, None]  # 2 x 1 x 3 x 3
    padded = F.pad(maps.float()[:, None], (1, 1, 1, 1), mode="replicate")  # N x 1 x (H+2) x (W+2)
    grads = F.conv2d(padded, kernels)  # N x 2 x H x W
    return grads[:, 0], grads[:, 1]


def _dilate(masks: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation by a (2r+1) square: N x H x W bool -> N x H x W bool."""
    if radius <= 0:
        return masks
    k = 2 * radius + 1
    return F.max_pool2d(masks.float()[:, None], k, stride=1, padding=radius)[:, 0] > 0


def mask_boundary_band(masks: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Where a mask's Sobel responses are kept: near its outer boundary pixels. N x H x W bool -> same.

    The outer boundary pixels are the pixels just outside a mask that touch it
    (8-neighbourhood): ``dilate(mask, 1) & ~mask``. The paper zeroes Sobel
    responses "not intersected with the outer boundary pixels of a mask";
    here a response is kept within ``radius`` pixels of those pixels, so the
    band covers the probability map's transition on both sides of the
    boundary (a 3 x 3 Sobel response is itself 3 pixels wide) and the later
    edge NMS, not this mask, picks the exact edge pixel. A mask touching the
    image frame has no outer boundary there, so the frame is never an edge.
    """
    outer = _dilate(masks, 1) & ~masks  # N x H x W
    return _dilate(outer, radius)


def edge_nms(magnitude: np.ndarray, grad_x: np.ndarray, grad_y: np.ndarray) -> np.ndarray:
    """Non-maximum suppression along the gradient direction (Canny-style): H x W -> H x W float32.

    A pixel keeps its magnitude only if it is at least as large as the
    magnitudes one pixel away on either side along its gradient direction
    (bilinearly interpolated, as in the structured-edges ``edgesNms``), so a
    ridge a few pixels wide is reduced to its crest. Ties are broken towards
    one side (``>`` before, ``>=`` after), so a flat two-pixel crest keeps one pixel.
    """
    mag = np.asarray(magnitude, dtype=np.float32)  # H x W
    norm = np.hypot(grad_x, grad_y)
    norm = np.where(norm > 0, norm, 1.0)
    dx, dy = (grad_x / norm).astype(np.float32), (grad_y / norm).astype(np.float32)  # H x W unit direction
    ys, xs = np.mgrid[0 : mag.shape[0], 0 : mag.shape[1]].astype(np.float32)  # H x W
    ahead = _bilinear(mag, xs + dx, ys + dy)  # H x W
    behind = _bilinear(mag, xs - dx, ys - dy)  # H x W
    keep = (mag > behind) & (mag >= ahead) & (mag > 0)
    return np.where(keep, mag, 0.0).astype(np.float32)


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``image`` (H x W) sampled at float positions (x, y), clamped to the image: -> shape of x."""
    h, w = image.shape
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2) if w > 1 else np.zeros(x.shape, np.int64)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2) if h > 1 else np.zeros(y.shape, np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def thin_edges(edges: np.ndarray) -> np.ndarray:
    """Morphological thinning of the non-zero support of an edge map: H x W -> H x W float32.

    Values are kept on the thinned skeleton and zeroed elsewhere (needs scikit-image).
    """
    skeleton = skimage_thin()(np.asarray(edges) > 0)  # H x W bool
    return np.where(skeleton, edges, 0.0).astype(np.float32)


def postprocess_edges(magnitude: np.ndarray, grad_x: np.ndarray, grad_y: np.ndarray) -> np.ndarray:
    """Normalise to [0, 1], edge NMS, thinning: the shared tail of SAM's and the baseline's edge maps.

    magnitude, grad_x, grad_y: H x W. Returns H x W float32 in [0, 1] (all zeros if nothing responds).
    """
    peak = float(magnitude.max())
    if peak <= 0:
        return np.zeros(magnitude.shape, dtype=np.float32)
    return thin_edges(edge_nms(magnitude / peak, grad_x, grad_y))


def sobel_baseline(image: ImageLike) -> np.ndarray:
    """The baseline: a plain Sobel of the image, post-processed like SAM's (normalise, edge NMS, thinning).

    Per pixel, the colour channel with the largest gradient gives magnitude
    and direction (no smoothing, no learning). Returns H x W float32 in [0, 1].
    """
    pixels = np.array(as_rgb_uint8(image))  # a writable copy: a PIL image's array is read-only
    rgb = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255.0  # 3 x H x W
    gx, gy = sobel(rgb)  # 3 x H x W each
    magnitude = torch.hypot(gx, gy)  # 3 x H x W
    value, channel = magnitude.max(dim=0)  # H x W
    pick = channel[None]  # 1 x H x W
    return postprocess_edges(value.numpy(), gx.gather(0, pick)[0].numpy(), gy.gather(0, pick)[0].numpy())
