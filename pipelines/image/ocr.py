"""The `ocr` step: an image's visible text and its regions, read by the OCR model actor (its batch lane). Runs
in the engine's process, since the work is the actor's.

Regions are stored in the spec's shape, `{"text", "confidence", "bounding_box": {"x_min", "y_min", "x_max",
"y_max"}}`, as fractions (0-1) of the upright image; an image without text has no visible text (null).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.model_clients import OcrClient
from pipelines.engine.step import FileRef, Result, files_lane
from pipelines.image.source import image_of
from store import ai_outputs
from store.step_objects import S3Location

COLUMNS = ("visible_text", "text_regions")


@dataclass(frozen=True)
class ReadText:
    """`load`: the image's bytes; `run`: the actor reads them."""

    location: S3Location
    ocr: OcrClient

    async def load(self, file: FileRef) -> bytes:
        return await image_of(self.location, file)

    async def run(self, image: bytes) -> dict[str, Any]:
        [found] = await self.ocr.read([image], lane=files_lane())
        return {
            "visible_text": found["text"] or None,
            "text_regions": [_region(region) for region in found["regions"]],
            "model": await self.ocr.provenance(),
        }


def _region(region: dict[str, Any]) -> dict[str, Any]:
    box = region["bounding_box"]
    corners = {
        "x_min": box["x"],
        "y_min": box["y"],
        "x_max": min(box["x"] + box["w"], 1.0),
        "y_max": min(box["y"] + box["h"], 1.0),
    }
    return {
        "text": region["text"],
        "confidence": region["confidence"],
        "bounding_box": {name: round(value, 4) for name, value in corners.items()},
    }


async def save_text(file: FileRef, result: Result) -> None:
    await ai_outputs.record_models(file.id, {"ocr": result["model"]})
