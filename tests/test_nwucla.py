"""NW-UCLA JSON reader: error cases on tiny fixtures, counts and round trip on real data."""

from __future__ import annotations

import json
import re
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import mmcl
from mmcl.datasets import DataError, NWUCLASource, PreparedSource, SkeletonDataset, open_source
from mmcl.formats.nwucla import nwucla_label, nwucla_split_of, read_nwucla_json
from mmcl.datasets.nwucla import reference_list
from mmcl.prepare.nwucla import prepare_nwucla
from mmcl.skeleton.transforms import UCLATransform

# REFERENCE §10.2 per-class counts
TRAIN_COUNTS = [102, 102, 96, 124, 101, 102, 99, 99, 98, 97]
TEST_COUNTS = [48, 50, 45, 49, 47, 47, 43, 43, 47, 45]
LIST_FILES = {"train": "nwucla_train_list.tsv", "test": "nwucla_val_list.tsv"}
shipped = Path(mmcl.__file__).parent / "resources" / "nwucla"


def _write(path: Path, skeletons: object) -> None:
    path.write_text(json.dumps({"file_name": path.stem, "skeletons": skeletons, "label": 1}))


def _frames(t: int, joints: int = 20, seed: int = 0) -> list:
    return (np.random.default_rng(seed).random((t, joints, 3)) + 1).tolist()


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    _write(tmp_path / "a01_s01_e00_v01.json", _frames(5))
    _write(tmp_path / "a12_s02_e01_v02.json", _frames(3, seed=1))
    _write(tmp_path / "a08_s01_e00_v03.json", _frames(4, seed=2))
    _write(tmp_path / "a02_s01_e00_v01.json", _frames(4, joints=19))  # wrong joint count
    _write(tmp_path / "a03_s01_e00_v01.json", [])  # zero frames
    (tmp_path / "a04_s01_e00_v01.json").write_text('{"skeletons": [[' + ",".join(["[NaN, 1, 2]"] * 20) + "]]}")
    (tmp_path / "a05_s01_e00_v01.json").write_text('{"skeletons": [[[1, 2, 3]')  # truncated JSON
    _write(tmp_path / "a06_s01_e00_v02.json", _frames(2, seed=3))  # present but not in the order below
    return tmp_path


@pytest.mark.parametrize(
    ("stem", "message"),
    [
        ("a02_s01_e00_v01", "wrong joint count 19"),
        ("a03_s01_e00_v01", "zero frames"),
        ("a04_s01_e00_v01", "NaN"),
        ("a05_s01_e00_v01", "invalid JSON"),
        ("a09_s01_e00_v01", "does not exist"),
    ],
)
def test_read_errors_name_file_and_problem(tiny: Path, stem: str, message: str) -> None:
    with pytest.raises(DataError, match=f"{stem}\\.json.*{message}"):
        read_nwucla_json(tiny / f"{stem}.json")


def test_read_good_file(tiny: Path) -> None:
    seq = read_nwucla_json(tiny / "a01_s01_e00_v01.json")
    assert seq.shape == (5, 20, 3) and seq.dtype == np.float32
    np.testing.assert_allclose(seq, np.asarray(_frames(5)), rtol=1e-6)


def test_labels_and_split_from_name() -> None:
    assert [nwucla_label(f"a{a:02d}_s01_e00_v01") for a in (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)] == list(range(10))
    with pytest.raises(ValueError, match="a07"):
        nwucla_label("a07_s01_e00_v01")
    assert nwucla_split_of("a01_s01_e00_v02") == "train" and nwucla_split_of("a01_s01_e00_v03") == "test"


def test_source_skips_and_reports(tiny: Path, caplog: pytest.LogCaptureFixture) -> None:
    order = [
        "a12_s02_e01_v02", "a02_s01_e00_v01", "a01_s01_e00_v01", "a03_s01_e00_v01",
        "a04_s01_e00_v01", "a05_s01_e00_v01", "a09_s01_e00_v01",
    ]
    with caplog.at_level(logging.WARNING, logger="mmcl.datasets.nwucla"):
        src = NWUCLASource(tiny, "train", order=order, progress=False)
    assert src.names == ["a12_s02_e01_v02", "a01_s01_e00_v01", "a06_s01_e00_v02"]  # list order, then unlisted
    assert src.labels.tolist() == [9, 0, 5] and src.lengths.tolist() == [3, 5, 2]
    assert src.unlisted == ["a06_s01_e00_v02"]
    skipped = dict(src.skipped)
    assert set(skipped) == {"a02_s01_e00_v01", "a03_s01_e00_v01", "a04_s01_e00_v01", "a05_s01_e00_v01",
                            "a09_s01_e00_v01"}
    assert "missing" in skipped["a09_s01_e00_v01"]
    text = caplog.text
    assert "skipped 5" in text and "a02_s01_e00_v01" in text and "not in the reference list" in text
    x, length = src.raw(1)
    assert x.shape == (3, 5, 20, 1) and length == 5
    test = NWUCLASource(tiny, "val", order=[], progress=False)
    assert test.names == ["a08_s01_e00_v03"] and test.labels.tolist() == [6]


def test_source_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        NWUCLASource(tmp_path / "nope", "train")
    _write(tmp_path / "a01_s01_e00_v01.json", [])
    with pytest.raises(DataError, match="no usable"):
        NWUCLASource(tmp_path, "train", order=["a01_s01_e00_v01"], progress=False)


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def real(nwucla_dir: Path) -> Iterator[dict[str, NWUCLASource]]:
    yield {s: NWUCLASource(nwucla_dir, s, progress=False) for s in ("train", "test")}


@pytest.mark.realdata
def test_real_counts_and_order(real: dict[str, NWUCLASource]) -> None:
    train, test = real["train"], real["test"]
    assert len(train) == 1020 and len(test) == 464
    assert np.bincount(train.labels).tolist() == TRAIN_COUNTS
    assert np.bincount(test.labels).tolist() == TEST_COUNTS
    assert train.names == reference_list("train") and test.names == reference_list("val")
    assert not train.skipped and not train.unlisted and not test.skipped
    assert train.lengths.min() == 1 and train.lengths.max() == 201 and test.lengths.max() == 134
    for split, src in real.items():  # frame counts and labels agree with the reference lists
        rows = [r.split("\t") for r in (shipped / LIST_FILES[split]).read_text().splitlines()[1:]]
        assert src.lengths.tolist() == [int(r[2]) for r in rows]
        assert (src.labels + 1).tolist() == [int(r[3]) for r in rows]


@pytest.mark.realdata
def test_real_sample_shapes(real: dict[str, NWUCLASource]) -> None:
    for split, train in (("train", True), ("test", False)):
        ds = SkeletonDataset(real[split], UCLATransform(train=train), stream="bone_motion", repeat=5 if train else 1)
        item = ds[(1, 7)]
        assert tuple(item["x"].shape) == (3, 52, 20, 1) and item["name"] == real[split].names[7]
    assert len(SkeletonDataset(real["train"], None, repeat=5)) == 5100


@pytest.mark.realdata
def test_real_prepared_round_trip(real: dict[str, NWUCLASource], nwucla_dir: Path, tmp_path: Path) -> None:
    out = prepare_nwucla(nwucla_dir, tmp_path, progress=False)
    assert out == tmp_path / "nw-ucla" / "cross_view"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["counts"] == {"train": 1020, "test": 464} and meta["max_frames"] == 201
    assert meta["layout"] == "kinect20" and meta["num_classes"] == 10 and meta["num_persons"] == 1
    for split in ("train", "test"):
        direct, prepared = real[split], PreparedSource(out, split)
        assert prepared.names == direct.names and np.array_equal(prepared.labels, direct.labels)
        for i in range(len(direct)):
            a, la = direct.raw(i)
            b, lb = prepared.raw(i)
            assert la == lb and np.array_equal(b[:, :la], a) and not b[:, la:].any()
        t = UCLATransform(train=split == "train")
        rng = np.random.default_rng
        np.testing.assert_array_equal(t(*direct.raw(3), rng(0)), t(*prepared.raw(3), rng(0)))
    assert isinstance(open_source(out, "test"), PreparedSource)


@pytest.mark.parametrize(
    ("skeletons", "message"),
    [
        ({"0": [[0, 0, 0]] * 20}, '"skeletons" must be a list of frames, got dict'),
        (["a", "b", "c"], "each frame must be a list of joints"),
        ([[[True, 1.0, 2.0]] * 20], "coordinates must be numbers, got bool"),
        ([[["1.5", "2", "3"]] * 20], "coordinates must be numbers"),
        ([[[1e39, 1.0, 2.0]] * 20], "beyond float32"),
        ([[[3.5e38, 1.0, 2.0]] * 20], "beyond float32"),
    ],
)
def test_values_that_would_poison_training_are_refused(tmp_path: Path, skeletons: object, message: str) -> None:
    """Booleans, numeric strings and values that overflow float32 never reach training as numbers."""
    path = tmp_path / "a01_s01_e00_v01.json"
    path.write_text(json.dumps({"skeletons": skeletons}))
    with pytest.raises(DataError, match=re.escape(message)):
        read_nwucla_json(path)
