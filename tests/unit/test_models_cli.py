"""`scopix models status`: a progress bar redrawn in place in a terminal, plain lines elsewhere, and `--wait`
following a swap until it flips (the swap's state faked: this is about what the command prints)."""

from __future__ import annotations

import argparse
import io

import pytest

from api.cli import models
from models.registry import Task
from pipelines.inference import swap
from pipelines.inference.swap import SwapStatus
from store.model_state import Progress
from store.settings import Settings


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def swapping(done: int, total: int = 4) -> SwapStatus:
    return SwapStatus(Task.EMBED_TEXT, "old-model", "new-model", Progress(total, total - done, 0))


FLIPPED = SwapStatus(Task.EMBED_TEXT, "new-model", None, None)


@pytest.fixture
def states(monkeypatch: pytest.MonkeyPatch) -> list[list[SwapStatus]]:
    """What each call of swap.status answers, in turn."""
    answers = [[swapping(1)], [swapping(1)], [swapping(3)], [FLIPPED]]

    async def status(settings: Settings, task: Task | None = None) -> list[SwapStatus]:
        return answers.pop(0)

    monkeypatch.setattr(swap, "status", status)
    monkeypatch.setattr(models, "POLL_SECONDS", 0.0)
    return answers


async def run_status(out: io.StringIO, wait: bool) -> str:
    args = argparse.Namespace(models_command="status", task="embed_text", wait=wait)
    await models.run(args, Settings(), out)
    return out.getvalue()


async def test_a_terminal_gets_a_bar_redrawn_in_place_until_the_flip(states) -> None:
    printed = await run_status(Terminal(), wait=True)

    assert printed == (
        "embed_text: old-model -> new-model [#######.......................] 1/4 files\x1b[K\n"
        "\x1b[1F"
        "embed_text: old-model -> new-model [######################........] 3/4 files\x1b[K\n"
        "\x1b[1F"
        "embed_text: new-model is active\x1b[K\n"
    )
    assert states == []


async def test_elsewhere_each_change_is_a_plain_line(states) -> None:
    printed = await run_status(io.StringIO(), wait=True)

    assert printed.splitlines() == [
        "embed_text: old-model is active; backfilling new-model: 1/4 files",
        "embed_text: old-model is active; backfilling new-model: 3/4 files",
        "embed_text: new-model is active",
    ]


async def test_without_wait_it_prints_once(states) -> None:
    printed = await run_status(io.StringIO(), wait=False)

    assert printed == "embed_text: old-model is active; backfilling new-model: 1/4 files\n"
    assert len(states) == 3
