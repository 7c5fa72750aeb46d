"""Images/s of the vision model actors with concurrent callers (one image per call, as the engine's steps send
them) against one-at-a-time calls through the same actor: the batching gain of describing (a tiny random BLIP,
saved to a temporary directory like any local model) and of OCR (rapidocr's PP-OCR, the default) on photos with
rendered text. Then images per minute through a real `scopix serve` with that BLIP as its describe model: from
the first upload to the last step's `completed_at`, every image through its variants, OCR, image embedding and
description. Each actor figure is the median of `--rounds` rounds, the two ways interleaved.

    .venv/bin/python benchmarks/vision.py [--images 48] [--callers 16] [--rounds 3] [--uploads 24]

Concurrent calls go through the batch lane, as the engine's steps send them; one-at-a-time calls through the
interactive lane, whose 5 ms wait is the least a lone request pays (in the batch lane each would also wait the
lane's 50-100 ms for company, which measures that wait, not what batching buys). The BLIP is random and tiny
(30-pixel images, 2 layers): its figures are the actor's and the pipeline's overhead around a model, not what a
real captioner costs. The service's model actors reserve `--actor-cpus` each (default: the service's own, 0.1,
which leaves a 2-core machine a whole CPU for the variants tasks). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.embedding import measure  # noqa: E402
from benchmarks.service import running_service, uploaded_and_processed  # noqa: E402
from cluster.model_clients import DescriberClient, OcrClient  # noqa: E402
from cluster.model_pool import ModelPool  # noqa: E402
from cluster.runtime import ensure_ray, shutdown_ray  # noqa: E402
from testkit import tiny_models  # noqa: E402
from testkit.photos import encode, photo, text_photo  # noqa: E402

Item = TypeVar("Item")
CPUS = 2  # the local Ray runtime's, here and in the service
PHOTO_SIZE = (750, 562)  # what the vision steps send: the medium_750 variant of a 4:3 photo
UPLOAD_SIZE = (1600, 1200)  # an uploaded photo
WORDS = ("CAUTION", "WET", "FLOOR", "EXIT", "PUMP", "VALVE", "BOILER", "DANGER", "HIGH", "VOLTAGE", "FIRE", "DOOR")
DESCRIBED = ("description_status",)  # the service must describe every image


def signs(count: int, seed: int, size: tuple[int, int] = PHOTO_SIZE) -> list[bytes]:
    """JPEGs of two words rendered somewhere on the left half."""
    rng = np.random.default_rng(seed)
    return [
        text_photo(" ".join(rng.choice(WORDS, 2)), at=(rng.uniform(0.02, 0.3), rng.uniform(0.1, 0.8)), size=size)[0]
        for _ in range(count)
    ]


async def concurrent(call: Callable[[Item], Awaitable[Any]], items: Sequence[Item], callers: int) -> float:
    queue = iter(items)

    async def caller() -> None:
        for item in queue:
            await call(item)

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return len(items) / (time.perf_counter() - start)


async def one_at_a_time(call: Callable[[Item], Awaitable[Any]], items: Sequence[Item]) -> float:
    start = time.perf_counter()
    for item in items:
        await call(item)
    return len(items) / (time.perf_counter() - start)


async def batching_gain(
    kind: str,
    client: ModelPool,
    call: Callable[[Item, str], Awaitable[Any]],
    items: list[Item],
    args: argparse.Namespace,
) -> dict[str, float]:
    """The figures of one actor: images/s both ways, their ratio and the actor's batch sizes."""
    await call(items[0], "interactive")  # the actor is up and its model loaded
    serial = items[: max(len(items) // 4, 1)]
    results = await measure(
        args.rounds,
        {
            "actor": lambda: concurrent(lambda item: call(item, "batch"), items, args.callers),
            "serial": lambda: one_at_a_time(lambda item: call(item, "interactive"), serial),
        },
    )
    for name, (median, values) in results.items():
        print(f"{kind:8} {name:6} {median:7.1f} images/s  (rounds: {', '.join(f'{v:.1f}' for v in values)})")
    stats = await client.stats()
    print(f"{kind:8} actor batch sizes {stats['batch_size_histogram']}")
    actor, serial_ips = results["actor"][0], results["serial"][0]
    return {
        f"{kind}_images_per_s": round(actor, 2),
        f"{kind}_serial_images_per_s": round(serial_ips, 2),
        f"{kind}_batching_gain": round(actor / serial_ips, 2),
        f"{kind}_actor_mean_batch": round(stats["items"] / stats["batches"], 1),
    }


async def through_actors(blip: Path, args: argparse.Namespace) -> dict[str, float]:
    ensure_ray(num_cpus=CPUS)
    try:
        describer = DescriberClient(str(blip), name="benchmark-describe")
        reader = OcrClient(name="benchmark-ocr")
        pictures = [(encode(photo(seed, PHOTO_SIZE), quality=88), "general") for seed in range(args.images)]
        figures = await batching_gain(
            "describe", describer, lambda item, lane: describer.describe([item], lane), pictures, args
        )
        figures |= await batching_gain(
            "ocr", reader, lambda item, lane: reader.read([item], lane), signs(args.images, 1), args
        )
        for client in (describer, reader):
            await client.close(kill=True)
        return figures
    finally:
        shutdown_ray()  # the service starts a Ray runtime of its own


def through_the_service(blip: Path, uploads: int, actor_cpus: float) -> float:
    """Images per minute, after a few images that start the model actors."""
    photos = [
        encode(photo(seed, UPLOAD_SIZE), quality=88) if seed % 2 else signs(1, seed, UPLOAD_SIZE)[0]
        for seed in range(uploads + CPUS)
    ]
    settings = {
        "engine__ray_num_cpus": str(CPUS),
        "models__describe__model": str(blip),
        "models__actors__num_cpus": str(actor_cpus),
    }
    with running_service(**settings) as service:
        asyncio.run(uploaded_and_processed(service.base, service.key, photos[:CPUS], DESCRIBED))
        seconds = asyncio.run(uploaded_and_processed(service.base, service.key, photos[CPUS:], DESCRIBED))
    print(f"service  {uploads / seconds * 60:7.1f} images/min ({uploads} images, {seconds:.1f} s)")
    return uploads / seconds * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48, help="images per round through each actor")
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=24, help="images uploaded to the service")
    parser.add_argument("--actor-cpus", type=float, default=0.1, help="the service's SCOPIX_MODELS__ACTORS__NUM_CPUS")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="scopix-blip-") as directory:
        blip = tiny_models.blip(Path(directory) / "blip")
        figures = asyncio.run(through_actors(blip, args))
        per_minute = through_the_service(blip, args.uploads, args.actor_cpus)
    figures |= {
        "end_to_end_images_per_min": round(per_minute, 1),
        "images": args.images,
        "callers": args.callers,
        "uploads": args.uploads,
        "service_actor_cpus": args.actor_cpus,
        "cpus": len(os.sched_getaffinity(0)),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
