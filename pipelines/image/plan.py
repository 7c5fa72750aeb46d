"""An image's plan: its variants first; then its OCR, its embedding and, when a describe model is configured, its
description, all three through the model actors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pipelines.engine.plan import MediaPlan
from pipelines.engine.step import Result, Step
from pipelines.image import description, embedding, ocr
from pipelines.image.variants import make_variants
from pipelines.inference import configured
from store.settings import Settings
from store.step_objects import S3Location

VARIANTS = Step(
    name="variants",
    component="variant_status",
    run=make_variants,
    columns=("dimensions", "format", "blur_hash", "content_created_at", "variants", "variant_count"),
    # An image that cannot be decoded gets none of the steps that follow its variants.
    failure_extra={"ocr_status": "skipped", "embedding_status": "skipped", "description_status": "skipped"},
)
# The steps after the variants read the image from S3 and call model actors: both come from the settings (steps).
OCR = Step(name="ocr", component="ocr_status", run_inline=ocr.read_text, columns=ocr.COLUMNS, save=ocr.save_text)
EMBED_IMAGE = Step(
    name="embed_image", component="embedding_status", run_inline=embedding.embed_image, save=embedding.save_provenance
)
DESCRIBE = Step(
    name="describe",
    component="description_status",
    run_inline=description.describe_image,
    columns=description.COLUMNS,
    error_column="description_error",
    save=description.save_description,
)

PLAN = MediaPlan("image", first_steps=(VARIANTS,), describable=True)


def _after_variants(describes: bool) -> Callable[[Result], tuple[str, ...]]:
    """The describe step itself skips a file uploaded with auto_describe=false."""
    steps = (OCR.name, EMBED_IMAGE.name, *((DESCRIBE.name,) if describes else ()))
    return lambda result: steps


def steps(settings: Settings) -> dict[str, Step]:
    """The image steps with the settings' S3 location and model clients."""
    location = S3Location.from_settings(settings)
    configured_steps = (
        replace(VARIANTS, follow_ups=_after_variants(settings.models.describe.model is not None)),
        replace(OCR, args=(location, configured.ocr_client(settings))),
        replace(EMBED_IMAGE, args=(location, configured.image_embedders(settings))),
        replace(DESCRIBE, args=(location, configured.describers(settings))),
    )
    return {step.name: step for step in configured_steps}
