from pipelines.intake.plan import PLANS, plan_new_file
from store.status import COMPONENTS


def test_a_new_image_queues_its_variants_and_waits_for_the_rest():
    plan = plan_new_file("image", auto_describe=False, describes=False)
    assert plan.steps == ("variants",)
    assert plan.statuses == {
        "variant_status": "queued",
        "ocr_status": "pending",
        "embedding_status": "pending",
        "description_status": "skipped",
        "description_error": None,
    }


def test_a_description_is_pending_only_for_a_describable_media_type_with_a_model():
    described = plan_new_file("image", auto_describe=True, describes=True).statuses
    assert described["description_status"] == "pending" and described["description_error"] is None
    no_model = plan_new_file("image", auto_describe=True, describes=False).statuses
    assert (
        no_model["description_status"] == "skipped"
        and "SCOPIX_MODELS__DESCRIBE__MODEL" in no_model["description_error"]
    )
    document = plan_new_file("document", auto_describe=True, describes=True).statuses
    assert document["description_status"] == "skipped" and "images and videos only" in document["description_error"]


def test_a_new_document_queues_its_text_and_digitization():
    plan = plan_new_file("document", auto_describe=True, describes=False)
    assert plan.steps == ("document_text",)
    assert plan.statuses["text_extraction_status"] == plan.statuses["digitization_status"] == "queued"
    assert plan.statuses["ocr_status"] == plan.statuses["embedding_status"] == "pending"
    assert "no describe model" in plan.statuses["description_error"]


def test_every_media_type_has_a_plan_whose_steps_drive_its_own_components():
    assert set(PLANS) == set(COMPONENTS)
    for media_type, plan in PLANS.items():
        assert set(plan.queued_components) <= set(COMPONENTS[media_type])


def test_a_new_video_queues_its_analysis_with_the_thumbnails_ocr_and_embedding_it_makes():
    plan = plan_new_file("video", auto_describe=True, describes=False)
    assert plan.steps == ("video_analysis",)
    assert plan.statuses == {
        "video_analysis_status": "queued",
        "variant_status": "queued",
        "ocr_status": "queued",
        "embedding_status": "queued",
        "description_status": "skipped",
        "description_error": plan.statuses["description_error"],
    }
    assert "SCOPIX_MODELS__DESCRIBE__MODEL" in plan.statuses["description_error"]
