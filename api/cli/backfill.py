"""`scopix backfill`: re-run a processing step over a selection of files (`ray job submit -- scopix backfill ...`
on a cluster, or here on the local runtime), resume one, list them, cancel one. The engines (`scopix worker`,
`scopix serve`, or this process with `--work`) do the jobs; this command queues them and follows them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TextIO

from pipelines import backfill
from pipelines.backfill import Progress
from store import backfills
from store.backfills import Backfill
from store.errors import InvalidInput
from store.settings import Settings

log = logging.getLogger(__name__)
BAR_WIDTH = 30


def _moment(text: str) -> datetime:
    """An ISO date or date-time; UTC unless it says otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date such as 2026-11-30T12:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def backfill_id_arg(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a backfill id") from None


def add_commands(
    commands: argparse._SubParsersAction, with_data_dir: Callable[[argparse.ArgumentParser], None]
) -> None:
    run = commands.add_parser(
        "backfill",
        help="re-run a processing step over stored files; `backfill list`, `backfill cancel ID`",
        description="STEP is a processing step (variants, ocr, embed_image, describe, document_text, embed_chunks, "
        "...), or `list`, or `cancel` followed by a backfill id.",
    )
    run.add_argument("step", nargs="?", help="the step to re-run, or list, or cancel")
    run.add_argument("backfill_id", nargs="?", type=backfill_id_arg, help="with cancel: the backfill to cancel")
    run.add_argument("--resume", type=backfill_id_arg, metavar="ID", help="continue a backfill where it stopped")
    run.add_argument("--model", help="the model the outputs are made with (the step's model in use)")
    run.add_argument("--tenant", help="one tenant's files (its name or id)")
    run.add_argument("--media-type", action="append", default=[], help="only these media types (repeatable)")
    run.add_argument("--since", type=_moment, help="files created at or after (ISO date or date-time)")
    run.add_argument("--until", type=_moment, help="files created before")
    run.add_argument("--only", choices=backfills.ONLY, default="missing", help="failed, not completed (default), all")
    run.add_argument("--limit", type=positive, help="at most this many files")
    run.add_argument("--dry-run", action="store_true", help="count the files it would cover, queue nothing")
    run.add_argument("--batch-size", type=positive, default=500, help="files queued per checkpoint")
    add_driver_options(run, detach="queue the first batch and return (resume continues)")
    with_data_dir(run)


def add_driver_options(run: argparse.ArgumentParser, detach: str) -> None:
    """The options of a command that drives a backfill (`backfill`, `import`): its log, its engine, detaching."""
    run.add_argument("--log-every", type=positive, default=1000, help="without a terminal: a line per N jobs")
    run.add_argument("--work", action="store_true", help="also run a job engine in this process")
    run.add_argument("--detach", action="store_true", help=detach)


async def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> None:
    """Errors are store.errors.DomainError, which the command line prints."""
    if args.step == "list":
        _print_list(await backfills.recent(), out)
    elif args.step == "cancel":
        if args.backfill_id is None:
            raise InvalidInput("name the backfill to cancel: scopix backfill cancel ID", field="backfill_id")
        cancelled = await backfill.cancel(args.backfill_id)
        print(f"cancelled {args.backfill_id}: {cancelled} queued jobs cancelled; running ones finish", file=out)
    elif args.resume is not None:
        await _follow(await backfill.resume(args.resume), settings, args, out)
    elif args.step is None:
        raise InvalidInput("name a step, or list, or cancel ID, or --resume ID", field="step")
    else:
        request = backfill.Request(
            args.step, args.model, args.tenant, args.media_type, args.since, args.until, args.only, args.limit
        )
        if args.dry_run:
            count = await backfills.count(await backfill.selection_of(settings, request))
            print(f"{args.step}: {count} files would be queued (dry run; nothing queued)", file=out)
            return
        started = await backfill.start(settings, request)
        print(f"backfill {started.id}: {args.step} over {started.counts.get('expected', 0)} files", file=out)
        await _follow(started, settings, args, out)


async def _follow(started: Backfill, settings: Settings, args: argparse.Namespace, out: TextIO) -> None:
    size = args.batch_size

    async def queue(current: Backfill) -> Backfill:
        return await backfill.next_batch(current, size)

    await follow(started, queue, settings, args, out)


async def follow(
    started: Backfill,
    queue: Callable[[Backfill], Awaitable[Backfill]],
    settings: Settings,
    args: argparse.Namespace,
    out: TextIO,
) -> Backfill:
    """Drive a backfill or an import to its end (or queue one batch with --detach), showing its progress; `args`
    has batch_size, log_every, work and detach. Returns its last row."""
    if args.detach:
        queued = await queue(started)
        print(f"{queued.kind} {queued.id}: first batch queued; `--resume {queued.id}` goes on", file=out)
        return queued
    view = ProgressView(out, out.isatty(), args.log_every)
    async with _engine(settings, args.work):
        ended = await backfill.drive(started, queue, view.show, ahead=2 * args.batch_size)
    view.close()
    counts = await backfills.job_counts(ended.id)
    under_way = ended.counts.get("under_way", 0)
    summary = ", ".join(f"{counts.get(status, 0)} {status}" for status in backfill.DONE)
    print(f"{ended.kind} {ended.id} {ended.status}: {summary}; {under_way} were under way already", file=out)
    return ended


@contextlib.asynccontextmanager
async def _engine(settings: Settings, work: bool) -> AsyncIterator[None]:
    """With --work, a job engine in this process while the backfill runs (a cluster's workers do it otherwise)."""
    if not work:
        yield
        return
    from pipelines.worker import engine_for

    stop = asyncio.Event()
    running = asyncio.create_task(engine_for(settings).run(stop))
    try:
        yield
    finally:
        stop.set()
        await running


class ProgressView:
    """A bar with rate and ETA redrawn in place on a terminal; elsewhere a log line each `every` jobs done."""

    def __init__(self, out: TextIO, tty: bool, every: int) -> None:
        self.out, self.tty, self.every = out, tty, every
        self._logged = -1

    def show(self, progress: Progress) -> None:
        line = describe(progress, self.tty)
        if self.tty:
            self.out.write(f"\r{line}\x1b[K")
            self.out.flush()
            return
        crossed = progress.done // self.every != self._logged // self.every or progress.backfill.status != "running"
        if crossed and progress.done != self._logged:
            self._logged = progress.done
            print(line, file=self.out, flush=True)

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")


def describe(progress: Progress, bar: bool) -> str:
    done, total = progress.done, progress.total
    failed = progress.jobs.get("failed", 0)
    eta = progress.eta_seconds
    rate = f"{progress.rate:.1f} jobs/s" if progress.rate else "-- jobs/s"
    when = f"ETA {_duration(eta)}" if eta is not None else "ETA --"
    counts = f"{done}/{total} jobs" + (f", {failed} failed" if failed else "")
    if bar:
        filled = BAR_WIDTH * done // total if total else BAR_WIDTH
        return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {counts} {rate} {when}"
    return f"{progress.backfill.kind} {progress.backfill.id} {progress.backfill.step}: {counts}, {rate}, {when}"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _print_list(listed: list[Backfill], out: TextIO) -> None:
    print("id\tkind\tstep\tstatus\tqueued\tunder_way\tcreated\tfinished", file=out)
    for entry in listed:
        moments = (entry.created_at, entry.finished_at)
        when = ["-" if moment is None else moment.isoformat(timespec="seconds") for moment in moments]
        counts = [str(entry.counts.get(name, 0)) for name in ("queued", "under_way")]
        print("\t".join([str(entry.id), entry.kind, entry.step, entry.status, *counts, *when]), file=out)
