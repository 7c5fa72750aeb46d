"""`scopix models`: list each task's models, activate one (a swap without downtime), follow a swap, prune old
spaces. The engines of `scopix serve` and `scopix worker` run the backfill and flip the swap
(pipelines/inference/swap.py); these commands only start it and read how far it is."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import TextIO

from models.registry import Task
from pipelines.inference import swap
from pipelines.inference.swap import Activation, SwapStatus, TaskModels
from store.settings import Settings

POLL_SECONDS = 0.5
BAR_WIDTH = 30


def add_commands(
    commands: argparse._SubParsersAction, with_data_dir: Callable[[argparse.ArgumentParser], None]
) -> None:
    models = commands.add_parser("models", help="list, swap and prune the models of each task")
    verbs = models.add_subparsers(dest="models_command", required=True)
    tasks = "the task, e.g. embed_text (`scopix models list` names them all)"
    with_data_dir(verbs.add_parser("list", help="each task's registered, active and available models"))
    activate = verbs.add_parser(
        "activate", help="swap a task's model: backfill the new one in the background, then flip to it"
    )
    activate.add_argument("task", help=tasks)
    activate.add_argument("model", help="a registered model id, a local directory or a hub id in the local cache")
    with_data_dir(activate)
    status = verbs.add_parser("status", help="each task's active model and the progress of a swap")
    status.add_argument("task", nargs="?", help=tasks)
    status.add_argument("--wait", action="store_true", help="follow the swap until it has flipped")
    with_data_dir(status)
    prune = verbs.add_parser("prune", help="drop the stored outputs of a task's models neither active nor target")
    prune.add_argument("task", help=tasks)
    with_data_dir(prune)


async def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> None:
    """Errors are store.errors.DomainError, which the command line prints."""
    if args.models_command == "list":
        _print_models(await swap.models(settings), out)
    elif args.models_command == "activate":
        _print_activation(await swap.activate(settings, swap.parse_task(args.task), args.model), out)
    elif args.models_command == "status":
        task = swap.parse_task(args.task) if args.task else None
        await _status(settings, task, args.wait, out)
    else:
        dropped = await swap.prune(settings, swap.parse_task(args.task))
        for model_id, rows in dropped.items():
            print(f"dropped {model_id}: {rows} rows", file=out)
        if not dropped:
            print(f"{args.task}: nothing to prune", file=out)


def _print_models(listed: list[TaskModels], out: TextIO) -> None:
    for entry in listed:
        swapping = "" if entry.swappable else " (swapping not supported yet)"
        print(f"{entry.task}{swapping}", file=out)
        if not entry.models:
            print("  no model: none is registered or configured", file=out)
        for model in entry.models:
            roles = []
            if model.model_id == entry.active:
                roles.append(f"active, from the {entry.active_from}")
            if model.model_id == entry.target:
                roles.append("target")
            marks = f" [{'; '.join(roles)}]" if roles else ""
            where = "available" if model.available else f"not available: {model.reason}"
            print(f"  {model.model_id}{marks}: {where}", file=out)


def _print_activation(activation: Activation, out: TextIO) -> None:
    task, model = activation.task, activation.model_id
    if activation.outcome == "already_active":
        print(f"{task}: {model} is already active", file=out)
    elif activation.outcome == "cancelled":
        print(f"{task}: {model} stays active; the swap to {activation.cancelled} is given up", file=out)
    elif activation.outcome == "flipped":
        done = "nothing to backfill" if not activation.queued else f"{activation.queued} files backfilled already"
        print(f"{task}: {model} is active ({done})", file=out)
    else:
        print(
            f"{task}: backfilling {model}: {activation.queued} files queued in the backfill lane; it becomes active "
            f"once they are done (follow with `scopix models status {task} --wait`)",
            file=out,
        )


async def _status(settings: Settings, task: Task | None, wait: bool, out: TextIO) -> None:
    bar = out.isatty()
    shown: list[str] = []
    while True:
        statuses = await swap.status(settings, task)
        lines = [_line(status, bar) for status in statuses]
        if lines != shown:
            if bar and shown:
                out.write(f"\x1b[{len(shown)}F")  # back to the first line drawn, to redraw in place
            out.write("".join(f"{line}\x1b[K\n" if bar else f"{line}\n" for line in lines))
            out.flush()
            shown = lines
        if not wait or all(status.target is None for status in statuses):
            return
        await asyncio.sleep(POLL_SECONDS)


def _line(status: SwapStatus, bar: bool) -> str:
    if status.target is None or status.progress is None:
        return f"{status.task}: {status.active or 'no model'} is active"
    progress = status.progress
    failed = f", {progress.failed} failed" if progress.failed else ""
    counts = f"{progress.done}/{progress.total} files{failed}"
    if bar:
        filled = BAR_WIDTH * progress.done // progress.total if progress.total else BAR_WIDTH
        drawn = "#" * filled + "." * (BAR_WIDTH - filled)
        return f"{status.task}: {status.active} -> {status.target} [{drawn}] {counts}"
    return f"{status.task}: {status.active} is active; backfilling {status.target}: {counts}"
