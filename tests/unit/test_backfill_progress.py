"""What `scopix backfill` shows of its progress: a bar with rate and ETA redrawn in place on a terminal, a line
per N jobs elsewhere."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

from api.cli.backfill import ProgressView, describe
from pipelines.backfill import Progress
from store.backfills import Backfill


def progress(done: int, queued: int, *, rate: float, enqueued: bool = True, status: str = "running") -> Progress:
    row = Backfill(
        uuid.UUID(int=7), "backfill", "ocr", {}, status, None, {"expected": 200}, datetime.now(UTC),
        datetime.now(UTC) if enqueued else None, None,
    )  # fmt: skip
    return Progress(row, {"completed": done, "queued": queued - done}, 200, rate)


def test_a_terminal_gets_a_bar_with_rate_and_eta() -> None:
    assert describe(progress(50, 100, rate=5.0), bar=True) == (
        "[###############...............] 50/100 jobs 5.0 jobs/s ETA 0:00:10"
    )
    # Before the whole selection is queued, the total is the files expected.
    assert describe(progress(0, 20, rate=0.0, enqueued=False), bar=True).endswith("0/200 jobs -- jobs/s ETA --")


def test_elsewhere_a_line_each_n_jobs_and_at_the_end() -> None:
    out = io.StringIO()
    view = ProgressView(out, tty=False, every=10)
    for done in (0, 4, 9, 10, 15, 21, 21):
        view.show(progress(done, 25, rate=1.0))
    view.show(progress(25, 25, rate=1.0, status="completed"))

    shown = [line.split(": ")[1].split(",")[0] for line in out.getvalue().splitlines()]
    assert shown == ["0/25 jobs", "10/25 jobs", "21/25 jobs", "25/25 jobs"]
