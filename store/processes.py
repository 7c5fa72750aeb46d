"""Small helpers for the embedded dev servers: locks, ports, state files and stopping processes.

Both embedded servers are shared by every ``scopix`` command on the same data directory, so the
start-or-attach decision runs under a file lock, and who owns (and will stop) a server is written
down in a state file next to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil

LOCALHOST = "127.0.0.1"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) across processes."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports that are free on localhost right now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(_socket()) for _ in range(count)]
        for sock in sockets:  # keep all bound until the end so the OS hands out distinct ports
            sock.bind((LOCALHOST, 0))
        return [sock.getsockname()[1] for sock in sockets]


def ports_free(ports: Sequence[int]) -> bool:
    """Whether every port in ``ports`` can be bound on localhost right now."""
    with contextlib.ExitStack() as stack:
        for port in ports:
            sock = stack.enter_context(_socket())
            try:
                sock.bind((LOCALHOST, port))
            except OSError:
                return False
    return True


def _socket() -> socket.socket:
    """A TCP socket that, like servers' listening sockets, may bind a port still in TIME_WAIT."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists and has not exited (zombies count as exited)."""
    if not pid:
        return False
    try:
        return _running(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def read_state(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or an empty dict when it is missing or unreadable."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(path: Path, state: dict[str, Any], mode: int = 0o644) -> None:
    """Replace ``path`` atomically, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle, indent=2)
    tmp.replace(path)


def stop_process(pid: int, steps: Sequence[tuple[signal.Signals, float]], *, group: bool = False) -> None:
    """Send each signal in turn, waiting up to its seconds for the process to exit.

    With ``group`` the signals go to the process group led by ``pid`` (so helpers it spawned die
    too). Works for processes that are not our children (the waits poll); reaps them when they are.
    Raises RuntimeError if the process survives every step.
    """
    try:
        process = psutil.Process(pid)
        group = group and os.getpgid(pid) == pid
    except (psutil.NoSuchProcess, ProcessLookupError):
        return
    for sig, seconds in steps:
        try:
            if group:
                os.killpg(pid, sig)
            else:
                process.send_signal(sig)
        except (psutil.NoSuchProcess, ProcessLookupError):
            return
        if _exited(process, seconds):
            return
    raise RuntimeError(f"process {pid} is still running after {', '.join(s.name for s, _ in steps)}")


def _exited(process: psutil.Process, seconds: float) -> bool:
    """Wait up to ``seconds`` for the process to exit, reaping it when it is our child."""
    deadline = time.monotonic() + seconds
    while _running(process):
        if time.monotonic() > deadline:
            return False
        with contextlib.suppress(psutil.TimeoutExpired, psutil.NoSuchProcess):
            process.wait(0.05)
    return True


def _running(process: psutil.Process) -> bool:
    """Whether it still runs. A zombie has exited: its parent (often init, which in some containers
    reaps only every second or two) decides when it disappears."""
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
