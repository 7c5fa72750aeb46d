"""How a sentence-transformers model directory says its texts are embedded, read from its JSON files alone (no torch,
so the registry can resolve a model cheaply): which tokens are pooled and how, how long a text may be, and which
prompt goes before a query and before a document.

A BGE model pools its CLS token and prefixes queries with an instruction, an E5 model mean-pools with `query: ` and
`passage: ` prefixes, a GTE-Qwen model takes its last token: embedding them all as mean-pooled plain texts gives
vectors in none of their spaces. A bare transformers directory (no modules.json) is read as all-MiniLM-L6-v2's
layout: mean pooling, no prompts.

Every vector is L2-normalised whether or not the directory has a Normalize module: the stores compare vectors by
cosine and callers by dot product, which a model without Normalize gives the same ranking under.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Role = Literal["query", "document"]

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
# sentence-transformers' boolean keys before `pooling_mode`; several true ones concatenate in this order
LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_PACKAGE = "sentence_transformers."  # `.models.Pooling` as older releases save it, `...modules.pooling.Pooling` newer
_TRANSFORMER, _POOLING, _NORMALIZE = "Transformer", "Pooling", "Normalize"
# sentence-transformers' encode_document tries these prompt names in this order
_DOCUMENT_PROMPTS = ("document", "passage", "corpus")


@dataclass(frozen=True)
class Query:
    """A search query, embedded with the model's query prompt; a plain str is a document (its document prompt)."""

    text: str


class UnsupportedLayout(ValueError):
    """The directory's sentence-transformers modules are not ones this embedder computes (a Dense layer, a Router)."""


@dataclass(frozen=True)
class SentenceConfig:
    transformer: Path  # the directory of the transformer's config, tokenizer and weights
    pooling: tuple[str, ...] = ("mean",)  # several: their vectors concatenated, in this order
    include_prompt: bool = True  # False: the prompt's tokens are read by the model but left out of the pooling
    max_seq_length: int | None = None
    do_lower_case: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None

    def dimension(self, hidden_size: int) -> int:
        return hidden_size * len(self.pooling)

    def prompt(self, role: Role) -> str:
        """The prompt put before a text of this role: the model's query prompt for a query, its document (or
        passage, or corpus) prompt for a document, else its default prompt, else none."""
        names = ("query",) if role == "query" else _DOCUMENT_PROMPTS
        for name in (*names, self.default_prompt_name):
            if name is not None and self.prompts.get(name):
                return self.prompts[name]
        return ""


def read_sentence_config(path: Path) -> SentenceConfig:
    """The layout of the model directory `path`; raises UnsupportedLayout (a ValueError) naming what it cannot
    compute, OSError or ValueError for unreadable files."""
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        return SentenceConfig(
            transformer=path, max_seq_length=_json(path / "sentence_bert_config.json").get("max_seq_length")
        )
    modules = sorted(json.loads(modules_file.read_text()), key=lambda module: int(module.get("idx", 0)))
    kinds = [_kind(str(module["type"])) for module in modules]
    if not kinds or kinds[0] != _TRANSFORMER or any(kind not in (_POOLING, _NORMALIZE) for kind in kinds[1:]):
        raise UnsupportedLayout(
            f"{path}: sentence-transformers modules {kinds} are not supported (a Transformer, then Pooling and "
            "Normalize modules)"
        )
    transformer = path / modules[0].get("path", "")
    module_settings = _json(transformer / "sentence_bert_config.json")
    pooling = [path / module["path"] for module, kind in zip(modules, kinds, strict=True) if kind == _POOLING]
    if len(pooling) != 1:
        raise UnsupportedLayout(f"{path}: {len(pooling)} Pooling modules; one is supported")
    pooling_settings = _json(pooling[0] / "config.json")
    model_settings = _json(path / "config_sentence_transformers.json")
    return SentenceConfig(
        transformer=transformer,
        pooling=_pooling_modes(path, pooling_settings),
        include_prompt=bool(pooling_settings.get("include_prompt", True)),
        max_seq_length=module_settings.get("max_seq_length"),
        do_lower_case=bool(module_settings.get("do_lower_case", False)),
        prompts={str(name): str(text) for name, text in (model_settings.get("prompts") or {}).items()},
        default_prompt_name=model_settings.get("default_prompt_name"),
    )


def _kind(module_type: str) -> str:
    """A sentence-transformers module's class name; another package's module is kept whole (and refused)."""
    return module_type.rpartition(".")[2] if module_type.startswith(_PACKAGE) else module_type


def _pooling_modes(path: Path, settings: dict[str, Any]) -> tuple[str, ...]:
    mode = settings.get("pooling_mode")
    if mode is None:
        legacy = tuple(name for key, name in LEGACY_POOLING_KEYS.items() if settings.get(key))
        modes = legacy or ("mean",)
    else:
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    unknown = [mode for mode in modes if mode not in POOLING_MODES]
    if unknown:
        raise UnsupportedLayout(f"{path}: pooling {unknown} is not one of {list(POOLING_MODES)}")
    return modes


def _json(file: Path) -> dict[str, Any]:
    return json.loads(file.read_text()) if file.is_file() else {}
