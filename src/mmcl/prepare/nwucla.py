"""Prepare NW-UCLA: ``all_sqe`` JSON folder -> ``<out_root>/nw-ucla/{samples,cross_view}``.

Reads through :class:`mmcl.datasets.nwucla.NWUCLASource` (the same reader the training
pipeline uses on the JSON folder directly, so both paths give identical samples) and writes the
compact store with :func:`mmcl.formats.sample_store.write_dataset`: each clip once, unpadded, and the
benchmark ``cross_view`` as train/test rows of it. The set is committed as a whole, so a failure or
a kill leaves the previous output untouched. Bad files are skipped and listed in both meta.json files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmcl.datasets.nwucla import NWUCLASource
from mmcl.datasets.splits import SPLITS
from mmcl.formats.sample_store import write_dataset
from mmcl.io import check_output_folder

__all__ = ["prepare_nwucla", "NWUCLA_BENCHMARK"]

NWUCLA_DATASET = "nw-ucla"
NWUCLA_BENCHMARK = "cross_view"  # the standard protocol (REFERENCE §3.3)


def prepare_nwucla(all_sqe: str | Path, out_root: str | Path, *, progress: bool = True) -> Path:
    """Write both splits; returns the benchmark folder ``<out_root>/nw-ucla/cross_view``."""
    root = Path(out_root) / NWUCLA_DATASET
    check_output_folder(root)  # before reading 1,484 files
    sources = {split: NWUCLASource(all_sqe, split, progress=progress) for split in SPLITS}
    samples, labels, names, rows = [], [], [], {}
    for split, src in sources.items():
        rows[split] = len(names) + np.arange(len(src))
        for i in range(len(src)):
            x, length = src.raw(i)
            samples.append(x[:, :length])
        labels.extend(int(v) for v in src.labels)
        names.extend(src.names)
    extra = {"sources": {"all_sqe": str(Path(all_sqe).resolve())}}
    if any(s.skipped for s in sources.values()):
        extra["skipped"] = {s: [f"{name}: {why}" for name, why in sources[s].skipped] for s in SPLITS}
    src = sources["train"]
    write_dataset(root, samples, labels, names, dataset=NWUCLA_DATASET, layout=src.layout, num_classes=src.num_classes,
                  benchmarks={NWUCLA_BENCHMARK: rows}, store_meta=extra, benchmark_meta=extra)
    return root / NWUCLA_BENCHMARK
