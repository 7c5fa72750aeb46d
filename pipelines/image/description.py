"""The `describe` step: an image's AI description from the describe model actor (its batch lane), with a prompt
for the file's content category. Runs in the engine's process.

A description joins the file's `full_descriptions` with its model id and revision (another model's stay); the
active model's becomes its `upload_description`. During a swap both models describe (ModelClients.fill), and a
model's existing description is kept rather than generated again. No description is ever invented: a file that
asked for none, or a configured model that is not on this machine, ends `skipped` with the reason (the latter
naming the model and how to provide it) rather than failing and retrying what cannot succeed; a model that
generates nothing ends `failed`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cluster.actors import InferenceUnavailable
from cluster.vision import DescriberClient
from models.registry import ModelUnavailable, Task
from pipelines.engine.step import FileRef
from pipelines.image.source import image_bytes, image_source
from pipelines.inference.clients import ModelClients
from store import ai_outputs
from store.step_objects import S3Location

COLUMNS = ("description_status", "description_error")
SETTING = "SCOPIX_MODELS__DESCRIBE__MODEL"


class _Skip(Exception):
    """The model is not on this machine: retrying cannot help."""


class _NothingGenerated(Exception):
    pass


async def describe_image(
    file: FileRef, location: S3Location, describers: ModelClients[DescriberClient]
) -> dict[str, Any]:
    source = await image_source(file)
    if not source.auto_describe:
        return _ended("skipped", None)
    data = await image_bytes(location, source)
    described: set[str] | None = None  # the models with a description of the file, read once if a swap asks

    async def describe(describer: DescriberClient, swapping: bool) -> dict[str, Any] | None:
        nonlocal described
        try:
            model_id = describer.spec.model_id  # resolves the model: reads config files, loads no weights
        except InferenceUnavailable as error:
            raise _Skip(str(error)) from error
        if swapping:
            described = await ai_outputs.described_models(file.id) if described is None else described
            if model_id in described:
                return None
        [text] = await describer.describe([(data, source.content_category)], lane="batch")
        model = await describer.provenance()
        if not text.strip():
            raise _NothingGenerated(f"{model['model_id']} generated no description for this image")
        return {
            "description": text.strip(),
            **model,
            "generated_at": datetime.now(UTC).isoformat(),
            "content_category": source.content_category,
        }

    try:
        described = await describers.fill(describe)
    except (_Skip, ModelUnavailable) as error:
        return _ended("skipped", f"the describe model ({SETTING}) is unavailable: {error}")
    except _NothingGenerated as error:
        return _ended("failed", str(error))
    entries = [entry for entry in described.values() if entry is not None]
    return {"description_status": "completed", "description_error": None, "entries": entries}


def _ended(status: str, reason: str | None) -> dict[str, Any]:
    return {"description_status": status, "description_error": reason, "entries": []}


async def save_description(file: FileRef, result: dict[str, Any]) -> None:
    if result["entries"]:
        await ai_outputs.add_descriptions(file.id, Task.DESCRIBE.value, result["entries"])
