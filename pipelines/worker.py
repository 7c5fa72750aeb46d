"""A job engine with the production steps, on Ray: what `scopix worker` and `scopix serve` run."""

from __future__ import annotations

from cluster import tracing
from cluster.runtime import cluster_cpus, ensure_ray
from pipelines.catalog import steps_for
from pipelines.engine.runner import Engine, EngineConfig
from pipelines.inference.swap import SwapKeeper
from pipelines.upload_reaper import IntentReaper
from store.settings import Settings
from store.step_objects import S3Location
from store.tenant_indexes import TenantIndexKeeper


def configure_tracing(settings: Settings) -> None:
    """Export this process's spans, and those of the Ray tasks it starts, as the settings say."""
    endpoint = settings.tracing.endpoint
    export = (
        tracing.Export(endpoint, settings.tracing.service_name, settings.tracing.export_delay_ms) if endpoint else None
    )
    tracing.configure(export)


def engine_for(settings: Settings) -> Engine:
    """Joins or starts Ray (blocking, a few seconds on first use) and builds the engine."""
    configure_tracing(settings)
    ensure_ray(settings.engine.ray_address, settings.engine.ray_num_cpus)
    cpus = cluster_cpus()
    # Twice the CPUs of uploads' jobs in flight: a task waits in Ray's queue while the engine records the one
    # before it, so no CPU idles between jobs. A backfill's jobs mostly wait on model actors, which batch what
    # many jobs send (a job's own work is a few database and S3 round trips), so it keeps more in flight; but it
    # runs Ray tasks on all CPUs but one at most, so an upload's task never queues behind a backlog.
    config = EngineConfig(
        max_in_flight=settings.engine.max_in_flight or max(2 * cpus, 2),
        backfill_max_in_flight=settings.engine.backfill_max_in_flight or max(8 * cpus, 2),
        backfill_tasks_max_in_flight=max(cpus - 1, 1),
        lease_seconds=settings.engine.lease_seconds,
        poll_seconds=settings.engine.poll_seconds,
        step_seconds=settings.limits.step_seconds,
        step_memory_mib=settings.limits.step_memory_mib,
    )
    location = S3Location.from_settings(settings)
    upkeep = (SwapKeeper(), TenantIndexKeeper(), IntentReaper(location, settings.storage.leftover_grace_seconds))
    return Engine(location, steps_for(settings), config, upkeep=upkeep)
