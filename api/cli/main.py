"""The `scopix` command: serve, worker, migrate, keys, tenants, purge, models, backfill, import."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path

from api.cli import backfill, imports, keys, models, tenants
from store.database import pooled, run_migrations
from store.errors import DomainError
from store.services import local_services
from store.settings import DATABASE, RAY, STORAGE, Settings, SettingsError, get_settings, require_services


def _with_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="where embedded data lives (default: $SCOPIX_DATA_DIR or ./.scopix)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scopix", description="Self-hostable Files API v2")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API (with embedded Postgres and S3 unless configured)")
    _with_data_dir(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    worker = commands.add_parser("worker", help="run a job engine: claim processing jobs and run them on Ray")
    _with_data_dir(worker)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    _with_data_dir(migrate)

    purge = commands.add_parser("purge", help="remove soft-deleted files past the retention window")
    _with_data_dir(purge)

    keys.add_commands(commands, _with_data_dir)
    tenants.add_commands(commands, _with_data_dir)
    models.add_commands(commands, _with_data_dir)
    backfill.add_commands(commands, _with_data_dir)
    imports.add_commands(commands, _with_data_dir)
    return parser


async def _migrate() -> None:
    # Piccolo reports progress on stdout; keep stdout for command results.
    with contextlib.redirect_stdout(sys.stderr):
        await run_migrations()


async def _keys(args: argparse.Namespace) -> None:
    await _migrate()
    await keys.run(args)


async def _tenants(args: argparse.Namespace) -> None:
    await _migrate()
    await tenants.run(args)


async def _models(args: argparse.Namespace, settings: Settings) -> None:
    await _migrate()
    await models.run(args, settings)


async def _backfill(args: argparse.Namespace, settings: Settings) -> None:
    from cluster import tracing
    from cluster.runtime import shutdown_ray

    await _migrate()
    try:
        async with pooled(4, min_size=1):
            await (imports.run if args.command == "import" else backfill.run)(args, settings)
    finally:
        shutdown_ray()
        tracing.shutdown()


async def _purge(settings: Settings) -> None:
    from pipelines.purge import purge_expired, purge_expired_exports, purge_idempotency_keys
    from store.blob_store import BlobStore

    await _migrate()
    async with BlobStore(settings) as blobs:
        count = await purge_expired(blobs, settings.retention.soft_delete_days)
        exports = await purge_expired_exports(blobs, timedelta(hours=settings.retention.export_hours))
    keys = await purge_idempotency_keys(settings.api.idempotency_hours)
    print(f"purged {count} files, {exports} exports, {keys} idempotency keys")


async def _worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then give unfinished jobs back to the queue."""
    from cluster import tracing
    from cluster.runtime import shutdown_ray
    from pipelines.worker import engine_for

    await _migrate()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with pooled(4, min_size=1):
            await engine_for(settings).run(stop)
    finally:
        shutdown_ray()
        tracing.shutdown()


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from api.app import create_app
    from api.cli.memory import return_large_buffers_to_the_os

    return_large_buffers_to_the_os()
    asyncio.run(_migrate())
    config = uvicorn.Config(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


# What each command reaches (the others reach the database only); with SCOPIX_EMBEDDED=false each must be configured.
_SERVICES = {
    "serve": (DATABASE, STORAGE, RAY),
    "worker": (DATABASE, STORAGE, RAY),
    "backfill": (DATABASE, STORAGE, RAY),
    "import": (DATABASE, STORAGE, RAY),
    "purge": (DATABASE, STORAGE),
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        configured = get_settings()
        require_services(configured, *_SERVICES.get(args.command, (DATABASE,)))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, so that embedded servers started here are always stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    logging.basicConfig(level=configured.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command in ("serve", "worker") or getattr(args, "work", False):
            from pipelines.inference.configured import check_models

            check_models(configured)
        with local_services(
            args.data_dir, s3=args.command in ("serve", "purge", "worker", "backfill", "import")
        ) as settings:
            if args.command == "serve":
                _serve(args, settings)
            elif args.command == "worker":
                asyncio.run(_worker(settings))
            elif args.command == "migrate":
                asyncio.run(_migrate())
            elif args.command == "purge":
                asyncio.run(_purge(settings))
            elif args.command == "models":
                asyncio.run(_models(args, settings))
            elif args.command == "tenants":
                asyncio.run(_tenants(args))
            elif args.command in ("backfill", "import"):
                asyncio.run(_backfill(args, settings))
            else:
                asyncio.run(_keys(args))
    except DomainError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
