"""The vision models through the real loading code (models.registry.resolve + load): descriptions from tiny
random BLIP and LLaVA models, OCR with the packaged PP-OCR models, the perceptual default and tiny CLIP/SigLIP
image embeddings."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from models.clip_embedding import ClipEmbedder
from models.describe import PROMPTS, Describer
from models.image_embedding import PerceptualEmbedder
from models.images import open_rgb
from models.ocr import OcrEngine
from models.registry import PERCEPTUAL, PP_OCR, ModelUnavailable, Task, load, resolve
from testkit import tiny_models
from testkit.photos import encode, near_copy, photo


def with_orientation(image: Image.Image, orientation: int) -> bytes:
    """A JPEG whose EXIF says to turn it for display (6: rotate 90° clockwise), stored turned the other way, so
    that it displays as `image`."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif)


# --- the image input every model reads


def test_images_are_turned_upright_and_transparency_becomes_white() -> None:
    upright = open_rgb(with_orientation(Image.new("RGB", (300, 100), "white"), 6))
    assert upright.size == (300, 100) and upright.mode == "RGB"
    transparent = open_rgb(encode(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), "PNG"))
    assert transparent.getpixel((0, 0)) == (255, 255, 255)


# --- descriptions


@pytest.fixture(scope="module")
def describers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Describer]:
    root = tmp_path_factory.mktemp("describe")
    built = {"blip": tiny_models.blip(root / "blip"), "llava": tiny_models.llava(root / "llava")}
    # Random weights never generate an end of sequence: a short bound keeps the tests fast.
    return {name: load(resolve(Task.DESCRIBE, str(path)), max_new_tokens=8) for name, path in built.items()}


@pytest.fixture(scope="module")
def pictures() -> list[bytes]:
    return [encode(photo(seed, (120, 90)), "PNG") for seed in range(3)]


def test_a_local_directory_resolves_to_the_describer_without_loading_it(tmp_path: Path) -> None:
    path = tiny_models.blip(tmp_path / "blip")
    spec = resolve(Task.DESCRIBE, str(path))
    assert (spec.wrapper, spec.model_id, spec.dimension, spec.revision) == (
        "models.describe:Describer",
        str(path),
        None,
        None,  # a bare directory's revision is its weights' digest, computed at load
    )
    assert load(spec).revision.startswith("sha256:")


def test_no_describe_model_is_configured_by_default_and_the_error_says_how_to_provide_one() -> None:
    with pytest.raises(ModelUnavailable, match="no describe model is configured") as refused:
        resolve(Task.DESCRIBE)
    assert "SCOPIX_MODELS__DESCRIBE__MODEL" in str(refused.value) and "local directory" in str(refused.value)
    with pytest.raises(ModelUnavailable, match="not on this machine"):
        resolve(Task.DESCRIBE, "no-such-org/no-such-vlm")


def test_a_directory_without_a_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match=r"config\.json"):
        resolve(Task.DESCRIBE, str(tmp_path))


@pytest.mark.parametrize("architecture", ["blip", "llava"])
def test_a_batch_gives_one_description_per_item_the_same_as_one_at_a_time(
    describers: dict[str, Describer], pictures: list[bytes], architecture: str
) -> None:
    describer = describers[architecture]
    items = [(pictures[0], "general"), (pictures[1], "blueprint"), (pictures[2], "map"), (pictures[0], "blueprint")]
    batch = describer.predict(items)
    assert len(batch) == len(items) and all(isinstance(text, str) and text for text in batch)
    # Batching (left padding of different prompt lengths for LLaVA, a batch per caption start for BLIP) changes
    # nothing: greedy decoding gives each item what it gets alone.
    assert batch == [describer.predict([item])[0] for item in items]
    assert describer.predict([]) == []


def test_a_captioner_starts_its_caption_with_the_category(
    describers: dict[str, Describer], pictures: list[bytes]
) -> None:
    categories = ["blueprint", "map", "general", "no-such-category"]
    blueprint, a_map, general, unknown = describers["blip"].predict([(pictures[0], c) for c in categories])
    assert blueprint.startswith(PROMPTS["blueprint"].caption + " ")
    assert a_map.startswith(PROMPTS["map"].caption + " ")
    assert general == unknown  # an unknown category gets the general prompt: a plain caption


def test_a_chat_model_gets_the_category_instruction_next_to_the_image(
    describers: dict[str, Describer], pictures: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    describer = describers["llava"]
    processor = describer._processor
    rendered: list[str] = []
    original = processor.apply_chat_template

    def spy(conversations: list, **options: object) -> object:
        batch = original(conversations, **options)
        rendered.extend(processor.batch_decode(batch["input_ids"], skip_special_tokens=False))
        return batch

    monkeypatch.setattr(processor, "apply_chat_template", spy)
    general, blueprint, unknown = describer.predict(
        [(pictures[0], "general"), (pictures[0], "blueprint"), (pictures[0], "no-such-category")]
    )
    assert words(PROMPTS["blueprint"].instruction) in words(rendered[1])
    assert words(PROMPTS["general"].instruction) in words(rendered[0]) and rendered[2] == rendered[0]
    assert rendered[1].count(tiny_models.IMAGE_TOKEN) == 25  # the image token, expanded to the image's patches
    assert rendered[0].startswith("[PAD]") or rendered[1].startswith("[PAD]")  # padded on the left
    assert general == unknown and general != blueprint


def words(text: str) -> str:
    """The words of a text as the tiny models' BERT tokenizer gives them back: lower case, no punctuation."""
    return " ".join(re.findall(r"\w+", text.lower()))


# --- OCR


@pytest.fixture(scope="module")
def ocr() -> OcrEngine:
    return load(resolve(Task.OCR))


def rendered_text(lines: list[tuple[str, tuple[float, float]]], size: tuple[int, int] = (900, 400)):
    """An image with each text drawn at a fraction (x, y) of its size, and each text's true box, normalised."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)  # Pillow's bundled TrueType font: no system font needed
    boxes = {}
    for text, (x, y) in lines:
        position = (x * size[0], y * size[1])
        draw.text(position, text, font=font, fill=(20, 20, 20))
        left, top, right, bottom = draw.textbbox(position, text, font=font)
        boxes[text] = (left / size[0], top / size[1], right / size[0], bottom / size[1])
    return image, boxes


def test_the_packaged_pp_ocr_is_the_offline_default() -> None:
    spec = resolve(Task.OCR)
    assert (spec.model_id, spec.wrapper, spec.dimension) == (PP_OCR, "models.ocr:OcrEngine", None)
    assert spec.revision.startswith("rapidocr==")
    assert sorted(p.name for p in (spec.path / "models").glob("*.onnx"))  # the weights are in the wheel


def test_ocr_reads_rendered_text_in_reading_order_with_boxes_where_the_text_is(ocr: OcrEngine) -> None:
    lines = [("STRUCTURAL DAMAGE", (0.05, 0.1)), ("Exit 12", (0.05, 0.6)), ("closed", (0.6, 0.6))]
    image, truth = rendered_text(lines)
    (result,) = ocr.predict([encode(image, "JPEG", quality=90)])
    assert result["text"] == "STRUCTURAL DAMAGE\nExit 12 closed"  # one line per row, left to right
    assert [region["text"] for region in result["regions"]] == [text for text, _ in lines]
    for region in result["regions"]:
        box = region["bounding_box"]
        assert 0 <= box["x"] <= box["x"] + box["w"] <= 1 and 0 <= box["y"] <= box["y"] + box["h"] <= 1
        assert 0.9 < region["confidence"] <= 1
        left, top, right, bottom = truth[region["text"]]
        assert overlap(box, left, top, right, bottom) > 0.5


def overlap(box: dict[str, float], left: float, top: float, right: float, bottom: float) -> float:
    """Intersection over union of a detected box and a true one."""
    width = min(box["x"] + box["w"], right) - max(box["x"], left)
    height = min(box["y"] + box["h"], bottom) - max(box["y"], top)
    intersection = max(width, 0) * max(height, 0)
    return intersection / (box["w"] * box["h"] + (right - left) * (bottom - top) - intersection)


def test_ocr_boxes_are_in_the_displayed_image_of_an_exif_rotated_photo(ocr: OcrEngine) -> None:
    image, truth = rendered_text([("WARNING", (0.55, 0.7))])
    blank = encode(Image.new("RGB", (300, 200), "white"), "PNG")
    rotated, empty = ocr.predict([with_orientation(image, 6), blank])
    assert [region["text"] for region in rotated["regions"]] == ["WARNING"]
    assert overlap(rotated["regions"][0]["bounding_box"], *truth["WARNING"]) > 0.5
    assert empty == {"text": "", "regions": []}


# --- image embeddings


@pytest.fixture(scope="module")
def perceptual() -> PerceptualEmbedder:
    return load(resolve(Task.EMBED_IMAGE))


def test_the_perceptual_descriptor_is_the_default_image_embedding(perceptual: PerceptualEmbedder) -> None:
    assert isinstance(perceptual, PerceptualEmbedder)
    assert (perceptual.model_id, perceptual.dimension) == (PERCEPTUAL, PerceptualEmbedder.DIMENSION)
    assert resolve(Task.EMBED_IMAGE).dimension == perceptual.dimension


def test_a_resized_re_encoded_copy_is_nearer_than_every_other_photo(perceptual: PerceptualEmbedder) -> None:
    photos = [photo(seed) for seed in range(6)]
    originals = perceptual.predict([encode(image, "PNG") for image in photos])
    copies = perceptual.predict([near_copy(image) for image in photos])
    similarity = copies @ originals.T
    assert list(similarity.argmax(axis=1)) == list(range(len(photos)))
    assert similarity.diagonal().min() > 0.95
    assert (similarity - 2 * np.eye(len(photos))).max() < 0.7  # unrelated photos are far


def test_perceptual_rows_are_unit_float32_and_deterministic(perceptual: PerceptualEmbedder) -> None:
    images = [
        encode(photo(7), "PNG"),
        encode(Image.new("RGB", (50, 50), (128, 128, 128)), "PNG"),
    ]  # flat grey: no structure
    rows = perceptual.predict(images)
    assert rows.dtype == np.float32 and rows.shape == (2, perceptual.dimension)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)
    assert np.array_equal(rows, perceptual.predict(images))
    assert perceptual.predict([]).shape == (0, perceptual.dimension)


@pytest.mark.parametrize(("architecture", "dimension"), [("clip", 24), ("siglip", 32)])
def test_a_local_clip_or_siglip_directory_embeds_images_and_texts_in_one_space(
    tmp_path: Path, architecture: str, dimension: int
) -> None:
    spec = resolve(Task.EMBED_IMAGE, str(getattr(tiny_models, architecture)(tmp_path / architecture)))
    assert (spec.wrapper, spec.dimension) == ("models.clip_embedding:ClipEmbedder", dimension)
    embedder = load(spec)
    assert isinstance(embedder, ClipEmbedder) and embedder.dimension == dimension
    images = [encode(photo(seed, (120, 90)), "PNG") for seed in range(2)]
    rows = embedder.predict(images)
    assert rows.dtype == np.float32 and rows.shape == (2, dimension)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(rows, embedder.predict(images), atol=1e-6)
    np.testing.assert_allclose(rows[1], embedder.predict(images[1:])[0], atol=1e-5)
    assert not np.allclose(rows[0], rows[1])
    texts = embedder.embed_texts(["a damaged pillar", "a very long text " * 40])  # truncated to the positions
    assert texts.shape == (2, dimension)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert embedder.predict([]).shape == embedder.embed_texts([]).shape == (0, dimension)
