"""The `describe` step: an image's AI description from the describe model actor (its batch lane), with a prompt
for the file's content category. Runs in the engine's process.

The description joins the file's `full_descriptions` with its model id and revision (another model's stay) and
becomes its `upload_description`. No description is ever invented: a file that asked for none, or a configured
model that is not on this machine, ends `skipped` with the reason (the latter naming the model and how to
provide it) rather than failing and retrying what cannot succeed; a model that generates nothing ends `failed`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cluster.actors import InferenceUnavailable
from cluster.vision import DescriberClient
from pipelines.image_input import image_bytes, image_source
from pipelines.step import FileRef
from store import vision
from store.objects import S3Location

COLUMNS = ("description_status", "description_error")
SETTING = "SCOPIX_DESCRIBE_MODEL"


async def describe_image(file: FileRef, location: S3Location, describer: DescriberClient) -> dict[str, Any]:
    source = await image_source(file)
    if not source.auto_describe:
        return _ended("skipped", None)
    try:
        describer.spec  # noqa: B018  (resolves the configured model: reads config files, loads no weights)
    except InferenceUnavailable as error:
        return _ended("skipped", f"the describe model ({SETTING}) is unavailable: {error}")
    data = await image_bytes(location, source)
    [text] = await describer.describe([(data, source.content_category)], lane="batch")
    model = await describer.provenance()
    if not text.strip():
        return _ended("failed", f"{model['model_id']} generated no description for this image")
    generated_at = datetime.now(UTC)
    entry = {
        "description": text.strip(),
        **model,
        "generated_at": generated_at.isoformat(),
        "content_category": source.content_category,
    }
    return {"description_status": "completed", "description_error": None, "entry": entry, "at": generated_at}


def _ended(status: str, reason: str | None) -> dict[str, Any]:
    return {"description_status": status, "description_error": reason, "entry": None}


async def save_description(file: FileRef, result: dict[str, Any]) -> None:
    if result["entry"] is not None:
        await vision.add_description(file.id, result["entry"], result["at"])
