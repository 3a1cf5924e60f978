"""The NTU RGB+D benchmark protocol (REFERENCE §1.1, §2.1, §2.7): name ranges, excluded samples,
training subjects/cameras/setups and the reference row order of every benchmark split."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from mmcl.formats.ntu import parse_name

__all__ = [
    "NTU_MAX_FRAMES", "NUM_PERSONS", "NUM_CLASSES", "NAME_RANGES", "BENCHMARKS", "NPZ_NAMES",
    "TRAIN_SUBJECTS_60", "TRAIN_SUBJECTS_120", "TRAIN_CAMERAS", "TEST_CAMERAS", "TWO_PERSON_CLASSES",
    "missing_skeletons", "benchmark_splits",
]

NTU_MAX_FRAMES = 300  # padded length (REFERENCE §2.6.2: dataset maximum, "300" in the source comment)
NUM_PERSONS = 2
NUM_CLASSES = {"ntu60": 60, "ntu120": 120}
# Valid ranges of the name fields (REFERENCE §1.1): setup, camera, performer, replication, action.
NAME_RANGES = {"ntu60": (17, 3, 40, 2, 60), "ntu120": (32, 3, 106, 2, 120)}
BENCHMARKS = {"ntu60": ("xsub", "xview"), "ntu120": ("xsub", "xset")}
NPZ_NAMES = {
    ("ntu60", "xsub"): "NTU60_CS.npz",
    ("ntu60", "xview"): "NTU60_CV.npz",
    ("ntu120", "xsub"): "NTU120_CSub.npz",
    ("ntu120", "xset"): "NTU120_CSet.npz",
}
# Training subjects (REFERENCE §2.7, TS60 and TS120).
TRAIN_SUBJECTS_60 = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
TRAIN_SUBJECTS_120 = TRAIN_SUBJECTS_60 + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89,
    91, 92, 93, 94, 95, 97, 98, 100, 103,
)
TRAIN_CAMERAS = (2, 3)  # X-View (REFERENCE §2.7)
TEST_CAMERAS = (1,)
# Two-person classes (REFERENCE §10.1), used to flag denoising results that look wrong (fixes §12.22).
TWO_PERSON_CLASSES = frozenset(range(50, 61)) | frozenset(range(106, 121))

_CACHE_FORMAT = 1


def missing_skeletons(dataset: str) -> frozenset[str]:
    """The shipped list of samples excluded for missing skeletons (REFERENCE §2.1)."""
    fname = f"{dataset}_samples_with_missing_skeletons.txt"
    text = resources.files("mmcl").joinpath("resources", "ntu", fname).read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def benchmark_splits(names: Sequence[str], dataset: str, benchmark: str) -> tuple[list[int], list[int]]:
    """Row indices (into ``names``, in sample order) of the train and test split, in reference order.

    For each ID of the rule in ascending order, all matching samples in ``names`` order are appended
    (REFERENCE §2.7): X-Sub grouped by performer, X-View by camera, X-Set by setup.
    """
    fields = [parse_name(n) for n in names]
    if benchmark == "xsub":
        key, top = 2, NAME_RANGES[dataset][2]
        train_ids = list(TRAIN_SUBJECTS_60 if dataset == "ntu60" else TRAIN_SUBJECTS_120)
        test_ids = [i for i in range(1, top + 1) if i not in train_ids]
    elif benchmark == "xview" and dataset == "ntu60":
        key, train_ids, test_ids = 1, list(TRAIN_CAMERAS), list(TEST_CAMERAS)
    elif benchmark == "xset" and dataset == "ntu120":
        key, train_ids, test_ids = 0, list(range(2, 33, 2)), list(range(1, 32, 2))
    else:
        raise ValueError(f"unknown benchmark {benchmark!r} for {dataset}")
    by_id: dict[int, list[int]] = {}
    for i, f in enumerate(fields):
        by_id.setdefault(f[key], []).append(i)
    train = [i for k in sorted(train_ids) for i in by_id.get(k, [])]
    test = [i for k in sorted(test_ids) for i in by_id.get(k, [])]
    return train, test
