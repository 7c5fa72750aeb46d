"""The file-row side of the vision steps: what they read of an image, and the AI outputs they merge into its row
without losing another model's (descriptions are kept per model; `ai_models` records, per task, the model id
and revision that produced the output stored now)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from store.tables import File


async def image_source(file_id: uuid.UUID) -> dict[str, Any] | None:
    """Where the image's bytes are (original and variants) and what describing it needs."""
    return (
        await File.select(
            File.object_key,
            File.variants,
            File.dimensions,
            File.format,
            File.auto_describe,
            File.content_category,
        )
        .where(File.id == file_id)
        .output(load_json=True)
        .first()
    )


async def record_models(file_id: uuid.UUID, models: dict[str, dict[str, str]]) -> None:
    """Merge {task: {"model_id", "revision"}} into the file's provenance; other tasks' entries stay."""
    await File.raw(
        "UPDATE file SET ai_models = coalesce(ai_models, jsonb_build_object()) || {}::jsonb WHERE id = {}",
        json.dumps(models),
        file_id,
    )


async def add_description(file_id: uuid.UUID, entry: dict[str, Any], generated_at: datetime) -> None:
    """Make `entry` ({description, model_id, revision, generated_at, content_category}) the file's AI description:
    appended to `full_descriptions`, where it replaces only an earlier one of the same model and revision."""
    await File.raw(
        """
        UPDATE file SET
            full_descriptions = coalesce((
                SELECT jsonb_agg(d ORDER BY n)
                FROM jsonb_array_elements(coalesce(full_descriptions, '[]'::jsonb)) WITH ORDINALITY AS x(d, n)
                WHERE (d->>'model_id', d->>'revision') IS DISTINCT FROM ({}::text, {}::text)
            ), '[]'::jsonb) || jsonb_build_array({}::jsonb),
            upload_description = {},
            description_generated_at = {},
            ai_models = coalesce(ai_models, jsonb_build_object()) || jsonb_build_object('description', {}::jsonb)
        WHERE id = {}
        """,
        entry["model_id"],
        entry["revision"],
        json.dumps(entry),
        entry["description"],
        generated_at,
        json.dumps({"model_id": entry["model_id"], "revision": entry["revision"]}),
        file_id,
    )
