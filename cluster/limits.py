"""A task's memory limit, held where it runs: the Ray worker's address space may grow by the task's allowance and
no more (RLIMIT_AS, from what the worker already maps), for the task's duration only. An allocation past it
fails in the task (a MemoryError), which ends the task with `OverLimit` while the worker lives on for the next.

Ray's own `memory=` resource only schedules (it reserves, it does not enforce), and its memory monitor kills a
worker only when the whole node runs short, after the others suffered; a limit of our own answers for the task.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator

MIB = 1024 * 1024
_STATM = "/proc/self/statm"


class OverLimit(Exception):
    """The task passed one of its limits; str(exc) says which (`exceeded N MiB`)."""


@contextlib.contextmanager
def memory_limit(mib: int | None) -> Iterator[None]:
    """Run the block with at most `mib` MiB of address space beyond what the process holds now (no limit: None,
    or where the platform has no /proc to measure it)."""
    if mib is None or not os.path.exists(_STATM):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    allowed = _address_space() + mib * MIB
    if hard != resource.RLIM_INFINITY:
        allowed = min(allowed, hard)
    resource.setrlimit(resource.RLIMIT_AS, (allowed, hard))
    try:
        yield
    except MemoryError:
        raise OverLimit(f"exceeded {mib} MiB of memory") from None
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _address_space() -> int:
    with open(_STATM) as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
