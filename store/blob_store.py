"""The S3 blob store: streaming writes as multipart uploads, presigned reads and writes (direct uploads), deletes."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from store.presign import Presigner
from store.settings import Settings

log = logging.getLogger(__name__)


# The GET's response overrides, by their query parameter and botocore's name for them.
_BOTOCORE_PARAMS = {
    "response-content-disposition": "ResponseContentDisposition",
    "response-content-type": "ResponseContentType",
}


class BlobStoreError(RuntimeError):
    """S3 refused or could not be reached."""


def _client_config() -> Config:
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=32,
    )


def content_disposition(filename: str) -> str:
    """RFC 6266 attachment header: an ASCII fallback plus the exact UTF-8 name."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class BlobStore:
    """One long-lived S3 client per process; use as an async context manager."""

    def __init__(self, settings: Settings) -> None:
        if not settings.storage.endpoint_url and not settings.storage.access_key_id:
            log.info("no S3 endpoint configured: using the AWS default endpoint")
        self.bucket = settings.storage.bucket
        self.part_bytes = settings.storage.upload_part_bytes
        self.parts_in_flight = settings.storage.upload_parts_in_flight
        self._session = aioboto3.Session(
            aws_access_key_id=settings.storage.access_key_id,
            aws_secret_access_key=settings.storage.secret_access_key,
            region_name=settings.storage.region,
        )
        self._endpoint = settings.storage.endpoint_url
        self._public_endpoint = settings.storage.public_endpoint_url or settings.storage.endpoint_url
        self._stack = contextlib.AsyncExitStack()
        self.client: Any = None
        self._presigner: Any = None
        storage = settings.storage
        # Our own presigning where the URL's endpoint and static keys are known; else botocore's (AWS's endpoint
        # resolution, instance credentials, session tokens).
        self._fast_presigner = (
            Presigner(self._public_endpoint, storage.region, storage.access_key_id, storage.secret_access_key)
            if self._public_endpoint and storage.access_key_id and storage.secret_access_key
            else None
        )

    async def __aenter__(self) -> Self:
        config = _client_config()
        self.client = await self._stack.enter_async_context(
            self._session.client("s3", endpoint_url=self._endpoint, config=config)
        )
        self._presigner = (
            self.client
            if self._public_endpoint == self._endpoint
            else await self._stack.enter_async_context(
                self._session.client("s3", endpoint_url=self._public_endpoint, config=config)
            )
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    async def ensure_bucket(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            await self.client.create_bucket(Bucket=self.bucket)

    async def ping(self, timeout: float = 2.0) -> bool:
        """True when the bucket answers within the timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self.client.head_bucket(Bucket=self.bucket)
            return True
        except Exception as exc:  # health must report, not raise
            log.warning("S3 ping failed: %s", exc)
            return False

    def writer(self, key: str, content_type: str = "application/octet-stream") -> ObjectWriter:
        return ObjectWriter(self, key, content_type)

    async def presigned_get(
        self, key: str, expires_in: int, filename: str | None = None, content_type: str | None = None
    ) -> str:
        overrides: dict[str, str] = {}
        if filename is not None:
            overrides["response-content-disposition"] = content_disposition(filename)
        if content_type is not None:
            overrides["response-content-type"] = content_type
        if self._fast_presigner is not None:
            return self._fast_presigner.get_url(self.bucket, key, expires_in, overrides)
        params = {"Bucket": self.bucket, "Key": key} | {
            _BOTOCORE_PARAMS[name]: value for name, value in overrides.items()
        }
        url: str = await self._presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return url

    async def presigned_put(self, key: str, expires_in: int, size: int, content_type: str, sha256_b64: str) -> str:
        """A URL for one PUT of exactly `size` bytes whose SHA-256 is `sha256_b64` (where the server checks it)."""
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentLength": size,
            "ContentType": content_type,
            "ChecksumSHA256": sha256_b64,
            "ChecksumAlgorithm": "SHA256",  # signed, so the client may send x-amz-sdk-checksum-algorithm
        }
        url: str = await self._presigner.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)
        return url

    async def start_multipart(self, key: str, content_type: str) -> str:
        """Start a multipart upload whose parts the client sends; its S3 upload id."""
        created = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        upload_id: str = created["UploadId"]
        return upload_id

    async def presigned_part(self, key: str, upload_id: str, part_number: int, expires_in: int) -> str:
        params = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number}
        url: str = await self._presigner.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires_in)
        return url

    async def uploaded_part(self, key: str, upload_id: str, number: int) -> tuple[str, int] | None:
        """The ETag and size S3 holds for one part of a multipart upload (ListParts from just before it), or None."""
        listed = await self.client.list_parts(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumberMarker=number - 1, MaxParts=1
        )
        for item in listed.get("Parts", []):
            if item["PartNumber"] == number:
                return item["ETag"], item["Size"]
        return None

    async def complete_multipart(self, key: str, upload_id: str, parts: dict[int, str]) -> None:
        """Join the parts (number -> ETag) into the object."""
        listed = [{"PartNumber": number, "ETag": etag} for number, etag in sorted(parts.items())]
        await self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}
        )

    async def discard_upload(self, key: str, upload_id: str | None) -> None:
        """Leave nothing of an upload: its multipart (when one was started) aborted, its object deleted."""
        if upload_id is not None:
            with contextlib.suppress(ClientError):  # already completed or aborted
                await self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        await self.client.delete_object(Bucket=self.bucket, Key=key)

    async def size_of(self, key: str) -> int | None:
        """The object's size, or None when there is none."""
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        size: int = head["ContentLength"]
        return size

    async def read_chunks(
        self, key: str, chunk_bytes: int = 1024 * 1024, *, bucket: str | None = None
    ) -> AsyncIterator[bytes]:
        """The object's bytes in order (of another bucket when given: an import's source)."""
        response = await self.client.get_object(Bucket=bucket or self.bucket, Key=key)
        body = response["Body"]  # entering it yields the raw HTTP response, whose read() takes no size
        async with body:
            while chunk := await body.read(chunk_bytes):
                yield chunk

    async def exists(self, key: str) -> bool:
        try:
            await self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise

    async def listed_after(self, bucket: str, prefix: str, after: str | None, limit: int) -> list[tuple[str, int]]:
        """Up to `limit` (key, size) of the bucket's objects under `prefix` whose keys sort after `after`, in key
        order: a listing that resumes from the last key it handed out."""
        options: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": limit}
        if after is not None:
            options["StartAfter"] = after
        listed = await self.client.list_objects_v2(**options)
        return [(item["Key"], item["Size"]) for item in listed.get("Contents", [])]

    async def copy_in(self, bucket: str, key: str, to_key: str) -> None:
        """Copy another bucket's object into this one, server-side (no byte passes through this process)."""
        await self.client.copy_object(Bucket=self.bucket, Key=to_key, CopySource={"Bucket": bucket, "Key": key})

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=key)

    async def keys(self, prefix: str) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        found: list[str] = []
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return found

    async def delete_older(self, prefix: str, cutoff: datetime) -> int:
        """Delete every object under a prefix last written before `cutoff`; returns how many."""
        paginator = self.client.get_paginator("list_objects_v2")
        deleted = 0
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            batch = [{"Key": item["Key"]} for item in page.get("Contents", []) if item["LastModified"] < cutoff]
            if batch:
                await self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
                deleted += len(batch)
        return deleted

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under a prefix (a file's original and everything derived from it)."""
        keys = await self.keys(prefix)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            await self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)


class _PartBody(io.RawIOBase):
    """A read-only file over a part's buffer. Handing S3 a file instead of the bytes lets the HTTP
    client send the part in small pieces; given a bytes object it would copy the unsent part into
    the socket's buffer, doubling the memory each part in flight costs."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._view = memoryview(data)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}[whence]
        self._position = max(0, min(len(self._view), base + offset))
        return self._position

    def close(self) -> None:
        """Let go of the part's memory now, not when the HTTP client's objects are collected."""
        self._view.release()
        super().close()

    def read(self, size: int | None = -1) -> memoryview:
        """Slices of the part itself: the request signer and the HTTP client only hash and send
        what they read, so a copy would be wasted."""
        stop = len(self._view) if size is None or size < 0 else min(len(self._view), self._position + size)
        chunk = self._view[self._position : stop]
        self._position = stop
        return chunk

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


class ObjectWriter:
    """Streams bytes to one object: a single PUT when small, else a multipart upload whose parts
    go up concurrently (bounded), so memory stays near part size x (parts in flight + 1)."""

    def __init__(self, store: BlobStore, key: str, content_type: str) -> None:
        self._store = store
        self.key = key
        self._content_type = content_type
        self._buffer = bytearray(store.part_bytes)  # zero pages: only what is written costs memory
        self._filled = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(store.parts_in_flight)
        self._next_part = 1
        self._error: BaseException | None = None
        self.size = 0
        self._done = False

    async def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        self.size += len(view)
        while view:
            taken = min(len(view), len(self._buffer) - self._filled)
            self._buffer[self._filled : self._filled + taken] = view[:taken]
            self._filled += taken
            view = view[taken:]
            if self._filled == len(self._buffer):
                # The full buffer itself goes to the part upload (no copy); the next one is made
                # only once a slot is free, so at most `parts_in_flight + 1` buffers exist.
                await self._send_part(self._buffer)
                self._buffer, self._filled = bytearray(self._store.part_bytes), 0

    async def close(self) -> None:
        """Finish the object; on failure the partial upload is aborted before raising."""
        try:
            if self._upload_id is None:
                with _PartBody(self._written()) as body:
                    await self._store.client.put_object(
                        Bucket=self._store.bucket,
                        Key=self.key,
                        Body=body,
                        ContentLength=self._filled,
                        ContentType=self._content_type,
                    )
            else:
                if self._filled:
                    await self._send_part(self._written())
                await self._drain()
                parts = sorted(self._parts, key=lambda p: p["PartNumber"])
                await self._store.client.complete_multipart_upload(
                    Bucket=self._store.bucket,
                    Key=self.key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                )
            self._buffer, self._filled = bytearray(), 0
            self._done = True
        except (BotoCoreError, ClientError) as exc:
            await self.abort()
            raise BlobStoreError(f"could not store object: {exc}") from exc

    async def abort(self) -> None:
        """Leave nothing behind: cancel parts in flight, abort the multipart, delete the object."""
        for task in self._pending:
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        self._pending.clear()
        self._buffer, self._filled = bytearray(), 0
        client, bucket = self._store.client, self._store.bucket
        with contextlib.suppress(Exception):
            if self._upload_id is not None:
                await client.abort_multipart_upload(Bucket=bucket, Key=self.key, UploadId=self._upload_id)
        if self._done:
            with contextlib.suppress(Exception):
                await client.delete_object(Bucket=bucket, Key=self.key)
        self._done = False

    def _written(self) -> memoryview:
        return memoryview(self._buffer)[: self._filled]

    async def _send_part(self, part: bytearray | memoryview) -> None:
        self._raise_failed_part()
        if self._upload_id is None:
            try:
                created = await self._store.client.create_multipart_upload(
                    Bucket=self._store.bucket, Key=self.key, ContentType=self._content_type
                )
            except (BotoCoreError, ClientError) as exc:
                raise BlobStoreError(f"could not start upload: {exc}") from exc
            self._upload_id = created["UploadId"]
        await self._slots.acquire()
        number, self._next_part = self._next_part, self._next_part + 1
        task = asyncio.create_task(self._upload_part(number, part))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _upload_part(self, number: int, part: bytearray | memoryview) -> None:
        body = _PartBody(part)
        try:
            response = await self._store.client.upload_part(
                Bucket=self._store.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
                ContentLength=len(part),
            )
            self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        except Exception as exc:
            self._error = exc
            raise
        finally:
            body.close()
            self._slots.release()

    async def _drain(self) -> None:
        await asyncio.gather(*self._pending, return_exceptions=True)
        self._raise_failed_part()

    def _raise_failed_part(self) -> None:
        if self._error is not None:
            raise BlobStoreError(f"could not store a part: {self._error}") from self._error
