import uuid
from datetime import UTC, datetime

import msgspec

from store.rows import FileStatusRow
from store.status import primary_status, primary_status_of


def test_primary_status_rules():
    assert primary_status(["pending", "pending"]) == "pending"
    assert primary_status(["queued", "pending"]) == "processing"
    assert primary_status(["completed", "pending"]) == "processing"
    assert primary_status(["processing", "failed"]) == "processing"
    assert primary_status(["completed", "completed"]) == "completed"
    assert primary_status(["completed", "skipped"]) == "completed"
    assert primary_status(["failed", "skipped"]) == "failed"
    assert primary_status(["failed", "completed"]) == "partially_completed"
    assert primary_status(["skipped", None]) == "completed"


def test_primary_status_reads_the_components_of_the_media_type():
    now = datetime.now(UTC)
    statuses = {"variant_status": "completed", "description_status": "failed", "text_extraction_status": "pending"}
    fields = {"id": uuid.uuid4(), "media_type": "image", "created_at": now, "updated_at": now, **statuses}
    row = msgspec.convert(dict.fromkeys(FileStatusRow.__struct_fields__) | fields, FileStatusRow)
    assert primary_status_of(row) == "partially_completed"
