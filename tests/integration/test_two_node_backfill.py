"""A backfill on a two-node Ray cluster started with `ray start`, whose second node dies half-way: the backfill's
driver (`scopix backfill --work`, as `ray job submit` would run it) finishes with every image processed exactly
once, and an upload made meanwhile is processed too.

Short in CI (100 images and their 300 jobs, about 60 s on 2 cores: two `ray start`s, the command's start, its model
actors, the node's death); set SCOPIX_TEST_CLUSTER_IMAGES=300 for the full size."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import pytest

from models.registry import PERCEPTUAL
from store import backfills
from store.blob_store import BlobStore
from store.keys import file_prefix
from store.settings import environment
from store.tables import File, Job
from tests.support.api_calls import until_terminal, uploaded
from tests.support.callers import new_caller
from tests.support.ray_nodes import two_nodes
from tests.support.sample_files import image
from tests.support.scopix_command import SCOPIX, scopix_env
from tests.support.stored_images import stored_images

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

IMAGES = int(os.environ.get("SCOPIX_TEST_CLUSTER_IMAGES", "100"))
STEPS = ("embed_image", "ocr", "variants")  # the backfilled step and the follow-ups it queues


async def test_a_backfill_survives_the_death_of_a_node_and_processes_every_file_once(
    services, database, client, alice, tmp_path
) -> None:
    owner = await new_caller()
    file_ids = await stored_images(services, owner.tenant_id, IMAGES)
    with two_nodes() as nodes:
        env = scopix_env(**environment(services), SCOPIX_ENGINE__RAY_ADDRESS=nodes.address, RAY_AUTH_MODE="disabled")
        argv = ["backfill", "variants", "--tenant", owner.name, "--only", "all", "--work", "--batch-size", "50"]
        log = (tmp_path / "driver.log").open("w")
        driver = subprocess.Popen([SCOPIX, *argv, "--log-every", "20"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            seen = await _until_node2_runs_a_step(nodes, driver)
            upload = await uploaded(client, alice, image(color=(4, 5, 6)), "during.jpg")
            nodes.kill_node2()
            killed_after = await _done_jobs(owner.name)
            final = await until_terminal(client, alice, upload, seconds=120)
            returned = await asyncio.to_thread(driver.wait, 180)
        finally:
            if driver.poll() is None:
                driver.kill()
            log.close()
        output = (tmp_path / "driver.log").read_text()

    assert "ray::variants" in seen, seen  # node 2 ran the backfill's tasks before it died
    assert killed_after < IMAGES * len(STEPS)  # ...half-way
    assert returned == 0, output[-3000:]
    upload_jobs = await Job.select(Job.step, Job.status, Job.error).where(Job.file_id == upload)
    assert final["unified_status"] == "completed", upload_jobs
    [backfill] = [row for row in await backfills.recent(1000) if row.selection.get("tenant_id") == str(owner.tenant_id)]
    assert backfill.status == "completed", output[-3000:]
    jobs = await Job.select(Job.file_id, Job.step, Job.status, Job.error).where(Job.backfill_id == backfill.id)
    # One job per file and step (follow-ups included), each completed: nothing missing, nothing run twice.
    assert sorted((job["file_id"], job["step"]) for job in jobs) == sorted((f, s) for f in file_ids for s in STEPS)
    assert {job["status"] for job in jobs} == {"completed"}, [job for job in jobs if job["status"] != "completed"][:3]
    rows = (
        await File.select(File.id, File.object_key, File.variants, File.variant_status)
        .where(File.id.is_in(file_ids))
        .output(load_json=True)
    )
    vectors = await Job.raw(
        "SELECT file_id, count(*) AS n FROM image_embedding WHERE model_id = {} AND file_id = ANY({}) GROUP BY file_id",
        PERCEPTUAL,
        file_ids,
    )
    assert sorted(row["file_id"] for row in vectors) == sorted(file_ids) and {row["n"] for row in vectors} == {1}
    async with BlobStore(services) as blobs:
        for row in rows:
            stored = set(await blobs.keys(file_prefix(row["object_key"])))
            made = {variant["key"] for variant in row["variants"].values()}
            assert row["variant_status"] == "completed" and stored == {row["object_key"], *made}


async def _until_node2_runs_a_step(nodes, driver: subprocess.Popen, seconds: float = 90) -> set[str]:
    """Poll node 2's worker processes until one runs a step's task; what they were."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert driver.poll() is None, "the backfill ended before node 2 ran anything"
        names = await asyncio.to_thread(nodes.task_names, "node2")
        if any(name.startswith("ray::variants") for name in names):
            return {name.split()[0] for name in names}
        await asyncio.sleep(0.02)
    raise AssertionError("node 2 never ran a step")


async def _done_jobs(tenant: str) -> int:
    rows = await Job.raw(
        "SELECT count(*) AS n FROM job j JOIN tenant t ON t.id = j.tenant WHERE t.name = {}"
        " AND j.backfill_id IS NOT NULL AND j.status = 'completed'",
        tenant,
    )
    return int(rows[0]["n"])
