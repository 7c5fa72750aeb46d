"""Turn encoded image bytes into the upright RGB picture every vision model reads.

Callers usually pass a variant (the large_1024 JPEG the image pipeline already made) rather than the original:
it is small, and models resize far below it anyway.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps


def open_rgb(data: bytes, *, at_least: int | None = None) -> Image.Image:
    """Decode `data`, turn it upright by its EXIF orientation, and flatten any transparency onto white (dark text
    drawn on a transparent background stays readable). `at_least`: a JPEG may be decoded with libjpeg's DCT
    scaling to the smallest reduction still at least this many pixels on each side, which is much faster."""
    image: Image.Image = Image.open(io.BytesIO(data))
    if at_least is not None:
        image.draft("RGB", (at_least, at_least))
    image = ImageOps.exif_transpose(image)
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(flat, rgba).convert("RGB")
    return image.convert("RGB")
