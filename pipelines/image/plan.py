"""An image's plan: its variants first (a Ray task); then its OCR, its embedding and, when a describe model is
configured, its description, all three through the model actors (their load, run and save: the step modules)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from cluster.model_clients import DescriberClient, ImageEmbedderClient, OcrClient
from pipelines.engine.plan import MediaPlan
from pipelines.engine.step import InProcess, RayTask, Result, Step
from pipelines.image import description, embedding, ocr
from pipelines.image.variants import make_variants
from pipelines.inference import configured
from pipelines.inference.clients import ModelClients
from store.settings import Settings
from store.step_objects import S3Location

VARIANTS = Step(
    name="variants",
    component="variant_status",
    run=RayTask(make_variants),
    columns=("dimensions", "format", "blur_hash", "content_created_at", "variants", "variant_count"),
    # An image that cannot be decoded gets none of the steps that follow its variants.
    failure_extra={"ocr_status": "skipped", "embedding_status": "skipped", "description_status": "skipped"},
)
# The steps after the variants read the image from S3 and call model actors: both come from the settings.
OCR, EMBED_IMAGE, DESCRIBE = "ocr", "embed_image", "describe"

PLAN = MediaPlan("image", first_steps=(VARIANTS,), describable=True)


def ocr_step(location: S3Location, client: OcrClient) -> Step:
    reader = ocr.ReadText(location, client)
    return Step(OCR, "ocr_status", InProcess(reader.run), load=reader.load, columns=ocr.COLUMNS, save=ocr.save_text)


def embed_image_step(location: S3Location, embedders: ModelClients[ImageEmbedderClient]) -> Step:
    embed = embedding.EmbedImage(location, embedders)
    return Step(EMBED_IMAGE, "embedding_status", InProcess(embed.run), load=embed.load, save=embed.save)


def describe_step(location: S3Location, describers: ModelClients[DescriberClient]) -> Step:
    describe = description.DescribeImage(location, describers)
    return Step(
        DESCRIBE,
        "description_status",
        InProcess(describe.run),
        load=describe.load,
        save=describe.save,
        columns=description.COLUMNS,
        error_column="description_error",
    )


def _after_variants(describes: bool) -> Callable[[Result], tuple[str, ...]]:
    """The describe step itself skips a file uploaded with auto_describe=false."""
    steps = (OCR, EMBED_IMAGE, *((DESCRIBE,) if describes else ()))
    return lambda result: steps


def steps(settings: Settings) -> dict[str, Step]:
    """The image steps with the settings' S3 location and model clients."""
    location = S3Location.from_settings(settings)
    configured_steps = (
        replace(
            VARIANTS,
            run=RayTask(make_variants, (settings.limits.image_pixels,)),
            follow_ups=_after_variants(settings.models.describe.model is not None),
        ),
        ocr_step(location, configured.ocr_client(settings)),
        embed_image_step(location, configured.image_embedders(settings)),
        describe_step(location, configured.describers(settings)),
    )
    return {step.name: step for step in configured_steps}
