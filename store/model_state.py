"""Which model each task uses, and swapping it without downtime.

A task's row names its active model and, during a swap, its target. Readers use the active model only; writers
fill the spaces of both, target first (pipelines/document/chunk_embedding.py). The backfill fills the target's space for
every file that has outputs in the active space; what is left is always derived from the outputs themselves
(rows of the active model whose key has no row of the target), so a restart needs nothing but these rows and
the durable jobs. `flip` makes the target active in one UPDATE that holds only when nothing is left, and
`prune` drops the spaces of models that are neither active nor target. No row: the settings name the model.

Outputs live in a table of embedding spaces (store/embeddings.KEYS), or are a file's descriptions (store/ai_outputs.py):
`SPACES` names each kind as a relation whose rows carry `model_id`, `file_id`, `tenant` and a key column that
identifies a row within a space.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from store import ai_outputs, backfills, jobs, tenant_indexes
from store.embeddings import KEYS
from store.tables import Job

DESCRIPTIONS = "description"
# Each kind of output, as (relation, key column): a table of embedding spaces, or the files' descriptions.
SPACES: dict[str, tuple[str, str]] = {
    **{table: (table, keys[0]) for table, keys in KEYS.items()},
    DESCRIPTIONS: (ai_outputs.DESCRIPTIONS, "file_id"),
}
# What a flip does besides making the target active, in its transaction: (model id, its revision).
Adopt = Callable[[str, "str | None"], Awaitable[None]]

# Which models a task uses changes (a swap starts, flips or is given up) only under this lock, taken alone; a step
# that saves outputs holds it shared from its check of the models in use to its commit (`hold_models`).
_MODELS_LOCK = "SELECT {}(hashtextextended('models:' || {{}}::text, 0))"
_CHANGING, _HOLDING = _MODELS_LOCK.format("pg_advisory_xact_lock"), _MODELS_LOCK.format("pg_advisory_xact_lock_shared")

_COLUMNS = "task, active_model_id, active_revision, target_model_id, target_revision, backfill_started_at, activated_at"


@dataclass(frozen=True)
class ModelState:
    task: str
    active_model_id: str
    active_revision: str | None
    target_model_id: str | None
    target_revision: str | None
    backfill_started_at: datetime | None
    activated_at: datetime | None


@dataclass(frozen=True)
class Progress:
    """Files with outputs in the active space; of those, how many lack the target's, and how many of these
    wait on nothing because their last job failed during this backfill (`activate` again retries them)."""

    total: int
    remaining: int
    failed: int

    @property
    def done(self) -> int:
        return self.total - self.remaining


def _state(row: dict[str, Any]) -> ModelState:
    return ModelState(**{name: row[name] for name in ModelState.__dataclass_fields__})


def _table(table: str) -> tuple[str, str]:
    """The relation and its key column; both go into SQL as they are, so only the kinds of `SPACES` pass."""
    if table not in SPACES:
        raise ValueError(f"{table!r} holds no model outputs; one of {sorted(SPACES)}")
    return SPACES[table]


def _lacking(table: str, active: str, target: str) -> str:
    """A condition on `a`, a row of `table`: an output of the active model whose key has none of the target."""
    table, key = _table(table)
    return (
        f"a.model_id = {active} AND NOT EXISTS "
        f"(SELECT 1 FROM {table} t WHERE t.{key} = a.{key} AND t.model_id = {target})"
    )


# A job of the file (`f`) for the step that is under way, or that failed during this backfill (since {}: its start).
_ACTIVE_JOB = (
    "EXISTS (SELECT 1 FROM job j WHERE j.file_id = f.file_id AND j.step = {} AND j.status IN ('queued', 'running'))"
)
_FAILED_JOB = (
    "EXISTS (SELECT 1 FROM job j WHERE j.file_id = f.file_id AND j.step = {} AND j.status = 'failed'"
    " AND j.finished_at >= {})"
)


async def get(task: str) -> ModelState | None:
    rows = await Job.raw(f"SELECT {_COLUMNS} FROM model_state WHERE task = {{}}", task)
    return _state(rows[0]) if rows else None


async def hold_models(task: str) -> None:
    """Take the task's models lock shared until the caller's transaction ends: no swap starts, flips or is given up
    before the caller commits, so outputs saved for the models in use as read after this are seen by whatever
    changes them next (a new swap's backfill, a flip's check). Only inside a transaction, before it locks any row
    of `file` (a flip updates files under the lock)."""
    await Job.raw(_HOLDING, task)


async def swapping() -> list[ModelState]:
    """The tasks with a swap in progress."""
    rows = await Job.raw(f"SELECT {_COLUMNS} FROM model_state WHERE target_model_id IS NOT NULL ORDER BY task")
    return [_state(row) for row in rows]


async def states() -> list[ModelState]:
    return [_state(row) for row in await Job.raw(f"SELECT {_COLUMNS} FROM model_state ORDER BY task")]


async def start_swap(
    task: str,
    table: str,
    step: str,
    active: tuple[str, str | None],
    target: tuple[str, str | None],
) -> tuple[ModelState, int]:
    """Record the target (model id, revision), replacing a previous one, and queue the backfill of its space
    (`queue_backfill`), together; the active model given is recorded only when the task has no row yet (it is the
    settings' model then). Returns the state and how many files were queued."""
    async with Job._meta.db.transaction():
        await Job.raw(_CHANGING, task)
        rows = await Job.raw(
            f"""
            INSERT INTO model_state (task, active_model_id, active_revision, target_model_id, target_revision,
                backfill_started_at)
            VALUES ({{}}, {{}}, {{}}, {{}}, {{}}, now())
            ON CONFLICT (task) DO UPDATE SET target_model_id = excluded.target_model_id,
                target_revision = excluded.target_revision, backfill_started_at = now(), updated_at = now()
            RETURNING {_COLUMNS}
            """,
            task,
            *active,
            *target,
        )
        state = _state(rows[0])
        await _end_swap_backfill(task, "cancelled")  # a previous target's, given up for this one
        await backfills.create("swap", step, {"task": task, "model": target[0]})
        return state, await queue_backfill(state, table, step)


async def cancel_swap(task: str) -> str | None:
    """Forget the target (its space stays until pruned); the target that was, if any."""
    async with Job._meta.db.transaction():
        await Job.raw(_CHANGING, task)
        rows = await Job.raw(
            """
            UPDATE model_state s SET target_model_id = NULL, target_revision = NULL, backfill_started_at = NULL,
                updated_at = now()
            FROM (SELECT task, target_model_id FROM model_state WHERE task = {} FOR UPDATE) old
            WHERE s.task = old.task AND old.target_model_id IS NOT NULL
            RETURNING old.target_model_id
            """,
            task,
        )
        if rows:
            await _end_swap_backfill(task, "cancelled")
    return rows[0]["target_model_id"] if rows else None


async def _end_swap_backfill(task: str, status: str) -> None:
    """The running backfill of the task's swap (store/backfills.py) ends with the swap (in the caller's transaction):
    `completed` by its flip, `cancelled` when it is given up; its queued jobs are left to the step, which fills the
    models in use when it runs."""
    await Job.raw(
        "UPDATE backfill SET status = {}, finished_at = now(), updated_at = now()"
        " WHERE kind = 'swap' AND status = 'running' AND selection->>'task' = {}",
        status,
        task,
    )


async def _swap_backfill(task: str) -> uuid.UUID | None:
    rows = await Job.raw(
        "SELECT id FROM backfill WHERE kind = 'swap' AND status = 'running' AND selection->>'task' = {}", task
    )
    return rows[0]["id"] if rows else None


async def flip(task: str, table: str, target_model_id: str, adopt: Adopt | None = None) -> bool:
    """Make the target active, in one statement that holds only while it is still the target and every file
    with outputs in the active space has the target's too, and `adopt` its outputs in the same transaction;
    True when it flipped."""
    relation, _ = _table(table)
    async with Job._meta.db.transaction():
        await Job.raw(_CHANGING, task)
        rows = await Job.raw(
            f"""
            UPDATE model_state s SET active_model_id = s.target_model_id, active_revision = s.target_revision,
                target_model_id = NULL, target_revision = NULL, backfill_started_at = NULL, activated_at = now(),
                updated_at = now()
            WHERE s.task = {{}} AND s.target_model_id = {{}} AND NOT EXISTS (
                SELECT 1 FROM {relation} a WHERE {_lacking(table, "s.active_model_id", "s.target_model_id")})
            RETURNING s.active_revision
            """,
            task,
            target_model_id,
        )
        if rows:
            await _end_swap_backfill(task, "completed")
        if rows and adopt is not None:
            await adopt(target_model_id, rows[0]["active_revision"])
    return bool(rows)


async def learn_revision(task: str, model_id: str, revision: str) -> None:
    """Record the target's revision once a model actor has computed it (a local directory's is the digest of
    its weights, unknown when the swap started), so that the flip hands it on to the outputs."""
    await Job.raw(
        "UPDATE model_state SET target_revision = {}"
        " WHERE task = {} AND target_model_id = {} AND target_revision IS NULL",
        revision,
        task,
        model_id,
    )


async def progress(table: str, active_model_id: str, target_model_id: str, step: str, since: datetime) -> Progress:
    """How far the backfill of the target's space is (one pass over the active space's rows)."""
    table, key = _table(table)
    rows = await Job.raw(
        f"""
        WITH f AS (
            SELECT a.file_id, bool_or(NOT EXISTS (
                SELECT 1 FROM {table} t WHERE t.{key} = a.{key} AND t.model_id = {{}})) AS lacking
            FROM {table} a WHERE a.model_id = {{}} GROUP BY a.file_id
        )
        SELECT count(*) AS total, count(*) FILTER (WHERE lacking) AS remaining,
            count(*) FILTER (WHERE lacking AND {_FAILED_JOB} AND NOT {_ACTIVE_JOB}) AS failed
        FROM f
        """,
        target_model_id,
        active_model_id,
        step,
        since,
        step,
    )
    return Progress(rows[0]["total"], rows[0]["remaining"], rows[0]["failed"])


async def queue_backfill(state: ModelState, table: str, step: str) -> int:
    """Queue `step` in the backfill lane, naming the target in its payload, as jobs of the swap's backfill row
    (`scopix backfill list` shows it), for every file that lacks the target's outputs and whose `step` is neither
    under way (it fills the target anyway) nor failed since the backfill started (`activate` again retries those);
    how many were queued. Joins the caller's transaction."""
    if state.target_model_id is None:
        return 0
    relation, _ = _table(table)
    rows = await Job.raw(
        f"""
        SELECT f.file_id, f.tenant FROM (
            SELECT DISTINCT a.file_id, a.tenant FROM {relation} a WHERE {_lacking(table, "{}", "{}")}
        ) f
        WHERE NOT {_ACTIVE_JOB} AND NOT {_FAILED_JOB}
        ORDER BY f.file_id
        """,
        state.active_model_id,
        state.target_model_id,
        step,
        step,
        state.backfill_started_at,
    )
    payload, backfill_id = {"model_id": state.target_model_id}, await _swap_backfill(state.task)
    for row in rows:
        await jobs.enqueue(
            row["file_id"], row["tenant"], step, lane="backfill", payload=payload, backfill_id=backfill_id
        )
    if backfill_id is not None:
        await backfills.checkpoint(backfill_id, None, {"queued": len(rows)}, enqueued=True)
    return len(rows)


async def backfill_pending(step: str, target_model_id: str) -> bool:
    """Whether backfill jobs queued for the target are still queued or running."""
    rows = await Job.raw(
        """
        SELECT EXISTS (SELECT 1 FROM job WHERE lane = 'backfill' AND status IN ('queued', 'running')
            AND step = {} AND payload->>'model_id' = {}) AS pending
        """,
        step,
        target_model_id,
    )
    pending: bool = rows[0]["pending"]
    return pending


async def _kept(task: str, settings_model_id: str) -> set[str]:
    """The task's active and target models, its row locked for the transaction (the settings' model without one)."""
    rows = await Job.raw("SELECT active_model_id, target_model_id FROM model_state WHERE task = {} FOR UPDATE", task)
    return {rows[0]["active_model_id"], rows[0]["target_model_id"]} - {None} if rows else {settings_model_id}


async def prune(task: str, table: str, settings_model_id: str) -> dict[str, int]:
    """Drop every space of `table` whose model is neither the task's active nor its target (the settings' model
    is the active one when the task has no row): its rows, its HNSW indexes (the space's and its tenants') and its
    `embedding_space` row (or, for descriptions, those models' entries in `full_descriptions`). Returns the rows
    deleted per model. The task's row stays locked meanwhile, so no swap starts halfway; no tenant index is built
    meanwhile either (a running build is waited for)."""
    _table(table)
    if table == DESCRIPTIONS:
        async with Job._meta.db.transaction():
            return await ai_outputs.drop_descriptions(await _kept(task, settings_model_id))
    async with tenant_indexes.builds_paused(), Job._meta.db.transaction():
        keep = await _kept(task, settings_model_id)
        spaces = await Job.raw("SELECT model_id, index_name FROM embedding_space WHERE table_name = {}", table)
        dropped: dict[str, int] = {}
        for space in spaces:
            model_id = space["model_id"]
            if model_id in keep:
                continue
            # The lock store.embeddings.ensure_space takes: no space is created and dropped at once.
            await Job.raw("SELECT pg_advisory_xact_lock(hashtextextended({}, 0))", f"space:{table}:{model_id}")
            await Job.raw(f'DROP INDEX IF EXISTS "{space["index_name"]}"')
            await tenant_indexes.drop_space(table, model_id)
            deleted = await Job.raw(
                f"WITH gone AS (DELETE FROM {table} WHERE model_id = {{}} RETURNING 1) SELECT count(*) AS n FROM gone",
                model_id,
            )
            await Job.raw("DELETE FROM embedding_space WHERE table_name = {} AND model_id = {}", table, model_id)
            dropped[model_id] = deleted[0]["n"]
    return dropped
