"""The real `scopix` command for end-to-end tests: a server started as a user starts it, and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.support.ports import free_port

SCOPIX = str(Path(sys.executable).parent / "scopix")  # the console script installed beside this Python


def scopix_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPIX_") and k != "DATABASE_URL"}
    return {**env, "SCOPIX_LOG_LEVEL": "warning", **extra}


class Server:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = env or scopix_env()
        self.process = subprocess.Popen(
            [SCOPIX, "serve", "--data-dir", str(data_dir), "--host", host, "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read().decode()[-3000:]
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("server did not become healthy")

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([SCOPIX, *args], env=env or scopix_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
