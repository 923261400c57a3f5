"""Data augmentation for training on photos: geometric (scale, crop, flip) and photometric
(colour jitter, grayscale, blur, noise, JPEG), each drawn from a numpy Generator so a step is reproducible.

Geometric transforms act on the photo and its label images alike (labels with
nearest-neighbour resampling); photometric ones on the photo only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter


@dataclass(frozen=True)
class PhotometricAugment:
    """Probabilities and strengths of the photometric transforms (defaults: moderate, as in SAM's descendants)."""

    jitter: float = 0.8  # probability of a colour jitter
    brightness: float = 0.3  # factor drawn in [1 - b, 1 + b]
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.04  # shift of the hue, a fraction of the colour circle
    grayscale: float = 0.1
    blur: float = 0.15  # probability of a Gaussian blur (sigma 0.3 to 1.5 px)
    noise: float = 0.15  # probability of Gaussian noise (std 2 to 8 grey levels)
    jpeg: float = 0.2  # probability of a JPEG round trip (quality 30 to 90)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """H x W x 3 uint8 -> H x W x 3 uint8."""
        pil = Image.fromarray(image)
        if rng.random() < self.jitter:
            pil = colour_jitter(pil, rng, self.brightness, self.contrast, self.saturation, self.hue)
        if rng.random() < self.grayscale:
            pil = pil.convert("L").convert("RGB")
        if rng.random() < self.blur:
            pil = pil.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 1.5))))
        if rng.random() < self.jpeg:
            buffer = io.BytesIO()
            pil.save(buffer, format="JPEG", quality=int(rng.integers(30, 91)))
            buffer.seek(0)
            pil = Image.open(buffer).convert("RGB")
        out = np.asarray(pil)
        if rng.random() < self.noise:
            noisy = out.astype(np.float32) + rng.normal(0.0, rng.uniform(2.0, 8.0), out.shape).astype(np.float32)
            out = np.clip(noisy, 0, 255).round().astype(np.uint8)
        return out


def colour_jitter(pil: Image.Image, rng: np.random.Generator, brightness: float, contrast: float,
                  saturation: float, hue: float) -> Image.Image:
    """Brightness, contrast, saturation and hue changes in a random order (as torchvision's ColorJitter)."""
    from PIL import ImageEnhance

    def shift_hue(im: Image.Image) -> Image.Image:
        h, s, v = im.convert("HSV").split()
        shift = int(round(rng.uniform(-hue, hue) * 255))

        def turn(p: int) -> int:  # a hue 0..255, turned round the colour circle
            return (p + shift) % 256

        h = h.point(turn)
        return Image.merge("HSV", (h, s, v)).convert("RGB")

    ops = [
        lambda im: ImageEnhance.Brightness(im).enhance(rng.uniform(1 - brightness, 1 + brightness)),
        lambda im: ImageEnhance.Contrast(im).enhance(rng.uniform(1 - contrast, 1 + contrast)),
        lambda im: ImageEnhance.Color(im).enhance(rng.uniform(1 - saturation, 1 + saturation)),
        shift_hue,
    ]
    for k in rng.permutation(len(ops)):
        pil = ops[k](pil)
    return pil


@dataclass(frozen=True)
class GeometricAugment:
    """Random scale, crop and horizontal flip of a photo and its label images into an S x S training input.

    The photo is first resized as at inference (longest side = S), then by a
    factor drawn log-uniformly in ``scale``; a random S x S window of the
    result is kept, and the whole is flipped with ``flip``. The part of the
    window outside the photo is filled with ``fill``, SAM's pixel mean, which
    normalises to (almost exactly) zero: the padding the model's own
    preprocessing adds at inference (``Sam.preprocess`` pads after
    normalising). Black padding would teach the encoder a border it never
    meets in use.
    """

    scale: tuple[float, float] = (0.6, 1.6)
    flip: float = 0.5
    fill: tuple[int, int, int] = (124, 116, 104)  # SamConfig.pixel_mean, rounded

    def __call__(self, image: np.ndarray, labels: list[np.ndarray], size: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, list[np.ndarray], tuple[int, int]]:
        """Returns (S x S x 3 uint8 image, S x S label images (0 = outside the photo), (h, w) of the photo in it)."""
        h, w = image.shape[:2]
        factor = size / max(h, w) * float(np.exp(rng.uniform(np.log(self.scale[0]), np.log(self.scale[1]))))
        nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
        image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.BILINEAR))
        labels = [np.asarray(Image.fromarray(lab).resize((nw, nh), Image.Resampling.NEAREST)) for lab in labels]
        # a window of S x S: anywhere inside a larger photo, at the top-left of a smaller one (like the padding)
        y0 = int(rng.integers(0, nh - size + 1)) if nh > size else 0
        x0 = int(rng.integers(0, nw - size + 1)) if nw > size else 0
        image = image[y0:y0 + size, x0:x0 + size]
        labels = [lab[y0:y0 + size, x0:x0 + size] for lab in labels]
        if rng.random() < self.flip:
            image, labels = image[:, ::-1], [lab[:, ::-1] for lab in labels]
        ch, cw = image.shape[:2]
        canvas = np.empty((size, size, 3), np.uint8)
        canvas[:] = self.fill
        canvas[:ch, :cw] = image
        padded = []
        for lab in labels:
            out = np.zeros((size, size), lab.dtype)
            out[:ch, :cw] = lab
            padded.append(out)
        return canvas, padded, (ch, cw)
