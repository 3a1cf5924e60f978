"""Validation split carved from training: disjoint from test, grouped by recording, stratified."""

from __future__ import annotations

import numpy as np

from mmcl.datasets.splits import carve_validation, recording_group


def test_recording_groups() -> None:
    assert recording_group("S001C002P003R001A010") == recording_group("S001C003P003R001A010")
    assert recording_group("S001C002P003R001A010") != recording_group("S001C002P003R002A010")
    assert recording_group("a01_s03_e02_v01") == recording_group("a01_s03_e02_v02") == "a01_s03_e02"
    assert recording_group("custom_name") == "custom_name"


def _ucla_like_names() -> tuple[list[str], np.ndarray]:
    names, labels = [], []
    for a in range(10):
        for s in range(1, 11):
            for e in range(3):
                for v in (1, 2):
                    names.append(f"a{a + 1:02d}_s{s:02d}_e{e:02d}_v{v:02d}")
                    labels.append(a)
    return names, np.array(labels)


def test_carve_validation_is_disjoint_grouped_stratified_deterministic() -> None:
    names, labels = _ucla_like_names()
    tr, va = carve_validation(names, labels, 0.1, seed=3)
    assert len(set(tr) & set(va)) == 0 and len(tr) + len(va) == len(names)
    # no recording on both sides (the two views of one performance stay together)
    assert not ({recording_group(names[i]) for i in tr} & {recording_group(names[i]) for i in va})
    # every class represented in validation, about 10 %
    assert set(labels[va]) == set(range(10))
    assert 0.07 < len(va) / len(names) < 0.13
    tr2, va2 = carve_validation(names, labels, 0.1, seed=3)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)
    _, va3 = carve_validation(names, labels, 0.1, seed=4)
    assert not np.array_equal(va, va3)
