"""Clients of the vision model actors (cluster.actors.ModelPool): descriptions, OCR and image embeddings. Items
travel as encoded image bytes (a variant of some hundred KB), decoded where the model runs.

Each client also says which model served (`provenance`), since every AI output records its model id and
revision; a local directory's revision is the digest of its weights, known only once an actor has loaded it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cluster.actors import Batching, Lane, ModelPool
from models.registry import Task


class VisionPool(ModelPool):
    def __init__(self, task: Task, model: str | None, default: Batching, **options: Any) -> None:
        """`default`: the task's batching, unless `options` give one."""
        super().__init__(task, model, batching=options.pop("batching", default), **options)
        self._provenance: dict[str, str] | None = None

    async def provenance(self) -> dict[str, str]:
        """{"model_id", "revision"} of the model this pool serves."""
        if self._provenance is None:
            spec = self.spec
            revision = spec.revision or (await self.stats())["revision"]
            self._provenance = {"model_id": spec.model_id, "revision": revision}
        return self._provenance


class DescriberClient(VisionPool):
    """Image descriptions through the `describe` actor: a generation per image, so small batches."""

    def __init__(self, model: str | None = None, **options: Any) -> None:
        batching = Batching(max_batch_size=4, batch_lane_max_batch_size=8, batch_lane_max_wait_ms=100.0)
        super().__init__(Task.DESCRIBE, model, batching, **options)

    async def describe(self, items: Sequence[tuple[bytes, str]], lane: Lane = "batch") -> list[str]:
        """One description per (image bytes, content_category), in order."""
        return list(await self.infer(list(items), lane)) if items else []


class OcrClient(VisionPool):
    """Visible text through the `ocr` actor (images are read one by one there; batching saves Ray calls)."""

    def __init__(self, model: str | None = None, **options: Any) -> None:
        batching = Batching(max_batch_size=8, batch_lane_max_batch_size=16)
        super().__init__(Task.OCR, model, batching, **options)

    async def read(self, images: Sequence[bytes], lane: Lane = "batch") -> list[dict[str, Any]]:
        """Per image: {"text", "regions": [{"text", "confidence", "bounding_box": {"x", "y", "w", "h"}}]}."""
        return list(await self.infer(list(images), lane)) if images else []


class ImageEmbedderClient(VisionPool):
    """Image vectors through the `embed_image` actor."""

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(Task.EMBED_IMAGE, model, Batching(), **options)

    async def embed(self, images: Sequence[bytes], lane: Lane = "batch") -> np.ndarray:
        """Unit-length float32 rows [len(images), dimension], in order."""
        if not images:
            return np.zeros((0, self.spec.dimension or 0), np.float32)
        return await self.infer(list(images), lane)
