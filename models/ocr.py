"""Text in images: rapidocr's PP-OCR models (detection, orientation, recognition) on onnxruntime, shipped inside
the rapidocr wheel, so OCR works offline on a fresh machine.

Detection runs on the image scaled so that its longer side is at most 960 pixels (PaddleOCR's own default): rapidocr
3's default instead scales the shorter side up to 736, which on a wide 800×300 image triples the work for nothing.
Text under about 1/100 of the longer side is then too small to read; pass a crop for that.

Its CPU threads go to copies of the pipeline, each single-threaded and reading its own image, rather than to one
pipeline's operators: PP-OCR's small operators scale poorly across threads, and onnxruntime's threads spin at every
operator's end, so on cores shared with other work two threads on one image cost about 1.5 times the CPU of two
images on a thread each.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from rapidocr import RapidOCR

from models.base import LoadedModel, usable_cpus
from models.images import open_rgb

DETECTION_SIDE = 960

_Read = tuple[Any, tuple[int, int]]  # rapidocr's result for an image, and the image's width and height


class OcrEngine(LoadedModel[bytes, list[Image.Image], list[_Read], list[dict[str, Any]]]):
    """PP-OCR pipelines, one per thread (`threads`: all usable CPUs when None), so `concurrency` calls of `predict` may
    run at once from different threads. It runs on the CPU whatever `device` says: we install onnxruntime's CPU
    build, and PP-OCR's small models are fast there."""

    def __init__(
        self, path: Path, model_id: str, revision: str, *, device: str = "cpu", threads: int | None = None
    ) -> None:
        super().__init__(model_id, revision)
        self.concurrency = usable_cpus(threads)
        self._idle: queue.SimpleQueue[RapidOCR] = queue.SimpleQueue()  # a pipeline is not thread-safe: one each
        for _ in range(self.concurrency):
            self._idle.put(_pipeline(path))

    def prepare(self, items: Sequence[bytes]) -> list[Image.Image]:
        return [open_rgb(data) for data in items]

    def forward(self, batch: list[Image.Image]) -> list[_Read]:
        """Each image's detections, with the image's size; read by an idle pipeline, one image after another."""
        engine = self._idle.get()
        try:
            return [(engine(image), image.size) for image in batch]
        finally:
            self._idle.put(engine)

    def finish(self, raw: list[_Read]) -> list[dict[str, Any]]:
        """Per image: {"text": all lines in reading order, "regions": [{"text", "confidence", "bounding_box":
        {"x", "y", "w", "h"}}]}, boxes normalised to 0–1 of the upright image."""
        return [_regions(result, *size) for result, size in raw]


def _pipeline(path: Path) -> RapidOCR:
    return RapidOCR(
        params={
            "Global.model_root_dir": str(path / "models"),  # the wheel's ONNX files (rapidocr checks their hash)
            "Global.log_level": "error",  # "no text detected" is no warning
            "Det.limit_type": "max",
            "Det.limit_side_len": DETECTION_SIDE,
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )


def _regions(result: Any, width: int, height: int) -> dict[str, Any]:
    if result.boxes is None or result.txts is None or result.scores is None:  # no text detected
        return {"text": "", "regions": []}
    regions = [
        {"text": text, "confidence": round(float(score), 4), "bounding_box": _normalised(box, width, height)}
        for box, text, score in zip(result.boxes, result.txts, result.scores, strict=True)
    ]
    return {"text": _reading_order(regions), "regions": regions}


def _normalised(quad: np.ndarray, width: int, height: int) -> dict[str, float]:
    """The upright rectangle around a detected quadrilateral, as fractions of the image."""
    left, top = np.clip(quad.min(axis=0), 0, (width, height))
    right, bottom = np.clip(quad.max(axis=0), 0, (width, height))
    return {
        "x": round(float(left) / width, 4),
        "y": round(float(top) / height, 4),
        "w": round(float(right - left) / width, 4),
        "h": round(float(bottom - top) / height, 4),
    }


def _reading_order(regions: list[dict[str, Any]]) -> str:
    """Regions come sorted top to bottom, then left to right; one whose vertical centre falls within the previous
    region's height continues its line (joined by a space), any other starts a new line."""
    lines: list[str] = []
    previous: dict[str, float] | None = None
    for region in regions:
        box = region["bounding_box"]
        centre = box["y"] + box["h"] / 2
        if previous is not None and previous["y"] <= centre <= previous["y"] + previous["h"]:
            lines[-1] += " " + region["text"]
        else:
            lines.append(region["text"])
        previous = box
    return "\n".join(lines)
