"""`scopix import s3://BUCKET/PREFIX --tenant T`: register a bucket's objects as the tenant's files (copied into
the service's bucket, inspected and hashed as uploads are, duplicates skipped) and process them in the backfill
lane; resumable (`--resume ID`), cancellable and listed like a backfill (`scopix backfill list|cancel`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

from api.cli.backfill import add_driver_options, backfill_id_arg, follow, positive
from api.uploads import bucket_import
from api.uploads.bucket_import import Importer
from pipelines.backfill import resume
from store.backfills import Backfill
from store.blob_store import BlobStore
from store.errors import InvalidInput
from store.settings import Settings


def add_commands(
    commands: argparse._SubParsersAction, with_data_dir: Callable[[argparse.ArgumentParser], None]
) -> None:
    run = commands.add_parser("import", help="register objects already in S3 as a tenant's files and process them")
    run.add_argument("source", nargs="?", help="s3://BUCKET/PREFIX")
    run.add_argument("--tenant", help="the tenant whose files they become (its name or id)")
    run.add_argument("--tags", default="", help="comma-separated tags for every file")
    run.add_argument("--resume", type=backfill_id_arg, metavar="ID", help="continue an import where it stopped")
    run.add_argument("--batch-size", type=positive, default=100, help="objects registered per checkpoint")
    add_driver_options(run, detach="register the first batch and return")
    with_data_dir(run)


async def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> Backfill:
    """Errors are store.errors.DomainError, which the command line prints."""
    if args.resume is not None:
        started = await resume(args.resume)
    elif args.source is None or args.tenant is None:
        raise InvalidInput(
            "name the source and the tenant: scopix import s3://BUCKET/PREFIX --tenant T", field="source"
        )
    else:
        tags = [tag.strip() for tag in args.tags.split(",") if tag.strip()]
        started = await bucket_import.start(args.source, args.tenant, tags)
        print(f"import {started.id}: {args.source} for tenant {args.tenant}", file=out)
    async with BlobStore(settings) as blobs:
        ended = await follow(started, Importer(blobs, settings, args.batch_size).next_batch, settings, args, out)
    counts = bucket_import.summary(ended)
    print(", ".join(f"{count} {name}" for name, count in counts.items()), file=out)
    return ended
