"""Image descriptions from a vision-language model, with a prompt tailored to the file's content category.

Two families load through the same code (`AutoModelForImageTextToText` + `AutoProcessor`):
- chat models (LLaVA, SmolVLM, Qwen-VL ...): their processor has a chat template; the prompt is an instruction
  next to the image, and the description is what the model generates after it;
- captioners (BLIP): no chat template; the prompt is a caption's first words ("a blueprint of"), or nothing
  for a plain caption, and the description is the whole caption, those first words included.
Generation is greedy and bounded, so the same image and model give the same description.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor, BatchFeature

from models.base import TorchModel
from models.images import open_rgb


@dataclass(frozen=True)
class Prompt:
    instruction: str  # for chat models
    caption: str | None  # the first words of a caption, for captioners (None: an unconditional caption)


GENERAL = Prompt(
    "Describe this image in one or two sentences: the main subject, the setting and any visible text.", None
)

# The spec's content_category values (files-api-v2: upload); an unknown category gets the general prompt.
PROMPTS: dict[str, Prompt] = {
    "general": GENERAL,
    "blueprint": Prompt(
        "Describe this blueprint: what it depicts, its main elements, labels and dimensions.", "a blueprint of"
    ),
    "ce_plan": Prompt(
        "Describe this civil engineering plan: the structures, roads or utilities shown and any labels.",
        "a civil engineering plan of",
    ),
    "technical_diagram": Prompt(
        "Describe this technical diagram: its components, how they connect, and any labels.", "a technical diagram of"
    ),
    "architectural_design": Prompt(
        "Describe this architectural design: the building, its form, materials and spaces.",
        "an architectural design of",
    ),
    "product_photo": Prompt(
        "Describe the product in this photo: what it is, its colour, material and condition.", "a product photo of"
    ),
    "real_estate": Prompt(
        "Describe this property photo: the room or exterior, its features, finishes and condition.",
        "a real estate photo of",
    ),
    "mining": Prompt(
        "Describe this mining scene: the site, equipment, materials and any hazards.", "a mining site with"
    ),
    "robotics": Prompt(
        "Describe the robot or robotic system in this image: its type, parts and what it is doing.", "a robot"
    ),
    "artwork": Prompt("Describe this artwork: its subject, style, medium and colours.", "a painting of"),
    "screenshot": Prompt(
        "Describe this screenshot: the application or page shown and its main text.", "a screenshot of"
    ),
    "document": Prompt("Describe this document: its type, title and main content.", "a document with"),
    "map": Prompt("Describe this map: the area shown, its main features and labels.", "a map of"),
    "pid": Prompt(
        "Describe this piping and instrumentation diagram: its equipment, lines, instruments and tags.",
        "a piping diagram of",
    ),
    "pfd": Prompt(
        "Describe this process flow diagram: the process, its main units and streams.", "a process flow diagram of"
    ),
    "construction": Prompt(
        "Describe this construction site photo: the work, structures, equipment, materials and any damage or hazards.",
        "a construction site with",
    ),
    "facility_assessment": Prompt(
        "Describe the condition of this facility: the area or equipment shown and any damage, wear or hazards.",
        "a facility with",
    ),
}


def prompt_for(category: str) -> Prompt:
    return PROMPTS.get(category, GENERAL)


@dataclass(frozen=True)
class _Group:
    """Items the model generates for together: their indices, inputs, and the prompt's length in the output."""

    rows: list[int]
    inputs: BatchFeature
    prompt_length: int  # tokens the output repeats before the description (a captioner's caption start: kept)


_Generated = list[tuple[_Group, torch.Tensor]]  # each group with its output token ids


class Describer(TorchModel[tuple[bytes, str], list[_Group], _Generated, list[str]]):
    """One loaded vision-language model. Not thread-safe: one generation at a time (a model actor serialises)."""

    def __init__(
        self,
        path: Path,
        model_id: str,
        revision: str,
        *,
        device: str = "cpu",
        threads: int | None = None,
        max_new_tokens: int = 60,
    ) -> None:
        super().__init__(model_id, revision, device, threads)
        self._max_new_tokens = max_new_tokens
        self._processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        dtype = torch.float32 if self._device.type == "cpu" else "auto"  # half precision is slow on CPUs
        model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True, dtype=dtype)
        # transformers wraps PreTrainedModel.to in functools.wraps, whose typeshed type drops the bound self
        self._model = model.to(self._device).eval()  # type: ignore[arg-type]
        if model.generation_config.pad_token_id is None:  # else generate() warns on every batch
            model.generation_config.pad_token_id = self._processor.tokenizer.pad_token_id
        self._chat = getattr(self._processor, "chat_template", None) is not None
        if self._chat:  # decoder-only: prompts of different lengths line up at the end, where generation starts
            self._processor.tokenizer.padding_side = "left"

    def prepare(self, items: Sequence[tuple[bytes, str]]) -> list[_Group]:
        """Per (encoded image, content_category): the image with its category's prompt, in as few groups as the
        model can generate together."""
        images = [open_rgb(data) for data, _ in items]
        prompts = [prompt_for(category) for _, category in items]
        if self._chat:
            return [self._conversation(images, [prompt.instruction for prompt in prompts])]
        # A captioner's prompt is the start of its output: rows of one batch must share it (padding inside the
        # decoder's prefix would be generated from), so each distinct caption start is one group.
        rows: dict[str | None, list[int]] = defaultdict(list)
        for index, prompt in enumerate(prompts):
            rows[prompt.caption].append(index)
        groups = []
        for caption, indices in rows.items():
            texts = [caption] * len(indices) if caption is not None else None
            inputs = self._processor(images=[images[i] for i in indices], text=texts, return_tensors="pt")
            groups.append(_Group(indices, inputs, prompt_length=0))
        return groups

    def _conversation(self, images: list[Image.Image], instructions: list[str]) -> _Group:
        conversations = [
            [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}]
            for image, text in zip(images, instructions, strict=True)
        ]
        inputs = self._processor.apply_chat_template(
            conversations,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"padding": True},
        )
        # A decoder-only model returns the prompt before the new tokens.
        return _Group(list(range(len(images))), inputs, prompt_length=inputs["input_ids"].shape[1])

    def forward(self, batch: list[_Group]) -> _Generated:
        """Each group with its generated token ids: greedy and bounded."""
        generated = []
        for group in batch:
            inputs = group.inputs.to(self._device, dtype=self._model.dtype)  # casts the pixels, not the token ids
            with self._inference():
                sequences = self._model.generate(
                    **inputs, max_new_tokens=self._max_new_tokens, do_sample=False, num_beams=1
                )
            generated.append((group, sequences))
        return generated

    def finish(self, raw: _Generated) -> list[str]:
        """The descriptions, in the items' order: what each group generated, less any prompt it repeats, as text."""
        descriptions = [""] * sum(len(group.rows) for group, _ in raw)
        for group, sequences in raw:
            texts = self._processor.batch_decode(sequences[:, group.prompt_length :], skip_special_tokens=True)
            for index, text in zip(group.rows, texts, strict=True):
                descriptions[index] = text.strip()
        return descriptions
