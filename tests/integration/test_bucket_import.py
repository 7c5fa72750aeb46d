"""`scopix import` from a bucket of the embedded S3: images registered and processed as a tenant's files in the
backfill lane, a duplicate and an executable left out, and an import that stopped after its first batch resumed."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid

import pytest

from api.cli import imports
from api.cli.main import _parser
from store import backfills
from store.errors import InvalidInput
from store.keys import original_key
from store.tables import File, Job
from tests.support.callers import new_caller
from tests.support.sample_files import image

pytestmark = pytest.mark.integration

ELF = b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + bytes(200)


async def test_an_import_registers_a_buckets_images_once_refuses_executables_and_resumes(
    settings, engine, blobs
) -> None:
    caller = await new_caller()
    bucket = f"incoming-{uuid.uuid4().hex[:8]}"
    await blobs.client.create_bucket(Bucket=bucket)
    pictures = {f"shots/{name}.png": image("PNG", color=(n * 40, 10, 10)) for n, name in enumerate("abcd")}
    objects = {**pictures, "shots/f-again.png": pictures["shots/d.png"], "shots/e.png": ELF, "other/x.png": image()}
    for key, content in objects.items():
        await blobs.client.put_object(Bucket=bucket, Key=key, Body=content)
    argv = ["import", f"s3://{bucket}/shots/", "--tenant", caller.name, "--tags", "archive, 2024", "--batch-size", "2"]
    out = io.StringIO()

    first = await imports.run(_parser().parse_args([*argv, "--detach"]), settings, out)  # stops after one batch
    assert first.cursor == "shots/b.png" and first.counts == {"registered": 2}
    resume = ["import", "--resume", str(first.id), "--batch-size", "2"]
    ended = await asyncio.wait_for(imports.run(_parser().parse_args(resume), settings, out), 120)

    assert ended.status == "completed" and ended.kind == "import"
    assert out.getvalue().splitlines()[-1] == "4 registered, 1 duplicate, 1 refused, 0 already"
    rows = await File.select().where(File.tenant == caller.tenant_id)
    assert sorted(row["filename"] for row in rows) == ["a.png", "b.png", "c.png", "d.png"]
    for row in rows:
        content = pictures[f"shots/{row['filename']}"]
        assert row["sha256"] == hashlib.sha256(content).hexdigest() and row["size_bytes"] == len(content)
        assert row["object_key"] == original_key(caller.tenant_id, row["id"]) and row["upload_method"] == "IMPORT"
        assert row["tags"] == ["archive", "2024"] and row["media_type"] == "image" and row["format"] == "png"
        assert row["variant_status"] == row["embedding_status"] == "completed"
        stored = b"".join([chunk async for chunk in blobs.read_chunks(row["object_key"])])
        assert stored == content
    first_jobs = await Job.select(Job.step, Job.lane, Job.status).where(Job.backfill_id == first.id)
    assert sorted(job["step"] for job in first_jobs) == sorted(["embed_image", "ocr", "variants"] * 4)
    assert {(job["lane"], job["status"]) for job in first_jobs} == {("backfill", "completed")}
    copied = await blobs.keys(f"files/{caller.tenant_id}/")
    assert len([key for key in copied if key.endswith("/original")]) == 4  # no copy of the duplicate or refused

    again = await imports.run(_parser().parse_args(argv), settings, io.StringIO())  # the same bucket again
    assert bucket_counts(again) == {"duplicate": 5, "refused": 1}
    assert await File.count().where(File.tenant == caller.tenant_id) == 4


def bucket_counts(row: backfills.Backfill) -> dict[str, int]:
    return {name: count for name, count in row.counts.items() if count}


async def test_an_import_names_its_source_and_tenant(settings, database) -> None:
    for argv, message in (
        (["import", "https://example.com/x", "--tenant", "t"], "not an S3 location"),
        (["import", "s3://bucket/prefix"], "name the source"),
    ):
        with pytest.raises(InvalidInput, match=message):
            await imports.run(_parser().parse_args(argv), settings, io.StringIO())
