"""Images through the real engine: OCR on the PP-OCR actor and the perceptual image embedding for every upload,
and descriptions from tiny random BLIP and LLaVA models saved to a directory and configured like any local
model, or from a configured model that is not on this machine."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import msgspec
import numpy as np
import pytest

from models.registry import PERCEPTUAL, PP_OCR, Task, resolve
from pipelines.catalog import steps_for
from pipelines.engine.runner import Engine, EngineConfig
from pipelines.engine.step import Step
from pipelines.image.plan import describe_step
from pipelines.inference import configured
from pipelines.intake.plan import DESCRIPTION_UNAVAILABLE
from store import image_embeddings, jobs
from store.tables import File
from testkit import tiny_models
from testkit.photos import encode, photo, text_photo
from tests.support.api_calls import listing, until_terminal, uploaded
from tests.support.callers import Caller

pytestmark = pytest.mark.integration

MISSING = "/nonexistent/describer"


async def processed(client: httpx.AsyncClient, caller: Caller, content: bytes, filename: str, **fields) -> str:
    file_id = await uploaded(client, caller, content, filename, **fields)
    final = await until_terminal(client, caller, file_id, seconds=120)
    assert final["unified_status"] == "completed", final
    return file_id


async def detail(client: httpx.AsyncClient, caller: Caller, file_id: str) -> dict:
    response = await client.get(f"/api/v2/files/{file_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_photo_with_text_gets_its_text_with_boxes_and_a_vector_and_no_invented_description(
    client, alice, engine
) -> None:
    content, (left, top, right, bottom) = text_photo("CAUTION WET FLOOR", at=(0.1, 0.4))
    file_id = await processed(client, alice, content, "sign.jpg")
    statuses = (await client.get(f"/api/v2/files/uploads-status/{file_id}", headers=alice.headers)).json()[
        "component_statuses"
    ]
    body = await detail(client, alice, file_id)

    assert statuses["variant_status"] == statuses["ocr_status"] == statuses["embedding_status"] == "completed"
    assert body["visible_text"] == "CAUTION WET FLOOR"
    [region] = body["text_regions"]
    box = region["bounding_box"]
    assert region["text"] == "CAUTION WET FLOOR" and 0.5 < region["confidence"] <= 1
    assert 0 <= box["x_min"] < box["x_max"] <= 1 and 0 <= box["y_min"] < box["y_max"] <= 1
    truth = {"x_min": left, "y_min": top, "x_max": right, "y_max": bottom}
    assert all(abs(box[name] - truth[name]) < 0.04 for name in truth), (box, truth)
    # No describe model is configured by default: no description, and the reason says how to provide one.
    assert body["description_status"] == "skipped" and body["primary_status"] == "completed"
    assert (
        body["description_error"] == DESCRIPTION_UNAVAILABLE
        and "SCOPIX_MODELS__DESCRIBE__MODEL" in DESCRIPTION_UNAVAILABLE
    )
    assert body["upload_description"] is None and body["full_descriptions"] is None
    assert body["has_full_description"] is False
    assert body["ai_models"]["ocr"] == {"model_id": PP_OCR, "revision": resolve(Task.OCR).revision}
    embedder = resolve(Task.EMBED_IMAGE)
    assert body["ai_models"]["image_embedding"] == {"model_id": PERCEPTUAL, "revision": embedder.revision}
    vector = await image_embeddings.vector_of(uuid.UUID(file_id), PERCEPTUAL)
    assert vector is not None and vector.shape == (embedder.dimension,)
    assert abs(float(np.linalg.norm(vector)) - 1) < 1e-3
    found = await listing(client, alice, search="caution floor", search_mode="visible_text")
    assert [item["id"] for item in found["items"]] == [file_id]


def test_a_configured_describe_model_follows_the_variants_and_none_does_not(services) -> None:
    def after_variants(describe_model: str | None) -> tuple[str, ...]:
        settings = services.replace(models__describe__model=describe_model)
        return steps_for(settings)["variants"].follow_ups({})

    assert after_variants(None) == ("ocr", "embed_image")
    assert after_variants("/models/blip") == ("ocr", "embed_image", "describe")


# --- descriptions, by an engine of their own


@pytest.fixture(scope="module")
def describers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("describers")
    return {
        "describe_blip": str(tiny_models.blip(root / "blip")),
        "describe_llava": str(tiny_models.llava(root / "llava")),
        "describe_missing": MISSING,
    }


@pytest.fixture(scope="module")
async def describing(services, engine, describers: dict[str, str]) -> AsyncIterator[dict[str, Step]]:
    """An engine whose describe steps have the describers of settings naming each model, under step names that the
    session's engine does not claim (the API's settings configure no describe model)."""
    steps, clients = {}, []
    for name, model in describers.items():
        settings = services.replace(models__describe__model=model, models__actors__num_cpus=0.0)
        clients.append(configured.describers(settings))
        steps[name] = replace(describe_step(engine.location, clients[-1]), name=name)
    config = EngineConfig(max_in_flight=2, lease_seconds=10, poll_seconds=0.05, backoff_base_seconds=0.2)
    own = Engine(engine.location, steps, config)
    stop = asyncio.Event()
    running = asyncio.create_task(own.run(stop))
    yield steps
    stop.set()
    await running
    for client in clients:
        await client.close(kill=True)


async def run_step(file_id: str, caller: Caller, step: str, seconds: float = 120) -> dict:
    job_id, _ = await jobs.enqueue(uuid.UUID(file_id), caller.tenant_id, step)
    for _ in range(int(seconds / 0.1)):
        job = await jobs.latest_job(uuid.UUID(file_id), step)
        if job.id == job_id and job.status in ("completed", "failed"):
            return msgspec.structs.asdict(job)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{step} still {job.status}")


def model_id(directory: str) -> str:
    return resolve(Task.DESCRIBE, directory).model_id


async def test_a_description_records_its_model_and_another_model_s_is_added_beside_it(
    client, alice, describing, describers
) -> None:
    file_id = await processed(client, alice, encode(photo(1)), "beam.jpg", content_category="blueprint")

    job = await run_step(file_id, alice, "describe_blip")
    body = await detail(client, alice, file_id)

    assert job["status"] == "completed" and job["attempts"] == 1
    assert body["description_status"] == "completed" and body["description_error"] is None
    [blip] = body["full_descriptions"]
    assert blip["model_id"] == model_id(describers["describe_blip"]) and blip["revision"].startswith("sha256:")
    assert blip["content_category"] == "blueprint" and blip["generated_at"]
    assert blip["description"].startswith("a blueprint of")  # the captioner's prompt for the category
    assert body["upload_description"] == blip["description"] and body["has_full_description"] is True
    assert body["description_generated_at"] and body["primary_status"] == "completed"
    assert body["ai_models"]["description"] == {"model_id": blip["model_id"], "revision": blip["revision"]}

    await run_step(file_id, alice, "describe_llava")
    body = await detail(client, alice, file_id)
    kept, llava = body["full_descriptions"]
    assert kept == blip and llava["model_id"] == model_id(describers["describe_llava"]) and llava["description"]
    assert body["upload_description"] == llava["description"]
    assert body["ai_models"]["description"]["model_id"] == llava["model_id"]

    await run_step(file_id, alice, "describe_blip")  # the same model again replaces only its own
    body = await detail(client, alice, file_id)
    assert [entry["model_id"] for entry in body["full_descriptions"]] == [llava["model_id"], blip["model_id"]]
    assert body["full_descriptions"][1]["description"] == blip["description"]  # greedy: the same words

    # The user's description is shown over the AI's; null gives the AI's back.
    patched = await client.patch(
        f"/api/v2/files/{file_id}", headers=alice.headers, json={"user_description": "Rusty beam, bay 4"}
    )
    assert patched.json()["user_description"] == "Rusty beam, bay 4"
    assert patched.json()["upload_description"] == blip["description"]
    restored = await client.patch(f"/api/v2/files/{file_id}", headers=alice.headers, json={"user_description": None})
    assert restored.json()["user_description"] is None and restored.json()["upload_description"]


async def test_a_configured_model_that_is_not_here_skips_the_description_saying_how_to_provide_it(
    client, alice, describing
) -> None:
    file_id = await processed(client, alice, encode(photo(2)), "pillar.jpg")

    job = await run_step(file_id, alice, "describe_missing")
    body = await detail(client, alice, file_id)

    assert job["status"] == "completed" and job["attempts"] == 1  # not failed, not retried
    assert body["description_status"] == "skipped" and body["primary_status"] == "completed"
    error = body["description_error"]
    assert MISSING in error and "SCOPIX_MODELS__DESCRIBE__MODEL" in error and "local directory" in error
    assert body["upload_description"] is None and body["full_descriptions"] is None


async def test_an_image_uploaded_without_auto_describe_is_not_described(client, alice, describing) -> None:
    file_id = await processed(client, alice, encode(photo(3)), "quiet.jpg", auto_describe=False)

    await run_step(file_id, alice, "describe_blip")
    body = await detail(client, alice, file_id)

    assert body["description_status"] == "skipped" and body["description_error"] is None
    assert body["upload_description"] is None and body["full_descriptions"] is None


async def test_an_image_being_embedded_can_still_be_deleted(client, alice, engine) -> None:
    """Only a document's text work holds a delete back; an image's vector may land on a hidden file."""
    file_id = await processed(client, alice, encode(photo(4)), "gone.jpg")
    await File.update({File.embedding_status: "processing"}).where(File.id == uuid.UUID(file_id))

    response = await client.delete(f"/api/v2/files/{file_id}", headers=alice.headers)

    assert response.status_code == 200, response.text
