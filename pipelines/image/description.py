"""The `describe` step: an image's AI description from the describe model actor (its batch lane), with a prompt
for the file's content category. Runs in the engine's process.

A description joins the file's `full_descriptions` with its model id and revision (another model's stay); the
active model's becomes its `upload_description`. During a swap both models describe (ModelClients.in_use), and a
model's existing description is kept rather than generated again; the descriptions are saved with the job's
completion, once the models in use are confirmed (ModelClients.still_in_use). No description is ever invented: a
file that asked for none, or a configured model that is not on this machine, ends `skipped` with the reason (the
latter naming the model and how to provide it) rather than failing and retrying what cannot succeed; a model that
generates nothing ends `failed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cluster.model_clients import DescriberClient
from cluster.model_pool import InferenceUnavailable
from models.registry import ModelUnavailable, Task
from pipelines.engine.step import FileRef, Result, files_lane
from pipelines.image.source import image_bytes, image_source
from pipelines.inference.clients import ModelClients
from store import ai_outputs
from store.step_objects import S3Location

COLUMNS = ("description_status", "description_error")
SETTING = "SCOPIX_MODELS__DESCRIBE__MODEL"


@dataclass(frozen=True)
class Inputs:
    ended: dict[str, Any] | None = None  # the outcome when there is nothing to describe (skipped, with the reason)
    image: bytes = b""
    content_category: str = ""
    describers: dict[str, DescriberClient] = field(default_factory=dict)  # the models in use, by model id
    kept: frozenset[str] = frozenset()  # those of them that described the image already (during a swap)


@dataclass(frozen=True)
class DescribeImage:
    location: S3Location
    describers: ModelClients[DescriberClient]

    async def load(self, file: FileRef) -> Inputs:
        source = await image_source(file)
        if not source.auto_describe:
            return Inputs(_ended("skipped", None))
        try:
            describers = await self.describers.in_use()
            for describer in describers.values():
                describer.spec  # noqa: B018  (resolves the model: reads config files, loads no weights)
        except (InferenceUnavailable, ModelUnavailable) as error:
            return Inputs(_ended("skipped", _unavailable(error)))
        described = await ai_outputs.described_models(file.id) if len(describers) > 1 else set()
        image = await image_bytes(self.location, source)
        return Inputs(None, image, source.content_category, describers, frozenset(described & set(describers)))

    async def run(self, inputs: Inputs) -> dict[str, Any]:
        """The outcome's columns, and `entries`: the new description of each model in use (by model id) but those
        kept; `models`: the models in use."""
        if inputs.ended is not None:
            return inputs.ended
        entries: dict[str, dict[str, Any]] = {}
        for model_id, describer in inputs.describers.items():
            if model_id in inputs.kept:
                continue
            try:
                [text] = await describer.describe([(inputs.image, inputs.content_category)], lane=files_lane())
            except ModelUnavailable as error:
                return _ended("skipped", _unavailable(error))
            model = await describer.provenance()
            if not text.strip():
                return _ended("failed", f"{model['model_id']} generated no description for this image")
            entries[model_id] = {
                "description": text.strip(),
                **model,
                "generated_at": datetime.now(UTC).isoformat(),
                "content_category": inputs.content_category,
            }
        completed = {"description_status": "completed", "description_error": None}
        return {**completed, "entries": entries, "models": list(inputs.describers)}

    async def save(self, file: FileRef, result: Result) -> None:
        if result["description_status"] != "completed":
            return
        in_use = await self.describers.still_in_use(result["models"])
        entries = [entry for model_id, entry in result["entries"].items() if model_id in in_use]
        if entries:
            await ai_outputs.add_descriptions(file.id, Task.DESCRIBE.value, entries)


def _unavailable(error: Exception) -> str:
    return f"the describe model ({SETTING}) is unavailable: {error}"


def _ended(status: str, reason: str | None) -> dict[str, Any]:
    return {"description_status": status, "description_error": reason, "entries": {}, "models": []}
