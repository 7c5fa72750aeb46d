"""Traces from `scopix serve` to an OTLP collector: one trace follows a document from the client's upload request
through its jobs, the Ray task of its extraction (another process) and the embedder's model call; a failed job's
span says why; health probes are not traced."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import httpx
import pytest

from testkit.otlp_collector import ReceivedSpan, collector
from tests.support import sample_files
from tests.support.scopix_command import Server, cli, scopix_env

pytestmark = pytest.mark.e2e

SERVER_KIND, CONSUMER_KIND, ERROR = 2, 5, 2  # opentelemetry.proto.trace.v1 SpanKind / Status codes


def _wait_terminal(server: Server, headers: dict[str, str], file_id: str) -> None:
    url = f"{server.base}/api/v2/files/uploads-status/{file_id}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not httpx.get(url, headers=headers).json()["is_terminal"]:
        time.sleep(0.3)


def _one(spans: list[ReceivedSpan], name: str, file_id: str | None = None) -> ReceivedSpan:
    found = [
        span
        for span in spans
        if span.name == name and (file_id is None or span.attributes.get("scopix.file.id") == file_id)
    ]
    assert len(found) == 1, (name, [span.name for span in spans])
    return found[0]


def test_a_trace_follows_a_document_from_the_request_through_its_jobs(tmp_path: Path):
    with collector() as (received, endpoint):
        env = scopix_env(
            SCOPIX_TRACING__ENDPOINT=endpoint,
            SCOPIX_TRACING__SERVICE_NAME="scopix-e2e",
            SCOPIX_TRACING__EXPORT_DELAY_MS="200",
        )
        data_dir = tmp_path / "data"
        server = Server(data_dir, env)
        try:
            key = cli("keys", "create", "--tenant", "acme", "--data-dir", str(data_dir), env=env).splitlines()[-1]
            headers = {"Authorization": f"Bearer {key}"}
            client_trace, client_span = secrets.token_hex(16), secrets.token_hex(8)
            text = b"Damaged equipment must be reported to the site manager before the next shift starts."
            uploaded = httpx.post(
                f"{server.base}/api/v2/files/upload",
                headers={**headers, "traceparent": f"00-{client_trace}-{client_span}-01"},
                files={"file": ("report.txt", text, "text/plain")},
            )
            assert uploaded.status_code == 201, uploaded.text
            file_id = uploaded.json()["file_id"]
            corrupt = httpx.post(
                f"{server.base}/api/v2/files/upload",
                headers=headers,
                files={"file": ("broken.pdf", sample_files.pdf()[:300], "application/pdf")},
            ).json()["file_id"]
            assert httpx.get(f"{server.base}/health").status_code == 200
            _wait_terminal(server, headers, file_id)
            _wait_terminal(server, headers, corrupt)

            spans = received.wait_for(
                lambda spans: (
                    {"job embed_chunks", "model embed_text"} <= {span.name for span in spans}
                    and sum(span.name == "job document_text" for span in spans) == 2
                )
            )
        finally:
            assert server.stop() in (0, 130)  # SIGTERM unwinds like Ctrl-C

    ours = [span for span in spans if span.trace_id == client_trace]
    upload = _one(ours, "POST /api/v2/files/upload")
    extraction = _one(ours, "job document_text", file_id)
    task = _one(ours, "task document_text")
    embedding = _one(ours, "job embed_chunks", file_id)
    model = _one(ours, "model embed_text")

    # One trace, continuing the client's: request -> job -> its Ray task; job -> follow-up job -> model call.
    assert upload.parent_id == client_span and upload.kind == SERVER_KIND
    assert {span.name for span in ours} == {upload.name, extraction.name, task.name, embedding.name, model.name}
    assert extraction.parent_id == upload.span_id and extraction.kind == CONSUMER_KIND
    assert task.parent_id == extraction.span_id
    assert embedding.parent_id == extraction.span_id
    assert model.parent_id == embedding.span_id and model.attributes["scopix.model.lane"] == "batch"
    assert extraction.attributes["scopix.outcome"] == embedding.attributes["scopix.outcome"] == "completed"
    assert extraction.attributes["scopix.tenant.id"] == embedding.attributes["scopix.tenant.id"]
    # The extraction ran in a Ray worker, which exported its span itself.
    assert task.resource["process.pid"] != extraction.resource["process.pid"]
    assert {span.resource["service.name"] for span in spans} == {"scopix-e2e"}

    failed = _one(spans, "job document_text", corrupt)
    assert failed.trace_id != client_trace
    assert failed.status == ERROR and "corrupt" in failed.status_message
    assert failed.attributes["scopix.outcome"] == "failed"
    assert not [span for span in spans if "/health" in span.name]
    assert os.getpid() not in {span.resource["process.pid"] for span in spans}
