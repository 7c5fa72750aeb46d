"""What a processing step is: a function run for one file (a Ray task near the bytes, or a coroutine in the
engine's process that calls model actors), the component statuses it drives, and how its result becomes
columns of the file row, rows of other tables, and follow-up steps."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Result = Mapping[str, Any]


class StepFailed(Exception):
    """A failure that retrying cannot fix (corrupt input, a decompression bomb): fail at once."""


@dataclass(frozen=True)
class FileRef:
    """What a step knows of its file: plain values, cheap to send to a Ray worker."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    object_key: str
    media_type: str
    content_type: str
    document_type: str | None = None


def _no_follow_ups(result: Result) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class Step:
    name: str
    component: str  # the status column this step drives, e.g. "variant_status"
    # A Ray task `run(location, file, *args)`; bytes travel by S3 key, only small facts come back.
    run: Callable[..., Result] | None = None
    columns: tuple[str, ...] = ()  # result keys written to the file row as they are
    num_cpus: float = 1.0
    error_column: str = "error_message"
    more_components: tuple[str, ...] = ()  # further status columns it drives (marked with the first)
    failure_extra: Mapping[str, Any] = field(default_factory=dict)  # file columns set when it fails for good
    # A coroutine `run_inline(file, *args)` in the engine's process, for steps that call model actors.
    run_inline: Callable[..., Awaitable[Result]] | None = None
    args: tuple[Any, ...] = ()  # passed after the file: options (picklable for Ray tasks), model clients
    # Stores what is not a file column (pages, chunks), in the transaction that completes the job.
    save: Callable[[FileRef, Result], Awaitable[None]] | None = None
    follow_ups: Callable[[Result], tuple[str, ...]] = _no_follow_ups  # steps queued on completion
    on_failure: Callable[[FileRef], Awaitable[None]] | None = None  # cleanup when it fails for good

    def __post_init__(self) -> None:
        if (self.run is None) == (self.run_inline is None):
            raise ValueError(f"step {self.name!r} needs exactly one of run (a Ray task) or run_inline")

    @property
    def components(self) -> tuple[str, ...]:
        return (self.component, *self.more_components)

    def file_changes(self, result: Result) -> dict[str, Any]:
        return {**dict.fromkeys(self.components, "completed"), **{name: result[name] for name in self.columns}}

    def failure_changes(self, error: str) -> dict[str, Any]:
        return {**dict.fromkeys(self.components, "failed"), self.error_column: error, **self.failure_extra}
