"""Validation splits carved from the training set, so the test split is never used for selection.

The reference selects the best epoch on the test split (REFERENCE §6.4, §12.11). mmcl offers a
validation split taken from the training samples instead. The split is stratified by class and
grouped by *recording*: the same performance seen by several cameras (NTU camera ``Cccc``,
NW-UCLA view ``vWW``) always lands on one side, otherwise the validation score would be inflated
by near-duplicates of training samples.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmcl.formats.ntu import is_ntu_name, parse_name

__all__ = ["SPLITS", "normalize_split", "recording_group", "carve_validation", "carve_test_split", "SubsetSource"]

SPLITS = ("train", "test")

_UCLA_NAME = re.compile(r"^(a\d{2}_s\d{2}_e\d{2})_v\d{2}")


def normalize_split(split: str) -> str:
    """``"train"`` or ``"test"``; ``"val"`` is accepted as the test split (NW-UCLA naming)."""
    s = "test" if split == "val" else split
    if s not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {list(SPLITS)} (or 'val')")
    return s


def recording_group(name: str) -> str:
    """Name of the recording a sample belongs to (the sample name without its camera/view)."""
    if is_ntu_name(name[:20]):  # SsssCcccPpppRrrrAaaa, possibly followed by a suffix
        s, _c, p, r, a = parse_name(name[:20])
        return f"S{s:03d}P{p:03d}R{r:03d}A{a:03d}"
    m = _UCLA_NAME.match(name)
    if m:
        return m.group(1)
    return name


def carve_validation(
    names: Sequence[str], labels: np.ndarray, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split training indices into (train, validation), stratified by class and grouped by recording.

    Roughly ``fraction`` of each class's recordings go to validation (at least one recording per
    class that has two or more). The result is deterministic for a seed and the two index arrays
    are disjoint and sorted.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    for i, name in enumerate(names):
        groups[(int(labels[i]), recording_group(name))].append(i)
    by_class: dict[int, list[str]] = defaultdict(list)
    for label, group in groups:
        by_class[label].append(group)
    rng = np.random.default_rng(seed)
    val: list[int] = []
    for label in sorted(by_class):
        recs = sorted(by_class[label])
        if len(recs) < 2:
            continue
        n_val = min(len(recs) - 1, max(1, int(round(fraction * len(recs)))))
        for j in rng.permutation(len(recs))[:n_val]:
            val.extend(groups[(label, recs[j])])
    val_idx = np.array(sorted(val), dtype=np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[val_idx] = False
    return np.nonzero(mask)[0].astype(np.int64), val_idx


class SubsetSource:
    """A view of a skeleton source restricted to some indices (same interface as the source)."""

    def __init__(self, source: Any, indices: Sequence[int]) -> None:
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        base_names = source.names
        self.names = [base_names[i] for i in self.indices]
        self.labels = np.asarray(source.labels)[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getattr__(self, item: str) -> Any:
        # num_classes, layout, num_persons, ... come from the wrapped source
        if item in ("source", "indices", "names", "labels"):
            raise AttributeError(item)
        return getattr(self.source, item)

    def raw(self, i: int) -> tuple[np.ndarray, int]:
        return self.source.raw(int(self.indices[i]))


def carve_test_split(
    labels: Sequence[int] | np.ndarray, groups: Sequence[str] | None, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices for a dataset that comes without splits.

    With ``groups`` (subjects), whole subjects go to test, in a seeded random order, until about
    ``fraction`` of the samples are there (at least one subject on each side): a cross-subject split.
    Without, each class contributes ``round(fraction · n)`` random samples (at least one for a class of
    two or more): a stratified split. Deterministic for a seed; sorted, disjoint index arrays.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"test fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    n = len(labels)
    rng = np.random.default_rng(seed)
    test = np.zeros(n, dtype=bool)
    if groups is not None:
        subjects = sorted(set(groups))
        if len(subjects) < 2:
            raise ValueError(f"one subject ({subjects[0] if subjects else 'none'}): a split by subject needs two or more")
        members = defaultdict(list)
        for i, g in enumerate(groups):
            members[g].append(i)
        for k, j in enumerate(rng.permutation(len(subjects))):
            if k == len(subjects) - 1 or (k > 0 and test.sum() >= fraction * n):
                break
            test[members[subjects[j]]] = True
    else:
        for label in np.unique(labels):
            idx = np.flatnonzero(labels == label)
            if len(idx) < 2:
                continue
            k = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
            test[rng.choice(idx, size=k, replace=False)] = True
    return np.flatnonzero(~test).astype(np.int64), np.flatnonzero(test).astype(np.int64)
