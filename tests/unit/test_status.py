from store.status import initial_statuses, primary_status, primary_status_of


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
    row = {"media_type": "image", "variant_status": "completed", "description_status": "failed",
           "text_extraction_status": "pending"}  # fmt: skip
    assert primary_status_of(row) == "partially_completed"


def test_initial_statuses():
    document = initial_statuses("document", True)
    assert document["text_extraction_status"] == document["digitization_status"] == "pending"
    assert document["description_status"] == "skipped" and "no describe model" in document["description_error"]
    image = initial_statuses("image", False, queued=("variant_status",))
    assert image == {
        "variant_status": "queued",
        "ocr_status": "pending",
        "embedding_status": "pending",
        "description_status": "skipped",
        "description_error": None,
    }
    described = initial_statuses("image", True, queued=("variant_status",), describes=True)
    assert described["description_status"] == "pending" and described["description_error"] is None
    assert "SCOPIX_DESCRIBE_MODEL" in initial_statuses("image", True)["description_error"]
    assert initial_statuses("document", True, describes=True)["description_status"] == "skipped"
