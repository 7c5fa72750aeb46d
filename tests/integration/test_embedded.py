"""The embedded dev servers: Postgres with pgvector and SeaweedFS S3, shared, stopped and restarted."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aioboto3
import asyncpg
import httpx
import psutil
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from store.database import engine
from store.embedded_postgres import EmbeddedPostgres, start_postgres
from store.embedded_s3 import EmbeddedS3, start_s3
from store.processes import pid_alive, ports_free, read_state, write_state

pytestmark = pytest.mark.integration

BUCKET = "scopix-test"
# Presigned URLs need SigV4 (botocore still signs them with SigV2 by default); path style keeps
# the bucket out of the host name, which 127.0.0.1 could not carry.
S3_CONFIG = Config(signature_version="s3v4", s3={"addressing_style": "path"})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedded")


@pytest.fixture(scope="module")
def postgres(data_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = start_postgres(data_dir)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3(data_dir: Path) -> Iterator[EmbeddedS3]:
    server = start_s3(data_dir, BUCKET)
    yield server
    server.stop()


def s3_client(server: EmbeddedS3, secret: str | None = None, key: str | None = None) -> Any:
    session = aioboto3.Session(
        aws_access_key_id=key or server.access_key_id,
        aws_secret_access_key=secret or server.secret_access_key,
        region_name=server.region,
    )
    return session.client("s3", endpoint_url=server.endpoint_url, config=S3_CONFIG)


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "data" / "postmaster.pid").read_text().split()[0])


def weed_processes(data_dir: Path) -> list[psutil.Process]:
    """Running weed processes serving this data dir (exited ones have no command line any more)."""
    return [
        process
        for process in psutil.process_iter(["name", "cmdline"])
        if process.info["name"] == "weed" and any(str(data_dir) in arg for arg in process.info["cmdline"] or ())
    ]


def eventually(condition: Callable[[], bool], seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


# Postgres


async def test_postgres_has_pgvector(postgres: EmbeddedPostgres) -> None:
    assert postgres.owned
    connection = await asyncpg.connect(postgres.url)
    try:
        assert await connection.fetchval("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector") == 1.0
    finally:
        await connection.close()


async def test_postgres_second_start_attaches_and_owner_stops_it(tmp_path: Path) -> None:
    first = start_postgres(tmp_path)
    try:
        connection = await asyncpg.connect(first.url)
        await connection.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
        await connection.close()

        second = start_postgres(tmp_path)
        assert (second.owned, second.url) == (False, first.url)
        second.stop()  # not the owner: the server keeps running
        pid = postmaster_pid(tmp_path)
        assert pid_alive(pid)
    finally:
        first.stop()
    assert not pid_alive(pid)
    assert not (tmp_path / "postgres" / "data" / "postmaster.pid").exists()

    restarted = start_postgres(tmp_path)
    try:
        assert restarted.owned
        connection = await asyncpg.connect(restarted.url)
        assert await connection.fetchval("SELECT v FROM kept") == "still here"
        await connection.close()
    finally:
        restarted.stop()


def test_postgres_orphan_is_adopted(tmp_path: Path) -> None:
    orphaned = start_postgres(tmp_path)
    write_state(tmp_path / "postgres" / "owner.json", {"pid": dead_pid()})  # its owner was killed
    adopter = start_postgres(tmp_path)
    pid = postmaster_pid(tmp_path)
    assert adopter.owned and adopter.url == orphaned.url
    adopter.stop()
    assert not pid_alive(pid)


# S3


async def test_s3_put_get_with_generated_credentials(s3: EmbeddedS3, data_dir: Path) -> None:
    identities = data_dir / "s3" / "identities.json"
    assert identities.stat().st_mode & 0o777 == 0o600
    assert start_s3(data_dir, BUCKET).access_key_id == s3.access_key_id  # generated once
    async with s3_client(s3) as client:
        await client.put_object(Bucket=BUCKET, Key="a/hello.txt", Body=b"hello")
        response = await client.get_object(Bucket=BUCKET, Key="a/hello.txt")
        assert await response["Body"].read() == b"hello"


async def test_s3_presigned_urls_work_without_credentials(s3: EmbeddedS3) -> None:
    async with s3_client(s3) as client, httpx.AsyncClient() as http:
        put_url = await client.generate_presigned_url(
            "put_object", Params={"Bucket": BUCKET, "Key": "presigned"}, ExpiresIn=60
        )
        assert (await http.put(put_url, content=b"uploaded")).status_code == 200
        get_url = await client.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": "presigned"}, ExpiresIn=60
        )
        response = await http.get(get_url)
        assert (response.status_code, response.content) == (200, b"uploaded")


async def test_s3_presigned_url_expires(s3: EmbeddedS3) -> None:
    async with s3_client(s3) as client, httpx.AsyncClient() as http:
        await client.put_object(Bucket=BUCKET, Key="soon-gone", Body=b"x")
        url = await client.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": "soon-gone"}, ExpiresIn=1
        )
        await asyncio.sleep(2.1)
        response = await http.get(url)
        assert response.status_code == 403
        assert b"expired" in response.content


async def test_s3_refuses_wrong_credentials(s3: EmbeddedS3) -> None:
    async with s3_client(s3) as client:
        await client.put_object(Bucket=BUCKET, Key="secret", Body=b"x")
        url = await client.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": "secret"}, ExpiresIn=60
        )
    async with s3_client(s3, secret="not-the-secret") as client:
        with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
            await client.get_object(Bucket=BUCKET, Key="secret")
    async with s3_client(s3, key="SOMEBODYELSE") as client:
        with pytest.raises(ClientError, match="InvalidAccessKeyId"):
            await client.list_buckets()
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{s3.endpoint_url}/{BUCKET}/secret")).status_code == 403
        tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
        assert (await http.get(tampered)).status_code == 403


async def test_s3_multipart_upload(s3: EmbeddedS3) -> None:
    parts = [b"a" * (5 * 1024 * 1024), b"tail"]  # every part but the last must be >= 5 MiB
    async with s3_client(s3) as client:
        upload = await client.create_multipart_upload(Bucket=BUCKET, Key="multi")
        done = []
        for number, body in enumerate(parts, start=1):
            response = await client.upload_part(
                Bucket=BUCKET, Key="multi", UploadId=upload["UploadId"], PartNumber=number, Body=body
            )
            done.append({"PartNumber": number, "ETag": response["ETag"]})
        await client.complete_multipart_upload(
            Bucket=BUCKET, Key="multi", UploadId=upload["UploadId"], MultipartUpload={"Parts": done}
        )
        response = await client.get_object(Bucket=BUCKET, Key="multi")
        assert await response["Body"].read() == b"".join(parts)


# weed's own HTTP APIs (master, volume server, filer), each with a call that would answer without a client
# certificate: the object itself, on the filer; the topology; a volume server's status.
SIDE_DOORS = {"filer": "/buckets/{bucket}/side-door", "master": "/dir/status", "volume": "/status"}
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")  # + empty SETTINGS


def grpc_answers(port: int, context: ssl.SSLContext | None) -> bool:
    """Whether a gRPC port answers an HTTP/2 client (its SETTINGS frame) over TLS with `context`, or in plain text."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            stream = context.wrap_socket(raw, server_hostname="127.0.0.1") if context else raw
            stream.sendall(HTTP2_PREFACE)
            reply = stream.recv(9)
        except (ssl.SSLError, ConnectionError):
            return False
        return len(reply) == 9 and reply[3] == 0x04  # a SETTINGS frame


async def test_s3_side_doors_are_closed(s3: EmbeddedS3, data_dir: Path) -> None:
    """Only signed S3 requests reach the bytes: weed's internal HTTP and gRPC ports refuse a caller without our
    client certificate, and the filer refuses even a certified caller without a signed token."""
    async with s3_client(s3) as client:
        await client.put_object(Bucket=BUCKET, Key="side-door", Body=b"a tenant's original")
    ports = read_state(data_dir / "s3" / "server.json")["ports"]
    tls = data_dir / "s3" / "tls"
    certified = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    certified.load_cert_chain(str(tls / "node.crt"), str(tls / "node.key"))
    anonymous = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    for service, path in SIDE_DOORS.items():
        url = f"127.0.0.1:{ports[f'{service}.port']}{path.format(bucket=BUCKET)}"
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(f"http://{url}")).status_code == 400  # a TLS port: plain HTTP is refused
        async with httpx.AsyncClient(timeout=5, verify=anonymous) as http:
            with pytest.raises((httpx.TransportError, ssl.SSLError)):  # no client certificate: refused
                await http.get(f"https://{url}")
        async with httpx.AsyncClient(timeout=5, verify=certified) as http:
            response = await http.get(f"https://{url}")
            # With the certificate the door opens (so the refusals above are the certificate's doing), except the
            # filer's, which also wants a signed token.
            assert response.status_code == (401 if service == "filer" else 200), (service, response.status_code)
    for service in ("filer", "master", "volume", "s3"):
        port = ports[f"{service}.port.grpc"]
        assert not grpc_answers(port, None) and not grpc_answers(port, anonymous), service
        assert grpc_answers(port, certified), service
    assert (data_dir / "s3" / "security.toml").stat().st_mode & 0o777 == 0o600
    assert (tls / "node.key").stat().st_mode & 0o777 == 0o600


def test_s3_second_start_attaches(s3: EmbeddedS3, data_dir: Path) -> None:
    second = start_s3(data_dir, BUCKET)
    assert (second.owned, second.endpoint_url) == (False, s3.endpoint_url)
    second.stop()  # not the owner: the server keeps running
    assert weed_processes(data_dir)


async def test_s3_stop_then_restart_on_other_ports_keeps_objects(tmp_path: Path) -> None:
    state_file = tmp_path / "s3" / "server.json"
    first = start_s3(tmp_path, BUCKET)
    async with s3_client(first) as client:
        await client.put_object(Bucket=BUCKET, Key="kept", Body=b"still here")
    pid = read_state(state_file)["pid"]
    started = time.monotonic()
    first.stop()
    assert time.monotonic() - started < 10
    assert not pid_alive(pid) and not weed_processes(tmp_path)

    write_state(state_file, {k: v for k, v in read_state(state_file).items() if k != "ports"})
    second = start_s3(tmp_path, BUCKET)
    try:
        assert second.owned and second.endpoint_url != first.endpoint_url
        async with s3_client(second) as client:
            response = await client.get_object(Bucket=BUCKET, Key="kept")
            assert await response["Body"].read() == b"still here"

        # Its owner was killed but weed survived (possible off Linux): the next start adopts it.
        write_state(state_file, {**read_state(state_file), "owner_pid": dead_pid()})
        adopter = start_s3(tmp_path, BUCKET)
        assert adopter.owned and adopter.endpoint_url == second.endpoint_url
    finally:
        second.stop()
    assert not weed_processes(tmp_path)


def test_s3_dies_with_its_parent_and_the_next_start_ignores_the_stale_state(tmp_path: Path) -> None:
    state_file = tmp_path / "s3" / "server.json"
    code = (
        "import sys, pathlib, time; from store.embedded_s3 import start_s3; "
        "start_s3(pathlib.Path(sys.argv[1]), 'scopix-test'); print('up', flush=True); time.sleep(60)"
    )
    with subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True) as parent:
        try:
            assert parent.stdout is not None and parent.stdout.readline() == "up\n"
        finally:
            parent.kill()
    orphan = read_state(state_file)
    # Gone, and its ports released, so the restart reuses them (as after any crash, but sooner).
    assert eventually(lambda: not pid_alive(orphan["pid"]) and ports_free(list(orphan["ports"].values())))

    restarted = start_s3(tmp_path, BUCKET)
    try:
        assert restarted.owned and restarted.endpoint_url == orphan["endpoint_url"]
        assert read_state(state_file)["pid"] != orphan["pid"]
    finally:
        restarted.stop()
    assert not weed_processes(tmp_path)


async def test_resolved_services_reach_the_engine_and_not_the_environment(services) -> None:
    """The session's services were resolved by `local_services`: the embedded addresses come back as settings and
    the process's engine connects there; the environment is left as it was (child processes are handed them)."""
    assert services.database.url and services.storage.endpoint_url
    assert os.environ.get("DATABASE_URL") != services.database.url
    assert os.environ.get("SCOPIX_STORAGE__ENDPOINT_URL") != services.storage.endpoint_url
    connection = await engine().get_new_connection()
    try:
        port = await connection.fetchval("SELECT current_setting('port')")
        assert f"port={port}" in services.database.url
    finally:
        await connection.close()
