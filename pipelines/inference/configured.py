"""The model clients as the settings configure them (no Ray call until one infers), and the start-up check that
every configured model is on this machine."""

from __future__ import annotations

from functools import partial
from typing import Any

from cluster.model_actor import Batching, Recycling
from cluster.model_clients import DescriberClient, EmbedderClient, ImageEmbedderClient, OcrClient
from cluster.model_pool import InferenceUnavailable, ModelPool, Scaling
from models.registry import Task
from pipelines.inference.clients import ModelClients
from store.errors import Misconfigured
from store.settings import Settings, TaskModel


def actor_options(configured: TaskModel) -> dict[str, Any]:
    """A task's model replicas: their share of a node, their retirement and how many, as the settings configure
    them."""
    return {
        "num_cpus": configured.num_cpus,
        "num_gpus": configured.num_gpus,
        "memory_mib": configured.memory_mib,
        "resources": configured.resources,
        "threads": configured.threads,
        "recycling": Recycling(max_batches=configured.max_batches),
        "scaling": Scaling(configured.min_replicas, configured.max_replicas, configured.idle_seconds),
    }


def text_embedder(settings: Settings, model: str | None = None) -> EmbedderClient:
    """The client of the shared `embed_text` actor of `model` (None: the settings')."""
    configured = settings.models.embed_text
    return EmbedderClient(model or configured.model, batching=Batching(), **actor_options(configured))


def text_embedders(settings: Settings) -> ModelClients[EmbedderClient]:
    """A client per model in use, built as text_embedder builds them."""
    return ModelClients(settings, Task.EMBED_TEXT, partial(text_embedder, settings))


def image_embedders(settings: Settings) -> ModelClients[ImageEmbedderClient]:
    options = actor_options(settings.models.embed_image)
    return ModelClients(settings, Task.EMBED_IMAGE, partial(ImageEmbedderClient, **options))


def describers(settings: Settings) -> ModelClients[DescriberClient]:
    return ModelClients(settings, Task.DESCRIBE, partial(DescriberClient, **actor_options(settings.models.describe)))


def ocr_client(settings: Settings) -> OcrClient:
    return OcrClient(settings.models.ocr.model, **actor_options(settings.models.ocr))


def check_models(settings: Settings) -> None:
    """Refuse at start-up a configured model that is unknown or not on this machine, naming it and how to
    provide it, rather than failing every job later. (A missing describe model only skips descriptions, with
    the reason on each file: it is checked when an image is described.)"""
    models: dict[str, ModelPool] = {
        "SCOPIX_MODELS__EMBED_TEXT__MODEL": text_embedder(settings),
        "SCOPIX_MODELS__OCR__MODEL": OcrClient(settings.models.ocr.model),
        "SCOPIX_MODELS__EMBED_IMAGE__MODEL": ImageEmbedderClient(settings.models.embed_image.model),
    }
    for setting, client in models.items():
        try:
            client.spec  # noqa: B018  (resolves: reads config files, loads no weights)
        except InferenceUnavailable as error:
            raise Misconfigured(f"{setting}: {error}") from error
