"""Pictures for the vision tests and benchmarks, made in code: synthetic photos, their near-duplicates, and text
rendered with Pillow's bundled TrueType font (no system font needed)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A synthetic photo: a two-colour gradient in a random direction, a few shapes, sensor-like noise."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / max(size)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * x + np.sin(angle) * y
    ramp = ((ramp - ramp.min()) / np.ptp(ramp))[..., None]
    pixels = rng.uniform(0, 255, 3) * (1 - ramp) + rng.uniform(0, 255, 3) * ramp
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        cx, cy, radius = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, 150)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([cx - radius, cy - radius, cx + radius, cy + radius], fill=tuple(int(c) for c in rng.uniform(0, 255, 3)))
    noisy = np.asarray(image, np.float64) + rng.normal(0, 12, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def near_copy(image: Image.Image) -> bytes:
    """What a re-upload looks like: resized to 3/8 and re-encoded as a mediocre JPEG."""
    small = image.resize((image.width * 3 // 8, image.height * 3 // 8), Image.Resampling.BICUBIC)
    return encode(small, "JPEG", quality=60)


def text_photo(text: str, at: tuple[float, float], size: tuple[int, int] = (1200, 500)) -> tuple[bytes, tuple]:
    """A JPEG with `text` drawn at the fraction `at` of its size, and the text's true box (x_min, y_min, x_max,
    y_max) as fractions of the image."""
    image = Image.new("RGB", size, (245, 245, 240))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=64)
    position = (at[0] * size[0], at[1] * size[1])
    draw.text(position, text, font=font, fill=(20, 20, 20))
    left, top, right, bottom = draw.textbbox(position, text, font=font)
    return encode(image, quality=92), (left / size[0], top / size[1], right / size[0], bottom / size[1])
