"""Sentence embeddings from a BERT-like encoder, computed as sentence-transformers computes them for the model's
directory (models/sentence_config.py): the role's prompt before the text, tokenise and truncate at the model's
max_seq_length, forward, pool as the directory says (CLS, mean, max, last token ...), L2-normalise.

Written against transformers directly, so that any local directory of the architecture loads through the same code
and a model actor needs no sentence-transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, BatchEncoding

from models.base import Embedder, TorchModel
from models.sentence_config import Query, Role, read_sentence_config

TextItem = str | Query
_Batch = tuple[BatchEncoding, torch.Tensor]  # the tokens and each row's prompt tokens left out of the pooling
_Raw = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # the last hidden states, the attention and the pooling masks


class TextEmbedder(TorchModel[TextItem, _Batch, _Raw, np.ndarray], Embedder[TextItem, _Batch, _Raw]):
    """One loaded encoder. Not thread-safe: one forward at a time (a model actor serialises them)."""

    def __init__(
        self, path: Path, model_id: str, revision: str, *, device: str = "cpu", threads: int | None = None
    ) -> None:
        super().__init__(model_id, revision, device, threads)
        self._config = read_sentence_config(path)
        transformer = self._config.transformer
        self._tokenizer = AutoTokenizer.from_pretrained(transformer, local_files_only=True)
        self._model = AutoModel.from_pretrained(transformer, local_files_only=True).to(self._device).eval()
        # sentence-transformers' max_seq_length where the directory has one (MiniLM was trained at 256, not its
        # tokenizer's 512), else the tokenizer's; never beyond the position embeddings
        wanted = self._config.max_seq_length or self._tokenizer.model_max_length
        self._max_length = min(wanted, getattr(self._model.config, "max_position_embeddings", None) or wanted)
        self._prompts = {role: self._config.prompt(role) for role in ("query", "document")}
        self._prompt_tokens = {role: self._excluded_tokens(prompt) for role, prompt in self._prompts.items()}

    @property
    def dimension(self) -> int:
        return self._config.dimension(int(self._model.config.hidden_size))

    @property
    def max_length(self) -> int:
        """Tokens the model reads per text, special tokens and prompt included; longer texts are truncated."""
        return self._max_length

    def prepare(self, items: Sequence[TextItem]) -> _Batch:
        roles: list[Role] = ["query" if isinstance(item, Query) else "document" for item in items]
        texts = [
            self._prompts[role] + (item.text if isinstance(item, Query) else item)
            for role, item in zip(roles, items, strict=True)
        ]
        if self._config.do_lower_case:
            texts = [text.lower() for text in texts]
        tokens = self._tokenizer(texts, padding=True, truncation=True, max_length=self._max_length, return_tensors="pt")
        return tokens, torch.tensor([self._prompt_tokens[role] for role in roles])

    def forward(self, batch: _Batch) -> _Raw:
        tokens, prompt_tokens = batch
        tokens = tokens.to(self._device)
        with self._inference():
            hidden = self._model(**tokens).last_hidden_state
        attention = tokens["attention_mask"]
        return hidden, attention, _without_prompts(attention, prompt_tokens.to(self._device))

    def finish(self, raw: _Raw) -> np.ndarray:
        """The pooled hidden states (several poolings side by side), at unit length: a float32 row per text."""
        hidden, attention, mask = raw
        pooled = torch.cat([_pool(mode, hidden, attention, mask) for mode in self._config.pooling], dim=-1)
        return torch.nn.functional.normalize(pooled.float(), dim=1).cpu().numpy()

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` without special tokens or truncation, so a chunker can tell what would be cut."""
        return len(self._tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def _excluded_tokens(self, prompt: str) -> int:
        """How many leading tokens of a text the pooling skips: its prompt's, where the model pools without them (as
        sentence-transformers counts them: the prompt tokenised alone and truncated, less a closing special token)."""
        if self._config.include_prompt or not prompt:
            return 0
        prompt = prompt.lower() if self._config.do_lower_case else prompt
        ids = self._tokenizer(prompt, truncation=True, max_length=self._max_length)["input_ids"]
        return len(ids) - (1 if ids and ids[-1] in self._tokenizer.all_special_ids else 0)


def _without_prompts(attention_mask: torch.Tensor, prompt_tokens: torch.Tensor) -> torch.Tensor:
    """The attention mask with each row's first `prompt_tokens` real tokens (after any left padding) cleared."""
    first = attention_mask.to(torch.int32).argmax(dim=1)
    positions = torch.arange(attention_mask.size(1), device=attention_mask.device).unsqueeze(0)
    return attention_mask.masked_fill(positions < (first + prompt_tokens).unsqueeze(1), 0)


def _pool(mode: str, hidden: torch.Tensor, attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One pooling of sentence-transformers' Pooling module, over the tokens that `mask` keeps (the attention mask
    less any prompt tokens)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "cls":  # the first kept token: [CLS] with right padding
        return hidden[torch.arange(hidden.size(0)), mask.to(torch.int32).argmax(dim=1)]
    if mode == "lasttoken":  # the last kept token: what a decoder's embedding reads
        last = hidden.size(1) - 1 - mask.flip(1).to(torch.int32).argmax(dim=1)
        return hidden[torch.arange(hidden.size(0)), last] * weights[torch.arange(hidden.size(0)), last]
    if mode == "max":
        return hidden.masked_fill(weights == 0, float("-inf")).max(dim=1).values
    if mode == "weightedmean":  # later tokens weigh more, counted from the first real one (a prompt's included)
        positions = torch.arange(1, hidden.size(1) + 1, device=hidden.device, dtype=hidden.dtype).view(1, -1, 1)
        weights = weights * (positions - attention.to(torch.int32).argmax(dim=1).view(-1, 1, 1))
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    count = weights.sum(1).clamp(min=1e-9)
    total = (hidden * weights).sum(1)
    return total / count if mode == "mean" else total / count.sqrt()  # mean_sqrt_len_tokens
