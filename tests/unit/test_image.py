"""pipelines.image.render on real images made here with Pillow, on plain Pillow and on pillow-simd alike."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile

from pipelines.image import blurhash, source
from pipelines.image.render import VARIANT_SIZES, ImageError, ImageFacts, _decode, _open_formats, render

RED, BLUE, GREY = (255, 0, 0), (0, 0, 255), (128, 128, 128)


def encoded(image: Image.Image, format: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **params)
    return buffer.getvalue()


def opened(facts: ImageFacts, name: str) -> Image.Image:
    variant = next(v for v in facts.variants if v.name == name)
    image = Image.open(io.BytesIO(variant.data))
    assert image.size == (variant.width, variant.height)
    return image


def close(pixel: tuple[int, ...], expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=False))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height RGB pixels, with almost no data behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def rotated_photo() -> bytes:
    """4000×3000 as stored, EXIF orientation 6 (turn 90° clockwise to show): a red band along the stored top,
    a blue band along the stored left."""
    image = Image.new("RGB", (4000, 3000), GREY)
    image.paste(RED, (0, 0, 4000, 300))
    image.paste(BLUE, (0, 300, 300, 3000))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    return encoded(image, "JPEG", quality=90, exif=exif)


def test_exif_orientation_gives_portrait_dimensions_and_variants(rotated_photo: bytes) -> None:
    facts = render(rotated_photo)

    assert (facts.width, facts.height, facts.format) == (3000, 4000, "jpeg")
    assert [v.name for v in facts.variants] == list(VARIANT_SIZES)
    for variant in facts.variants:
        assert variant.height == VARIANT_SIZES[variant.name] > variant.width
        assert variant.width == round(3000 * variant.height / 4000)
        assert (variant.content_type, variant.extension) == ("image/jpeg", "jpg")


def test_exif_orientation_turns_the_pixels(rotated_photo: bytes) -> None:
    facts = render(rotated_photo)

    for name in ("large_1024", "small_256"):
        image = opened(facts, name).convert("RGB")
        w, h = image.size
        assert close(image.getpixel((w - 2, h // 2)), RED)  # the stored top is now on the right
        assert close(image.getpixel((w // 2, 2)), BLUE)  # the stored left is now on top
        assert close(image.getpixel((2, h // 2)), GREY)
        assert close(image.getpixel((w // 2, h - 2)), GREY)


def test_jpeg_is_decoded_no_larger_than_the_largest_variant_needs(rotated_photo: bytes) -> None:
    with Image.open(io.BytesIO(rotated_photo)) as image:
        decoded = _decode(image)

    assert 1024 <= max(decoded.size) <= 2 * 1024
    assert decoded.size == (2000, 1500)  # libjpeg's 1/2 DCT scaling: a quarter of the pixels


def test_small_images_are_never_upscaled() -> None:
    facts = render(encoded(Image.new("RGB", (300, 200), GREY), "PNG"))

    assert (facts.width, facts.height) == (300, 200)
    assert [(v.width, v.height) for v in facts.variants] == [(64, 43), (256, 171), (300, 200), (300, 200)]


def test_transparency_is_kept_as_webp() -> None:
    image = Image.new("RGBA", (400, 300), (*RED, 255))
    image.paste((0, 0, 0, 0), (0, 0, 200, 300))
    facts = render(encoded(image, "PNG"))

    assert facts.format == "png"
    for variant in facts.variants:
        assert (variant.content_type, variant.extension) == ("image/webp", "webp")
    large = opened(facts, "large_1024")
    assert large.mode == "RGBA"
    assert large.getpixel((10, 150))[3] == 0
    assert close(large.getpixel((390, 150)), (*RED, 255))


def test_an_alpha_channel_opaque_everywhere_gives_jpeg() -> None:
    facts = render(encoded(Image.new("RGBA", (400, 300), (*RED, 255)), "PNG"))

    assert {v.content_type for v in facts.variants} == {"image/jpeg"}


@pytest.mark.parametrize(
    ("format", "expected"),
    [("GIF", "gif"), ("WEBP", "webp"), ("TIFF", "tiff"), ("PNG", "png"), ("BMP", "bmp"), ("JPEG", "jpeg")],
)
def test_formats_first_frame_or_page(format: str, expected: str) -> None:
    first, second = Image.new("RGB", (320, 240), RED), Image.new("RGB", (320, 240), BLUE)
    save_all = format in ("GIF", "WEBP", "TIFF")  # animated GIF and WebP, multi-page TIFF
    data = encoded(first, format, **({"save_all": True, "append_images": [second]} if save_all else {}))

    facts = render(data)

    assert (facts.width, facts.height, facts.format) == (320, 240, expected)
    assert [(v.width, v.height) for v in facts.variants] == [(64, 48), (256, 192), (320, 240), (320, 240)]
    assert close(opened(facts, "large_1024").convert("RGB").getpixel((160, 120)), RED)


@pytest.mark.parametrize(
    "image",
    [
        Image.new("CMYK", (120, 80), (0, 255, 255, 0)),  # red in CMYK
        Image.new("RGB", (120, 80), RED).convert("P"),
        Image.new("LA", (120, 80), (200, 255)),
        Image.new("1", (120, 80), 1),
        Image.new("L", (120, 80), 200),
    ],
    ids=lambda image: image.mode,
)
def test_modes_become_rgb_or_l(image: Image.Image) -> None:
    data = encoded(image, "JPEG" if image.mode == "CMYK" else "PNG")
    facts = render(data)

    large = opened(facts, "large_1024")
    assert large.mode in ("RGB", "L")
    reference = image.convert("RGB").getpixel((60, 40))
    assert close(large.convert("RGB").getpixel((60, 40)), reference)


def test_16_bit_greyscale_is_scaled_not_clipped() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (64, 1))
    facts = render(encoded(Image.fromarray(ramp), "PNG"))

    large = opened(facts, "large_1024").convert("L")
    assert large.getpixel((0, 32)) < 10
    assert 110 < large.getpixel((128, 32)) < 146
    assert large.getpixel((255, 32)) > 245


def test_variants_carry_the_icc_profile_but_no_exif() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Camera"
    facts = render(encoded(Image.new("RGB", (400, 300), RED), "JPEG", icc_profile=srgb, exif=exif))

    for variant in facts.variants:
        image = Image.open(io.BytesIO(variant.data))
        assert image.info.get("icc_profile") == srgb
        assert not image.getexif()


def _with_capture_time(original: str | None, offset: str | None) -> bytes:
    exif = Image.Exif()
    details = exif.get_ifd(ExifTags.IFD.Exif)
    if original is not None:
        details[ExifTags.Base.DateTimeOriginal] = original
    if offset is not None:
        details[ExifTags.Base.OffsetTimeOriginal] = offset
    return encoded(Image.new("RGB", (80, 60), GREY), "JPEG", exif=exif)


@pytest.mark.parametrize(
    ("original", "offset", "expected"),
    [
        ("2024:05:06 07:08:09", "+02:00", datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))),
        ("2024:05:06 07:08:09", "-03:30", datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(-timedelta(hours=3.5)))),
        ("2024:05:06 07:08:09", None, datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ("0000:00:00 00:00:00", None, None),
        ("not a date", "+01:00", None),
        (None, None, None),
    ],
)
def test_content_created_at_from_exif(original: str | None, offset: str | None, expected: datetime | None) -> None:
    created = render(_with_capture_time(original, offset)).content_created_at

    assert created == expected
    if created is not None:
        assert created.utcoffset() == expected.utcoffset()


def test_blur_hash_matches_the_reference_encoder() -> None:
    import blurhash as reference

    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:48, 0:64]
    gradient = np.stack([x * 4, y * 5, (x + y) * 2], -1).astype(np.uint8)
    noise = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)

    # a 64×48 image is its own tiny_64 variant, so render() hashes exactly these pixels
    facts = render(encoded(Image.fromarray(gradient), "PNG"))
    assert facts.blur_hash == reference.encode(gradient, 4, 3)
    assert len(facts.blur_hash) == 28

    for pixels in (gradient, noise, np.full((30, 20, 3), (12, 200, 99), np.uint8)):
        for components in ((4, 3), (1, 1), (9, 9), (3, 7)):
            assert blurhash.encode(Image.fromarray(pixels), *components) == reference.encode(pixels, *components)


def test_a_file_object_works_too() -> None:
    data = encoded(Image.new("RGB", (400, 300), RED), "JPEG")

    assert render(io.BytesIO(data)) == render(data)


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    # 2.5 gigapixels claimed: refused from the header; decoding would fail as truncated instead
    with pytest.raises(ImageError, match=r"more than .* pixels"):
        render(png_claiming(50_000, 50_000))
    # over Pillow's own limit (~89.5 MP, where it only warns) though under ours
    with pytest.raises(ImageError, match=r"more than .* pixels"):
        render(png_claiming(9_500, 9_500))
    with pytest.raises(ImageError, match=r"\(2000×1000\) has more than 1,000,000 pixels"):
        render(encoded(Image.new("RGB", (2000, 1000)), "PNG"), max_pixels=1_000_000)


def test_the_pixel_bound_is_the_one_given_not_pillows() -> None:
    # 100 MP, over Pillow's default bound but under the one given: decoded (and found truncated), not refused
    with pytest.raises(ImageError, match="truncated"):
        render(png_claiming(10_000, 10_000), max_pixels=200_000_000)
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow's own, restored


@pytest.mark.parametrize("format", ["JPEG", "PNG"])
def test_truncated_images_are_refused(format: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as some library may have set it
    rng = np.random.default_rng(3)
    data = encoded(Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)), format)

    with pytest.raises(ImageError, match="truncated"):
        render(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES  # left as it was


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage" * 100, b"\xff\xd8\xff\xe0" + b"\x00" * 200, b"GIF89a" + bytes(range(256))],
    ids=["empty", "text", "jpeg-header-only", "gif-junk"],
)
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(ImageError):
        render(data)


def test_a_corrupt_image_is_refused_in_plain_words_without_the_decoder_s() -> None:
    data = bytearray(encoded(Image.new("RGB", (300, 200), (1, 2, 3)), "PNG"))
    damaged = data.index(b"IDAT") + 14
    data[damaged : damaged + 20] = b"\xff" * 20  # the deflated pixels

    with pytest.raises(ImageError) as refused:
        render(bytes(data))
    assert str(refused.value) == "The image is corrupt and cannot be decoded."


def test_other_formats_are_not_even_tried() -> None:
    with pytest.raises(ImageError, match="not an image we can read"):
        render(encoded(Image.new("RGB", (40, 30)), "PCX"))


def test_heic() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    facts = render(encoded(Image.new("RGB", (320, 240), RED), "HEIF"))

    assert (facts.width, facts.height, facts.format) == (320, 240, "heic")
    assert close(opened(facts, "large_1024").getpixel((160, 120)), RED)


def test_avif() -> None:
    if "AVIF" not in _open_formats():  # pillow-simd has no AVIF decoder of its own
        with pytest.raises(ImageError, match="AVIF"):
            render(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64)
        return
    facts = render(encoded(Image.new("RGB", (320, 240), RED), "AVIF"))

    assert (facts.width, facts.height, facts.format) == (320, 240, "avif")
    assert close(opened(facts, "large_1024").getpixel((160, 120)), RED)


@pytest.mark.parametrize(
    ("format", "size_bytes", "dimensions", "sent"),
    [
        ("jpeg", 80_000, {"width": 600, "height": 400}, "original"),  # the variant would only re-encode it
        ("jpeg", 100_000_000, {"width": 600, "height": 400}, "variant"),  # small picture, huge file
        ("jpeg", 80_000, {"width": 3000, "height": 2000}, "variant"),  # downscaled
        ("tiff", 80_000, {"width": 600, "height": 400}, "variant"),  # not every model decodes it
    ],
)
def test_a_vision_step_reads_the_original_only_when_it_is_small_and_plain(format, size_bytes, dimensions, sent):
    variant = {"key": "variant-key", "width": min(750, dimensions["width"]), "height": min(750, dimensions["height"])}
    row = {
        "object_key": "original-key",
        "size_bytes": size_bytes,
        "format": format,
        "dimensions": dimensions,
        "variants": {source.VARIANT: variant},
    }
    assert source.source_key(row) == {"original": "original-key", "variant": "variant-key"}[sent]
