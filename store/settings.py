"""The one typed settings object, nested by concern, read once from the environment.

A setting's environment variable is ``SCOPIX_<SECTION>__<FIELD>`` (upper case, ``__`` between levels:
``SCOPIX_STORAGE__BUCKET``, ``SCOPIX_MODELS__DESCRIBE__MODEL``; top-level ones ``SCOPIX_<FIELD>``), except the
standard ``DATABASE_URL``. Nothing else in the project reads ``os.environ``, and nothing writes it: the services
resolved at start-up (the embedded Postgres and S3) come back as new settings (store/services.py), and a child
process is handed ``environment(settings)`` explicitly.

A ``SCOPIX_`` variable that names no setting is refused, naming the new name when it is one of the flat names
of earlier releases (``SCOPIX_S3_BUCKET``): a setting is never silently ignored.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

MIB = 1024 * 1024
PREFIX = "SCOPIX_"
LEVELS = "__"


def _section(kind: type) -> Any:
    return msgspec.field(default_factory=kind)


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str | None = None  # DATABASE_URL; None: the embedded Postgres under data_dir
    pool_max_size: int = 10


class StorageSettings(msgspec.Struct, frozen=True, kw_only=True):
    endpoint_url: str | None = None  # None (and no keys): the embedded S3 under data_dir
    # Where clients reach S3 when it differs from where the API reaches it (a proxy, a CDN).
    public_endpoint_url: str | None = None
    bucket: str = "scopix-uploads"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str = "us-east-1"
    max_upload_bytes: int = 100 * MIB
    upload_part_bytes: int = 8 * MIB
    upload_parts_in_flight: int = 2
    download_url_seconds: int = 300
    # How long a direct upload's intent, and its presigned URLs, stay valid.
    direct_upload_seconds: Annotated[int, msgspec.Meta(ge=60)] = 3600
    # S3 state that no row owns (a crash between S3 and the database), and a `complete` that stopped answering, are
    # cleaned up by the engines' upkeep once older than this: longer than any upload still writing before its row.
    leftover_grace_seconds: Annotated[int, msgspec.Meta(ge=60)] = 3600


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    # A request body (an upload's above all) that sends nothing for this long ends with a 408, its upload aborted.
    body_idle_seconds: float = 30.0
    # How often an open websocket checks that its API key still holds; a revoked key closes it.
    key_recheck_seconds: float = 10.0
    # How long the first answer to an Idempotency-Key is replayed; an older key is new again, and purged.
    idempotency_hours: Annotated[int, msgspec.Meta(ge=1)] = 24
    # A key held by a request that never answered (its process died) is free again after this long.
    idempotency_claim_seconds: Annotated[int, msgspec.Meta(ge=1)] = 900


class RetentionSettings(msgspec.Struct, frozen=True, kw_only=True):
    soft_delete_days: int = 30
    export_hours: Annotated[int, msgspec.Meta(ge=1)] = 24  # an export's download URL lasts no longer
    purge_interval_seconds: int = 3600


class ClientEventSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The unauthenticated client telemetry (POST /api/v2/files/log-upload-event), per client address and replica:
    `burst` events at once, refilled at `per_minute`."""

    per_minute: int = 60
    burst: int = 20


class QuotaSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Backpressure (store/quotas.py; the tiers' own limits are in the README). An upload in flight holds a lease
    in Postgres, renewed while it runs: a replica that dies frees its slots within `upload_lease_seconds`."""

    upload_lease_seconds: Annotated[float, msgspec.Meta(ge=3)] = 60.0
    busy_retry_seconds: Annotated[int, msgspec.Meta(ge=1)] = 5  # the Retry-After of a 429 for uploads in flight
    # Requests per API key and replica: `request_burst` at once, refilled at `requests_per_minute`.
    requests_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 1200
    request_burst: Annotated[int, msgspec.Meta(ge=1)] = 200


class EngineSettings(msgspec.Struct, frozen=True, kw_only=True):
    # `serve` runs a job engine unless told not to (then run `scopix worker`s).
    serve: bool = True
    ray_address: str | None = None
    ray_num_cpus: int | None = None
    max_in_flight: int | None = None  # interactive jobs at once; default: twice the Ray cluster's CPUs
    # Backfill jobs at once; default: eight times the Ray cluster's CPUs (most wait on model actors, which batch).
    backfill_max_in_flight: int | None = None
    lease_seconds: float = 60.0
    poll_seconds: float = 0.25
    stuck_minutes: int = 30


class LimitsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What one step may take where it runs, and how much of a file the parsers read, before its job fails with
    the reason (and is not retried)."""

    step_seconds: float = 600.0
    step_memory_mib: int = 2048  # a Ray task's address space beyond what its worker held when it started
    document_pages: int = 2_000
    docx_xml_elements: int = 200_000  # a 500-page report has well under this many
    image_pixels: int = 90_000_000  # about Pillow's own default bound


class ActorResources(msgspec.Struct, frozen=True, kw_only=True):
    """A model replica's share of a node (fractional: on 2 cores a whole CPU each would starve Ray's tasks), its
    torch threads (None: every usable core), its retirement after N batches (None: never), and how many replicas
    a task runs: `min_replicas` always, up to `max_replicas` while requests queue, an extra one retired after
    `idle_seconds` without a request. One replica by default: on the embedded default's single machine a second
    copy of a model only pays when it has cores of its own (threads=1 each)."""

    num_cpus: float = 0.1  # a few actors must leave a whole CPU for the 1-CPU step tasks
    num_gpus: float = 0.0
    memory_mib: int | None = None  # Ray's `memory` resource: a node with this much unreserved takes a replica
    # Custom Ray resources a replica asks for (JSON: {"worker": 0.1}), to place replicas on the nodes that have them.
    resources: dict[str, float] = msgspec.field(default_factory=dict)
    threads: int | None = None
    max_batches: int | None = None
    min_replicas: Annotated[int, msgspec.Meta(ge=1)] = 1
    max_replicas: Annotated[int, msgspec.Meta(ge=1)] = 1
    idle_seconds: Annotated[float, msgspec.Meta(gt=0)] = 60.0

    def __post_init__(self) -> None:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})")


class TaskModel(ActorResources, frozen=True, kw_only=True):
    """A task's model and its actors' resources; a resource it does not set is the shared one (`models.actors`)."""

    # None: the task's default (models/registry.py); else a registered id, a local directory or a hub id already
    # in the local Hugging Face cache.
    model: str | None = None


class ModelsSettings(msgspec.Struct, frozen=True, kw_only=True):
    actors: ActorResources = _section(ActorResources)  # every task's, unless the task sets its own
    embed_text: TaskModel = _section(TaskModel)
    ocr: TaskModel = _section(TaskModel)
    embed_image: TaskModel = _section(TaskModel)
    # No describe model ships with scopix: without one, images get no AI description (and say why).
    describe: TaskModel = _section(TaskModel)

    def task(self, name: str) -> TaskModel | None:
        """The settings of the task named `name` (a models.registry.Task); None for a task without settings."""
        return getattr(self, name) if name in _TASKS else None


class VideoSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How a video is analysed: how many key frames it keeps at most, how long its decoding may take and how
    large a picture it may declare, before it fails with the reason (and is not retried)."""

    max_frames: Annotated[int, msgspec.Meta(ge=1, le=500)] = 32
    decode_seconds: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    max_pixels: Annotated[int, msgspec.Meta(ge=1)] = 8192 * 4320  # 8K UHD


class ChunkingSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Chunks for retrieval, in the text embedder's tokens."""

    max_tokens: int = 256
    overlap_tokens: int = 32


class TracingSettings(msgspec.Struct, frozen=True, kw_only=True):
    # A collector's OTLP/HTTP base URL, e.g. http://otel-collector:4318; None: no export.
    endpoint: str | None = None
    service_name: str = "scopix"
    export_delay_ms: int = 2000


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # True: a missing database, S3 or Ray setting starts the embedded one under data_dir (one command, one machine);
    # False (every Kubernetes manifest): it is a start-up error naming the setting (`require_services`).
    embedded: bool = True
    data_dir: Path = Path(".scopix")
    log_level: str = "info"
    database: DatabaseSettings = _section(DatabaseSettings)
    storage: StorageSettings = _section(StorageSettings)
    api: ApiSettings = _section(ApiSettings)
    retention: RetentionSettings = _section(RetentionSettings)
    client_events: ClientEventSettings = _section(ClientEventSettings)
    quotas: QuotaSettings = _section(QuotaSettings)
    engine: EngineSettings = _section(EngineSettings)
    limits: LimitsSettings = _section(LimitsSettings)
    models: ModelsSettings = _section(ModelsSettings)
    chunking: ChunkingSettings = _section(ChunkingSettings)
    video: VideoSettings = _section(VideoSettings)
    tracing: TracingSettings = _section(TracingSettings)

    def replace(self, **changes: object) -> Settings:
        """These settings with some values changed, each named as its environment variable is, without the prefix
        and in lower case (`storage__bucket`, `models__describe__model`). As in the environment, a change of
        `models__actors__<resource>` reaches every task not changed in the same call."""
        unknown = [name for name in changes if tuple(name.split(LEVELS)) not in _PATHS]
        if unknown:
            raise TypeError(f"no such setting: {', '.join(unknown)}")
        tree = _spread_shared_resources(_tree((tuple(name.split(LEVELS)), value) for name, value in changes.items()))
        return _convert(_merge(msgspec.to_builtins(self, enc_hook=str), tree))


Key = tuple[str, ...]  # a setting's path of field names, e.g. ("storage", "bucket")


def _paths(kind: type, prefix: Key = ()) -> Iterator[Key]:
    """Every leaf setting, as its path of field names."""
    for field in msgspec.structs.fields(kind):
        path = (*prefix, field.name)
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            yield from _paths(field.type, path)
        else:
            yield path


_PATHS: tuple[Key, ...] = tuple(_paths(Settings))
# Settings whose value is a JSON object (a custom resource map), decoded from the variable's text.
_JSON_PATHS = frozenset(path for path in _PATHS if path[-1] == "resources")
_TASKS = tuple(field.name for field in msgspec.structs.fields(ModelsSettings) if field.type is TaskModel)
_ENV_NAMES: dict[Key, str] = {("database", "url"): "DATABASE_URL"}


def env_name(*path: str) -> str:
    """The environment variable of the setting at `path`, e.g. ("storage", "bucket") -> SCOPIX_STORAGE__BUCKET."""
    return _ENV_NAMES.get(path, PREFIX + LEVELS.join(path).upper())


_BY_ENV_NAME = {env_name(*path): path for path in _PATHS}

# The flat names of earlier releases, refused with their new names.
_RENAMED: dict[str, Key] = {
    "SCOPIX_DB_POOL_MAX_SIZE": ("database", "pool_max_size"),
    "SCOPIX_S3_ENDPOINT_URL": ("storage", "endpoint_url"),
    "SCOPIX_S3_PUBLIC_ENDPOINT_URL": ("storage", "public_endpoint_url"),
    "SCOPIX_S3_BUCKET": ("storage", "bucket"),
    "SCOPIX_S3_ACCESS_KEY_ID": ("storage", "access_key_id"),
    "SCOPIX_S3_SECRET_ACCESS_KEY": ("storage", "secret_access_key"),
    "SCOPIX_S3_REGION": ("storage", "region"),
    "SCOPIX_MAX_UPLOAD_BYTES": ("storage", "max_upload_bytes"),
    "SCOPIX_UPLOAD_PART_BYTES": ("storage", "upload_part_bytes"),
    "SCOPIX_UPLOAD_PARTS_IN_FLIGHT": ("storage", "upload_parts_in_flight"),
    "SCOPIX_DOWNLOAD_URL_SECONDS": ("storage", "download_url_seconds"),
    "SCOPIX_SOFT_DELETE_DAYS": ("retention", "soft_delete_days"),
    "SCOPIX_PURGE_INTERVAL_SECONDS": ("retention", "purge_interval_seconds"),
    "SCOPIX_SERVE_ENGINE": ("engine", "serve"),
    "SCOPIX_RAY_ADDRESS": ("engine", "ray_address"),
    "SCOPIX_RAY_NUM_CPUS": ("engine", "ray_num_cpus"),
    "SCOPIX_ENGINE_MAX_IN_FLIGHT": ("engine", "max_in_flight"),
    "SCOPIX_ENGINE_LEASE_SECONDS": ("engine", "lease_seconds"),
    "SCOPIX_ENGINE_POLL_SECONDS": ("engine", "poll_seconds"),
    "SCOPIX_STUCK_MINUTES": ("engine", "stuck_minutes"),
    "SCOPIX_EMBED_TEXT_MODEL": ("models", "embed_text", "model"),
    "SCOPIX_OCR_MODEL": ("models", "ocr", "model"),
    "SCOPIX_EMBED_IMAGE_MODEL": ("models", "embed_image", "model"),
    "SCOPIX_DESCRIBE_MODEL": ("models", "describe", "model"),
    "SCOPIX_MODEL_ACTOR_NUM_CPUS": ("models", "actors", "num_cpus"),
    "SCOPIX_MODEL_ACTOR_NUM_GPUS": ("models", "actors", "num_gpus"),
    "SCOPIX_MODEL_ACTOR_THREADS": ("models", "actors", "threads"),
    "SCOPIX_MODEL_ACTOR_MAX_BATCHES": ("models", "actors", "max_batches"),
    "SCOPIX_CHUNK_MAX_TOKENS": ("chunking", "max_tokens"),
    "SCOPIX_CHUNK_OVERLAP_TOKENS": ("chunking", "overlap_tokens"),
    "SCOPIX_TRACES_ENDPOINT": ("tracing", "endpoint"),
    "SCOPIX_TRACES_SERVICE_NAME": ("tracing", "service_name"),
    "SCOPIX_TRACES_EXPORT_DELAY_MS": ("tracing", "export_delay_ms"),
}


class SettingsError(ValueError):
    """The environment names a setting that does not exist, gives one a value it cannot take, or lacks one that a
    command needs."""


# The services a command may need, by the setting that points at them; without it, the embedded one starts.
DATABASE: Key = ("database", "url")
STORAGE: Key = ("storage", "endpoint_url")
RAY: Key = ("engine", "ray_address")


def require_services(settings: Settings, *services: Key) -> None:
    """Refuse to start without a setting for each of `services` when embedded servers are off: a pod whose
    DATABASE_URL is missing or misspelt must stop and say so, not run on a private Postgres of its own."""
    if settings.embedded:
        return
    missing = [env_name(*path) for path in services if not functools.reduce(getattr, path, settings)]
    if missing:
        raise SettingsError(
            f"{' and '.join(missing)} must be set: with {env_name('embedded')}=false nothing embedded is started "
            "in its place"
        )


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build settings from an environment mapping; unknown names and bad values raise SettingsError naming them."""
    _refuse_unknown(environ)
    given = ((path, _text_value(path, environ[name])) for name, path in _BY_ENV_NAME.items() if environ.get(name))
    return _convert(_spread_shared_resources(_tree(given)))


def _text_value(path: Key, text: str) -> object:
    """A variable's value as the settings tree takes it: text, which msgspec converts, or a decoded JSON object."""
    if path not in _JSON_PATHS:
        return text
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as error:
        raise SettingsError(f"invalid setting {env_name(*path)}: not a JSON object ({error})") from error


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings(os.environ)


def environment(settings: Settings) -> dict[str, str]:
    """The environment variables that give a child process these settings (every one that is not None)."""
    values = {}
    for path in _PATHS:
        value: Any = functools.reduce(getattr, path, settings)
        if isinstance(value, dict):
            values[env_name(*path)] = msgspec.json.encode(value).decode()
        elif value is not None:
            values[env_name(*path)] = str(value).lower() if isinstance(value, bool) else str(value)
    return values


def _refuse_unknown(environ: Mapping[str, str]) -> None:
    problems = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in _BY_ENV_NAME:
            continue
        renamed = _RENAMED.get(name)
        problems.append(
            f"{name} was renamed {env_name(*renamed)}" if renamed else f"{name} is not a setting (see the README)"
        )
    if problems:
        raise SettingsError("; ".join(problems))


def _tree(values: Iterable[tuple[Key, object]]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in values:
        node = tree
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = value
    return tree


def _spread_shared_resources(tree: dict[str, Any]) -> dict[str, Any]:
    """Each task takes the shared actor resources it does not set itself."""
    models = tree.get("models", {})
    if shared := models.get("actors"):
        for task in _TASKS:
            models[task] = {**shared, **models.get(task, {})}
    return tree


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    return {
        **base,
        **{
            name: _merge(base.get(name, {}), value) if isinstance(value, dict) else value
            for name, value in changes.items()
        },
    }


def _decode(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str | Path):
        return Path(value)
    raise NotImplementedError(kind)


def _convert(tree: dict[str, Any]) -> Settings:
    try:
        return msgspec.convert(tree, Settings, strict=False, dec_hook=_decode)
    except msgspec.ValidationError as exc:
        raise SettingsError(_invalid(str(exc))) from exc


def _invalid(message: str) -> str:
    """msgspec says where as `$.storage.max_upload_bytes`; the operator knows the variable."""
    problem, at, where = message.rpartition(" - at `$.")
    if not at:
        return f"invalid setting: {message}"
    return f"invalid setting {env_name(*where.rstrip('`').split('.'))}: {problem}"
