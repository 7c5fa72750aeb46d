"""A backfill against the same work without the service, and what it costs uploads made meanwhile.

(a) Files/s of a backfill of `--images` stored photos with text through their perceptual embedding and their OCR
(two backfills, `embed_image` and `ocr`, run at once by the service's engine on a local Ray of `--width` CPUs),
against the same two models run in-process over a process pool of the same width (each worker loads both models
once, then embeds and reads its share of the images). Target: ratio >= 0.85.
(b) p95 seconds from an upload's POST to its file `completed` (variants, OCR, embedding), for `--uploads` single
uploads made one after another during that backfill, against the same with no backfill. Target: ratio <= 1.5.

The service is one process as `scopix serve` runs it: the API (uvicorn) and the job engine in one event loop, on
the embedded Postgres and S3. The last line is one JSON object.

    .venv/bin/python benchmarks/backfill.py [--images 2000] [--uploads 20] [--width 2]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

from benchmarks.service import _free_port  # noqa: E402
from models.registry import Task, load, resolve  # noqa: E402
from testkit.photos import text_photo  # noqa: E402

WORDS = ("CAUTION", "WET", "FLOOR", "EXIT", "PUMP", "VALVE", "BOILER", "DANGER", "HIGH", "VOLTAGE", "FIRE", "DOOR")
SIZE = (640, 360)
STEPS = ("embed_image", "ocr")
_models: dict[str, Any] = {}


def photos(count: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [
        text_photo(" ".join(rng.choice(WORDS, 2)), at=(rng.uniform(0.02, 0.3), rng.uniform(0.1, 0.7)), size=SIZE)[0]
        for _ in range(count)
    ]


def _load_models() -> None:
    _models["ocr"] = load(resolve(Task.OCR), threads=1)
    _models["embed"] = load(resolve(Task.EMBED_IMAGE), threads=1)


def _both(content: bytes) -> None:
    _models["embed"].predict([content])
    _models["ocr"].predict([content])


def pool_files_per_s(images: Sequence[bytes], width: int) -> tuple[float, float]:
    """The same two models over a process pool: each worker loads them once (not timed), then works through its
    share of the images one at a time, as the engine's jobs do. Files/s and the workers' CPU milliseconds per file."""
    with ProcessPoolExecutor(width, initializer=_load_models) as pool:
        list(pool.map(_both, images[:width]))  # every worker is up and loaded
        workers = psutil.Process().children()  # the pool's workers: nothing else runs yet
        used = sum(sum(worker.cpu_times()[:2]) for worker in workers)
        start = time.perf_counter()
        list(pool.map(_both, images, chunksize=8))
        files_per_s = len(images) / (time.perf_counter() - start)
        cpu_ms = (sum(sum(worker.cpu_times()[:2]) for worker in workers) - used) * 1000 / len(images)
        return files_per_s, cpu_ms


async def seed(settings: Any, tenant_id: uuid.UUID, images: Sequence[bytes]) -> None:
    """The images as stored files (bytes in S3, rows as an upload leaves them, their steps done), 500 a statement."""
    from store.keys import original_key
    from store.step_objects import S3Location, put
    from store.tables import File

    location = S3Location.from_settings(settings)
    now = datetime.now(UTC)
    rows = []
    for number, content in enumerate(images):
        file_id = uuid.uuid4()
        key = original_key(tenant_id, file_id)
        rows.append(
            File(
                id=file_id, tenant=tenant_id, media_type="image", filename=f"{number}.jpg", size_bytes=len(content),
                content_type="image/jpeg", format="jpeg", sha256=uuid.uuid4().hex * 2, object_key=key,
                upload_method="STREAMING", storage_target="default", content_category="general", auto_describe=False,
                variant_status="completed", ocr_status="completed", embedding_status="completed",
                description_status="skipped", created_at=now, updated_at=now,
            )
        )  # fmt: skip
    gate = asyncio.Semaphore(8)

    async def store(row: Any, content: bytes) -> None:
        async with gate:
            await asyncio.to_thread(put, location, row.object_key, content, "image/jpeg")

    await asyncio.gather(*(store(row, content) for row, content in zip(rows, images, strict=True)))
    for start in range(0, len(rows), 500):
        await File.insert(*rows[start : start + 500])


async def upload_latency(client: httpx.AsyncClient, content: bytes, name: str) -> float:
    """Seconds from the POST to the file's terminal status, which must be `completed`."""
    start = time.perf_counter()
    response = await client.post("/api/v2/files/upload", files={"file": (name, content, "image/jpeg")})
    response.raise_for_status()
    file_id = response.json()["file_id"]
    while True:
        status = (await client.get(f"/api/v2/files/uploads-status/{file_id}")).json()
        if status["is_terminal"]:
            assert status["unified_status"] == "completed", status
            return time.perf_counter() - start
        await asyncio.sleep(0.05)


async def uploads(client: httpx.AsyncClient, images: Sequence[bytes], tag: str) -> list[float]:
    return [await upload_latency(client, content, f"{tag}-{n}.jpg") for n, content in enumerate(images)]


def p95(values: Sequence[float]) -> float:
    return float(np.percentile(values, 95))


@contextlib.asynccontextmanager
async def service(settings: Any) -> AsyncIterator[str]:
    """The API and a job engine in this process, as `scopix serve` runs them."""
    import uvicorn

    from api.app import create_app
    from pipelines.worker import engine_for
    from store.database import pooled

    async with pooled(8, min_size=1):  # one pool, which the app uses too
        engine = engine_for(settings)
        stop = asyncio.Event()
        working = asyncio.create_task(engine.run(stop))
        port = _free_port()
        app = create_app(settings, purge=False, processing=False)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                serving.result()  # it could not start: say why
            await asyncio.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            stop.set()
            await asyncio.gather(serving, working)


def cpu_seconds_by_part() -> dict[str, float]:
    """CPU seconds used so far by each part of the service on this machine: where a backfill's time goes."""
    parts: dict[str, float] = collections.defaultdict(float)
    for process in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
        times, command = process.info["cpu_times"], " ".join(process.info["cmdline"] or ())
        if times is None:
            continue
        if process.info["pid"] == os.getpid():
            part = "engine_and_api"
        elif "ModelActor" in command:
            part = "model_actors"
        elif process.info["name"] == "postgres":
            part = "postgres"
        elif process.info["name"] == "weed":
            part = "s3"
        elif "ray" in command:
            part = "ray"
        else:
            continue
        parts[part] += times.user + times.system
    return dict(parts)


async def backfill_run(settings: Any, tenant: str, count: int) -> tuple[float, dict[str, float]]:
    """Files/s of the two backfills run at once, and each part's CPU milliseconds per file meanwhile."""
    from pipelines import backfill

    before = cpu_seconds_by_part()
    started = time.perf_counter()
    runs = [await backfill.start(settings, backfill.Request(step, tenant=tenant, only="all")) for step in STEPS]
    await asyncio.gather(
        *(backfill.drive(run, lambda row: backfill.next_batch(row, 500), lambda _: None, ahead=1000) for run in runs)
    )
    elapsed = time.perf_counter() - started
    after = cpu_seconds_by_part()
    return count / elapsed, {part: round((after[part] - before.get(part, 0.0)) * 1000 / count, 1) for part in after}


async def measure(settings: Any, args: argparse.Namespace, images: list[bytes], singles: list[bytes]) -> dict:
    from store.database import run_migrations
    from store.tenants import create_key, ensure_tenant

    await run_migrations()
    tenant = await ensure_tenant("bench-backfill")
    key = await create_key(await ensure_tenant("bench-uploads"))
    await seed(settings, tenant.id, images)
    print(f"{len(images)} images stored", file=sys.stderr)
    async with (
        service(settings) as base,
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=300) as client,
    ):
        await uploads(client, singles[:2], "warm")  # the model actors are up
        idle = await uploads(client, singles[2:], "idle")
        running = asyncio.create_task(backfill_run(settings, tenant.name, len(images)))
        await asyncio.sleep(2.0)  # the backfill is under way
        during = await uploads(client, singles[2:], "during")
        files_per_s, cpu_ms = await running
    print(f"upload latency idle {statistics.median(idle):.2f} s median, {p95(idle):.2f} s p95", file=sys.stderr)
    print(f"upload latency during {statistics.median(during):.2f} s median, {p95(during):.2f} s p95", file=sys.stderr)
    return {"backfill_files_per_s": files_per_s, "cpu_ms_per_file": cpu_ms, "idle": idle, "during": during}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--width", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per status poll otherwise
    images, singles = photos(args.images, 1), photos(args.uploads + 2, 2)

    pool, pool_cpu_ms = pool_files_per_s(images, args.width)
    print(f"process pool of {args.width}: {pool:.1f} files/s, {pool_cpu_ms:.0f} CPU ms a file", file=sys.stderr)

    from store.services import local_services

    with local_services(Path(tempfile.mkdtemp(prefix="scopix-bench-backfill-"))) as settings:
        configured = settings.replace(engine__ray_num_cpus=args.width, log_level="warning")
        found = asyncio.run(measure(configured, args, images, singles))
    print(f"backfill: {found['backfill_files_per_s']:.1f} files/s", file=sys.stderr)
    idle, during = p95(found["idle"]), p95(found["during"])
    print(
        json.dumps(
            {
                "images": args.images,
                "width": args.width,
                "backfill_files_per_s": round(found["backfill_files_per_s"], 2),
                "pool_files_per_s": round(pool, 2),
                "throughput_ratio": round(found["backfill_files_per_s"] / pool, 3),
                "throughput_target": 0.85,
                "pool_cpu_ms_per_file": round(pool_cpu_ms, 1),
                "backfill_cpu_ms_per_file": found["cpu_ms_per_file"],
                "uploads": args.uploads,
                "upload_p95_s_idle": round(idle, 3),
                "upload_p95_s_during_backfill": round(during, 3),
                "latency_ratio": round(during / idle, 3),
                "latency_target": 1.5,
            }
        )
    )


if __name__ == "__main__":
    main()
