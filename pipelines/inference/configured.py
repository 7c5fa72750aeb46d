"""The model clients as the settings configure them (no Ray call until one infers), and the start-up check that
every configured model is on this machine."""

from __future__ import annotations

from functools import partial
from typing import Any

from cluster.model_actor import Batching, Recycling
from cluster.model_clients import DescriberClient, EmbedderClient, ImageEmbedderClient, OcrClient
from cluster.model_pool import InferenceUnavailable, ModelPool
from models.registry import Task
from pipelines.inference.clients import ModelClients
from store.errors import Misconfigured
from store.settings import Settings


def actor_options(settings: Settings) -> dict[str, Any]:
    """A model actor's share of a node and its retirement, as the settings configure them."""
    return {
        "num_cpus": settings.model_actor_num_cpus,
        "num_gpus": settings.model_actor_num_gpus,
        "threads": settings.model_actor_threads,
        "recycling": Recycling(max_batches=settings.model_actor_max_batches),
    }


def text_embedder(settings: Settings, model: str | None = None) -> EmbedderClient:
    """The client of the shared `embed_text` actor of `model` (None: the settings')."""
    return EmbedderClient(model or settings.embed_text_model, batching=Batching(), **actor_options(settings))


def text_embedders(settings: Settings) -> ModelClients[EmbedderClient]:
    """A client per model in use, built as text_embedder builds them."""
    return ModelClients(settings, Task.EMBED_TEXT, partial(text_embedder, settings))


def image_embedders(settings: Settings) -> ModelClients[ImageEmbedderClient]:
    return ModelClients(settings, Task.EMBED_IMAGE, partial(ImageEmbedderClient, **actor_options(settings)))


def describers(settings: Settings) -> ModelClients[DescriberClient]:
    return ModelClients(settings, Task.DESCRIBE, partial(DescriberClient, **actor_options(settings)))


def ocr_client(settings: Settings) -> OcrClient:
    return OcrClient(settings.ocr_model, **actor_options(settings))


def check_models(settings: Settings) -> None:
    """Refuse at start-up a configured model that is unknown or not on this machine, naming it and how to
    provide it, rather than failing every job later. (A missing describe model only skips descriptions, with
    the reason on each file: it is checked when an image is described.)"""
    models: dict[str, ModelPool] = {
        "SCOPIX_EMBED_TEXT_MODEL": text_embedder(settings),
        "SCOPIX_OCR_MODEL": OcrClient(settings.ocr_model),
        "SCOPIX_EMBED_IMAGE_MODEL": ImageEmbedderClient(settings.embed_image_model),
    }
    for setting, client in models.items():
        try:
            client.spec  # noqa: B018  (resolves: reads config files, loads no weights)
        except InferenceUnavailable as error:
            raise Misconfigured(f"{setting}: {error}") from error
