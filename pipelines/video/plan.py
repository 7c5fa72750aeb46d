"""A video's plan: its analysis (pipelines/video/analysis.py): probe, key frames and thumbnails in a Ray task, then
its frames through the OCR and image-embedding actors, its statuses ending together; then, when a describe model is
configured, the description of its frames (the `describe` step, pipelines/image/description.py). A video that cannot
be analysed gets no description either."""

from __future__ import annotations

from dataclasses import replace

from cluster.model_clients import ImageEmbedderClient, OcrClient
from pipelines.engine.plan import MediaPlan
from pipelines.engine.step import Step
from pipelines.image.embedding import EmbedImage
from pipelines.image.plan import DESCRIBE
from pipelines.inference import configured
from pipelines.inference.clients import ModelClients
from pipelines.video.analysis import COLUMNS, AnalyseVideo
from pipelines.video.frames import VideoOptions
from store.settings import Settings
from store.step_objects import S3Location

VIDEO_ANALYSIS = "video_analysis"
COMPONENTS = ("video_analysis_status", "variant_status", "ocr_status", "embedding_status")


async def _unconfigured(inputs: object, context: object) -> dict[str, object]:
    """The plan's step is data (its name and statuses); `steps()` gives it its models and options."""
    raise NotImplementedError("the video step runs as steps(settings) configures it")


STEP = Step(
    name=VIDEO_ANALYSIS,
    component=COMPONENTS[0],
    more_components=COMPONENTS[1:],
    run=_unconfigured,
    columns=COLUMNS,
    failure_extra={"description_status": "skipped"},
)

PLAN = MediaPlan("video", first_steps=(STEP,), describable=True)


def analysis_step(
    location: S3Location,
    options: VideoOptions,
    ocr: OcrClient,
    embedders: ModelClients[ImageEmbedderClient],
    describes: bool = False,
) -> Step:
    """`describes`: a describe model is configured, and describes the video's frames next (the image step, which
    reads a video's key frames; it skips a video uploaded with auto_describe=false)."""
    analyse = AnalyseVideo(options, ocr, EmbedImage(location, embedders))
    after = (DESCRIBE,) if describes else ()
    return replace(
        STEP,
        run=analyse,
        load=analyse.load,
        save=analyse.save,
        on_failure=analyse.give_up,
        follow_ups=lambda result: after,
    )


def steps(settings: Settings) -> dict[str, Step]:
    """The video step with the settings' options, S3 location and model clients."""
    step = analysis_step(
        S3Location.from_settings(settings),
        VideoOptions.from_settings(settings),
        configured.ocr_client(settings),
        configured.image_embedders(settings),
        settings.models.describe.model is not None,
    )
    return {step.name: step}
