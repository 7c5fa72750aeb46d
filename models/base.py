"""What every model wrapper shares: its provenance, and for torch models the CPU threads they run with."""

from __future__ import annotations

import os


def usable_cpus(threads: int | None) -> int:
    """`threads`, or every CPU this process may use: Ray sets OMP_NUM_THREADS=1 in its workers, so the
    libraries' defaults would use one core."""
    return threads or len(os.sched_getaffinity(0))


class LoadedModel:
    """A loaded model; every output it makes records `model_id` and `revision` (provenance)."""

    # How many forwards may run at once, each from its own thread; a model actor runs that many side by side.
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


class TorchModel(LoadedModel):
    """A torch model on one device, with torch's CPU threads set for the process and for each forward."""

    def __init__(self, model_id: str, revision: str, device: str, threads: int | None) -> None:
        import torch  # here: models without weights (OCR on ONNX, perceptual) start without torch

        super().__init__(model_id, revision)
        self._threads = usable_cpus(threads)
        torch.set_num_threads(self._threads)
        self._device = torch.device(device)

    def _use_threads(self) -> None:
        """The thread count is per OS thread under OpenMP: a forward run from an executor thread needs it again."""
        import torch

        if torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)
