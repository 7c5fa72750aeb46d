"""Image variants and facts: the pure part of the image pipeline (no S3, no DB, no Ray; the caller stores).

`render()` decodes an image once and returns its displayed size, format, EXIF capture time, four variants
and a BlurHash. Why it is fast: a JPEG is decoded with libjpeg's DCT scaling (`Image.draft`) straight to the
smallest power-of-two reduction still covering the largest variant (a 12 MP photo decodes as 2000×1500, a
quarter of the pixels, and much of the work); each variant is then resized from the one before
(1024 → 750 → 256 → 64), and EXIF orientation is applied to the 1024 variant rather than to the decoded image.
The code runs unchanged on Pillow and on pillow-simd (faster resizing; see scripts/install-pillow-simd).
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import IO

import numpy as np
import PIL
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError, features

from pipelines.image import blurhash

MAX_PIXELS = 90_000_000  # about Pillow's own default bound
log = logging.getLogger(__name__)

VARIANT_SIZES: dict[str, int] = {"tiny_64": 64, "small_256": 256, "medium_750": 750, "large_1024": 1024}

_CASCADE = sorted(VARIANT_SIZES.items(), key=lambda item: -item[1])  # largest first
# Bicubic, as Pillow's thumbnail(): after DCT scaling every step shrinks ≤ 4×, where it is within 45-52 dB PSNR of
# LANCZOS from the full image (invisible), and it takes 11% (pillow-simd) to 26% (Pillow) off the whole render
_RESAMPLE = Image.Resampling.BICUBIC
_JPEG_QUALITY = 85
_WEBP_QUALITY = 85
# Decoders we let see user bytes: no EPS (Ghostscript), no exotic legacy formats. MPO is a camera JPEG.
_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIF", "AVIF")
_FORMAT_NAMES = {"MPO": "jpeg", "HEIF": "heic"}
# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose)
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_AVIF_BRANDS = {b"avif", b"avis"}
_OFFSET = re.compile(r"([+-])(\d\d):(\d\d)")


class ImageError(Exception):
    """An image we cannot turn into variants (corrupt, truncated, a decompression bomb, an undecodable format);
    str(exc) is a clear message for users."""


@dataclass(frozen=True)
class Variant:
    name: str  # a key of VARIANT_SIZES, e.g. "small_256"
    width: int
    height: int
    content_type: str  # "image/jpeg" for opaque images, "image/webp" when the image has transparency
    extension: str  # "jpg" or "webp"
    data: bytes


@dataclass(frozen=True)
class ImageFacts:
    width: int  # as displayed, i.e. after EXIF orientation, of the original
    height: int
    format: str  # "jpeg" "png" "gif" "webp" "tiff" "bmp" "heic" "avif"
    blur_hash: str  # 4×3 components, from the tiny_64 variant
    content_created_at: datetime | None  # EXIF DateTimeOriginal, always timezone-aware (UTC when no offset)
    variants: tuple[Variant, ...]  # in VARIANT_SIZES order


def render(source: bytes | IO[bytes], max_pixels: int = MAX_PIXELS) -> ImageFacts:
    """Decode `source` (the whole image, or a seekable binary file holding it, read from offset 0) and make its
    facts and variants. Each variant fits its size as the maximum dimension and is NEVER upscaled: a 300×200 image
    gets 300×200 for large_1024 and medium_750, 256×171 for small_256 and 64×43 for tiny_64.

    Images over `max_pixels` are refused before any pixel is decoded; Pillow's own bound (Image.MAX_IMAGE_PIXELS,
    about 89 MP) stands aside for the call, so the bound is the one given, lower or higher.
    Raises ImageError for anything that is not a decodable image; never anything else."""
    formats = _open_formats()
    fp = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
    try:
        with _strict_pillow(), Image.open(fp, formats=formats) as im:
            return _render(im, max_pixels)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(_too_large(max_pixels)) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(_unidentified(fp)) from exc
    except Exception as exc:  # any decoder failure is the image's fault, not ours: never a crash
        if "truncated" in str(exc):
            raise ImageError("The image is truncated: the file ends before the picture does.") from exc
        log.info("image could not be decoded", exc_info=True)  # the decoder's words are for the log
        raise ImageError("The image is corrupt and cannot be decoded.") from exc


@contextmanager
def _strict_pillow() -> Iterator[None]:
    """Pillow's process-wide switches, made strict for the call: its decompression-bomb bound gives way to ours
    (checked on the header, before decoding) and its warning becomes an error wherever a plugin still raises it;
    truncated files fail even if someone set LOAD_TRUNCATED_IMAGES. Global state, restored after: a task runs
    one render at a time per process (Ray's default)."""
    truncated, bound = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
    ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = False, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = truncated, bound


def _render(im: Image.Image, max_pixels: int) -> ImageFacts:
    width, height = im.size
    if width * height > max_pixels:
        raise ImageError(_too_large(max_pixels, im.size))
    decoded = _decode(im)
    # EXIF is read after decoding: a PNG's may follow the pixels (reading it loads them anyway), and Pillow's
    # TIFF loader applies the orientation itself and drops the tag (its size is already upright)
    exif = _exif(im)
    orientation = exif.get(ExifTags.Base.Orientation)
    upright = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    displayed = (height, width) if orientation in (5, 6, 7, 8) else (width, height)  # quarter turns

    (largest, box), *smaller = _CASCADE
    large = _resize(decoded, _fit((width, height), box))  # in stored orientation: a square box fits either way
    images = {largest: large.transpose(upright) if upright is not None else large}
    previous = images[largest]
    for name, box in smaller:  # each from the one before: fewer pixels to read
        images[name] = previous = _resize(previous, _fit(displayed, box))

    icc_profile = im.info.get("icc_profile")
    variants = tuple(_encode(name, images[name], icc_profile) for name in VARIANT_SIZES)
    return ImageFacts(
        width=displayed[0],
        height=displayed[1],
        format=_FORMAT_NAMES.get(im.format or "", (im.format or "").lower()),
        blur_hash=blurhash.encode(images["tiny_64"]),
        content_created_at=_content_created_at(exif),
        variants=variants,
    )


def _decode(im: Image.Image) -> Image.Image:
    """The pixels, decoded no larger than the 1024 variant needs (JPEG DCT scaling: at most 2× the box in
    each dimension), in a mode we can resize and encode: RGB, L, or RGBA when there is real transparency."""
    im.draft("RGB", _fit(im.size, _CASCADE[0][1]))  # no-op for formats other than JPEG
    im.load()
    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        # many screenshots carry an alpha channel that is opaque everywhere: those stay JPEG
        return rgba if rgba.getchannel("A").getextrema() != (255, 255) else rgba.convert("RGB")
    if im.mode.startswith("I"):
        # 16-bit (and 32-bit integer) greyscale: Pillow's convert clips to 255 instead of scaling
        pixels = np.asarray(im)
        if im.mode.startswith("I;16") or pixels.max() > 255:
            pixels = np.clip(pixels, 0, 65535) >> 8
        return Image.fromarray(pixels.astype(np.uint8), "L")
    return im if im.mode in ("RGB", "L") else im.convert("RGB")  # CMYK, YCbCr, P, 1, F, ...


def _fit(size: tuple[int, int], box: int) -> tuple[int, int]:
    """`size` scaled so that its larger side is `box`, keeping the aspect ratio; unchanged if it already fits."""
    width, height = size
    if max(width, height) <= box:
        return size
    if width >= height:
        return box, max(1, round(height * box / width))
    return max(1, round(width * box / height)), box


def _resize(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    # reducing_gap: a box reduction first when shrinking by 6× or more (a large PNG has no DCT scaling), which
    # Pillow documents as indistinguishable from the plain filter at gap 3, and much faster
    return im if im.size == size else im.resize(size, _RESAMPLE, reducing_gap=3.0)


def _encode(name: str, im: Image.Image, icc_profile: bytes | None) -> Variant:
    """JPEG when opaque, WebP (lossy, with alpha) when transparent. EXIF is dropped (GPS!), the ICC profile is
    kept when it still describes the pixels (not after CMYK -> RGB, say)."""
    space = b"GRAY" if im.mode == "L" else b"RGB "
    icc = icc_profile if icc_profile and icc_profile[16:20] == space else None
    buffer = io.BytesIO()
    if im.mode == "RGBA":
        im.save(buffer, "WEBP", quality=_WEBP_QUALITY, icc_profile=icc)
        content_type, extension = "image/webp", "webp"
    else:
        im.save(buffer, "JPEG", quality=_JPEG_QUALITY, optimize=True, icc_profile=icc)
        content_type, extension = "image/jpeg", "jpg"
    return Variant(name, im.width, im.height, content_type, extension, buffer.getvalue())


def _exif(im: Image.Image) -> Image.Exif:
    """The EXIF block, or an empty one: broken metadata must not cost the user an otherwise good image."""
    try:
        return im.getexif()
    except Exception:
        return Image.Exif()


def _content_created_at(exif: Image.Exif) -> datetime | None:
    """EXIF DateTimeOriginal with OffsetTimeOriginal when present, else taken as UTC; None if absent/invalid."""
    try:
        details = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:
        return None
    value = details.get(ExifTags.Base.DateTimeOriginal)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    try:
        taken = datetime.strptime(value.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:  # "0000:00:00 00:00:00" and other junk
        return None
    offset = _OFFSET.fullmatch(str(details.get(ExifTags.Base.OffsetTimeOriginal, "")).strip("\x00 "))
    if offset is None:
        return taken.replace(tzinfo=UTC)
    sign, hours, minutes = offset.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return taken.replace(tzinfo=timezone(-delta if sign == "-" else delta))


@cache
def _open_formats() -> tuple[str, ...]:
    """Register the extra decoders on first use, and list the allowed formats this Pillow can open
    (Image.open fails on a name it does not know). HEIC: the pillow-heif package. AVIF: Pillow's own (11.3+
    wheels), else the pillow-avif-plugin package if installed (pillow-simd has no AVIF of its own)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    Image.init()
    # pillow-simd registers Pillow's AVIF plugin without the libavif behind it
    avif = "AVIF" in Image.OPEN and features.check_module("avif")
    if not avif:
        with suppress(ImportError):
            import pillow_avif  # noqa: F401  (registers itself)

            avif = True
    return tuple(name for name in _FORMATS if name in Image.OPEN and (avif or name != "AVIF"))


def _unidentified(fp: IO[bytes]) -> str:
    """Name what is missing when the bytes are AVIF (an ISO-BMFF 'ftyp' box) and no decoder is here."""
    try:
        fp.seek(0)
        head = fp.read(12)
    except Exception:
        head = b""
    brand = head[8:12] if head[4:8] == b"ftyp" else b""
    if brand in _AVIF_BRANDS and "AVIF" not in _open_formats():
        return (
            f"AVIF images cannot be read here: this Pillow ({PIL.__version__}) has no AVIF decoder "
            "(Pillow 11.3+ wheels have one; with pillow-simd, install pillow-avif-plugin)."
        )
    return "The file is not an image we can read (supported: JPEG, PNG, GIF, WebP, TIFF, BMP, HEIC, AVIF)."


def _too_large(limit: int, size: tuple[int, int] | None = None) -> str:
    claimed = f" ({size[0]}×{size[1]})" if size else ""
    return f"The image{claimed} has more than {limit:,} pixels, the most we process (a possible decompression bomb)."
