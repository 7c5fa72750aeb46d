"""The `variants` step: the original image in, four variants out to S3, the facts back to the
engine. Runs as a Ray task; bytes move by S3 key, only small facts travel back."""

from __future__ import annotations

from typing import Any

from pipelines.engine.step import FileRef, StepFailed
from pipelines.image.render import MAX_PIXELS, ImageError, render
from store.keys import variant_key
from store.step_objects import S3Location, opened, put

ORIGINAL = "original"


def make_variants(location: S3Location, file: FileRef, max_pixels: int = MAX_PIXELS) -> dict[str, Any]:
    with opened(location, file.object_key) as source:
        try:
            facts = render(source, max_pixels)
        except ImageError as exc:
            raise StepFailed(str(exc)) from None
    stored: dict[str, Any] = {}
    for variant in facts.variants:
        key = variant_key(file.object_key, variant.name, variant.extension)
        put(location, key, variant.data, variant.content_type)
        stored[variant.name] = {
            "key": key,
            "width": variant.width,
            "height": variant.height,
            "content_type": variant.content_type,
        }
    return {
        "dimensions": {"width": facts.width, "height": facts.height},
        "format": facts.format,
        "blur_hash": facts.blur_hash,
        "content_created_at": facts.content_created_at,
        "variants": stored,
        "variant_count": len(stored) + 1,  # the four and the original
    }
