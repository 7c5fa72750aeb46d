"""What persists in Postgres. The schema itself is created by the SQL migrations in
store/migrations (generated search columns and indexes are beyond Piccolo's column types);
these classes mirror it for queries."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    UUID,
    Array,
    BigInt,
    Boolean,
    DoublePrecision,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class Tenant(Table, tablename="tenant"):
    id = UUID(primary_key=True)
    name = Varchar(length=100, unique=True)
    tier = Varchar(length=20, default="free")
    created_at = Timestamptz()
    prepaid_credits = Integer(default=0)  # extend the month's quota (store/quotas.py)


class ApiKey(Table, tablename="api_key"):
    """An API key: only its SHA-256 is kept; the prefix lets an operator name it."""

    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant)
    prefix = Varchar(length=16, unique=True)
    key_hash = Varchar(length=64)
    created_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)  # written at most once a minute (store/tenants.py)
    expires_at = Timestamptz(null=True, default=None)  # None: never


class File(Table, tablename="file"):
    """One uploaded file of any media type; media-specific columns stay null elsewhere."""

    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant)
    media_type = Varchar(length=16)
    filename = Varchar(length=255)
    title = Varchar(length=255, null=True, default=None)
    tags = Array(base_column=Varchar(length=50))
    size_bytes = BigInt()
    content_type = Varchar(length=100)
    format = Varchar(length=16, null=True, default=None)
    sha256 = Varchar(length=64)
    object_key = Varchar(length=300)
    upload_method = Varchar(length=16)
    storage_target = Varchar(length=16)
    folder_id = UUID(null=True, default=None)
    project_id = UUID(null=True, default=None)
    content_category = Varchar(length=40)
    auto_describe = Boolean()
    custom_schema_id = UUID(null=True, default=None)
    compliance_type = Varchar(length=20, null=True, default=None)
    compliance_standard = Varchar(length=100, null=True, default=None)
    compliance_image_type = Varchar(length=20, null=True, default=None)
    compliance_status = Varchar(length=20, null=True, default=None)
    # Component statuses: null where the component does not apply to the media type.
    variant_status = Varchar(length=16, null=True, default=None)
    description_status = Varchar(length=16, null=True, default=None)
    text_extraction_status = Varchar(length=16, null=True, default=None)
    digitization_status = Varchar(length=16, null=True, default=None)
    video_analysis_status = Varchar(length=16, null=True, default=None)
    crawl_status = Varchar(length=16, null=True, default=None)
    ocr_status = Varchar(length=16, null=True, default=None)
    error_message = Text(null=True, default=None)
    # Image facts.
    dimensions = JSONB(null=True, default=None)
    variant_count = Integer(null=True, default=None)
    variants = JSONB(null=True, default=None)  # {name: {key, width, height, content_type}}
    blur_hash = Varchar(length=100, null=True, default=None)
    content_created_at = Timestamptz(null=True, default=None)
    # Descriptions and visible text.
    upload_description = Text(null=True, default=None)
    user_description = Text(null=True, default=None)
    visible_text = Text(null=True, default=None)
    text_regions = JSONB(null=True, default=None)
    full_descriptions = JSONB(null=True, default=None)
    description_error = Text(null=True, default=None)
    description_generated_at = Timestamptz(null=True, default=None)
    ai_models = JSONB(null=True, default=None)  # per task: {"model_id", "revision"} of the output stored now
    # Document facts.
    document_type = Varchar(length=8, null=True, default=None)
    page_count = Integer(null=True, default=None)
    chunk_count = Integer(null=True, default=None)
    extracted_text = Text(null=True, default=None)
    language = Varchar(length=16, null=True, default=None)
    embedding_status = Varchar(length=16, null=True, default=None)  # of a document's chunks, or of an image
    # Video facts.
    duration_seconds = DoublePrecision(null=True, default=None)
    frame_rate = DoublePrecision(null=True, default=None)
    video_codec = Varchar(length=32, null=True, default=None)
    resolution = Varchar(length=32, null=True, default=None)
    video_details = JSONB(null=True, default=None)  # the probe's further facts (pipelines/video/reader.py)
    # Link facts.
    source_url = Text(null=True, default=None)
    domain = Varchar(length=255, null=True, default=None)
    og_metadata = JSONB(null=True, default=None)
    favicon_url = Text(null=True, default=None)
    extracted_images = JSONB(null=True, default=None)
    extracted_images_count = Integer(null=True, default=None)
    # Lifecycle.
    created_at = Timestamptz()
    updated_at = Timestamptz()
    processing_started_at = Timestamptz(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)
    deleted_at = Timestamptz(null=True, default=None)


class Job(Table, tablename="job"):
    """One processing step of one file: a row of the durable queue (see store/jobs.py)."""

    id = UUID(primary_key=True)
    file_id = ForeignKey(references=File)
    tenant = UUID()
    step = Varchar(length=40)
    lane = Varchar(length=16)
    status = Varchar(length=16)
    attempts = Integer(default=0)
    max_attempts = Integer()
    available_at = Timestamptz()
    lease_expires_at = Timestamptz(null=True, default=None)
    worker_id = Varchar(length=200, null=True, default=None)
    task_ids = Array(base_column=Text())
    error = Text(null=True, default=None)
    payload = JSONB(default="{}")
    traceparent = Varchar(length=55, null=True, default=None)  # the W3C trace context it was queued in
    created_at = Timestamptz()
    updated_at = Timestamptz()
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    backfill_id = UUID(null=True, default=None)  # the backfill or import that queued it (store/backfills.py)


class Chunk(Table, tablename="chunk"):
    """A retrieval chunk of a document; its vectors are in chunk_embedding (store/embeddings.py)."""

    id = UUID(primary_key=True)
    file_id = ForeignKey(references=File)
    tenant = UUID()
    chunk_index = Integer()
    content = Text()
    chunk_type = Varchar(length=16)
    heading_hierarchy = Array(base_column=Text())
    page_numbers = Array(base_column=Integer())
    token_count = Integer()
    embedding_status = Varchar(length=16, default="pending")


class UploadSession(Table, tablename="upload_session"):
    """A batch upload (store/sessions.py): its status is derived from its files'."""

    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant)
    upload_method = Varchar(length=16)  # streaming | presigned
    created_at = Timestamptz()
    cancelled_at = Timestamptz(null=True, default=None)


class UploadIntent(Table, tablename="upload_intent"):
    """A direct upload, from its presigned URLs to its file (store/upload_intents.py)."""

    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant)
    upload_mode = Varchar(length=16)  # single_shot | multipart
    status = Varchar(length=16)  # PENDING | UPLOADED | VERIFYING | COMPLETED | FAILED
    filename = Varchar(length=255)
    content_type = Varchar(length=100)  # as claimed
    media_type = Varchar(length=16)  # as claimed; the file's is detected at completion
    size_bytes = BigInt()
    claimed_file_hash = Varchar(length=64)
    part_size_bytes = BigInt(null=True, default=None)
    total_parts = Integer(null=True, default=None)
    s3_upload_id = Text(null=True, default=None)
    object_key = Varchar(length=300)
    file_id = UUID()  # the file it becomes (its object is stored under this id's key)
    deduplicated = Boolean(default=False)
    options = JSONB(default="{}")
    parts = JSONB(default="{}")  # {"<number>": {"etag", "size"}}
    error_message = Text(null=True, default=None)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    confirmed_at = Timestamptz(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)
    claimed_at = Timestamptz(null=True, default=None)  # when a `complete` took it (VERIFYING)


# Also in the schema, queried in SQL by store/documents.py and store/embeddings.py: document_page (keyed
# by file and page number), chunk_embedding and image_embedding (pgvector, store/image_embeddings.py) and
# embedding_space; by store/sessions.py: upload_session_file (keyed by session and position in the request); by
# store/video_frames.py: video_frame (keyed by file and frame index), and its frames' vectors, video_frame_embedding
# (store/frame_embeddings.py).
TABLES = (Tenant, ApiKey, File, Job, Chunk, UploadSession, UploadIntent)
