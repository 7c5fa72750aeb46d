"""Every processing step, by name, configured by the settings: what an engine runs, and what a backfill can re-run
(each step with the media types whose plans it belongs to, so a new media package's steps join both at once)."""

from __future__ import annotations

from collections.abc import Mapping

from cluster.model_clients import EmbedderClient
from pipelines.document import plan as document
from pipelines.engine.step import Step
from pipelines.image import plan as image
from pipelines.inference.clients import ModelClients
from pipelines.video import plan as video
from store.settings import Settings


def steps_by_media(
    settings: Settings, embedder: ModelClients[EmbedderClient] | EmbedderClient | None = None
) -> dict[str, dict[str, Step]]:
    """{media type: {step name: step}}; `embedder` replaces the text embedders of the settings (tests, benchmarks).
    A video's frames go through two image steps as well: its embedding (a swap re-embeds its frames) and its
    description."""
    images = image.steps(settings)
    videos = {**video.steps(settings), **{name: images[name] for name in (image.EMBED_IMAGE, image.DESCRIBE)}}
    return {
        image.PLAN.media_type: images,
        document.PLAN.media_type: document.steps(settings, embedder),
        video.PLAN.media_type: videos,
    }


def steps_for(
    settings: Settings, embedder: ModelClients[EmbedderClient] | EmbedderClient | None = None
) -> dict[str, Step]:
    """The steps of every media type, by name."""
    return {name: step for steps in steps_by_media(settings, embedder).values() for name, step in steps.items()}


def media_types_of(catalog: Mapping[str, Mapping[str, Step]], step: str) -> tuple[str, ...]:
    """The media types whose files a step applies to."""
    return tuple(media for media, steps in catalog.items() if step in steps)
