"""Sentence embeddings from a BERT-like encoder: tokenise, forward, attention-masked mean-pool, L2-normalise.

This is what sentence-transformers does for all-MiniLM-L6-v2 and its kin, written against transformers
directly so that any local directory of the same architecture loads through the same code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, BatchEncoding

from models.base import Embedder, TorchModel

_Raw = tuple[torch.Tensor, torch.Tensor]  # the last hidden states and the attention mask


class TextEmbedder(TorchModel[str, BatchEncoding, _Raw, np.ndarray], Embedder[str, BatchEncoding, _Raw]):
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

    def prepare(self, items: Sequence[str]) -> BatchEncoding:
        return self._tokenizer(
            list(items), padding=True, truncation=True, max_length=self._max_length, return_tensors="pt"
        )

    def forward(self, batch: BatchEncoding) -> _Raw:
        batch = batch.to(self._device)
        with self._inference():
            return self._model(**batch).last_hidden_state, batch["attention_mask"]

    def finish(self, raw: _Raw) -> np.ndarray:
        """The attention-masked mean of the hidden states, at unit length: a float32 row per text."""
        hidden, attention_mask = raw
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
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
