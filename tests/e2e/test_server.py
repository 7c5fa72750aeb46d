"""The real `scopix` command: serve on the embedded default, keys while it runs, SIGTERM that stops
every child, a restart that finds the data again, health that notices S3 going away, and serve
against configured services that starts nothing embedded."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support import sample_files
from tests.support.scopix_command import SCOPIX, Server, cli, scopix_env

pytestmark = pytest.mark.e2e


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "data" / "postmaster.pid").read_text().splitlines()[0])


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pids: list[int], seconds: float = 30) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    return [pid for pid in pids if _alive(pid)]


def test_serve_keys_sigterm_and_restart(tmp_path: Path):
    data_dir = tmp_path / "data"
    server = Server(data_dir)
    weed_pid = json.loads((data_dir / "s3" / "server.json").read_text())["pid"]
    postmaster = _postmaster_pid(data_dir)
    try:
        output = cli("keys", "create", "--tenant", "acme", "--tier", "starter", "--data-dir", str(data_dir))
        key = output.strip().splitlines()[-1]
        assert key.startswith("sk_") and " " not in key
        headers = {"Authorization": f"Bearer {key}"}
        content = sample_files.image("JPEG", (320, 200))
        uploaded = httpx.post(f"{server.base}/api/v2/files/upload", headers=headers, files={"file": ("a.jpg", content)})
        assert uploaded.status_code == 201, uploaded.text
        file_id = uploaded.json()["file_id"]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = httpx.get(f"{server.base}/api/v2/files/uploads-status/{file_id}", headers=headers).json()
            if status["is_terminal"]:
                break
            time.sleep(0.3)
        assert status["component_statuses"]["variant_status"] == "completed", status
        redirect = httpx.get(f"{server.base}/api/v2/files/{file_id}/download", headers=headers)
        assert (
            hashlib.sha256(httpx.get(redirect.headers["location"]).content).digest() == hashlib.sha256(content).digest()
        )
        cli("migrate", "--data-dir", str(data_dir))
        assert "purged 0 files" in cli("purge", "--data-dir", str(data_dir))
        assert "professional tier" in cli("tenants", "set-tier", "acme", "professional", "--data-dir", str(data_dir))
        assert "500 prepaid credits" in cli("tenants", "add-credits", "acme", "500", "--data-dir", str(data_dir))
        shown = cli("tenants", "show", "acme", "--data-dir", str(data_dir)).splitlines()[-1].split("\t")
        assert shown[:6] == ["acme", "professional", "10000", "1", "500", "10499"]  # the upload used one credit
        assert _alive(weed_pid) and _alive(postmaster)  # the commands attached, and left them running
    finally:
        assert server.stop() in (0, 130)
    assert _wait_gone([weed_pid, postmaster]) == []

    again = Server(data_dir)
    postmaster = _postmaster_pid(data_dir)
    try:
        listing = httpx.get(f"{again.base}/api/v2/files", headers=headers).json()
        assert [item["id"] for item in listing["items"]] == [file_id]
        redirect = httpx.get(f"{again.base}/api/v2/files/{file_id}/download", headers=headers)
        assert httpx.get(redirect.headers["location"]).content == content

        # S3 going away turns health to 503.
        weed = json.loads((data_dir / "s3" / "server.json").read_text())["pid"]
        os.killpg(weed, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while httpx.get(f"{again.base}/health", timeout=10).status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.2)
        health = httpx.get(f"{again.base}/health", timeout=10)
        assert health.status_code == 503
        assert health.json()["s3"] == "unavailable" and health.json()["database"] == "ok"
    finally:
        again.stop()
    assert _wait_gone([postmaster]) == []


def test_configured_services_start_nothing_embedded(tmp_path: Path, services):
    env = scopix_env(
        DATABASE_URL=services.database.url,
        SCOPIX_STORAGE__ENDPOINT_URL=services.storage.endpoint_url,
        SCOPIX_STORAGE__ACCESS_KEY_ID=services.storage.access_key_id,
        SCOPIX_STORAGE__SECRET_ACCESS_KEY=services.storage.secret_access_key,
        SCOPIX_STORAGE__BUCKET="configured-bucket",
    )
    data_dir = tmp_path / "unused"
    server = Server(data_dir, env)
    try:
        names = {child.name() for child in server.children()}
        assert not {"postgres", "weed"} & names, names  # (a local Ray runtime is still started)
        assert not (data_dir / "postgres").exists() and not (data_dir / "s3").exists()
    finally:
        server.stop()


def test_worker_processes_jobs_and_stops_on_sigterm(tmp_path: Path):
    """`serve` without an engine queues the work; a separate `scopix worker` does it."""
    data_dir = tmp_path / "data"
    server = Server(data_dir, scopix_env(SCOPIX_ENGINE__SERVE="false"))
    try:
        key = cli("keys", "create", "--tenant", "acme", "--data-dir", str(data_dir)).strip().splitlines()[-1]
        headers = {"Authorization": f"Bearer {key}"}
        photo = sample_files.image("JPEG", (640, 480))
        file_id = httpx.post(
            f"{server.base}/api/v2/files/upload", headers=headers, files={"file": ("a.jpg", photo)}
        ).json()["file_id"]
        url = f"{server.base}/api/v2/files/uploads-status/{file_id}"
        time.sleep(1)
        assert httpx.get(url, headers=headers).json()["component_statuses"]["variant_status"] == "queued"
        worker = subprocess.Popen(
            [SCOPIX, "worker", "--data-dir", str(data_dir)],
            env=scopix_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not httpx.get(url, headers=headers).json()["is_terminal"]:
                time.sleep(0.3)
            assert httpx.get(url, headers=headers).json()["component_statuses"]["variant_status"] == "completed"
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=60)
        assert code == 0, worker.stderr.read().decode()[-3000:]
    finally:
        server.stop()


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_model_that_is_not_here_is_refused_at_start_up(tmp_path: Path, command: str):
    env = scopix_env(SCOPIX_MODELS__EMBED_TEXT__MODEL=str(tmp_path / "no-such-model"))
    done = subprocess.run(
        [SCOPIX, command, "--data-dir", str(tmp_path / "data")], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 1
    assert "SCOPIX_MODELS__EMBED_TEXT__MODEL" in done.stderr and "no-such-model" in done.stderr
    assert "hf download" in done.stderr  # how to provide it
    assert not (tmp_path / "data").exists()  # nothing was started
