"""A Ray cluster of two nodes on this machine, started as an operator starts one (`ray start`), for tests in which
a node dies. Everything it starts lives under a temporary directory of its own, by which its processes are found
and stopped (never `ray stop`, which stops every Ray on the machine). Nodes are declared dead within about a
second and a half of their raylet dying, rather than Ray's default quarter of a minute."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil

from tests.support.ports import free_port

RAY = str(Path(sys.executable).parent / "ray")
QUICK_DEATH = {"RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500"}


class TwoNodes:
    def __init__(self) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay short
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", **QUICK_DEATH}
        self.node2_port = free_port()
        self.address = ""

    def start(self) -> None:
        head = self._start(
            "--head", f"--port={free_port()}", "--num-cpus=2", "--include-dashboard=false",
            f"--dashboard-port={free_port()}", f"--temp-dir={self.temp_dir}",
        )  # fmt: skip
        found = re.search(r"ray start --address='([^']+)'", head)
        assert found, head
        self.address = found[1]
        self._start(
            f"--address={self.address}", "--num-cpus=2", f"--resources={json.dumps({'node2': 2})}",
            f"--node-manager-port={self.node2_port}",
        )  # fmt: skip

    def _start(self, *args: str) -> str:
        common = [
            "--disable-usage-stats",
            "--object-store-memory=100000000",
            f"--dashboard-agent-listen-port={free_port()}",
        ]
        done = subprocess.run([RAY, "start", *args, *common], env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout + done.stderr

    def raylets(self) -> dict[str, psutil.Process]:
        """{"head" | "node2": its raylet}."""
        found = {}
        for process in self._processes():
            with contextlib.suppress(psutil.Error):
                command = " ".join(process.cmdline())
                if "/raylet " in command or command.endswith("/raylet"):
                    found["node2" if f"--node_manager_port={self.node2_port}" in command else "head"] = process
        return found

    def task_names(self, node: str) -> set[str]:
        """The titles of the node's worker processes now (`ray::<task>` while one runs a task)."""
        raylet = self.raylets().get(node)
        names = set()
        for child in raylet.children(recursive=True) if raylet else []:
            with contextlib.suppress(psutil.Error):
                names.add(" ".join(child.cmdline()).strip())
        return names

    def kill_node2(self) -> None:
        """The node dies at once: its raylet and everything under it are killed."""
        raylet = self.raylets()["node2"]
        _kill([*raylet.children(recursive=True), raylet])

    def stop(self) -> None:
        processes = self._processes()
        _kill([child for process in processes for child in _children(process)] + processes)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _processes(self) -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if self.temp_dir in " ".join(process.cmdline()):
                    found.append(process)
        return found


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def _kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(processes, timeout=10)


@contextlib.contextmanager
def two_nodes() -> Iterator[TwoNodes]:
    nodes = TwoNodes()
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()
