"""Prepare NW-UCLA: ``all_sqe`` JSON folder -> prepared folder ``<out_root>/nw-ucla/cross_view``.

Reads through :class:`mmcl.datasets.nwucla.NWUCLASource` (the same reader the training
pipeline uses on the JSON folder directly, so both paths give identical samples) and writes
with :func:`mmcl.datasets.prepared.write_prepared`. Sequences are zero-padded to the longest
clip of either split and the true lengths are stored in ``len_<split>.npy``.

Both splits are written into a temporary folder that replaces ``cross_view`` as a whole
(:func:`mmcl.io.staged_folder`): a failure or a kill leaves the previous folder untouched, never a
new train split beside an old test split. Bad files are skipped and listed in ``meta.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmcl.datasets.nwucla import NWUCLASource
from mmcl.datasets.prepared import SPLITS, ctvm_to_frames, write_prepared
from mmcl.io import check_output_folder, staged_folder

__all__ = ["prepare_nwucla", "NWUCLA_BENCHMARK"]

NWUCLA_DATASET = "nw-ucla"
NWUCLA_BENCHMARK = "cross_view"  # the standard protocol (REFERENCE §3.3)


def prepare_nwucla(all_sqe: str | Path, out_root: str | Path, *, progress: bool = True) -> Path:
    """Write both splits; returns the benchmark folder ``<out_root>/nw-ucla/cross_view``."""
    out = Path(out_root) / NWUCLA_DATASET / NWUCLA_BENCHMARK
    check_output_folder(out)  # before reading 1,484 files
    sources = {split: NWUCLASource(all_sqe, split, progress=progress) for split in SPLITS}
    max_t = max(int(src.lengths.max()) for src in sources.values())
    with staged_folder(out) as stage:
        for split, src in sources.items():
            first = src.raw(0)[0]
            c, _, v, m = first.shape
            x = np.zeros((len(src), max_t, m * v * c), dtype=np.float32)
            for i in range(len(src)):
                sample, length = src.raw(i)
                x[i, :length] = ctvm_to_frames(sample)
            meta = {
                "dataset": NWUCLA_DATASET,
                "benchmark": NWUCLA_BENCHMARK,
                "layout": src.layout,
                "num_classes": src.num_classes,
                "num_persons": src.num_persons,
                "sources": {"all_sqe": str(Path(all_sqe).resolve())},
            }
            if any(s.skipped for s in sources.values()):
                meta["skipped"] = {s: [f"{name}: {why}" for name, why in sources[s].skipped] for s in SPLITS}
            write_prepared(stage, split, x, src.labels, src.names, meta=meta, lengths=src.lengths)
    return out
