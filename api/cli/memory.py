"""Process memory policy for long-running servers."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3


def return_large_buffers_to_the_os(threshold: int = 1024 * 1024) -> None:
    """Serve allocations of `threshold` bytes or more (upload parts) from their own mappings.

    glibc otherwise raises its mmap threshold after the first large free, so later upload parts
    come from the heap and the process keeps their memory after the upload. A fixed threshold
    keeps RSS close to what is really in use. No-op where the C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is None or not libc.mallopt(_M_MMAP_THRESHOLD, threshold):
            raise OSError("mallopt refused")
    except (OSError, AttributeError) as exc:
        log.debug("malloc tuning unavailable: %s", exc)
