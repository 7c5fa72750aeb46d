"""Every processing step, by name, configured by the settings: what an engine runs."""

from __future__ import annotations

from cluster.model_clients import EmbedderClient
from pipelines.document import plan as document
from pipelines.engine.step import Step
from pipelines.image import plan as image
from pipelines.inference.clients import ModelClients
from pipelines.video import plan as video
from store.settings import Settings


def steps_for(
    settings: Settings, embedder: ModelClients[EmbedderClient] | EmbedderClient | None = None
) -> dict[str, Step]:
    """The steps of every media type; `embedder` replaces the text embedders of the settings (tests, benchmarks)."""
    return {**image.steps(settings), **document.steps(settings, embedder), **video.steps(settings)}
