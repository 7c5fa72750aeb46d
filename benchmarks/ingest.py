"""Images per minute through the whole service (upload -> job engine -> Ray and model actors ->
completed, a real `scopix serve`) against the same steps called in-process on the same images
(inspecting and hashing, storing the original, the variants step, then OCR and the perceptual image
embedding of the medium variant, with the default models; over a process pool as wide as the Ray
runtime), in one run.

    .venv/bin/python benchmarks/ingest.py [--images 40] [--megapixels 2]

The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import io
import json
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.service import running_service, uploaded_and_processed  # noqa: E402

# The local Ray runtime's CPUs on this machine, the baseline's processes, and the CPU threads of the model actors
# (OCR reads with one thread per image in both: one per baseline process, one per copy in the actor).
WORKERS = 2


def sample_photos(count: int, megapixels: float) -> list[bytes]:
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(width * 3 / 4)
    rng = np.random.default_rng(7)
    base = np.linspace(0, 255, width, dtype=np.float32)[None, :, None].repeat(height, 0).repeat(3, 2)
    photos = []
    for index in range(count):
        pixels = np.clip(base + rng.normal(0, 12, base.shape) + index, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=88)
        photos.append(buffer.getvalue())
    return photos


@functools.cache
def _models() -> tuple[object, object]:
    from models.registry import load, resolve

    return load(resolve("ocr"), threads=1), load(resolve("embed_image"))


def _in_process_one(args: tuple[object, str, bytes]) -> None:
    """The steps an upload runs, called directly: inspect and hash the bytes, store the original,
    make the variants, read the text and embed the medium variant. What the service adds on top is
    orchestration: HTTP, the queue, Ray, the model actors."""
    from pipelines.engine.step import FileRef
    from pipelines.image.variants import make_variants
    from pipelines.intake.sniff import detect
    from store.step_objects import opened, put

    location, key, photo = args
    detected = detect(photo, "photo.jpg")
    hashlib.sha256(photo).hexdigest()
    put(location, key, photo, detected.content_type)
    facts = make_variants(location, FileRef(uuid.uuid4(), uuid.uuid4(), key, "image", detected.content_type))
    with opened(location, facts["variants"]["medium_750"]["key"]) as medium:
        data = medium.read()
    ocr, embedder = _models()
    ocr.predict([data])
    embedder.predict([data])


def _in_process(data_dir: Path, photos: list[bytes]) -> float:
    from store.services import local_services
    from store.step_objects import S3Location

    with local_services(data_dir) as settings:
        location = S3Location.from_settings(settings)
        work = [(location, f"bench/{uuid.uuid4()}/original", photo) for photo in photos]
        with ProcessPoolExecutor(WORKERS) as pool:
            list(pool.map(_in_process_one, work[:WORKERS]))  # warm the processes' imports and clients
            started = time.perf_counter()
            list(pool.map(_in_process_one, work))
            return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--megapixels", type=float, default=2.0)
    args = parser.parse_args()
    photos = sample_photos(args.images, args.megapixels)
    with running_service(engine__ray_num_cpus=str(WORKERS), models__actors__threads=str(WORKERS)) as service:
        asyncio.run(uploaded_and_processed(service.base, service.key, sample_photos(WORKERS * 2, 0.3)))  # warm Ray
        service_s = asyncio.run(uploaded_and_processed(service.base, service.key, photos))
        baseline_s = _in_process(service.data_dir, photos)
    through_service = args.images / service_s * 60
    baseline = args.images / baseline_s * 60
    overhead = 1 - through_service / baseline
    print(f"service {through_service:.0f} images/min, in-process {baseline:.0f} images/min, overhead {overhead:.0%}")
    result = {
        "images": args.images,
        "megapixels": args.megapixels,
        "service_images_per_min": round(through_service, 1),
        "in_process_images_per_min": round(baseline, 1),
        "ratio": round(through_service / baseline, 3),
        "overhead": round(overhead, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
