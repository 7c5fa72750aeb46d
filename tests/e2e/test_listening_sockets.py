"""`scopix serve` on the embedded default opens nothing to the network but the API port the operator asked
for: Postgres, SeaweedFS and every Ray process (GCS, raylet, workers, agents, model actors) listen on loopback,
with Ray's token authentication on as Ray sets it for a new local runtime."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support import sample_files
from tests.support.scopix_command import Server, cli, scopix_env

pytestmark = pytest.mark.e2e


def _listening(processes: list[psutil.Process]) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every TCP socket in LISTEN state."""
    found = []
    for process in processes:
        try:
            connections = process.net_connections(kind="inet")
            name = process.name()
        except psutil.NoSuchProcess:
            continue
        found += [(name, c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN]
    return found


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return (mapped or ip).is_loopback


def _processed(server: Server, headers: dict[str, str]) -> None:
    """Upload a photo and wait for its processing, so Ray's workers and model actors are running."""
    upload = httpx.post(
        f"{server.base}/api/v2/files/upload",
        headers=headers,
        files={"file": ("a.jpg", sample_files.image("JPEG", (320, 200)))},
    )
    assert upload.status_code == 201, upload.text
    url = f"{server.base}/api/v2/files/uploads-status/{upload.json()['file_id']}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not httpx.get(url, headers=headers).json()["is_terminal"]:
        time.sleep(0.3)
    assert httpx.get(url, headers=headers).json()["component_statuses"]["variant_status"] == "completed"


def test_only_the_api_port_listens_beyond_loopback(tmp_path: Path):
    data_dir = tmp_path / "data"
    env = {k: v for k, v in scopix_env().items() if k != "RAY_AUTH_MODE"}  # Ray's own default, as a user has it
    server = Server(data_dir, env, host="0.0.0.0")
    try:
        key = cli("keys", "create", "--tenant", "acme", "--data-dir", str(data_dir)).strip().splitlines()[-1]
        _processed(server, {"Authorization": f"Bearer {key}"})
        tree = [psutil.Process(server.process.pid), *server.children()]
        listening = _listening(tree)

        names = {name for name, _, _ in listening}
        assert {"gcs_server", "raylet", "weed"} <= names, listening
        assert any(name.startswith("ray::") for name in names), listening  # workers, actors and agents
        outside = [entry for entry in listening if not _loopback(entry[1])]
        assert outside == [("scopix", "0.0.0.0", server.port)], outside
        gcs = next(process for process in tree if process.name() == "gcs_server")
        assert gcs.environ().get("RAY_AUTH_MODE") == "token"
    finally:
        server.stop()
