"""The clients of each task's model actors: a model pool (cluster/model_pool.py) with the task's batching and its
outputs typed. Vision items travel as encoded image bytes (a variant of some hundred KB), decoded where the model
runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cluster.model_actor import Batching, Lane
from cluster.model_pool import ModelPool
from models.registry import Task
from models.sentence_config import Query, Role


class EmbedderClient(ModelPool):
    """Text embeddings through the `embed_text` model actor; the search endpoint and the job worker use it."""

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(Task.EMBED_TEXT, model, **options)

    async def embed(self, texts: Sequence[str], lane: Lane = "interactive", role: Role = "document") -> np.ndarray:
        """Unit-length float32 rows [len(texts), dimension], computed by the actor for these very texts, each with
        the model's prompt for its role (a search query's differs from a document's in BGE or E5 models)."""
        return await _rows(self, [Query(text) for text in texts] if role == "query" else texts, lane)


class ImageEmbedderClient(ModelPool):
    """Image vectors through the `embed_image` actor."""

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(Task.EMBED_IMAGE, model, **options)

    async def embed(self, images: Sequence[bytes], lane: Lane = "batch") -> np.ndarray:
        """Unit-length float32 rows [len(images), dimension], in order."""
        return await _rows(self, images, lane)


class DescriberClient(ModelPool):
    """Image descriptions through the `describe` actor: a generation per image, so small batches."""

    def __init__(self, model: str | None = None, **options: Any) -> None:
        options.setdefault(
            "batching", Batching(max_batch_size=4, batch_lane_max_batch_size=8, batch_lane_max_wait_ms=100.0)
        )
        super().__init__(Task.DESCRIBE, model, **options)

    async def describe(self, items: Sequence[tuple[bytes, str]], lane: Lane = "batch") -> list[str]:
        """One description per (image bytes, content_category), in order."""
        return list(await self.infer(list(items), lane)) if items else []


class OcrClient(ModelPool):
    """Visible text through the `ocr` actor (images are read one by one there; batching saves Ray calls)."""

    def __init__(self, model: str | None = None, **options: Any) -> None:
        options.setdefault("batching", Batching(max_batch_size=8, batch_lane_max_batch_size=16))
        super().__init__(Task.OCR, model, **options)

    async def read(self, images: Sequence[bytes], lane: Lane = "batch") -> list[dict[str, Any]]:
        """Per image: {"text", "regions": [{"text", "confidence", "bounding_box": {"x", "y", "w", "h"}}]}."""
        return list(await self.infer(list(images), lane)) if images else []


async def _rows(pool: ModelPool, items: Sequence[Any], lane: Lane) -> np.ndarray:
    """An embedding pool's rows for `items`; none for none, without a call."""
    if not items:
        return np.zeros((0, pool.spec.dimension or 0), np.float32)
    return await pool.infer(list(items), lane)
