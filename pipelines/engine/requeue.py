"""Queue a file's step again, for recovery after a failure (the API's trigger-variants)."""

from __future__ import annotations

import uuid

from pipelines.engine.step import Step
from store import files, jobs


async def requeue(step: Step, file_id: uuid.UUID, tenant_id: uuid.UUID) -> tuple[uuid.UUID, bool]:
    """(job id, created). A new job puts the step's component back to `queued` and clears its error; when the step
    is already queued or running, that job is left to finish and its id returned with created=False."""
    job_id, created = await jobs.enqueue(file_id, tenant_id, step.name)
    if created:
        await files.set_columns(file_id, {step.component: "queued", step.error_column: None})
    return job_id, created
