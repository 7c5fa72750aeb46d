"""Learned image embeddings, `ClipEmbedder`: a CLIP or SigLIP model (image and text towers in one space), for
semantic similarity and text-to-image search. No such weights ship in any package: give a local directory or a
cached hub id. Rows are unit float32, so a dot product is a cosine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoProcessor

from models.base import Embedder, TorchModel
from models.images import open_rgb


class ClipEmbedder(
    TorchModel[bytes, torch.Tensor, torch.Tensor, np.ndarray], Embedder[bytes, torch.Tensor, torch.Tensor]
):
    """One loaded CLIP/SigLIP model. Not thread-safe: one forward at a time (a model actor serialises them)."""

    def __init__(
        self, path: Path, model_id: str, revision: str, *, device: str = "cpu", threads: int | None = None
    ) -> None:
        super().__init__(model_id, revision, device, threads)
        self._processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        self._model = AutoModel.from_pretrained(path, local_files_only=True).to(self._device).eval()
        config = self._model.config
        # CLIP projects both towers to projection_dim; SigLIP's towers end at their hidden size.
        self._dimension = int(getattr(config, "projection_dim", None) or config.vision_config.hidden_size)
        positions = config.text_config.max_position_embeddings
        self._max_length = min(self._processor.tokenizer.model_max_length, positions)
        # SigLIP was trained on texts padded to the full length, and its text embeddings are wrong otherwise.
        self._padding = "max_length" if config.model_type.startswith("siglip") else True

    @property
    def dimension(self) -> int:
        return self._dimension

    def prepare(self, items: Sequence[bytes]) -> torch.Tensor:
        """The pixels of each encoded image, resized and normalised as the model was trained."""
        return self._processor(images=[open_rgb(data) for data in items], return_tensors="pt")["pixel_values"]

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        with self._inference():
            return self._model.get_image_features(pixel_values=batch.to(self._device)).pooler_output

    def finish(self, raw: torch.Tensor) -> np.ndarray:
        return _unit(raw)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 rows in the images' space, one per text (a query for text-to-image search)."""
        if not texts:
            return self.no_outputs()
        batch = self._processor.tokenizer(
            texts, padding=self._padding, truncation=True, max_length=self._max_length, return_tensors="pt"
        )
        inputs = {key: batch[key].to(self._device) for key in ("input_ids", "attention_mask") if key in batch}
        with self._inference():
            return _unit(self._model.get_text_features(**inputs).pooler_output)


def _unit(features: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(features.float(), dim=1).cpu().numpy()
