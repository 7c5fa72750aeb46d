"""Find or start what the service needs: Postgres and S3 from settings, else the embedded ones
under the data directory. Commands run inside `local_services` and stop only what they started."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from store.settings import Settings, export_services, get_settings


@contextlib.contextmanager
def local_services(data_dir: Path | None = None, *, s3: bool = True) -> Iterator[Settings]:
    """Yield settings that point at a reachable database (and S3 when asked)."""
    if data_dir is not None:
        export_services(data_dir=data_dir)
    settings = get_settings()
    with contextlib.ExitStack() as stack:
        if not settings.database_url:
            from store.embedded_postgres import start_postgres

            postgres = start_postgres(settings.data_dir)
            stack.callback(postgres.stop)
            settings = export_services(database_url=postgres.url)
        if s3 and not settings.s3_endpoint_url:
            from store.embedded_s3 import start_s3

            server = start_s3(settings.data_dir, settings.s3_bucket)
            stack.callback(server.stop)
            settings = export_services(
                s3_endpoint_url=server.endpoint_url,
                s3_access_key_id=server.access_key_id,
                s3_secret_access_key=server.secret_access_key,
                s3_region=server.region,
            )
        yield settings
