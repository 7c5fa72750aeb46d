"""A model step's save against a model swap: it confirms the models in use inside its transaction, and no swap
starts, flips or is given up between that check and its commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from models.registry import Task
from pipelines.engine.step import Outdated
from pipelines.inference.clients import ModelClients
from store import model_state
from store.tables import Job

pytestmark = pytest.mark.integration

# Describe models that exist only as names: nothing here runs a model, and no engine of the session describes.
ACTIVE, TARGET, OTHER = "test/describer-a", "test/describer-b", "test/describer-c"


@pytest.fixture
async def swapping(database: None) -> AsyncIterator[None]:
    """A describe swap from ACTIVE to TARGET in progress (nothing to backfill); the task left to the settings after."""
    await model_state.start_swap(
        Task.DESCRIBE.value, model_state.DESCRIPTIONS, "describe", (ACTIVE, None), (TARGET, None)
    )
    yield
    await Job.raw("DELETE FROM model_state WHERE task = {}", Task.DESCRIBE.value)


def clients(services) -> ModelClients:
    def no_client(model_id: str) -> None:
        raise AssertionError("confirming the models in use builds no client")

    return ModelClients(services, Task.DESCRIBE, no_client)


async def test_a_save_without_an_output_of_a_model_in_use_is_outdated(services, swapping) -> None:
    async with Job._meta.db.transaction():
        assert await clients(services).still_in_use([TARGET, ACTIVE]) == [TARGET, ACTIVE]
    with pytest.raises(Outdated, match=TARGET):
        async with Job._meta.db.transaction():
            await clients(services).still_in_use([ACTIVE])


async def test_no_swap_changes_between_a_save_s_check_and_its_commit(services, swapping) -> None:
    """A swap's start, flip and cancel each wait for a save that checked the models in use to commit."""
    task, table = Task.DESCRIBE.value, model_state.DESCRIPTIONS
    changes = (
        lambda: model_state.start_swap(task, table, "describe", (ACTIVE, None), (OTHER, None)),
        lambda: model_state.flip(task, table, OTHER),
        lambda: model_state.cancel_swap(task),
    )
    for change in changes:
        checked = asyncio.Event()

        async def save(checked: asyncio.Event = checked) -> None:
            async with Job._meta.db.transaction():
                await clients(services).still_in_use([ACTIVE, TARGET, OTHER])
                checked.set()
                await asyncio.sleep(1.0)  # what a save writes

        saving = asyncio.create_task(save())
        await checked.wait()
        changing = asyncio.create_task(change())
        await asyncio.sleep(0.5)
        assert not changing.done(), "a swap changed while a save held the models in use"
        await saving
        await changing
    state = await model_state.get(task)
    assert (state.active_model_id, state.target_model_id) == (OTHER, None)
