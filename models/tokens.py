"""Token counts by a model's own tokenizer, without loading its weights: what a chunker needs to cut texts
that the embedder will read whole."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from models.registry import ModelSpec
from models.sentence_config import read_sentence_config

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@functools.cache
def _tokenizer(path: Path) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer  # here: importing transformers costs seconds that the API never needs

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def token_counter(spec: ModelSpec) -> Callable[[str], int]:
    """`count(text)`: the tokens of `text` with the model's special tokens, untruncated (loaded once per process)."""
    tokenizer = _tokenizer(read_sentence_config(spec.path).transformer)

    def count(text: str) -> int:
        return len(tokenizer(text, verbose=False)["input_ids"])

    return count
