"""The one typed settings object, read once from the environment.

Every setting has an environment variable named ``SCOPIX_<FIELD>`` (upper case), except the
standard ``DATABASE_URL``. Nothing else in the project reads ``os.environ``: the command line
resolves the embedded services and exports their addresses here (``export_services``) so that
child processes (uvicorn, Ray workers) see the same configuration.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

MIB = 1024 * 1024


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path = Path(".scopix")
    database_url: str | None = None
    s3_endpoint_url: str | None = None
    # Where clients reach S3 when it differs from where the API reaches it (a proxy, a CDN).
    s3_public_endpoint_url: str | None = None
    s3_bucket: str = "scopix-uploads"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str = "us-east-1"
    max_upload_bytes: int = 100 * MIB
    upload_part_bytes: int = 8 * MIB
    upload_parts_in_flight: int = 2
    download_url_seconds: int = 300
    soft_delete_days: int = 30
    purge_interval_seconds: int = 3600
    db_pool_max_size: int = 10
    # Processing: `serve` runs a job engine unless told not to (then run `scopix worker`s).
    serve_engine: bool = True
    ray_address: str | None = None
    ray_num_cpus: int | None = None
    engine_max_in_flight: int | None = None  # default: twice the Ray cluster's CPUs
    engine_lease_seconds: float = 60.0
    engine_poll_seconds: float = 0.25
    stuck_minutes: int = 30
    # Models (models/registry.py): None is the task's default; else a registered id, a local directory or a
    # hub id already in the local Hugging Face cache.
    embed_text_model: str | None = None
    ocr_model: str | None = None
    embed_image_model: str | None = None
    # No describe model ships with scopix: without one, images get no AI description (and say why).
    describe_model: str | None = None
    # Model actors: their share of a node (fractional: on 2 cores a whole CPU each would starve Ray's
    # tasks), torch threads (None: every usable core), and retirement after N batches (None: never).
    model_actor_num_cpus: float = 0.1  # a few actors must leave a whole CPU for the 1-CPU step tasks
    model_actor_num_gpus: float = 0.0
    model_actor_threads: int | None = None
    model_actor_max_batches: int | None = None
    # Chunks for retrieval, in the embedder's tokens.
    chunk_max_tokens: int = 256
    chunk_overlap_tokens: int = 32
    log_level: str = "info"
    # Traces (OpenTelemetry): a collector's OTLP/HTTP base URL, e.g. http://otel-collector:4318; None: no export.
    traces_endpoint: str | None = None
    traces_service_name: str = "scopix"
    traces_export_delay_ms: int = 2000


_ENV_NAMES = {"database_url": "DATABASE_URL"}


def _env_name(field: str) -> str:
    return _ENV_NAMES.get(field, f"SCOPIX_{field.upper()}")


def _decode(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(kind)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build settings from an environment mapping; unknown values raise a clear error."""
    raw = {field: environ[_env_name(field)] for field in Settings.__struct_fields__ if environ.get(_env_name(field))}
    try:
        return msgspec.convert(raw, Settings, strict=False, dec_hook=_decode)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid setting: {exc}") from exc


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings(os.environ)


def export_services(**values: str | Path) -> Settings:
    """Record resolved service addresses in the environment (for child processes) and reload."""
    for field, value in values.items():
        if field not in Settings.__struct_fields__:
            raise KeyError(field)
        os.environ[_env_name(field)] = str(value)
    get_settings.cache_clear()
    return get_settings()
