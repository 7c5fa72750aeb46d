"""The offline default image embedding, `PerceptualEmbedder`: a classical descriptor that needs no weights, in
unit float32 rows whose dot product says how alike two images look (models/clip_embedding.py has the learned
kind)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from models.base import Embedder
from models.images import open_rgb

# The perceptual descriptor: every part is computed from one 64×64 thumbnail (area averages of the upright image).
_THUMB = 64
_LAYOUT_GRID, _LAYOUT_DIAGONALS = 8, 6  # 8×8 colour layout, its DCT coefficients with u+v < 6: 21 per channel
_HASH_GRID, _HASH_BLOCK = 32, 8  # 32×32 luminance, its 8×8 lowest DCT frequencies less the mean: 63 bits
_HUES, _CHROMATIC_SATURATIONS, _VALUES = 8, 2, 3  # colour histogram: 8 hues × 2 saturations × 3 values + 3 greys
_LAYOUT_SIZE = 3 * _LAYOUT_DIAGONALS * (_LAYOUT_DIAGONALS + 1) // 2
_HASH_SIZE = _HASH_BLOCK * _HASH_BLOCK - 1
_HISTOGRAM_SIZE = _HUES * _CHROMATIC_SATURATIONS * _VALUES + _VALUES
# Share of each part in the cosine similarity of two descriptors: sim = Σ weight × cosine of the parts.
_WEIGHTS = {"layout": 0.5, "hash": 0.25, "histogram": 0.25}


class PerceptualEmbedder(Embedder[bytes, list[Image.Image], list[dict[str, np.ndarray]]]):
    """A weight-free perceptual descriptor, deterministic and fast (~ a millisecond per image past decoding),
    so that near-duplicate detection and `/similar` work on a fresh machine.

    Three parts, each unit-length and weighted so that the cosine of two descriptors is the weighted mean of
    the parts' cosines:
    - colour layout (half): the image averaged to an 8×8 grid in YCbCr, centred on grey, and the low-frequency
      2-D DCT coefficients of each channel (MPEG-7's colour layout descriptor): where the light, dark and
      coloured masses are;
    - perceptual hash (a quarter): the signs of the 8×8 lowest DCT frequencies of the 32×32 luminance against
      their median (pHash), as ±1: the coarse structure;
    - colour histogram (a quarter): 8 hues × 2 saturations × 3 values, with near-grey pixels counted by value
      alone, square-rooted (the cosine is then the Bhattacharyya coefficient): the palette.

    Good for: finding resized, re-encoded, slightly cropped or recoloured copies of an image (near-duplicates,
    a resized copy scores about 0.99 and unrelated photos far lower), and images alike in colour and layout.
    Not good for: meaning. Two photos of different cats on different backgrounds are not near, a red car and
    a red sunset may be; a rotated or mirrored copy, or a tight crop, is no longer a near-duplicate. Use a
    CLIP/SigLIP model (ClipEmbedder) for semantic similarity.
    """

    DIMENSION = _LAYOUT_SIZE + _HASH_SIZE + _HISTOGRAM_SIZE

    def __init__(
        self, path: Path, model_id: str, revision: str, *, device: str = "cpu", threads: int | None = None
    ) -> None:
        # No weights: `path` (this module's directory), `device` and `threads` are taken for a uniform loader.
        super().__init__(model_id, revision)

    @property
    def dimension(self) -> int:
        return self.DIMENSION

    def prepare(self, items: Sequence[bytes]) -> list[Image.Image]:
        """Each image upright, averaged down to the thumbnail every part is computed from."""
        return [open_rgb(data, at_least=_THUMB).resize((_THUMB, _THUMB), Image.Resampling.BOX) for data in items]

    def forward(self, batch: list[Image.Image]) -> list[dict[str, np.ndarray]]:
        """The parts of each thumbnail's descriptor."""
        return [_parts(thumb) for thumb in batch]

    def finish(self, raw: list[dict[str, np.ndarray]]) -> np.ndarray:
        """Each descriptor: its parts, each at unit length and weighted, joined, at unit length."""
        return np.stack([_descriptor(parts) for parts in raw])


def _parts(thumb: Image.Image) -> dict[str, np.ndarray]:
    ycbcr = (np.asarray(thumb.convert("YCbCr"), np.float64) - 128.0) / 128.0
    return {
        "layout": _colour_layout(ycbcr),
        "hash": _perceptual_hash(ycbcr[..., 0]),
        "histogram": _colour_histogram(np.asarray(thumb.convert("HSV"))),
    }


def _descriptor(parts: dict[str, np.ndarray]) -> np.ndarray:
    descriptor = np.concatenate([np.sqrt(_WEIGHTS[name]) * _unit_vector(part) for name, part in parts.items()])
    return _unit_vector(descriptor).astype(np.float32)


def _colour_layout(ycbcr: np.ndarray) -> np.ndarray:
    step = _THUMB // _LAYOUT_GRID
    grid = ycbcr.reshape(_LAYOUT_GRID, step, _LAYOUT_GRID, step, 3).mean(axis=(1, 3))
    basis = _dct_basis(_LAYOUT_GRID)
    rows, columns = _low_frequencies()
    return np.concatenate([(basis @ grid[..., channel] @ basis.T)[rows, columns] for channel in range(3)])


def _perceptual_hash(luma: np.ndarray) -> np.ndarray:
    step = _THUMB // _HASH_GRID
    small = luma.reshape(_HASH_GRID, step, _HASH_GRID, step).mean(axis=(1, 3))
    basis = _dct_basis(_HASH_GRID)
    frequencies = (basis @ small @ basis.T)[:_HASH_BLOCK, :_HASH_BLOCK].ravel()[1:]  # less the mean (DC)
    return np.where(frequencies > np.median(frequencies), 1.0, -1.0)


def _colour_histogram(hsv: np.ndarray) -> np.ndarray:
    hue, saturation, value = (hsv[..., channel].astype(np.int64).ravel() for channel in range(3))
    value_bin = value * _VALUES // 256
    saturation_bin = saturation * (_CHROMATIC_SATURATIONS + 1) // 256  # 0: near-grey, its hue is noise
    hue_bin = hue * _HUES // 256
    chromatic = ((hue_bin * _CHROMATIC_SATURATIONS + saturation_bin - 1) * _VALUES + value_bin) + _VALUES
    bins = np.where(saturation_bin == 0, value_bin, chromatic)
    counts = np.bincount(bins, minlength=_HISTOGRAM_SIZE).astype(np.float64)
    return np.sqrt(counts / counts.sum())


@cache
def _dct_basis(size: int) -> np.ndarray:
    """The orthonormal DCT-II matrix: `basis @ x @ basis.T` is the 2-D DCT of a size×size block."""
    frequency, position = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    basis = np.cos(np.pi * (2 * position + 1) * frequency / (2 * size)) * np.sqrt(2 / size)
    basis[0] /= np.sqrt(2)
    return basis


@cache
def _low_frequencies() -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the DCT coefficients with u+v below the cut, lowest first (a zigzag's start)."""
    pairs = sorted(
        ((u, v) for u in range(_LAYOUT_DIAGONALS) for v in range(_LAYOUT_DIAGONALS) if u + v < _LAYOUT_DIAGONALS),
        key=lambda pair: (sum(pair), pair[0]),
    )
    return np.array([u for u, _ in pairs]), np.array([v for _, v in pairs])


def _unit_vector(vector: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 1e-12 else vector
