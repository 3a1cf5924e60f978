"""SkeletonDataset / EpochSampler determinism and the array-backed sources."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mmcl.datasets import (
    DataError,
    EpochSampler,
    NWUCLASource,
    PreparedSource,
    ReferenceNpzSource,
    SampleStore,
    SkeletonDataset,
    class_names,
    open_source,
    write_dataset,
)
from mmcl.skeleton.streams import bone
from mmcl.skeleton.transforms import NTUTransform


class MemorySource:
    """A tiny in-memory NTU-like source (C×T×V×M samples with trailing zero padding)."""

    layout = "ntu25"
    num_classes = 5
    num_persons = 2

    def __init__(self, n: int = 6, frames: int = 80) -> None:
        rng = np.random.default_rng(123)
        self.x = rng.standard_normal((n, 3, frames, 25, 2)).astype(np.float32)
        self.lengths = rng.integers(min(20, frames), frames + 1, size=n)
        for i, length in enumerate(self.lengths):
            self.x[i, :, length:] = 0
        self.labels = np.arange(n, dtype=np.int64) % self.num_classes
        self.names = [f"s{i}" for i in range(n)]

    def __len__(self) -> int:
        return len(self.x)

    def raw(self, i: int) -> tuple[np.ndarray, int]:
        return self.x[i], int(self.lengths[i])


def _dataset(**kw: object) -> SkeletonDataset:
    return SkeletonDataset(MemorySource(), NTUTransform(train=True), **kw)  # type: ignore[arg-type]


def test_item_format_and_int_key_is_epoch_zero() -> None:
    ds = _dataset()
    item = ds[3]
    assert set(item) == {"x", "label", "name", "index"}
    assert item["x"].dtype == torch.float32 and item["x"].shape == (3, 64, 25, 2)
    assert item["label"] == 3 and item["name"] == "s3" and item["index"] == 3
    assert torch.equal(item["x"], ds[(0, 3)]["x"])


def test_determinism_epochs_and_seeds() -> None:
    a, b = _dataset(seed=1), _dataset(seed=1)
    assert torch.equal(a[(2, 4)]["x"], b[(2, 4)]["x"])
    assert not torch.equal(a[(2, 4)]["x"], a[(3, 4)]["x"])
    assert not torch.equal(a[(2, 4)]["x"], _dataset(seed=2)[(2, 4)]["x"])


def test_stream_after_transform() -> None:
    joint_ds, bone_ds = _dataset(), _dataset(stream="bone")
    np.testing.assert_array_equal(bone_ds[(1, 2)]["x"].numpy(), bone(joint_ds[(1, 2)]["x"].numpy(), "ntu25"))
    with pytest.raises(ValueError, match="joint_motion"):
        _dataset(stream="velocity")


def test_repeat() -> None:
    ds = _dataset(repeat=3)
    assert len(ds) == 18
    item = ds[13]
    assert item["name"] == "s1" and item["index"] == 1 and item["label"] == 1
    assert not torch.equal(ds[13]["x"], ds[1]["x"])  # each copy gets its own randomness
    with pytest.raises(IndexError):
        ds[18]


def test_sampler_order_shuffle_and_epochs() -> None:
    plain = EpochSampler(5, shuffle=False, seed=0)
    assert list(plain) == [(0, i) for i in range(5)]
    s = EpochSampler(50, shuffle=True, seed=3)
    e0 = [i for _, i in s]
    assert sorted(e0) == list(range(50)) and e0 != list(range(50))
    assert [i for _, i in EpochSampler(50, shuffle=True, seed=3)] == e0
    s.set_epoch(1)
    keys = list(s)
    assert all(e == 1 for e, _ in keys) and [i for _, i in keys] != e0


@pytest.mark.parametrize("shuffle", [False, True])
def test_sampler_rank_shares(shuffle: bool) -> None:
    shares = [[i for _, i in EpochSampler(9, shuffle=shuffle, seed=0, rank=r, world_size=3)] for r in range(3)]
    assert all(len(s) == 3 for s in shares)
    assert sorted(sum(shares, [])) == list(range(9))  # disjoint and complete
    padded = [EpochSampler(10, shuffle=shuffle, seed=0, rank=r, world_size=3) for r in range(3)]
    idx = [[i for _, i in s] for s in padded]
    assert all(len(s) == 4 == len(p) for s, p in zip(idx, padded, strict=True))
    flat = sum(idx, [])
    assert set(flat) == set(range(10)) and len(flat) == 12  # two wrapped-around repeats
    dropped = [[i for _, i in EpochSampler(10, shuffle=shuffle, seed=0, rank=r, world_size=3, drop_last=True)]
               for r in range(3)]
    flat = sum(dropped, [])
    assert all(len(s) == 3 for s in dropped) and len(set(flat)) == 9


def _collect(num_workers: int) -> tuple[torch.Tensor, list[str]]:
    ds = _dataset(seed=5)
    sampler = EpochSampler(len(ds), shuffle=True, seed=5)
    sampler.set_epoch(2)
    loader = DataLoader(ds, batch_size=4, sampler=sampler, num_workers=num_workers)
    xs, names = [], []
    for batch in loader:
        xs.append(batch["x"])
        names += batch["name"]
    return torch.cat(xs), names


def test_worker_count_independence() -> None:
    x0, n0 = _collect(0)
    x2, n2 = _collect(2)
    assert n0 == n2 and torch.equal(x0, x2)


# --------------------------------------------------------------------------- sources


def _reference_frames(x5: np.ndarray) -> np.ndarray:
    """Hand-built REFERENCE §2.8 layout: frame t holds actor1 J1 xyz … J25, actor2 …"""
    n, c, t, v, m = x5.shape
    out = np.zeros((n, t, m * v * c), dtype=np.float32)
    for i in range(n):
        for mm in range(m):
            for vv in range(v):
                for cc in range(c):
                    out[i, :, mm * v * c + vv * c + cc] = x5[i, cc, :, vv, mm]
    return out


@pytest.fixture()
def npz_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    src = MemorySource(n=4, frames=30)
    y = np.eye(5)[[1, 0, 4, 2]]
    path = tmp_path / "ntu.npz"
    np.savez(path, x_train=_reference_frames(src.x), y_train=y, x_test=_reference_frames(src.x[:2]), y_test=y[:2])
    return path, src.x


def test_reference_npz_memmapped(npz_file: tuple[Path, np.ndarray]) -> None:
    path, x5 = npz_file
    src = ReferenceNpzSource(path, "train")
    assert isinstance(src._x, np.memmap)
    assert len(src) == 4 and src.num_classes == 5 and src.num_persons == 2 and src.layout == "ntu25"
    assert src.labels.tolist() == [1, 0, 4, 2] and src.labels.dtype == np.int64
    assert src.names == ["train_0", "train_1", "train_2", "train_3"]
    x, valid = src.raw(2)
    np.testing.assert_array_equal(x, x5[2])
    assert valid == int((x5[2].sum(axis=(0, 2, 3)) != 0).sum())
    test = ReferenceNpzSource(path, "test", names=["a", "b"])
    assert test.names == ["a", "b"] and len(test) == 2


def test_reference_npz_errors(tmp_path: Path, npz_file: tuple[Path, np.ndarray]) -> None:
    path, x5 = npz_file
    comp = tmp_path / "c.npz"
    np.savez_compressed(comp, x_train=np.zeros((1, 2, 150), np.float32), y_train=np.eye(2)[:1])
    with pytest.raises(DataError, match="compressed"):
        ReferenceNpzSource(comp, "train")
    with pytest.raises(DataError, match="does not exist"):
        ReferenceNpzSource(tmp_path / "missing.npz", "train")
    only_train = tmp_path / "t.npz"
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(only_train, "w") as out:
        for name in ("x_train.npy", "y_train.npy"):
            out.writestr(name, zf.read(name))
    with pytest.raises(DataError, match="x_test"):
        ReferenceNpzSource(only_train, "test")
    frames = _reference_frames(x5)
    frames[1, 3, 7] = np.nan
    frames[3] = 0
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=frames, y_train=np.eye(5)[:4])
    src = ReferenceNpzSource(bad, "train")
    with pytest.raises(DataError, match=r"bad\.npz.*train_1.*NaN"):
        src.raw(1)
    with pytest.raises(DataError, match=r"train_3.*zero frames"):
        src.raw(3)
    with pytest.raises(DataError, match="x_train"):
        np.savez(bad, x_train=np.zeros((2, 3, 140), np.float32), y_train=np.eye(2))
        ReferenceNpzSource(bad, "train")


def _meta() -> dict[str, object]:
    return {"dataset": "toy", "benchmark": "xsub", "layout": "ntu25", "num_classes": 5, "num_persons": 2}


def _write_padded_folder(root: Path, split: str, mem: MemorySource, colors: np.ndarray | None = None,
                         lengths: bool = True) -> None:
    """A prepared folder in the padded per-split form mmcl wrote before the compact store."""
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / f"x_{split}.npy", _reference_frames(mem.x))
    np.save(root / f"y_{split}.npy", mem.labels)
    (root / f"names_{split}.txt").write_text("".join(n + "\n" for n in mem.names))
    if lengths:
        np.save(root / f"len_{split}.npy", mem.lengths.astype(np.int32))
    if colors is not None:
        np.save(root / f"colors_{split}.npy", colors)
    meta = json.loads((root / "meta.json").read_text()) if (root / "meta.json").is_file() else {**_meta(), "counts": {}}
    meta["counts"][split] = len(mem)
    (root / "meta.json").write_text(json.dumps(meta))


def _write_store(out: Path, mem: MemorySource, colors: np.ndarray | None = None, **kw: object) -> Path:
    n = len(mem)
    write_dataset(
        out, [mem.x[i, :, : mem.lengths[i]] for i in range(n)], mem.labels, mem.names, dataset="toy", layout="ntu25",
        num_classes=5, benchmarks={"xsub": {"train": np.arange(n), "test": [1, 0]}},
        colors=None if colors is None else [colors[i, : mem.lengths[i]] for i in range(n)], max_frames=mem.x.shape[2], **kw,
    )
    return out / "xsub"


def test_store_round_trip(tmp_path: Path) -> None:
    mem = MemorySource(n=5, frames=30)
    colors = np.random.default_rng(0).random((5, 30, 2, 25, 2)).astype(np.float32)
    root = _write_store(tmp_path / "toy", mem, colors, groups=["p1", "p1", "p2", "p2", "p3"])
    meta = json.loads((root / "meta.json").read_text())
    assert meta["counts"] == {"train": 5, "test": 2} and meta["store"] == "../samples" and meta["layout"] == "ntu25"
    store = SampleStore(tmp_path / "toy" / "samples")
    assert store.joints.shape == (int(mem.lengths.sum()), 2, 25, 3) and store.groups == ["p1", "p1", "p2", "p2", "p3"]
    assert store.channels == ("x", "y", "z") and store.max_frames == 30
    assert not [p for p in (tmp_path / "toy").rglob("*") if "tmp" in p.name or p.name.startswith(".staging")]
    src = PreparedSource(root, "train")
    assert src.names == mem.names and src.labels.tolist() == mem.labels.tolist() and src.has_colors
    for i in range(5):
        x, valid = src.raw(i)
        np.testing.assert_array_equal(x, mem.x[i])  # zero-padded back to max_frames at load time
        assert valid == mem.lengths[i]
        np.testing.assert_array_equal(src.sample_colors(i), colors[i, : mem.lengths[i]])
    test = PreparedSource(root, "val")
    assert test.names == ["s1", "s0"]
    np.testing.assert_array_equal(test.raw(0)[0], mem.x[1])
    assert isinstance(open_source(root, "train"), PreparedSource)
    with pytest.raises(DataError, match=r"prepared dataset's root; give one of its benchmark folders: .*toy/xsub"):
        open_source(tmp_path / "toy", "train")


def test_padded_folders_of_earlier_versions_still_load(tmp_path: Path) -> None:
    """Folders written before the store give the very samples the store gives for the same data."""
    mem = MemorySource(n=4, frames=30)
    colors = np.random.default_rng(1).random((4, 30, 2, 25, 2)).astype(np.float32)
    old = tmp_path / "old" / "xsub"
    _write_padded_folder(old, "train", mem, colors)
    new = _write_store(tmp_path / "new", mem, colors)
    a, b = PreparedSource(old, "train"), PreparedSource(new, "train")
    assert a.names == b.names and a.labels.tolist() == b.labels.tolist() and a.has_colors and b.has_colors
    for i in range(4):
        (xa, va), (xb, vb) = a.raw(i), b.raw(i)
        np.testing.assert_array_equal(xa, xb)
        assert va == vb
        np.testing.assert_array_equal(a.sample_colors(i)[: va], b.sample_colors(i))
    _write_padded_folder(old, "test", MemorySource(n=2, frames=30), lengths=False)
    test = PreparedSource(old, "test")
    assert test.lengths is None and not test.has_colors and test.raw(1)[1] == MemorySource(n=2, frames=30).lengths[1]


def test_write_dataset_rejects_bad_input(tmp_path: Path) -> None:
    mem = MemorySource(n=3, frames=10)
    samples = [mem.x[i] for i in range(3)]
    kw = dict(dataset="toy", layout="ntu25", num_classes=5, benchmarks={"b": {"train": [0, 1, 2]}})
    with pytest.raises(ValueError, match="unique"):
        write_dataset(tmp_path, samples, mem.labels, ["a", "a", "b"], **kw)
    bad = [s.copy() for s in samples]
    bad[0][0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        write_dataset(tmp_path, bad, mem.labels, mem.names, **kw)
    with pytest.raises(ValueError, match="labels outside"):
        write_dataset(tmp_path, samples, [0, 1, 7], mem.names, **kw)
    with pytest.raises(ValueError, match="3 samples, 2 labels"):
        write_dataset(tmp_path, samples, [0, 1], mem.names, **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mmcl-prepare.lock"]  # nothing half-written is left


def test_prepared_source_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="meta.json"):
        PreparedSource(tmp_path, "train")
    mem = MemorySource(n=3, frames=10)
    _write_padded_folder(tmp_path / "old", "train", mem)
    with pytest.raises(DataError, match="x_test.npy.*missing"):
        PreparedSource(tmp_path / "old", "test")
    (tmp_path / "old" / "names_train.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="2 names for 3 samples"):
        PreparedSource(tmp_path / "old", "train")
    root = _write_store(tmp_path / "new", mem)
    np.save(root / "test.npy", np.array([0, 3]))
    with pytest.raises(DataError, match=r"test\.npy.*rows 0\.\.2"):
        PreparedSource(root, "test")
    (root / "test.npy").unlink()
    with pytest.raises(DataError, match=r"test\.npy.*missing"):
        PreparedSource(root, "test")
    store = tmp_path / "new" / "samples"
    np.save(store / "offsets.npy", np.array([0, 5, 4, int(mem.lengths.sum())]))
    with pytest.raises(DataError, match="offsets.npy.*increasing"):
        PreparedSource(root, "train")
    (store / "joints.npy").unlink()
    with pytest.raises(DataError, match="joints.npy.*missing"):
        PreparedSource(root, "train")


def test_open_source_detection(tmp_path: Path, npz_file: tuple[Path, np.ndarray]) -> None:
    assert isinstance(open_source(npz_file[0], "train"), ReferenceNpzSource)
    sqe = tmp_path / "all_sqe"
    sqe.mkdir()
    frames = np.random.default_rng(0).random((4, 20, 3)).tolist()
    (sqe / "a01_s01_e00_v01.json").write_text(json.dumps({"skeletons": frames}))
    src = open_source(sqe, "train", order=["a01_s01_e00_v01"], progress=False)
    assert isinstance(src, NWUCLASource) and len(src) == 1
    with pytest.raises(DataError, match="does not exist"):
        open_source(tmp_path / "nothing", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither"):
        open_source(tmp_path / "empty", "train")


def test_data_error_message_and_pickle() -> None:
    err = DataError("wrong joint count 19", "/d/a.json", "a01")
    assert isinstance(err, ValueError) and str(err) == "/d/a.json, sample a01: wrong joint count 19"
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and isinstance(again, DataError)


def test_class_names() -> None:
    ntu120, ntu60, ucla = class_names("ntu120"), class_names("ntu60"), class_names("nw-ucla")
    assert len(ntu120) == 120 and ntu60 == ntu120[:60] and len(ucla) == 10
    assert ntu120[0] == "drink water" and ntu120[66] == "hush (quite)"
    assert ntu120[119] == "finger-guessing game (playing rock-paper-scissors)"
    assert ucla[0] == "pick up with one hand" and ucla[9] == "carry"
    with pytest.raises(ValueError, match="ntu60"):
        class_names("kinetics")
