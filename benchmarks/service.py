"""A real `scopix serve` on a fresh data directory, with one API key, for the benchmarks."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SCOPIX = Path(sys.executable).parent / "scopix"


@dataclass(frozen=True)
class Service:
    base: str
    key: str
    pid: int
    data_dir: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_service(**settings: str) -> Iterator[Service]:
    """Start the server (SCOPIX_* settings given as keyword arguments), wait for health, make a key."""
    data_dir = Path(tempfile.mkdtemp(prefix="scopix-bench-"))
    port = _free_port()
    env = {**os.environ, "SCOPIX_LOG_LEVEL": "warning", **{f"SCOPIX_{k.upper()}": v for k, v in settings.items()}}
    server = subprocess.Popen([str(SCOPIX), "serve", "--data-dir", str(data_dir), "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(900):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            time.sleep(0.2)
        created = subprocess.run(
            [str(SCOPIX), "keys", "create", "--tenant", "bench", "--data-dir", str(data_dir)],
            check=True, capture_output=True, text=True, env=env,
        )  # fmt: skip
        yield Service(base, created.stdout.strip().splitlines()[-1], server.pid, data_dir)
    finally:
        server.terminate()
        server.wait(timeout=120)
