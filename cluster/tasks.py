"""Run plain functions as Ray tasks. Retries belong to the durable job queue, not to Ray, so a
task is tried once; its id is what the API reports as a processing id. Each task carries the caller's trace
context and runs in a span of its own (cluster/tracing.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ray

from cluster import tracing


def _traced(
    function: Callable[..., Any], name: str, export: tracing.Export | None, headers: Mapping[str, str], *args: Any
) -> Any:
    """In the Ray worker: export as the caller does, and run `function` in a span continuing the caller's."""
    tracing.configure(export)
    with tracing.span_in(headers, f"task {name}"):
        return function(*args)


_remote = ray.remote(max_retries=0)(_traced)


def submit(function: Callable[..., Any], *args: Any, num_cpus: float = 1.0, name: str | None = None) -> ray.ObjectRef:
    """Start `function(*args)` on the cluster as a task named `name` (default: the function's); await the
    returned reference for its result."""
    name = name or function.__name__
    options = _remote.options(num_cpus=num_cpus, name=name)
    return options.remote(function, name, tracing.current_export(), tracing.carrier(), *args)


def task_id(reference: ray.ObjectRef) -> str:
    return reference.task_id().hex()


def cancel(reference: ray.ObjectRef) -> None:
    """Best effort: the job returns to the queue either way."""
    ray.cancel(reference, force=True)
