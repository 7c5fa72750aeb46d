"""The four image variants + BlurHash of a 12-megapixel JPEG: `pipelines.image.render.render()` against plain
Pillow (full decode, each size resized from the full image with LANCZOS) and against pyvips `thumbnail`,
in one run, each repeated and reported as its median.

    .venv/bin/python benchmarks/variants.py [--runs 9]

The last line of output is one JSON object with the figures. Run it once with plain Pillow and once after
scripts/install-pillow-simd: PIL.__version__ (in the JSON) tells which one ran.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import PIL
from PIL import Image, ImageDraw

from pipelines.image import blurhash
from pipelines.image.render import VARIANT_SIZES, render

SIZES = sorted(VARIANT_SIZES.values(), reverse=True)  # 1024, 750, 256, 64
QUALITY = 85  # as render() uses


def photo(noise: float, width: int = 4000, height: int = 3000) -> bytes:
    """A photo-like JPEG (quality 90): smooth gradients, sensor-like noise and hard-edged shapes. The noise
    sets the compressed size (σ 5: 1.9 MB, like a phone photo's 2-4 MB), and so the entropy decoding that
    DCT scaling cannot skip: the part of the work that no resizing trick avoids."""
    rng = np.random.default_rng(12)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack([x / width * 220 + 20, y / height * 180 + 40, (x + y) / (width + height) * 150 + 60], -1)
    pixels += rng.normal(0, noise, pixels.shape).astype(np.float32)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x0, y0 = int(rng.integers(0, width - 400)), int(rng.integers(0, height - 400))
        x1, y1 = x0 + int(rng.integers(50, 400)), y0 + int(rng.integers(50, 400))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=color)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=QUALITY, optimize=True)
    return buffer.getvalue()


def plain_pillow(data: bytes) -> tuple[list[bytes], str]:
    """What one writes without thinking about speed: decode everything, resize each size from the full image."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        resized = []
        for box in SIZES:
            scale = box / max(image.size)
            size = (round(image.width * scale), round(image.height * scale))
            resized.append(image.resize(size, Image.Resampling.LANCZOS))
    return [_jpeg(variant) for variant in resized], blurhash.encode(resized[-1])


def pyvips_thumbnails(data: bytes, cascade: bool) -> tuple[list[bytes], str]:
    """pyvips `thumbnail` (shrink-on-load, lanczos3): each size from the JPEG, or each from the one before."""
    import pyvips

    images = []
    for box in SIZES:
        if cascade and images:
            images.append(images[-1].thumbnail_image(box).copy_memory())
        else:
            images.append(pyvips.Image.thumbnail_buffer(data, box).copy_memory())
    encoded = [image.jpegsave_buffer(Q=QUALITY, optimize_coding=True) for image in images]
    return encoded, blurhash.encode(Image.fromarray(images[-1].numpy()))


def medians_ms(contenders: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median time of each, measured in interleaved rounds so that a neighbour's load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for work in contenders.values():
        work()  # warm-up: imports, caches, lazily built tables
    for _ in range(runs):
        for name, work in contenders.items():
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--noise", type=float, default=5.0, help="σ of the noise in grey levels (default 5)")
    args = parser.parse_args()

    data = photo(args.noise)
    facts = render(data)
    assert [(v.width, v.height) for v in facts.variants] == [(64, 48), (256, 192), (750, 562), (1024, 768)]
    contenders: dict[str, Callable[[], object]] = {
        "ours": lambda: render(data),
        "pillow": lambda: plain_pillow(data),
    }
    try:
        import pyvips

        libvips = ".".join(str(pyvips.version(part)) for part in range(3))
        contenders["vips_each"] = lambda: pyvips_thumbnails(data, cascade=False)
        contenders["vips_cascade"] = lambda: pyvips_thumbnails(data, cascade=True)
    except (ImportError, OSError) as exc:  # no pyvips, or no libvips under it
        libvips = None
        print(f"pyvips unavailable ({exc}); reporting Pillow only")
    ms = medians_ms(contenders, args.runs)
    ours, pillow = ms["ours"], ms["pillow"]
    vips = min(ms["vips_each"], ms["vips_cascade"]) if libvips else None

    print(f"12 MP JPEG ({len(data) / 1e6:.1f} MB), PIL {PIL.__version__}, median of {args.runs} runs:")
    print(f"  {'render() (draft + cascade)':40} {ours:7.1f} ms")
    print(f"  {'plain Pillow (full decode, LANCZOS)':40} {pillow:7.1f} ms   ours is {pillow / ours:.1f}× faster")
    if vips is not None:
        print(f"  {f'pyvips {libvips} thumbnail, each size':40} {ms['vips_each']:7.1f} ms")
        print(f"  {f'pyvips {libvips} thumbnail, cascade':40} {ms['vips_cascade']:7.1f} ms")
        print(f"  ours takes {ours / vips:.2f}× the time of the faster pyvips way")
    print(
        json.dumps(
            {
                "ours_ms": round(ours, 1),
                "pillow_ms": round(pillow, 1),
                "pyvips_ms": None if vips is None else round(vips, 1),
                "speedup_vs_pillow": round(pillow / ours, 2),
                "ratio_vs_pyvips": None if vips is None else round(ours / vips, 2),
                "pil_version": PIL.__version__,
                "libvips_version": libvips,
                "jpeg_bytes": len(data),
            }
        )
    )


if __name__ == "__main__":
    main()
