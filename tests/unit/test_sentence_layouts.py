"""A sentence-transformers model directory is embedded as sentence-transformers embeds it: its pooling, prompts,
max_seq_length and prompt exclusion, checked against sentence-transformers itself loading the same tiny random
directory (laid out as BGE, E5 and GTE models are on the hub, and as sentence-transformers saves one today)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

from models.registry import ModelUnavailable, Task, load, resolve
from models.sentence_config import Query
from models.text_embedding import TextEmbedder
from testkit.tiny_models import sentence_encoder

TEXTS = [
    "damaged equipment",
    "Broken machinery was found behind the warehouse; " * 6,  # beyond max_seq_length: truncated by both
    "Überprüfung der Pumpe",
]
BGE_QUERY = "Represent this sentence for searching relevant passages: "
LAYOUTS: dict[str, dict[str, Any]] = {
    "bge: cls, normalized, a query prompt": {"pooling": ("cls",), "prompts": {"query": BGE_QUERY}},
    "e5: mean, not normalized, query and document prompts, short": {
        "pooling": ("mean",),
        "normalize": False,
        "prompts": {"query": "query: ", "document": "passage: "},
        "max_seq_length": 12,
    },
    "instructor: mean without the prompt's tokens": {
        "pooling": ("mean",),
        "include_prompt": False,
        "prompts": {"query": "Represent the question: ", "document": "Represent the report: "},
    },
    "gte-qwen: last token": {"pooling": ("lasttoken",), "prompts": {"query": "Instruct: find reports\nQuery: "}},
    "max, mean_sqrt_len and weightedmean side by side": {
        "pooling": ("max", "mean_sqrt_len_tokens", "weightedmean"),
        "prompts": {"query": BGE_QUERY},
    },
}


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _assert_embeds_as(ours: TextEmbedder, theirs: SentenceTransformer) -> None:
    assert ours.dimension == theirs.get_embedding_dimension()
    queries, documents = ours.predict([Query(text) for text in TEXTS]), ours.predict(TEXTS)
    np.testing.assert_allclose(queries, _unit(theirs.encode_query(TEXTS)), atol=1e-5)
    np.testing.assert_allclose(documents, _unit(theirs.encode_document(TEXTS)), atol=1e-5)
    assert np.abs(queries[0] - documents[0]).max() > 1e-4  # the query prompt changed the vector
    # a batch holding both roles (the actor batches queries with chunks) gives each its own vector
    np.testing.assert_allclose(ours.predict([TEXTS[0], Query(TEXTS[0])]), [documents[0], queries[0]], atol=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_a_hub_layout_embeds_as_sentence_transformers_does(tmp_path: Path, layout: dict[str, Any]) -> None:
    directory = sentence_encoder(tmp_path, **layout)
    spec = resolve(Task.EMBED_TEXT, str(directory))
    ours = load(spec)
    theirs = SentenceTransformer(str(directory), device="cpu", local_files_only=True)

    assert spec.dimension == 32 * len(layout["pooling"])
    assert ours.max_length == layout.get("max_seq_length", 32)
    _assert_embeds_as(ours, theirs)
    np.testing.assert_allclose(np.linalg.norm(ours.predict(TEXTS), axis=1), 1.0, atol=1e-5)  # normalized or not


def test_a_directory_saved_by_sentence_transformers_today_embeds_the_same(tmp_path: Path) -> None:
    """Newer releases save `pooling_mode`, full module paths, and max_seq_length in the tokenizer's config."""
    transformer = Transformer(str(sentence_encoder(tmp_path / "encoder")), max_seq_length=10)
    theirs = SentenceTransformer(
        modules=[transformer, Pooling(32, pooling_mode="cls", include_prompt=False)],
        prompts={"query": BGE_QUERY, "document": "passage: "},
        device="cpu",
    )
    theirs.save(str(tmp_path / "saved"))
    assert json.loads((tmp_path / "saved/1_Pooling/config.json").read_text())["pooling_mode"] == "cls"

    ours = load(resolve(Task.EMBED_TEXT, str(tmp_path / "saved")))
    assert ours.max_length == 10
    _assert_embeds_as(ours, theirs)


def test_an_e5_passage_prompt_is_a_document_s_prompt(tmp_path: Path) -> None:
    """sentence-transformers documents `encode_document` as taking the `document`, else `passage`, else `corpus`
    prompt, as E5 models expect; its 6.x releases pass over `passage` (their prompts always hold an empty
    `document`), so the expected vectors name the prompt explicitly."""
    directory = sentence_encoder(tmp_path, ("mean",), prompts={"query": "query: ", "passage": "passage: "})
    theirs = SentenceTransformer(str(directory), device="cpu", local_files_only=True)

    np.testing.assert_allclose(
        load(resolve(Task.EMBED_TEXT, str(directory))).predict(TEXTS),
        theirs.encode(TEXTS, prompt_name="passage"),
        atol=1e-5,
    )


def test_the_packaged_minilm_embeds_as_sentence_transformers_does() -> None:
    path = resolve(Task.EMBED_TEXT).path
    np.testing.assert_allclose(
        load(resolve(Task.EMBED_TEXT)).predict(TEXTS),
        SentenceTransformer(str(path), device="cpu", local_files_only=True).encode_document(TEXTS),
        atol=1e-5,
    )


def test_a_module_it_does_not_compute_is_refused_naming_it(tmp_path: Path) -> None:
    directory = sentence_encoder(tmp_path)
    modules = json.loads((directory / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (directory / "modules.json").write_text(json.dumps(modules))

    with pytest.raises(ModelUnavailable, match="Dense"):
        resolve(Task.EMBED_TEXT, str(directory))


def test_the_pooling_config_is_part_of_a_directory_s_revision(tmp_path: Path) -> None:
    directory = sentence_encoder(tmp_path)
    before = load(resolve(Task.EMBED_TEXT, str(directory))).revision
    (directory / "1_Pooling/config.json").write_text(json.dumps({"pooling_mode": "mean"}))
    assert load(resolve(Task.EMBED_TEXT, str(directory))).revision != before


def test_a_transformer_in_its_module_folder_loads_from_there(tmp_path: Path) -> None:
    """Older sentence-transformers releases saved the transformer in a module folder (`0_BERT`), named by modules.json
    and holding its own sentence_bert_config.json."""
    directory = sentence_encoder(tmp_path / "model", ("mean",), prompts={"query": "query: "}, max_seq_length=12)
    (directory / "0_BERT").mkdir()
    for file in directory.iterdir():
        if file.is_file() and file.name not in ("modules.json", "config_sentence_transformers.json"):
            file.rename(directory / "0_BERT" / file.name)
    modules = json.loads((directory / "modules.json").read_text())
    modules[0]["path"] = "0_BERT"
    (directory / "modules.json").write_text(json.dumps(modules))

    spec = resolve(Task.EMBED_TEXT, str(directory))
    ours = load(spec)
    assert spec.dimension == 32 and ours.max_length == 12
    _assert_embeds_as(ours, SentenceTransformer(str(directory), device="cpu", local_files_only=True))
