"""Sentence embeddings from a BERT-like encoder: tokenise, forward, attention-masked mean-pool, L2-normalise.

This is what sentence-transformers does for all-MiniLM-L6-v2 and its kin, written against transformers
directly so that any local directory of the same architecture loads through the same code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from models.base import TorchModel


class TextEmbedder(TorchModel):
    """One loaded encoder. Not thread-safe: one forward at a time (a model actor serialises them)."""

    def __init__(
        self, path: Path, model_id: str, revision: str, *, device: str = "cpu", threads: int | None = None
    ) -> None:
        super().__init__(model_id, revision, device, threads)
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = AutoModel.from_pretrained(path, local_files_only=True).to(self._device).eval()
        self._max_length = _max_length(path, self._tokenizer.model_max_length, self._model.config)

    @property
    def dimension(self) -> int:
        return int(self._model.config.hidden_size)

    @property
    def max_length(self) -> int:
        """Tokens the model reads per text, special tokens included; longer texts are truncated."""
        return self._max_length

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 rows, one per text, in order."""
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        self._use_threads()
        batch = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self._max_length, return_tensors="pt"
        ).to(self._device)
        with torch.inference_mode():
            hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1).float().cpu().numpy()

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` without special tokens or truncation, so a chunker can tell what would be cut."""
        return len(self._tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def _max_length(path: Path, tokenizer_max: int, config: object) -> int:
    """sentence-transformers' `max_seq_length` when the directory has one (MiniLM was trained at 256, not
    its tokenizer's 512), else the smaller of the tokenizer's and the position embeddings' limits."""
    limits = [tokenizer_max, getattr(config, "max_position_embeddings", tokenizer_max)]
    settings = path / "sentence_bert_config.json"
    if settings.is_file():
        limits.append(int(json.loads(settings.read_text())["max_seq_length"]))
    return min(limits)
