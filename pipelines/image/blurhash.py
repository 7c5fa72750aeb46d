"""BlurHash encoder: a ~28-character placeholder a client paints while the real image loads.

The reference algorithm (blurha.sh), vectorised with numpy: pixels go from sRGB to linear light and are
projected on a cosine basis; the first (DC) factor is stored as an 8-bit sRGB colour, the others (AC) on a
19-step square-root scale relative to the largest of them, all in base 83. Our own ~50 lines rather than a
dependency: the pure-Python package takes ~50 ms for a 64 px image (this, ~0.5 ms), and the format
is frozen.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_SRGB = np.arange(256) / 255
_SRGB_TO_LINEAR = np.where(_SRGB <= 0.04045, _SRGB / 12.92, ((_SRGB + 0.055) / 1.055) ** 2.4)


def encode(image: Image.Image, components_x: int = 4, components_y: int = 3) -> str:
    """The BlurHash of `image` (alpha is ignored, as in the reference). Meant for small images: the cost
    grows with the pixel count, so pass a thumbnail (64 px is plenty for a 4×3 hash)."""
    if not (1 <= components_x <= 9 and 1 <= components_y <= 9):
        raise ValueError("BlurHash component counts must be between 1 and 9")
    linear = _SRGB_TO_LINEAR[np.asarray(image.convert("RGB"))]  # (height, width, 3)
    height, width = linear.shape[:2]
    basis_y = np.cos(np.pi * np.outer(np.arange(components_y), np.arange(height)) / height)
    basis_x = np.cos(np.pi * np.outer(np.arange(components_x), np.arange(width)) / width)
    # factors[j, i] = mean over pixels of basis_y[j, y] * basis_x[i, x] * linear[y, x], in the reference's
    # order (j outer, i inner); two small products rather than one three-way einsum, which is 40× slower
    factors = np.einsum("ix,jxc->jic", basis_x, np.tensordot(basis_y, linear, axes=(1, 0)))
    factors = factors.reshape(-1, 3) / (width * height)
    factors[1:] *= 2  # the reference's normalisation: 1 for DC, 2 for AC
    dc, ac = factors[0], factors[1:]

    result = _base83((components_x - 1) + (components_y - 1) * 9, 1)
    if len(ac):
        quantised_max = int(max(0, min(82, np.floor(np.abs(ac).max() * 166 - 0.5))))
        ac_scale = (quantised_max + 1) / 166
    else:
        quantised_max, ac_scale = 0, 1.0
    result += _base83(quantised_max, 1)
    r, g, b = (_linear_to_srgb(value) for value in dc)
    result += _base83((r << 16) + (g << 8) + b, 4)
    scaled = ac / ac_scale
    steps = np.clip(np.floor(np.sign(scaled) * np.sqrt(np.abs(scaled)) * 9 + 9.5), 0, 18).astype(int)
    for red, green, blue in steps:
        result += _base83(int(red) * 19 * 19 + int(green) * 19 + int(blue), 2)
    return result


def _linear_to_srgb(value: float) -> int:
    value = max(0.0, min(1.0, float(value)))
    if value <= 0.0031308:
        return int(value * 12.92 * 255 + 0.5)
    return int((1.055 * value ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[value // 83 ** (length - 1 - i) % 83] for i in range(length))
