"""Skeleton dataset and epoch-aware sampler shared by every skeleton source.

Determinism (docs/architecture.md, fixes REFERENCE §12.8): an item is computed from
``numpy.random.default_rng([seed, epoch, index])`` only. :class:`EpochSampler` yields
``(epoch, index)`` keys, so augmentation differs between epochs, a resumed run replays
exactly, and the number of DataLoader workers (or their assignment) does not change any
sample. A plain ``int`` key means epoch 0.

Errors: a source raises :class:`DataError` for a sample it cannot read; the dataset lets it
propagate (a broken sample should stop training rather than be silently replaced).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from mmcl.formats.errors import DataError
from mmcl.skeleton.layouts import SkeletonLayout, get_layout
from mmcl.skeleton.streams import STREAMS, to_stream

__all__ = ["DataError", "SkeletonSource", "Transform", "SkeletonDataset", "EpochSampler", "ItemKey", "make_input"]

ItemKey = int | tuple[int, int]
Transform = Callable[[np.ndarray, int | None, np.random.Generator], np.ndarray]


@runtime_checkable
class SkeletonSource(Protocol):
    """What a raw skeleton source provides (docs/architecture.md, "Datasets")."""

    names: list[str]
    labels: np.ndarray
    num_classes: int
    layout: str
    num_persons: int

    def __len__(self) -> int: ...

    def raw(self, i: int) -> tuple[np.ndarray, int]: ...


def make_input(
    x: np.ndarray,
    valid_length: int | None,
    transform: Transform | None,
    stream: str,
    layout: SkeletonLayout | str,
    rng: np.random.Generator,
) -> np.ndarray:
    """Raw C×T×V×M sample -> model input: ``transform`` then the stream (REFERENCE §3.1 order).

    The only place transform and stream are composed: dataset items and raw-file prediction
    (:meth:`mmcl.datasets.pipeline.InputSpec.prepare`) both call it.
    """
    if transform is not None:
        x = transform(x, valid_length, rng)
    return np.ascontiguousarray(to_stream(np.asarray(x, dtype=np.float32), stream, layout), dtype=np.float32)


def _parse_key(key: Any) -> tuple[int, int]:
    if isinstance(key, tuple | list):
        if len(key) != 2:
            raise TypeError(f"dataset key must be an int or an (epoch, index) pair, got {key!r}")
        return int(key[0]), int(key[1])
    if isinstance(key, int | np.integer) or (isinstance(key, torch.Tensor) and key.dim() == 0):
        return 0, int(key)
    raise TypeError(f"dataset key must be an int or an (epoch, index) pair, got {key!r}")


class SkeletonDataset(Dataset):
    """Items ``{"x": float32 C×T×V×M tensor, "label": int, "name": str, "index": int}``.

    Per item: ``raw`` from the source, ``transform(x, valid_length, rng)`` (crop/resize/rotate
    or NW-UCLA sampling), then the stream conversion (REFERENCE §3.1 order: bone/motion last).
    ``repeat > 1`` lists the source ``repeat`` times per epoch (NW-UCLA train uses 5,
    REFERENCE §3.3); item ``k`` is source sample ``k mod n`` but draws its own randomness
    from ``k``. ``"index"`` is the source sample index (``k mod n``), the row of the sample
    in the source's ``names``/``labels``.
    """

    def __init__(
        self,
        source: SkeletonSource,
        transform: Transform | None,
        stream: str = "joint",
        layout: SkeletonLayout | str | None = None,
        seed: int = 0,
        repeat: int = 1,
    ) -> None:
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r}; choose from {list(STREAMS)}")
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        self.source = source
        self.transform = transform
        self.stream = stream
        self.layout = get_layout(layout if layout is not None else source.layout)
        self.seed = int(seed)
        self.repeat = int(repeat)

    def __len__(self) -> int:
        return len(self.source) * self.repeat

    @property
    def names(self) -> list[str]:
        return list(self.source.names)

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.source.labels)

    @property
    def num_classes(self) -> int:
        return int(self.source.num_classes)

    def rng(self, epoch: int, index: int) -> np.random.Generator:
        """The generator used for item ``index`` in ``epoch`` (exposed for tests and tools)."""
        return np.random.default_rng([self.seed, epoch, index])

    def __getitem__(self, key: ItemKey) -> dict[str, Any]:
        epoch, k = _parse_key(key)
        total = len(self)
        if k < 0:
            k += total
        if not 0 <= k < total:
            raise IndexError(f"index {k} out of range for dataset of length {total}")
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        i = k % len(self.source)
        x, valid_length = self.source.raw(i)
        x = make_input(x, valid_length, self.transform, self.stream, self.layout, self.rng(epoch, k))
        return {
            "x": torch.from_numpy(x),
            "label": int(self.source.labels[i]),
            "name": str(self.source.names[i]),
            "index": int(i),
        }


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(epoch, index)`` keys; call :meth:`set_epoch` before each epoch.

    ``shuffle`` permutes with ``default_rng([seed, epoch])``. With ``world_size > 1`` each
    rank gets a disjoint, equal-size, strided share of the (shuffled) order; when
    ``drop_last`` is False the order is padded by wrapping around to a multiple of
    ``world_size`` (as torch's ``DistributedSampler`` does), otherwise the tail is dropped.
    ``drop_last`` here only concerns that divisibility; batch-level ``drop_last`` belongs
    to the DataLoader.
    """

    def __init__(
        self,
        length: int,
        *,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        epoch_source: Callable[[], int] | None = None,
    ) -> None:
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.length = int(length)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.drop_last = bool(drop_last)
        self._epoch = 0
        self.epoch_source = epoch_source
        self._resume: tuple[int, int] | None = None  # (epoch, samples already trained) for the next iteration
        if self.drop_last:
            self.num_samples = self.length // self.world_size
        else:
            self.num_samples = math.ceil(self.length / self.world_size)
        self.total_size = self.num_samples * self.world_size

    @property
    def epoch(self) -> int:
        """The epoch the next iteration is for: ``epoch_source()`` when given, else the last ``set_epoch``.

        Why a source: a multi-worker DataLoader draws its first indices when its iterator is created,
        and on ``--resume`` Lightning creates it before calling ``set_epoch`` — the resumed epoch then
        replayed epoch 0's order and augmentation keys. Asking the trainer's epoch counter (restored
        from the checkpoint first) gives the right epoch whatever the call order.
        """
        return int(self.epoch_source()) if self.epoch_source is not None else self._epoch

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)

    def resume_at(self, epoch: int, skip: int) -> None:
        """Start the next iteration of ``epoch`` after its first ``skip`` keys (those a mid-epoch
        checkpoint already trained on); an iteration of any other epoch starts at the beginning."""
        if skip < 0:
            raise ValueError(f"skip must be >= 0, got {skip}")
        self._resume = (int(epoch), int(skip))

    def indices(self) -> np.ndarray:
        """This rank's sample indices for the current epoch."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.length)
        else:
            order = np.arange(self.length)
        if self.total_size > self.length and self.length > 0:
            order = np.resize(order, self.total_size)  # wraps around, repeating from the start
        else:
            order = order[: self.total_size]
        return order[self.rank : self.total_size : self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        resume, self._resume = self._resume, None
        skip = resume[1] if resume is not None and resume[0] == epoch else 0
        return iter([(epoch, int(i)) for i in self.indices()[skip:]])

    def __len__(self) -> int:
        return self.num_samples
