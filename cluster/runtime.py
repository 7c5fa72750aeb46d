"""Connect to a Ray cluster (the settings' engine.ray_address) or start a local Ray runtime."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import signal
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import ray
from ray._private import ray_constants

log = logging.getLogger(__name__)


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Start or join Ray once per process. Token auth is Ray's to decide from its own RAY_AUTH_MODE, as the
    process was started with it: a local runtime has a token unless it says `disabled`; a cluster sets its own.
    A local runtime listens on loopback only."""
    if ray.is_initialized():
        return
    with _own_signal_handlers():
        _init(address, num_cpus)
    log.info("ray ready: %s", ray.cluster_resources())


@contextlib.contextmanager
def _own_signal_handlers() -> Iterator[None]:
    """Ray installs a SIGTERM handler that aborts the process; the host process (uvicorn, the
    worker) has its own graceful shutdown, so its handlers are put back."""
    main = threading.current_thread() is threading.main_thread()
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)} if main else {}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def _init(address: str | None, num_cpus: int | None) -> None:
    joining = address or os.environ.get("RAY_ADDRESS")  # Ray's own variable names a cluster to join too
    if not joining or _is_loopback(joining):
        _node_on_loopback()
    ray.init(
        # Without an address Ray would join any cluster `ray start` left running on this machine: "local"
        # starts our own.
        address=address or (None if joining else "local"),
        num_cpus=None if joining else num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=False,
        namespace="scopix",
    )


def _node_on_loopback() -> None:
    """Ray binds its GCS, raylet, workers and agents to the node's address, and in its cluster mode takes
    the machine's external address for it (it even replaces a `_node_ip_address` of 127.0.0.1). A local
    runtime is a single node that nothing else joins: without cluster mode its address is 127.0.0.1, so
    none of Ray's ports is reachable from the network. Ray reads the flag when it picks the address."""
    ray_constants.ENABLE_RAY_CLUSTER = False


def _is_loopback(address: str) -> bool:
    """A local runtime's own address (another process of this machine joining it): in cluster mode Ray would
    replace its 127.0.0.1 by the machine's external address, where the runtime does not listen."""
    host = urlsplit(address if "://" in address else f"ray://{address}").hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def shutdown_ray() -> None:
    if ray.is_initialized():
        ray.shutdown()


def cluster_cpus() -> int:
    """Logical CPUs of the connected cluster: how many one-CPU steps can run at once."""
    return int(ray.cluster_resources().get("CPU", 1))
