"""NW-UCLA skeletons read straight from the ``all_sqe`` JSON folder (REFERENCE §3.3).

Split: the standard cross-view protocol, views 1 and 2 train (1,020), view 3 test (464).
Order: the reference sample lists (shipped in ``mmcl/resources/nwucla``), so sample ``i``
is the reference feeder's sample ``i``. Labels come from the action id in the file name
(a01..a12 -> 0..9), names are the file stems. All files of a split are loaded once (small).

Error policy: :func:`mmcl.formats.nwucla.read_nwucla_json` raises
:class:`~mmcl.formats.errors.DataError` naming the file and the problem. :class:`NWUCLASource` loads a whole split, so it skips bad or
missing files and logs one warning at the end with the count and the first names;
files present in the folder but absent from the lists are included by the view rule and
reported too. The problems stay available as ``source.skipped`` / ``source.unlisted``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mmcl.datasets.base import DataError
from mmcl.datasets.splits import normalize_split
from mmcl.io import printable
from mmcl.formats.nwucla import NWUCLA_NUM_CLASSES, nwucla_label, nwucla_split_of, read_nwucla_json

__all__ = ["reference_list", "NWUCLASource"]

log = logging.getLogger(__name__)

# List files shipped with the package (copies of the reference feeder's literal lists).
_LIST_FILES = {"train": "nwucla_train_list.tsv", "test": "nwucla_val_list.tsv"}
_REPORT_FIRST = 5  # names shown in a warning


def reference_list(split: str) -> list[str]:
    """The reference feeder's sample names for ``split``, in its order."""
    s = normalize_split(split)
    text = resources.files("mmcl").joinpath("resources", "nwucla", _LIST_FILES[s]).read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines()[1:] if line.strip()]
    return [row[1] for row in rows]


def _summarise(items: Sequence[tuple[str, str]]) -> str:
    shown = "; ".join(f"{name} ({why})" for name, why in items[:_REPORT_FIRST])
    more = f"; … {len(items) - _REPORT_FIRST} more" if len(items) > _REPORT_FIRST else ""
    return shown + more


class NWUCLASource:
    """An NW-UCLA split read from ``all_sqe`` JSON files (cross-view protocol).

    ``order`` overrides the reference list (names, in order) — for tests and custom subsets;
    membership always follows the view rule. Attributes besides the source protocol:
    ``lengths`` (frames per sample), ``skipped`` ((name, problem) of bad/missing files),
    ``unlisted`` (files included by the rule but absent from the list).
    """

    layout = "kinect20"
    num_persons = 1
    num_classes = NWUCLA_NUM_CLASSES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        order: Sequence[str] | None = None,
        progress: bool = True,
    ) -> None:
        self.root = Path(root)
        self.split = normalize_split(split)
        if not self.root.is_dir():
            raise DataError("NW-UCLA all_sqe folder does not exist", self.root)
        listed = list(order) if order is not None else reference_list(self.split)

        present: set[str] = set()
        self.skipped: list[tuple[str, str]] = []
        for child in self.root.iterdir():
            if child.suffix != ".json":
                continue
            shown = printable(child.name)
            if shown != child.name:  # a name the file system holds in another encoding
                self.skipped.append((shown, "the file name is not valid UTF-8"))
                continue
            try:
                if nwucla_split_of(child.stem) == self.split:
                    present.add(child.stem)
            except ValueError as exc:
                self.skipped.append((child.name, str(exc)))
        listed_set = set(listed)
        wanted: list[str] = []
        seen: set[str] = set()
        for stem in listed:
            if stem in seen:
                self.skipped.append((stem, "listed twice"))
                continue
            seen.add(stem)
            try:
                in_split = nwucla_split_of(stem) == self.split
            except ValueError as exc:
                self.skipped.append((stem, str(exc)))
                continue
            if not in_split:
                self.skipped.append((stem, f"listed but belongs to the {nwucla_split_of(stem)} split"))
            elif stem not in present:
                self.skipped.append((stem, "listed but the file is missing"))
            else:
                wanted.append(stem)
        self.unlisted = sorted(present - listed_set)
        wanted += self.unlisted

        names: list[str] = []
        labels: list[int] = []
        data: list[np.ndarray] = []
        for stem in tqdm(wanted, desc=f"NW-UCLA {self.split}", unit="file", disable=not progress, leave=False):
            try:
                label = nwucla_label(stem)
                seq = read_nwucla_json(self.root / f"{stem}.json")
            except DataError as exc:
                self.skipped.append((stem, exc.problem))
                continue
            except ValueError as exc:
                self.skipped.append((stem, str(exc)))
                continue
            names.append(stem)
            labels.append(label)
            data.append(seq)
        if self.unlisted:
            log.warning(
                "NW-UCLA %s: %d file(s) in %s are not in the reference list; included by the view rule: %s",
                self.split, len(self.unlisted), self.root, ", ".join(self.unlisted[:_REPORT_FIRST]),
            )
        if self.skipped:
            log.warning(
                "NW-UCLA %s: skipped %d bad or missing sample(s) in %s: %s",
                self.split, len(self.skipped), self.root, _summarise(self.skipped),
            )
        if not data:
            raise DataError(f"no usable NW-UCLA samples for split {self.split!r}", self.root)
        self.names = names
        self.labels = np.asarray(labels, dtype=np.int64)
        self.lengths = np.asarray([len(s) for s in data], dtype=np.int64)
        self._data = data

    def __len__(self) -> int:
        return len(self._data)

    def sequence(self, i: int) -> np.ndarray:
        """Sample ``i`` as stored in the file: ``T×20×3`` float32."""
        return self._data[i]

    def raw(self, i: int) -> tuple[np.ndarray, int]:
        """Sample ``i`` as ``C×T×V×1`` float32 and its frame count."""
        seq = self._data[i]
        return np.ascontiguousarray(seq.transpose(2, 0, 1)[..., None]), int(seq.shape[0])

    def __repr__(self) -> str:
        return f"NWUCLASource({str(self.root)!r}, split={self.split!r}, n={len(self)})"
