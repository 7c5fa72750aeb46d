"""Run plain functions as Ray tasks. Retries belong to the durable job queue, not to Ray, so a
task is tried once; its id is what the API reports as a processing id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ray
from ray.remote_function import RemoteFunction

_remote: dict[Callable[..., Any], RemoteFunction] = {}


def submit(function: Callable[..., Any], *args: Any, num_cpus: float = 1.0) -> ray.ObjectRef:
    """Start `function(*args)` on the cluster; await the returned reference for its result."""
    remote = _remote.get(function)
    if remote is None:
        remote = _remote[function] = ray.remote(max_retries=0)(function)
    return remote.options(num_cpus=num_cpus).remote(*args)


def task_id(reference: ray.ObjectRef) -> str:
    return reference.task_id().hex()


def cancel(reference: ray.ObjectRef) -> None:
    """Best effort: the job returns to the queue either way."""
    ray.cancel(reference, force=True)
