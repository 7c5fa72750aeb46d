"""Run plain functions as Ray tasks. Retries belong to the durable job queue, not to Ray, so a
task is tried once; its id is what the API reports as a processing id. Each task carries the caller's trace
context and runs in a span of its own (cluster/tracing.py), under its memory limit (cluster/limits.py); its time
limit is the caller's, who cancels it (`cancel` kills its worker process)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ray

from cluster import tracing
from cluster.limits import memory_limit


def _traced(
    function: Callable[..., Any],
    name: str,
    export: tracing.Export | None,
    headers: Mapping[str, str],
    memory_mib: int | None,
    *args: Any,
) -> Any:
    """In the Ray worker: export as the caller does, and run `function` in a span continuing the caller's, within
    `memory_mib` MiB more than the worker holds (None: no limit)."""
    tracing.configure(export)
    with tracing.span_in(headers, f"task {name}"), memory_limit(memory_mib):
        return function(*args)


_remote = ray.remote(max_retries=0)(_traced)


def submit(
    function: Callable[..., Any],
    *args: Any,
    num_cpus: float = 1.0,
    name: str | None = None,
    memory_mib: int | None = None,
) -> ray.ObjectRef:
    """Start `function(*args)` on the cluster as a task named `name` (default: the function's); await the
    returned reference for its result, which raises `OverLimit` when the task passed `memory_mib`."""
    name = name or function.__name__
    options = _remote.options(num_cpus=num_cpus, name=name)
    return options.remote(function, name, tracing.current_export(), tracing.carrier(), memory_mib, *args)


def task_id(reference: ray.ObjectRef) -> str:
    return reference.task_id().hex()


def cancel(reference: ray.ObjectRef) -> None:
    """Best effort: the job returns to the queue either way."""
    ray.cancel(reference, force=True)
