"""Feature store: chunked atomic commits, resume after a kill, duplicates, NaN detection, memmap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmcl.modalities.store import FeatureStore, check_store


def _names(a: int, b: int) -> list[str]:
    return [f"s{i:04d}" for i in range(a, b)]


def test_fixed_roundtrip_memmap(tmp_path: Path) -> None:
    st = FeatureStore.create(tmp_path / "st", dim=4, kind="cnn_logits", meta={"model": "x"})
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    st.append(_names(0, 5), x[:5])
    st.append(_names(5, 10), x[5:])
    re = FeatureStore.open(tmp_path / "st")
    assert re.names == _names(0, 10) and len(re) == 10 and "s0003" in re and "zz" not in re
    np.testing.assert_array_equal(re.get("s0007"), x[7])
    segs = list(re.iter_segments())
    assert all(isinstance(d, np.memmap) for _, d, _ in segs)
    got, lens = re.get_many(["s0009", "s0000"])
    np.testing.assert_array_equal(got, x[[9, 0]]) and lens is None
    assert re.meta["model"] == "x"
    re.consolidate()
    re2 = FeatureStore.open(tmp_path / "st")
    assert len(list(re2.iter_segments())) == 1
    np.testing.assert_array_equal(re2.get_many(_names(0, 10))[0], x)
    assert sorted(p.name for p in (tmp_path / "st").iterdir() if p.name.startswith("seg-")) == []


def test_variable_length(tmp_path: Path) -> None:
    st = FeatureStore.create(tmp_path / "v", dim=1, kind="answer_ids", meta={}, max_length=5)
    st.append(["a", "b"], [np.array([[30522.0], [2748.0], [102.0]]), np.array([[30522.0]])])
    np.testing.assert_array_equal(st.get("a")[:, 0], [30522, 2748, 102])
    padded, n = st.get_padded("b")
    assert padded.shape == (5, 1) and n == 1
    with pytest.raises(ValueError, match="max_length"):
        st.append(["c"], [np.zeros((6, 1))])
    with pytest.raises(ValueError, match="has kind=|has max_length"):
        FeatureStore.create(tmp_path / "v", dim=1, kind="answer_ids", max_length=7)


def test_resume_after_kill(tmp_path: Path) -> None:
    """A crash between chunks loses nothing committed; stray temp/orphan files are ignored and cleaned."""
    path = tmp_path / "st"
    x = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    names = _names(0, 30)

    def run(fail_after: int | None) -> None:
        st = FeatureStore.create(path, dim=3, kind="k")
        todo = [n for n in names if n not in st]
        for i in range(0, len(todo), 10):
            if fail_after is not None and i >= fail_after:
                raise KeyboardInterrupt  # simulated kill between chunks
            idx = [names.index(n) for n in todo[i : i + 10]]
            st.append(todo[i : i + 10], x[idx])

    with pytest.raises(KeyboardInterrupt):
        run(fail_after=20)
    # a killed writer can leave a partial temp file and an uncommitted segment behind
    (path / ".seg-000002.npy.dead.tmp").write_bytes(b"\x93NUMPY partial")
    (path / "seg-000002.npy").write_bytes(b"garbage, never listed in the manifest")
    st = FeatureStore.open(path)
    assert st.names == names[:20]
    assert check_store(path, names).missing == names[20:]
    run(fail_after=None)
    st = FeatureStore.open(path)
    assert st.names == names
    np.testing.assert_array_equal(st.get_many(names)[0], x)
    assert not list(path.glob("*.tmp"))
    assert check_store(path, names).ok


def test_duplicates_and_nonfinite(tmp_path: Path) -> None:
    st = FeatureStore.create(tmp_path / "st", dim=2, kind="k")
    st.append(["a", "b"], np.ones((2, 2)))
    with pytest.raises(ValueError, match="already"):
        st.append(["a"], np.zeros((1, 2)))
    assert st.append(["a", "c"], np.zeros((2, 2)), on_duplicate="skip") == 1
    st.append(["b"], np.full((1, 2), np.nan), on_duplicate="keep")
    st.append(["d"], np.array([[np.inf, 0.0]]))
    chk = check_store(tmp_path / "st", ["a", "b", "c", "d", "e"])
    assert chk.duplicates == ["b"]
    assert chk.nonfinite == ["b", "d"]
    assert chk.missing == ["e"] and chk.extra == [] and not chk.ok
    assert np.isnan(st.get("b")).all()  # the later row wins
    assert "duplicates=1" in chk.summary() and chk.to_dict()["ok"] is False


def test_variable_length_nan_only_in_valid_part(tmp_path: Path) -> None:
    st = FeatureStore.create(tmp_path / "v", dim=2, kind="decoder_seq", max_length=4)
    feats = np.zeros((2, 4, 2), dtype=np.float32)
    feats[0, 3] = np.nan  # beyond length 2: padding, ignored
    feats[1, 0] = np.nan
    st.append(["a", "b"], feats, lengths=[2, 3])
    assert check_store(tmp_path / "v").nonfinite == ["b"]


def test_open_rejects_non_store(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FeatureStore.open(tmp_path)
