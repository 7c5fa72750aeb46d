"""Which steps exist, and which ones a new upload of each media type gets."""

from __future__ import annotations

from pipelines.step import Step
from pipelines.variants import make_variants

VARIANTS = Step(
    name="variants",
    component="variant_status",
    run=make_variants,
    columns=("dimensions", "format", "blur_hash", "content_created_at", "variants", "variant_count"),
)

STEPS: dict[str, Step] = {step.name: step for step in (VARIANTS,)}

# Pipelines for documents, videos and links arrive with their own steps.
UPLOAD_STEPS: dict[str, tuple[str, ...]] = {"image": ("variants",), "document": (), "video": (), "link": ()}
