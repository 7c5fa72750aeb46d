"""The contract every model wrapper keeps, so that whatever runs a model (a model actor, a test, a benchmark) calls
`predict` without knowing the task: `prepare` the items on the CPU, `forward` them through the model, `finish` the
raw outputs into one output per item. Also their provenance, and for torch models the CPU threads they run with."""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

import numpy as np

Item = TypeVar("Item")
Batch = TypeVar("Batch")
Raw = TypeVar("Raw")
Outputs = TypeVar("Outputs")


def usable_cpus(threads: int | None) -> int:
    """`threads`, or every CPU this process may use: Ray sets OMP_NUM_THREADS=1 in its workers, so the
    libraries' defaults would use one core."""
    return threads or len(os.sched_getaffinity(0))


class LoadedModel(ABC, Generic[Item, Batch, Raw, Outputs]):
    """A loaded model; every output it makes records `model_id` and `revision` (provenance)."""

    # How many predictions may run at once, each from its own thread; a model actor runs that many side by side.
    concurrency = 1

    def __init__(self, model_id: str, revision: str) -> None:
        self._model_id = model_id
        self._revision = revision

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def revision(self) -> str:
        return self._revision

    def predict(self, items: Sequence[Item]) -> Outputs:
        """One output per item, in order."""
        if not items:
            return self.no_outputs()
        return self.finish(self.forward(self.prepare(items)))

    @abstractmethod
    def prepare(self, items: Sequence[Item]) -> Batch:
        """The model's inputs for `items` (non-empty), made on the CPU: tokens, decoded and resized images."""

    @abstractmethod
    def forward(self, batch: Batch) -> Raw:
        """The model's raw outputs for a prepared batch."""

    @abstractmethod
    def finish(self, raw: Raw) -> Outputs:
        """One output per item from the raw outputs: pooled, normalised, decoded."""

    def no_outputs(self) -> Outputs:
        """The outputs of no items."""
        return []  # type: ignore[return-value]  # outputs are a list unless they are rows (Embedder)


class Embedder(LoadedModel[Item, Batch, Raw, np.ndarray]):
    """A model whose outputs are unit-length float32 rows of `dimension` floats, so a dot product is a cosine."""

    @property
    @abstractmethod
    def dimension(self) -> int: ...

    def no_outputs(self) -> np.ndarray:
        return np.zeros((0, self.dimension), np.float32)


class TorchModel(LoadedModel[Item, Batch, Raw, Outputs]):
    """A torch model on one device, with torch's CPU threads set for the process and for each forward."""

    def __init__(self, model_id: str, revision: str, device: str, threads: int | None) -> None:
        import torch  # here: models without weights (OCR on ONNX, perceptual) start without torch

        super().__init__(model_id, revision)
        self._threads = usable_cpus(threads)
        torch.set_num_threads(self._threads)
        self._device = torch.device(device)

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        """Where a forward runs: without autograd, and with this model's threads, which OpenMP counts per OS thread
        (a forward run from an executor thread needs them set again)."""
        import torch

        if torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)
        with torch.inference_mode():
            yield
