"""NTU raw preparation: parser, each denoising rule (REFERENCE §2.2-2.6), splits, report, resume."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from mmcl.datasets import PreparedSource, SampleStore
from mmcl.datasets.prepared import ctvm_to_frames
from mmcl.formats import ntu_denoise, ntu_parse, ntu_scan
from mmcl.formats.ntu import parse_name
from mmcl.formats.ntu_denoise import process_parsed
from mmcl.formats.ntu_parse import (
    NTUParseError,
    _Fallback,
    _parse_careful,
    _parse_fast,
    _parse_numba,
    _parse_numpy,
    parse_skeleton,
)
from mmcl.prepare.ntu import prepare_ntu
from mmcl.prepare.ntu_protocol import benchmark_splits, missing_skeletons
from mmcl.prepare.ntu_synth import format_skeleton, random_sample, sample_name, standing_pose, write_skeleton


def track(n: int, offset=(0.0, 0.0, 3.0), speed: float = 0.0, wide: set[int] | None = None) -> list[np.ndarray]:
    """n poses moving along x with ``speed`` m/frame; frames in ``wide`` are lying (x-spread > y-spread)."""
    out = []
    for k in range(n):
        p = standing_pose(offset) + np.array([speed * k, 0.0, 0.0])
        if wide and k in wide:
            c = p.mean(axis=0)
            q = p - c
            p = c + q[:, [1, 0, 2]]
        out.append(p.round(6))
    return out


def frames_of(n_frames: int, *bodies: tuple[str, int, list[np.ndarray]]) -> list[list]:
    """Place each (id, first frame, poses) body into an n_frames list of frames."""
    frames: list[list] = [[] for _ in range(n_frames)]
    for bid, start, poses in bodies:
        for k, p in enumerate(poses):
            frames[start + k].append((bid, p, None))
    return frames


def run(frames, fix_quirks: bool = False):
    return process_parsed(parse_skeleton(format_skeleton(frames).encode()), fix_quirks=fix_quirks)


# --- parser ---------------------------------------------------------------------------------------


def assert_same_parse(a, b) -> None:
    """Bit-for-bit equality of two ParsedSkeleton results."""
    assert a.num_frames == b.num_frames and a.dropped_frames == b.dropped_frames
    assert [x.body_id for x in a.bodies] == [x.body_id for x in b.bodies]
    for x, y in zip(a.bodies, b.bodies):
        assert x.joints.dtype == y.joints.dtype == np.float32 and x.colors.dtype == y.colors.dtype == np.float32
        assert x.joints.shape == y.joints.shape and x.colors.shape == y.colors.shape
        assert x.joints.tobytes() == y.joints.tobytes() and x.colors.tobytes() == y.colors.tobytes()
        assert x.frames.tolist() == y.frames.tolist()


def assert_same_sample(a, b) -> None:
    assert a.num_actors == b.num_actors and a.info == b.info
    assert a.joints.tobytes() == b.joints.tobytes() and a.colors.tobytes() == b.colors.tobytes()


needs_numba = pytest.mark.skipif(ntu_scan.kernel() is None, reason="numba is not installed")


def test_real_sample(ntu_sample_dir: Path) -> None:
    data = (ntu_sample_dir / "S001C001P001R001A001.skeleton").read_bytes()
    fast, careful = _parse_fast(data), _parse_careful(data, None)
    assert fast.num_frames == 103 and len(fast.bodies) == 1
    assert_same_parse(fast, careful)
    assert_same_parse(_parse_numpy(data), careful)
    # reference conversion: the first three fields of each joint line through float32
    rows = [ln.split() for ln in data.decode().splitlines() if len(ln.split()) == 12]
    ref = np.array([r[:3] for r in rows], dtype=np.float32).reshape(-1, 25, 3)
    assert np.array_equal(ref, fast.bodies[0].joints)
    res = process_parsed(fast)
    assert res.num_actors == 1 and res.joints.shape == (103, 150)
    assert np.allclose(res.joints[0, 3:6], 0)  # centred on J2 of frame 0
    assert np.array_equal(res.joints[0, :75], ref[0].ravel() - np.tile(ref[0, 1], 25))
    assert_same_sample(res, process_parsed(careful))


@needs_numba
def test_compiled_path_on_real_sample(ntu_sample_dir: Path) -> None:
    data = (ntu_sample_dir / "S001C001P001R001A001.skeleton").read_bytes()
    assert_same_parse(_parse_numba(data), _parse_careful(data, None))


def _random_files(seed: int, n: int) -> list[bytes]:
    """Realistic random files: 1-4 bodies, 12-120 frames, some frames without bodies."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        frames = random_sample(rng, int(rng.integers(12, 120)), int(rng.integers(1, 5)))
        for f in rng.choice(len(frames), size=int(rng.integers(0, 4)), replace=False):
            frames[f] = []
        out.append(format_skeleton(frames).encode())
    return out


@needs_numba
@pytest.mark.parametrize("fix_quirks", [False, True])
def test_compiled_numpy_careful_identical_on_corpus(fix_quirks: bool) -> None:
    for data in _random_files(3, 25):
        careful = _parse_careful(data, None)
        for parsed in (_parse_numba(data), _parse_numpy(data)):
            assert_same_parse(parsed, careful)
        try:
            want = process_parsed(careful, fix_quirks=fix_quirks)
        except ntu_denoise.NTUDenoiseError:
            continue
        assert_same_sample(process_parsed(_parse_numba(data), fix_quirks=fix_quirks), want)


@needs_numba
@pytest.mark.parametrize(
    "token, accepted",
    [
        ("0.2181153", True), ("-0.2181153", True), ("+.5", True), ("5.", True), ("-0", True), ("-0.0", True),
        ("1.2e-05", True), ("-1.5E+2", True), ("7e0", True), ("0e999", True), ("900719925474099.2", True), ("0.000000000000001", True),
        ("0.1234567890123456789", False), ("1e30", False), ("1_0", False), ("9007199254740993", False),
        ("1" * 30, False),
    ],
)
def test_compiled_number_formats(token: str, accepted: bool) -> None:
    """Exact like float(); formats outside the exact fast path go to the careful path, same result."""
    lines = format_skeleton(frames_of(2, ("7", 0, track(2)))).splitlines()
    f = lines[4].split()
    f[0] = f[6] = token
    lines[4] = " ".join(f)
    data = ("\n".join(lines) + "\n").encode()
    careful = _parse_careful(data, None)
    assert careful.bodies[0].joints[0, 0, 0] == np.float32(float(token))
    assert np.signbit(careful.bodies[0].joints[0, 0, 0]) == np.signbit(float(token))
    if accepted:
        assert_same_parse(_parse_numba(data), careful)
    else:
        with pytest.raises(_Fallback):
            _parse_numba(data)
    assert_same_parse(parse_skeleton(data), careful)


@needs_numba
def test_compiled_path_layout_variants() -> None:
    """CRLF, tabs, \v \f, padded count lines, leading-zero ids, no final newline, trailing blanks."""
    text = format_skeleton(frames_of(20, ("7", 0, track(20)), ("007", 3, track(15, (1, 0, 3)))))
    variants = [
        text.replace("\n", "\r\n"),
        text.replace(" ", "\t"),
        text.replace(" 0 ", " \x0b0\x0c "),
        text.replace("\n25\n", "\n 025 \n"),
        text.rstrip("\n"),
        text + "\n \n\t\n",
    ]
    for v in variants:
        data = v.encode()
        fast = _parse_numba(data)
        assert [b.body_id for b in fast.bodies] == ["7", "007"]
        assert_same_parse(fast, _parse_careful(data, None))


@needs_numba
def test_compiled_path_reports_where_it_stopped() -> None:
    lines = format_skeleton(frames_of(2, ("7", 0, track(2)))).splitlines()
    lines[9] = lines[9].replace(lines[9].split()[2], "x1", 1)
    data = ("\n".join(lines) + "\n").encode()
    with pytest.raises(_Fallback) as ei:
        _parse_numba(data)
    assert ei.value.code == ntu_scan.E_NUMBER and ntu_parse._line_of(data, ei.value.offset) == 10
    with pytest.raises(NTUParseError) as ei2:
        parse_skeleton(data, "bad.skeleton")
    assert ei2.value.line == 10 and "not a number" in str(ei2.value)


def test_without_numba_numpy_path_and_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _random_files(5, 1)[0]
    monkeypatch.setattr(ntu_scan, "_KERNEL", False)
    monkeypatch.setattr(ntu_scan, "_NUMBA_WARNED", False)
    with pytest.warns(RuntimeWarning, match="numba"):
        first = parse_skeleton(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_skeleton(data)
    assert_same_parse(first, _parse_careful(data, None))


@needs_numba
def test_compiled_denoise_helpers_match_numpy() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 300))
        j = (rng.normal(0, 1, (n, 25, 3)) * rng.uniform(0.01, 2) + rng.uniform(-3, 3, 3)).astype(np.float32)
        if rng.random() < 0.3:
            j[..., 0] *= rng.uniform(1, 4)  # wide poses: some frames fail the spread test
        m = ntu_denoise._motion(j)
        assert isinstance(m, np.float32) and m.tobytes() == ntu_denoise._motion_numpy(j).tobytes()
        valid = ntu_denoise._spread_valid(j)
        assert valid.tolist() == ntu_denoise._spread_valid_numpy(j).tolist()
        if len(valid):
            assert ntu_denoise._motion(j, valid).tobytes() == ntu_denoise._motion_numpy(j, valid).tobytes()


def test_dropped_frames_and_exponents() -> None:
    frames = frames_of(6, ("1", 1, track(4)))
    text = format_skeleton(frames).replace("250.5", "2.505e2")
    parsed = parse_skeleton(text.encode())
    assert parsed.num_frames == 4 and parsed.dropped_frames == [0, 5]
    assert parsed.bodies[0].frames.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "mutate, line, needle",
    [
        (lambda ls: ls[:30], 31, "truncated"),
        (lambda ls: ls[:4] + [" ".join(ls[4].split()[:11])] + ls[5:], 5, "11 fields"),
        (lambda ls: ls[:4] + [ls[4].replace(ls[4].split()[1], "abc", 1)] + ls[5:], 5, "not a number"),
        (lambda ls: ls[:3] + ["24"] + ls[4:], 4, "joint count 24"),
        (lambda ls: ls[:2] + [ls[2].split(maxsplit=1)[1]] + ls[3:], 3, "9 fields"),
        (lambda ls: ["2", "0", "0"], 1, "every frame is empty"),
    ],
)
def test_parse_errors(mutate, line: int, needle: str, tmp_path: Path) -> None:
    lines = format_skeleton(frames_of(2, ("7", 0, track(2)))).splitlines()
    path = tmp_path / "bad.skeleton"
    path.write_text("\n".join(mutate(lines)) + "\n")
    with pytest.raises(NTUParseError) as ei:
        parse_skeleton(path.read_bytes(), path)
    assert ei.value.line == line and needle in str(ei.value) and str(path) in str(ei.value)


# --- denoising rules --------------------------------------------------------------------------------


def test_length_filter() -> None:
    res = run(frames_of(40, ("1", 0, track(40)), ("2", 5, track(11, (1, 0, 3)))))
    assert res.num_actors == 1 and res.info["removed_by_length"] == ["2"]
    res = run(frames_of(40, ("1", 0, track(40)), ("2", 5, track(12, (1, 0, 3), speed=0.05))))
    assert res.num_actors == 2


def test_length_filter_removing_everything() -> None:
    frames = frames_of(10, ("1", 0, track(10)), ("2", 0, track(10, (1, 0, 3))))
    with pytest.raises(Exception, match="removed every body"):
        run(frames)
    assert run(frames, fix_quirks=True).num_actors == 1


def test_spread_filter_threshold() -> None:
    # 14/20 = 0.7 >= 0.69754 invalid frames: removed; 13/20 = 0.65: kept
    bad = run(frames_of(20, ("1", 0, track(20)), ("2", 0, track(20, (1, 0, 3), wide=set(range(14))))))
    assert bad.info["removed_by_spread"] == ["2"] and bad.num_actors == 1
    ok = run(frames_of(20, ("1", 0, track(20)), ("2", 0, track(20, (1, 0, 3), wide=set(range(13))))))
    assert ok.info["removed_by_spread"] == [] and ok.num_actors == 2


def test_spread_motion_update_reorders() -> None:
    # body 2 has the largest motion only because of its wide frames; recomputed on its valid frames
    # (min of the two) it becomes smaller than body 1's, so body 1 is actor 1.
    b1 = track(20, speed=0.01)
    b2 = track(20, (1, 0, 3), wide=set(range(0, 20, 2)))
    res = run(frames_of(20, ("1", 0, b1), ("2", 0, b2)))
    start1 = standing_pose()[1]
    assert np.allclose(res.joints[:, 3:6].mean(0) + start1, np.asarray(b1)[:, 1].mean(0), atol=1e-5)


def test_motion_ordering() -> None:
    calm, busy = track(30), track(30, (1, 0, 3), speed=0.03)
    res = run(frames_of(30, ("1", 0, calm), ("2", 0, busy)))
    # actor 1 = the busy body (second in the file), centred on its own J2 of frame 0
    assert np.allclose(res.joints[:, :75].reshape(30, 25, 3), np.asarray(busy) - busy[0][1], atol=1e-5)
    assert np.allclose(res.joints[:, 75:].reshape(30, 25, 3), np.asarray(calm) - busy[0][1], atol=1e-5)


def test_non_overlapping_bodies_share_actor1_and_one_frame_overlap_quirk() -> None:
    a = track(20, speed=0.03)
    b = track(15, (1, 0, 3))
    # b starts on a's last frame (index 19): one shared frame
    frames = frames_of(34, ("1", 0, a), ("2", 19, b))
    ref = run(frames)
    # quirk: treated as no overlap, written into actor 1, overwriting frame 19; actor 2 stays empty
    # (still a 2-body result: NTU-120 does not duplicate it)
    assert ref.num_actors == 2 and not ref.joints[:, 75:].any()
    x = ref.joints[:, :75].reshape(-1, 25, 3) + a[0][1]
    assert np.allclose(x[19], b[0], atol=1e-5)
    fixed = run(frames, fix_quirks=True)
    assert fixed.joints[:, 75:].any() and np.allclose(fixed.joints[19, :75].reshape(25, 3) + a[0][1], a[19], atol=1e-5)


def test_actor2_anchored_at_frame0_quirk() -> None:
    a = track(60, speed=0.05)  # actor 1, frames 0-59
    b = track(20, (1, 0, 3), speed=0.02)  # overlaps actor 1 at frames 30-49 -> actor 2, interval [0, 49]
    c = track(15, (-1, 0, 3), speed=0.01)  # frames 5-19: overlaps actor 1 and the anchored actor 2
    frames = frames_of(60, ("1", 0, a), ("2", 30, b), ("3", 5, c))
    ref = run(frames)
    assert ref.info["discarded"] == ["3"]
    fixed = run(frames, fix_quirks=True)
    assert fixed.info["discarded"] == []
    assert np.allclose(fixed.joints[5, 75:].reshape(25, 3) + a[0][1], c[0], atol=1e-5)


def test_interval_quirk_reappearing_body() -> None:
    a = track(40, speed=0.03)
    b = track(30, (1, 0, 3))
    frames = frames_of(40, ("1", 0, a))
    for k in range(15):  # body 2 at frames 0-14 and 25-39
        frames[k].append(("2", b[k], None))
        frames[25 + k].append(("2", b[15 + k], None))
    ref = run(frames)
    y2 = ref.joints[:, 75:].reshape(-1, 25, 3) + a[0][1]
    assert np.allclose(y2[15], b[15], atol=1e-5) and np.allclose(y2[29], b[29], atol=1e-5)  # shifted earlier
    assert not ref.joints[30:, 75:].any()
    fixed = run(frames, fix_quirks=True)
    y2 = fixed.joints[:, 75:].reshape(-1, 25, 3) + a[0][1]
    assert np.allclose(y2[25], b[15], atol=1e-5) and not fixed.joints[15:25, 75:].any()


def test_missing_frame_removal_only_for_multi_body() -> None:
    poses = track(20)
    poses[5] = np.zeros((25, 3))  # an all-zero skeleton in frame 5
    single = run(frames_of(20, ("1", 0, poses)))
    assert single.joints.shape[0] == 20  # kept (and centred to -origin, like the reference)
    assert np.allclose(single.joints[5, :75], -np.tile(poses[0][1], 25), atol=1e-6)
    assert run(frames_of(20, ("1", 0, poses)), fix_quirks=True).joints.shape[0] == 19
    # multi-body: frames 15-16 hold only a short noise body (length filter) -> nothing written -> removed
    a = track(30, speed=0.03)
    multi = run(frames_of(30, ("1", 0, a[:15]), ("2", 17, a[17:]), ("3", 15, track(2, (1, 0, 3)))))
    assert not multi.joints[:, 75:].any() and multi.info["missing_frames_removed"] == 2 and multi.joints.shape[0] == 28


def test_centring_on_first_nonzero_frame_of_actor1() -> None:
    a = track(20, (0.5, 0.2, 3.0), speed=0.03)
    b = track(25, (1, 0, 3))
    # actor 1 (a) starts at frame 5; actor 2 (b) covers 0-24
    res = run(frames_of(25, ("2", 0, b), ("1", 5, a)))
    assert res.num_actors == 2 and not res.joints[:5, :75].any()  # reset to zero where absent
    assert np.allclose(res.joints[5, 3:6], 0)
    assert np.allclose(res.joints[0, 75:].reshape(25, 3), b[0] - a[0][1], atol=1e-5)


# --- splits and the whole run ---------------------------------------------------------------------------


def _corpus(root: Path, specs, rng) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for s, c, p, r, a in specs:
        name = sample_name(s, c, p, r, a)
        write_skeleton(root / f"{name}.skeleton", random_sample(rng, int(rng.integers(15, 40)), 1))
        names.append(name)
    return names


def _split(root: Path, split: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """A benchmark split as the reference N×T×150 frames (padded at load) and per-sample colours."""
    src = PreparedSource(root, split)
    x = np.stack([ctvm_to_frames(src.raw(i)[0]) for i in range(len(src))])
    return x, [np.asarray(src.sample_colors(i)) for i in range(len(src))]


def test_split_rules_and_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    specs = [(s, c, p, 1, a) for s in (1, 2, 17) for c in (1, 2, 3) for p in (1, 3, 40) for a in (1, 60)]
    specs += [(18, 1, 41, 2, 120)]
    _corpus(tmp_path / "raw", specs, rng)
    rep = prepare_ntu([tmp_path / "raw"], "ntu60", tmp_path / "o60", workers=1, progress=False, npz=True)
    assert rep.samples == 54 and len(rep.ignored) == 1  # S018 is not NTU-60
    names = PreparedSource(tmp_path / "o60/xview", "train").names
    cams = [parse_name(n)[1] for n in names]
    assert cams == sorted(cams) and set(cams) == {2, 3} and len(names) == 36
    assert names[:18] == sorted(n for n in names if parse_name(n)[1] == 2)  # camera 2 then 3, sample order
    sub = PreparedSource(tmp_path / "o60/xsub", "test").names
    assert [parse_name(n)[2] for n in sub] == [3] * 18 + [40] * 18
    y = PreparedSource(tmp_path / "o60/xsub", "train").labels
    assert y.dtype == np.int64 and set(y.tolist()) == {0, 59}
    z = np.load(tmp_path / "NTU60_CS.npz".join([str(tmp_path / "o60") + "/", ""]))
    assert z["y_train"].shape == (18, 60) and z["x_test"].shape == (36, 300, 150)
    assert np.array_equal(z["x_train"], _split(tmp_path / "o60/xsub", "train")[0])
    meta = json.loads((tmp_path / "o60/xsub/meta.json").read_text())
    assert meta["counts"] == {"train": 18, "test": 36} and meta["max_frames"] == 300 and meta["store"] == "../samples"
    store = SampleStore(tmp_path / "o60/samples")  # each sample once, valid frames only
    assert len(store) == 54 and store.names == sorted(store.names) and len(store.joints) == store.lengths.sum() < 54 * 40
    # NTU-120 X-Set: setups even train, grouped by setup
    rep = prepare_ntu([tmp_path / "raw"], "ntu120", tmp_path / "o120", workers=1, progress=False)
    tr, te = (PreparedSource(tmp_path / "o120/xset", s).names for s in ("train", "test"))
    assert {parse_name(n)[0] for n in tr} == {2, 18} and [parse_name(n)[0] for n in te] == [1] * 18 + [17] * 18
    assert rep.counts["xsub"] == {"train": 18, "test": 37}


def test_benchmark_splits_direct() -> None:
    names = [sample_name(s, c, p, 1, 1) for s in (1, 2) for c in (1, 2) for p in (2, 1)]
    train, test = benchmark_splits(names, "ntu60", "xsub")
    assert [names[i] for i in train] == sorted(names, key=lambda n: (parse_name(n)[2], names.index(n)))
    assert test == []
    assert len(missing_skeletons("ntu60")) == 302 and len(missing_skeletons("ntu120")) == 535


def test_lone_actor_zero_fill_vs_duplication(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _corpus(raw, [(1, 1, 1, 1, 1), (1, 1, 1, 1, 2)], np.random.default_rng(1))
    prepare_ntu([raw], "ntu60", tmp_path / "a", workers=1, progress=False)
    prepare_ntu([raw], "ntu120", tmp_path / "b", workers=1, progress=False)
    prepare_ntu([raw], "ntu120", tmp_path / "c", workers=1, progress=False, fix_quirks=True)
    x60 = _split(tmp_path / "a/xsub", "train")[0]
    x120, c120 = _split(tmp_path / "b/xsub", "train")
    assert x60[:, :, :75].any() and not x60[:, :, 75:].any()
    assert np.array_equal(x120[:, :, 75:], x120[:, :, :75]) and np.array_equal(x120[:, :, :75], x60[:, :, :75])
    assert all(np.array_equal(c[:, 1], c[:, 0]) and c[:, 0].any() for c in c120)
    assert np.array_equal(_split(tmp_path / "c/xsub", "train")[0], x60)
    assert not (tmp_path / "a/.cache").exists()


def test_corrupt_files_report_and_strict(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    names = _corpus(raw, [(1, 1, 1, 1, a) for a in (1, 2, 3)], np.random.default_rng(2))
    bad = raw / f"{names[1]}.skeleton"
    bad.write_text("\n".join(bad.read_text().splitlines()[:40]) + "\n")
    rep = prepare_ntu([raw], "ntu60", tmp_path / "o", workers=1, progress=False)
    assert rep.samples == 2 and [e["name"] for e in rep.failed] == [names[1]]
    assert rep.failed[0]["line"] == 41 and "truncated" in rep.failed[0]["reason"]
    saved = json.loads((tmp_path / "o/prepare_report.json").read_text())
    assert saved["failed"][0]["name"] == names[1]
    assert names[1] in (tmp_path / "o/prepare_report.txt").read_text()
    assert names[1] not in PreparedSource(tmp_path / "o/xsub", "train").names
    with pytest.raises(NTUParseError, match=f"{names[1]}.skeleton:41"):
        prepare_ntu([raw], "ntu60", tmp_path / "s", workers=1, progress=False, strict=True)


def test_resume_after_interruption(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _corpus(raw, [(1, c, p, 1, 1) for c in (1, 2, 3) for p in (1, 2, 3)], np.random.default_rng(3))
    seen: list[str] = []

    def killer(path: str) -> None:
        if len(seen) == 5:
            raise KeyboardInterrupt
        seen.append(Path(path).name)

    with pytest.raises(KeyboardInterrupt):
        prepare_ntu([raw], "ntu60", tmp_path / "o", workers=1, progress=False, chunk_size=2, on_file=killer)
    assert len(seen) == 5  # chunks (a, b), (c, d) finished; (e, ...) interrupted
    again: list[str] = []
    rep = prepare_ntu([raw], "ntu60", tmp_path / "o", workers=1, progress=False, chunk_size=2,
                      on_file=lambda p: again.append(Path(p).name))
    assert rep.reused == 4 and rep.parsed == 5 and set(again).isdisjoint(seen[:4])
    full = prepare_ntu([raw], "ntu60", tmp_path / "f", workers=2, progress=False, chunk_size=2)
    for f in ("joints.npy", "colors.npy", "offsets.npy", "labels.npy", "names.txt"):
        assert (tmp_path / "o/samples" / f).read_bytes() == (tmp_path / "f/samples" / f).read_bytes()
    for f in ("xsub/train.npy", "xview/test.npy"):
        assert np.array_equal(np.load(tmp_path / "o" / f), np.load(tmp_path / "f" / f))
    assert full.samples == 9
