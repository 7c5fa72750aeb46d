"""The file-row side of the vision steps: what they read of an image, and the AI outputs they merge into its row
without losing another model's (descriptions are kept per model; `ai_models` records, per task, the model id
and revision that produced the output stored now)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from store.tables import File


async def image_source(file_id: uuid.UUID) -> dict[str, Any] | None:
    """Where the image's bytes are (original and variants) and what describing it needs."""
    return (
        await File.select(
            File.object_key,
            File.size_bytes,
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


# The model whose output a file shows: the task's active one, or, with no row (no swap ever), the output's own.
_ACTIVE = "coalesce((SELECT active_model_id FROM model_state WHERE task = {}), e->>'model_id')"

# The stored descriptions as rows of a space (store/model_state.py): one per file and model described.
DESCRIPTIONS = (
    "(SELECT DISTINCT f.id AS file_id, f.tenant, d->>'model_id' AS model_id FROM file f"
    " CROSS JOIN LATERAL jsonb_array_elements(coalesce(f.full_descriptions, '[]'::jsonb)) d)"
)


async def record_active_model(file_id: uuid.UUID, output: str, task: str, models: list[dict[str, str]]) -> None:
    """Record as `ai_models[output]` the one of `models` ({"model_id", "revision"}, one per model filled) that is
    the task's active model, read in this statement, so that a flip committed meanwhile is never undone."""
    await File.raw(
        f"""
        UPDATE file SET ai_models = coalesce(ai_models, jsonb_build_object()) || coalesce((
            SELECT jsonb_build_object({{}}::text, e) FROM jsonb_array_elements({{}}::jsonb) e
            WHERE e->>'model_id' = {_ACTIVE} LIMIT 1), jsonb_build_object())
        WHERE id = {{}}
        """,
        output,
        json.dumps(models),
        task,
        file_id,
    )


async def add_descriptions(file_id: uuid.UUID, task: str, entries: list[dict[str, Any]]) -> None:
    """Add `entries` ({description, model_id, revision, generated_at, content_category}, one per model) to the
    file's `full_descriptions`, each replacing only an earlier one of the same model and revision. The active
    model's (read in this statement, as record_active_model does) becomes the `upload_description`."""
    await File.raw(
        f"""
        WITH new AS (SELECT {{}}::jsonb AS entries),
        shown AS (SELECT e FROM new, jsonb_array_elements(new.entries) e WHERE e->>'model_id' = {_ACTIVE} LIMIT 1)
        UPDATE file SET
            full_descriptions = coalesce((
                SELECT jsonb_agg(d ORDER BY n)
                FROM jsonb_array_elements(coalesce(full_descriptions, '[]'::jsonb)) WITH ORDINALITY AS x(d, n)
                WHERE NOT EXISTS (SELECT 1 FROM new, jsonb_array_elements(new.entries) e
                    WHERE (e->>'model_id', e->>'revision') IS NOT DISTINCT FROM (d->>'model_id', d->>'revision'))
            ), '[]'::jsonb) || (SELECT entries FROM new),
            upload_description = coalesce((SELECT e->>'description' FROM shown), upload_description),
            description_generated_at = coalesce(
                (SELECT (e->>'generated_at')::timestamptz FROM shown), description_generated_at),
            ai_models = coalesce(ai_models, jsonb_build_object()) || coalesce((SELECT jsonb_build_object(
                'description', jsonb_build_object('model_id', e->'model_id', 'revision', e->'revision')) FROM shown),
                jsonb_build_object())
        WHERE id = {{}}
        """,
        json.dumps(entries),
        task,
        file_id,
    )


async def described_models(file_id: uuid.UUID) -> set[str]:
    """The models whose descriptions of the file are stored."""
    rows = await File.select(File.full_descriptions).where(File.id == file_id).output(load_json=True)
    return {entry["model_id"] for entry in (rows[0]["full_descriptions"] or [])} if rows else set()


async def show_descriptions_of(model_id: str) -> None:
    """A swap's flip to `model_id`: every file it described shows its (last) description of it, in the caller's
    transaction."""
    await File.raw(
        """
        UPDATE file f SET upload_description = d->>'description',
            description_generated_at = (d->>'generated_at')::timestamptz,
            ai_models = coalesce(f.ai_models, jsonb_build_object()) || jsonb_build_object(
                'description', jsonb_build_object('model_id', d->'model_id', 'revision', d->'revision'))
        FROM (
            SELECT DISTINCT ON (g.id) g.id, d FROM file g
            CROSS JOIN LATERAL jsonb_array_elements(g.full_descriptions) WITH ORDINALITY AS x(d, n)
            WHERE jsonb_typeof(g.full_descriptions) = 'array' AND d->>'model_id' = {}
            ORDER BY g.id, n DESC
        ) latest
        WHERE f.id = latest.id
        """,
        model_id,
    )


async def show_image_embeddings_of(model_id: str, revision: str | None) -> None:
    """A swap's flip to `model_id`: every image in its space records it as its embedding's model."""
    await File.raw(
        """
        UPDATE file SET ai_models = coalesce(ai_models, jsonb_build_object())
            || jsonb_build_object('image_embedding', jsonb_build_object('model_id', {}::text, 'revision', {}::text))
        WHERE id IN (SELECT file_id FROM image_embedding WHERE model_id = {})
        """,
        model_id,
        revision,
        model_id,
    )


async def drop_descriptions(keep: set[str]) -> dict[str, int]:
    """Remove from every file the descriptions of models not in `keep` (the files keep showing the active one's);
    the descriptions removed per model."""
    rows = await File.raw(
        """
        WITH gone AS (
            SELECT f.id, d->>'model_id' AS model_id FROM file f
            CROSS JOIN LATERAL jsonb_array_elements(coalesce(f.full_descriptions, '[]'::jsonb)) d
            WHERE NOT (d->>'model_id' = ANY({}::text[]))
        ), pruned AS (
            UPDATE file f SET full_descriptions = (
                SELECT coalesce(jsonb_agg(d ORDER BY n), '[]'::jsonb)
                FROM jsonb_array_elements(f.full_descriptions) WITH ORDINALITY AS x(d, n)
                WHERE d->>'model_id' = ANY({}::text[]))
            WHERE f.id IN (SELECT id FROM gone)
        )
        SELECT model_id, count(*) AS n FROM gone GROUP BY model_id
        """,
        sorted(keep),
        sorted(keep),
    )
    return {row["model_id"]: row["n"] for row in rows}
