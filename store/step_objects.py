"""Synchronous S3 access for processing steps, which run in Ray worker processes: a step gets an
`S3Location` (plain values, cheap to ship) and reads and writes objects by key."""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import boto3
from botocore.config import Config

from store.settings import Settings

# Steps read originals of up to 100 MB: small ones stay in memory, larger ones spill to disk.
SPOOL_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class S3Location:
    endpoint_url: str | None
    bucket: str
    access_key_id: str | None
    secret_access_key: str | None
    region: str

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Location:
        return cls(
            endpoint_url=settings.storage.endpoint_url,
            bucket=settings.storage.bucket,
            access_key_id=settings.storage.access_key_id,
            secret_access_key=settings.storage.secret_access_key,
            region=settings.storage.region,
        )


@functools.cache
def _client(location: S3Location) -> Any:
    """One client per location per worker process (boto3 clients are thread-safe)."""
    return boto3.client(
        "s3",
        endpoint_url=location.endpoint_url,
        aws_access_key_id=location.access_key_id,
        aws_secret_access_key=location.secret_access_key,
        region_name=location.region,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


@contextlib.contextmanager
def opened(location: S3Location, key: str) -> Iterator[IO[bytes]]:
    """The object as a seekable file, streamed from S3 into a spooled temporary file."""
    body = _client(location).get_object(Bucket=location.bucket, Key=key)["Body"]
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        shutil.copyfileobj(body, spool, 1024 * 1024)
        spool.seek(0)
        yield spool


def put(location: S3Location, key: str, data: bytes, content_type: str) -> None:
    _client(location).put_object(Bucket=location.bucket, Key=key, Body=data, ContentType=content_type)


def listed(location: S3Location, prefix: str) -> list[str]:
    """The keys of every object under `prefix`."""
    pages = _client(location).get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def delete_keys(location: S3Location, keys: list[str]) -> None:
    """Remove these objects (a step's outputs that no row will point to); idempotent."""
    client = _client(location)
    for start in range(0, len(keys), 1000):  # S3's most per request
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        client.delete_objects(Bucket=location.bucket, Delete={"Objects": batch, "Quiet": True})


def discard_upload(location: S3Location, key: str, upload_id: str | None) -> None:
    """Leave nothing of a direct upload: its multipart upload (if any) aborted, its object deleted; idempotent."""
    client = _client(location)
    if upload_id is not None:
        with contextlib.suppress(client.exceptions.NoSuchUpload):
            client.abort_multipart_upload(Bucket=location.bucket, Key=key, UploadId=upload_id)
    client.delete_object(Bucket=location.bucket, Key=key)


def abort_multipart(location: S3Location, key: str, upload_id: str) -> None:
    """Abort one multipart upload (its parts freed), leaving any object under its key; idempotent."""
    client = _client(location)
    with contextlib.suppress(client.exceptions.NoSuchUpload):
        client.abort_multipart_upload(Bucket=location.bucket, Key=key, UploadId=upload_id)


def objects_page(
    location: S3Location, prefix: str, after: str | None, limit: int
) -> tuple[list[tuple[str, datetime]], str | None]:
    """Up to `limit` objects under `prefix` after the key `after`, as (key, last modified), and the key to list
    after next (None: the listing is done)."""
    options: dict[str, Any] = {"Bucket": location.bucket, "Prefix": prefix, "MaxKeys": limit}
    if after is not None:
        options["StartAfter"] = after
    page = _client(location).list_objects_v2(**options)
    found = [(item["Key"], item["LastModified"]) for item in page.get("Contents", [])]
    return found, (found[-1][0] if found and page.get("IsTruncated") else None)


def multipart_page(
    location: S3Location, prefix: str, after: tuple[str, str] | None, limit: int
) -> tuple[list[tuple[str, str, datetime]], tuple[str, str] | None]:
    """Up to `limit` multipart uploads in progress under `prefix`, as (key, upload id, initiated), and the
    (key, upload id) to list after next (None: the listing is done)."""
    options: dict[str, Any] = {"Bucket": location.bucket, "Prefix": prefix, "MaxUploads": limit}
    if after is not None:
        options["KeyMarker"], options["UploadIdMarker"] = after
    page = _client(location).list_multipart_uploads(**options)
    found = [(item["Key"], item["UploadId"], item["Initiated"]) for item in page.get("Uploads", [])]
    following = (page["NextKeyMarker"], page["NextUploadIdMarker"]) if page.get("IsTruncated") else None
    return found, following
