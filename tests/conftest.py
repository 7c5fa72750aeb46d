"""Session-wide real parts: the embedded Postgres + pgvector and SeaweedFS S3, and the API served
by uvicorn on a free port, all started once per test session."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.callers import Caller, new_caller
from tests.support.served import served

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from store.services import local_services

    with local_services(tmp_path_factory.mktemp("scopix-data")) as settings:
        yield settings


@pytest.fixture(scope="session")
async def database(services: object) -> None:
    from store.database import run_migrations

    await run_migrations()


@pytest.fixture(scope="session")
async def server(services: object, database: None) -> AsyncIterator[str]:
    # Every test calls from 127.0.0.1: the session's server does not rate-limit client events or keys (tests of
    # limits serve their own), or a test that sends many would leave the next one none.
    unlimited = services.replace(client_events__burst=1_000_000, quotas__request_burst=1_000_000)
    async with served(unlimited) as url:
        yield url


@pytest.fixture(scope="session")
async def engine(services, database: None) -> AsyncIterator[object]:
    """A job engine on a real local Ray (2 CPUs) with the production steps and the test ones;
    the API server itself runs none, so tests that need processing ask for this."""
    from cluster.runtime import ensure_ray
    from pipelines.catalog import steps_for
    from pipelines.engine.runner import Engine, EngineConfig
    from store.step_objects import S3Location
    from tests.support.engine_steps import TEST_STEPS

    ensure_ray(num_cpus=2)
    config = EngineConfig(max_in_flight=2, lease_seconds=10, poll_seconds=0.1, backoff_base_seconds=0.2)
    # On 2 CPUs the text embedder's actor reserves none, so that the engine's two tasks run side by side.
    settings = services.replace(models__actors__num_cpus=0.0)
    running = Engine(S3Location.from_settings(services), {**steps_for(settings), **TEST_STEPS}, config)
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    yield running
    stop.set()
    await task


@pytest.fixture(scope="session")
async def blobs(services: object) -> AsyncIterator[object]:
    """A client of the same S3, to look behind the API."""
    from store.blob_store import BlobStore

    async with BlobStore(services) as store:
        await store.ensure_bucket()
        yield store


@pytest.fixture
async def client(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=120) as http:
        yield http


@pytest.fixture(scope="module")
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client that module-scoped fixtures can share (`client` is one per test)."""
    async with httpx.AsyncClient(base_url=server, timeout=120) as shared:
        yield shared


@pytest.fixture(scope="module")
def settings(services):
    """The services' settings with model actors that reserve no CPU, so that on 2 CPUs an engine's Ray tasks run
    beside them."""
    from cluster.runtime import ensure_ray

    ensure_ray(num_cpus=2)
    return services.replace(models__actors__num_cpus=0.0)


@pytest.fixture
async def alice(database: None) -> Caller:
    return await new_caller()


@pytest.fixture
async def bob(database: None) -> Caller:
    return await new_caller()
