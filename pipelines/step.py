"""What a processing step is: a plain function run on the cluster, the component status it
drives, and how its result becomes columns of the file row."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from store.objects import S3Location


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


@dataclass(frozen=True)
class Step:
    name: str
    component: str  # the status column this step drives, e.g. "variant_status"
    run: Callable[[S3Location, FileRef], Mapping[str, Any]]
    columns: tuple[str, ...] = ()  # result keys written to the file row as they are
    num_cpus: float = 1.0
    error_column: str = "error_message"

    def file_changes(self, result: Mapping[str, Any]) -> dict[str, Any]:
        return {self.component: "completed", **{name: result[name] for name in self.columns}}

    def failure_changes(self, error: str) -> dict[str, Any]:
        return {self.component: "failed", self.error_column: error}
