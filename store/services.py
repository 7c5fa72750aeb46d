"""Find or start what the service needs: Postgres and S3 from settings, else the embedded ones
under the data directory (unless embedded servers are off: then a missing setting is an error). Commands run
inside `local_services` and stop only what they started."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from store.database import engine
from store.settings import DATABASE, STORAGE, Settings, get_settings, require_services


@contextlib.contextmanager
def local_services(data_dir: Path | None = None, *, s3: bool = True) -> Iterator[Settings]:
    """Yield the process's settings with the services resolved: a reachable database, which the process's
    engine uses from then on, and S3 when asked. The environment is left as it is: a child process is
    handed `store.settings.environment` of these settings."""
    settings = get_settings() if data_dir is None else get_settings().replace(data_dir=data_dir)
    require_services(settings, DATABASE, *([STORAGE] if s3 else []))
    with contextlib.ExitStack() as stack:
        url = settings.database.url
        if not url:
            from store.embedded_postgres import start_postgres

            postgres = start_postgres(settings.data_dir)
            stack.callback(postgres.stop)
            url = postgres.url
            settings = settings.replace(database__url=url)
        if s3 and not settings.storage.endpoint_url:
            from store.embedded_s3 import start_s3

            server = start_s3(settings.data_dir, settings.storage.bucket)
            stack.callback(server.stop)
            settings = settings.replace(
                storage__endpoint_url=server.endpoint_url,
                storage__access_key_id=server.access_key_id,
                storage__secret_access_key=server.secret_access_key,
                storage__region=server.region,
            )
        engine().bind(url)
        yield settings
