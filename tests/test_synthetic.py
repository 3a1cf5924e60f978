"""Tests for the built-in synthetic world (mmcl.demo.world) used by ``mmcl demo``."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from mmcl.demo.render import answer_holding_object, render_composite, synthetic_text_features, write_composites
from mmcl.demo.world import JOINT_NOISE_STD, SYNTHETIC_CLASSES, SyntheticData, generate_synthetic, split_synthetic
from mmcl.skeleton.layouts import NTU25

J = {name: i for i, name in enumerate(NTU25.joint_names)}
K = len(SYNTHETIC_CLASSES)
PAIRS = [
    (next(i for i, c in enumerate(SYNTHETIC_CLASSES) if c.name == a),
     next(i for i, c in enumerate(SYNTHETIC_CLASSES) if c.name == b))
    for a, b in (("drink from cup", "touch mouth"), ("phone call", "touch ear"))
]


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate_synthetic(80, seed=0)


@pytest.fixture(scope="module")
def clean() -> SyntheticData:
    return generate_synthetic(80, seed=0, joint_noise=0.0)


def _valid(d: SyntheticData, i: int) -> np.ndarray:
    """Valid frames of person 1 as T×V×3."""
    return d.x[i, :, : d.lengths[i], :, 0].transpose(1, 2, 0).astype(np.float64)


def test_classes_and_pairs() -> None:
    names = [c.name for c in SYNTHETIC_CLASSES]
    assert len(names) >= 10 and len(set(names)) == len(names)
    for a, b in PAIRS:
        ca, cb = SYNTHETIC_CLASSES[a], SYNTHETIC_CLASSES[b]
        assert ca.holds_object and not cb.holds_object
        assert ca.motion == cb.motion and ca.twin == cb.name and cb.twin == ca.name


def test_determinism() -> None:
    a = generate_synthetic(3, seed=11)
    b = generate_synthetic(3, seed=11)
    c = generate_synthetic(3, seed=12)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.lengths, b.lengths)
    np.testing.assert_array_equal(a.render.object_color, b.render.object_color)
    assert a.names == b.names
    assert not np.array_equal(a.x, c.x)
    np.testing.assert_array_equal(np.asarray(render_composite(a, 5)), np.asarray(render_composite(b, 5)))


def test_shapes_and_dtypes(data: SyntheticData) -> None:
    n = 80 * K
    assert data.x.shape == (n, 3, 100, 25, 2) and data.x.dtype == np.float32
    assert data.lengths.dtype == np.int32 and data.labels.dtype == np.int64
    assert data.holds_object.dtype == bool and len(data) == n
    assert len(data.names) == n and len(set(data.names)) == n
    assert data.names[0].startswith("syn_c00_s")
    assert data.class_names == [c.name for c in SYNTHETIC_CLASSES]
    np.testing.assert_array_equal(np.bincount(data.labels), np.full(K, 80))
    np.testing.assert_array_equal(
        data.holds_object, [SYNTHETIC_CLASSES[k].holds_object for k in data.labels])
    assert data.render.object_color.shape == (n, 3) and data.render.object_size.shape == (n,)
    x0, ln = data.raw(3)
    assert x0.shape == (3, 100, 25, 2) and ln == data.lengths[3]
    small = generate_synthetic(2, seed=1, max_frames=64, num_persons=1)
    assert small.x.shape == (2 * K, 3, 64, 25, 1)
    assert small.lengths.min() >= 40 and small.lengths.max() <= 64


def test_lengths_padding_and_scene(data: SyntheticData) -> None:
    assert data.lengths.min() >= 40 and data.lengths.max() <= 100
    t = np.arange(data.x.shape[2])
    pad = t[None, :] >= data.lengths[:, None]  # N×T
    assert np.all(data.x.transpose(0, 2, 1, 3, 4)[pad] == 0)
    assert np.all(data.x[..., 1] == 0)  # second person absent
    norms = np.linalg.norm(data.x[..., 0], axis=1)  # N×T×V
    assert np.all(norms.transpose(0, 1, 2)[~pad] > 0)
    valid = data.x[..., 0].transpose(0, 2, 3, 1)[~pad]  # frames×V×3
    depth = valid[:, J["spine middle"], 2]
    assert 2.0 < depth.min() and depth.max() < 4.3 and valid[..., 2].min() > 1.2  # Kinect-like
    stature = valid[:, J["head"], 1] - valid[:, [J["left foot"], J["right foot"]], 1].min(1)
    assert np.median(stature) > 1.2 and stature.max() < 2.2


def test_bones_rigid_before_noise(clean: SyntheticData, data: SyntheticData) -> None:
    worst = 0.0
    for i in range(0, len(clean), 7):
        x = _valid(clean, i)
        for a, b in NTU25.bone_pairs:
            if a != b:
                worst = max(worst, float(np.ptp(np.linalg.norm(x[:, a] - x[:, b], axis=-1))))
    assert worst < 1e-4, worst
    # Noise comes from its own stream: same geometry, Gaussian offsets of the documented size.
    diff = np.concatenate([_valid(data, i) - _valid(clean, i) for i in range(0, len(data), 5)])
    body = [J["spine base"], J["head"], J["left knee"]]
    assert abs(diff[:, body].std() - JOINT_NOISE_STD[0]) < 0.001
    assert abs(diff[:, [J["right hand tip"]]].std() - JOINT_NOISE_STD[1]) < 0.0015


def _hand_shape(d: SyntheticData, i: int) -> np.ndarray:
    """Rotation-invariant right-hand shape: mean tip-thumb, tip-wrist, thumb-wrist distances."""
    x = _valid(d, i)
    dist = lambda a, b: np.linalg.norm(x[:, J[a]] - x[:, J[b]], axis=-1).mean()  # noqa: E731
    return np.array([dist("right hand tip", "right thumb"), dist("right hand tip", "right wrist"),
                     dist("right thumb", "right wrist")])


def test_object_cue_is_small_and_weak(clean: SyntheticData, data: SyntheticData) -> None:
    for obj, no in PAIRS:
        f_obj = np.stack([_hand_shape(clean, i) for i in np.flatnonzero(clean.labels == obj)])
        f_no = np.stack([_hand_shape(clean, i) for i in np.flatnonzero(clean.labels == no)])
        delta = np.abs(f_obj.mean(0) - f_no.mean(0))
        print(f"object cue {SYNTHETIC_CLASSES[obj].name}: mean |Δ| hand distances (cm) "
              f"{np.round(100 * delta, 2)}; subject sd {np.round(100 * f_no.std(0), 2)}")
        # Present, but at the joint-noise level (~1 cm) and within the between-subject spread.
        assert 0.001 < delta.max() < 2 * JOINT_NOISE_STD[1]
        assert np.all(delta < 1.5 * f_no.std(0))
        # A classifier on exactly these hand features only partly separates the pair.
        idx = np.flatnonzero(np.isin(data.labels, [obj, no]))
        f = np.stack([_hand_shape(data, i) for i in idx])
        y = (data.labels[idx] == obj).astype(np.float64)
        tr = np.arange(len(idx)) % 2 == 0
        mu, sd = f[tr].mean(0), f[tr].std(0)
        xf = np.c_[(f - mu) / sd, np.ones(len(f))]
        w = np.linalg.solve(xf[tr].T @ xf[tr] + 1e-3 * np.eye(4), xf[tr].T @ (2 * y[tr] - 1))
        acc = float((((xf[~tr] @ w) > 0) == (y[~tr] > 0)).mean())
        print(f"  hand-shape-only pair accuracy {acc:.2f}")
        assert 0.5 < acc < 0.92


def _stats(d: SyntheticData) -> np.ndarray:
    """Yaw-invariant per-joint statistics of the motion relative to the first spine-base point."""
    rows = []
    for i in range(len(d)):
        x = _valid(d, i)
        rel = x - x[:1, :1]
        feats = []
        for a in (np.hypot(rel[..., 0], rel[..., 2]), rel[..., 1]):
            feats += [a.mean(0), a.std(0), a.min(0), a.max(0)]
        rows.append(np.concatenate(feats + [[d.lengths[i] / 100.0]]))
    return np.asarray(rows)


def test_classes_learnable_but_pairs_hard(data: SyntheticData) -> None:
    train, test = split_synthetic(data, test_fraction=0.3, seed=0)
    ftr, fte = _stats(train), _stats(test)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    xtr = np.c_[(ftr - mu) / sd, np.ones(len(ftr))]
    xte = np.c_[(fte - mu) / sd, np.ones(len(fte))]
    w = np.linalg.solve(xtr.T @ xtr + np.eye(xtr.shape[1]), xtr.T @ np.eye(K)[train.labels])
    pred = (xte @ w).argmax(1)
    acc = float((pred == test.labels).mean())
    in_pair = np.isin(test.labels, np.ravel(PAIRS))
    acc_easy = float((pred == test.labels)[~in_pair].mean())
    acc_pair = float((pred == test.labels)[in_pair].mean())
    print(f"ridge on skeleton stats: overall {acc:.2f}, non-pair {acc_easy:.2f}, pair {acc_pair:.2f}")
    assert acc > 0.6  # chance is 1/12
    assert acc_easy > 0.85
    assert acc_pair < acc_easy - 0.15
    # Pair errors are confusions with the twin, not with unrelated classes.
    for a, b in PAIRS:
        m = np.isin(test.labels, [a, b])
        assert np.isin(pred[m], [a, b]).mean() > 0.85


def test_split_is_stratified_and_disjoint(data: SyntheticData) -> None:
    train, test = split_synthetic(data, test_fraction=0.25, seed=3)
    assert set(train.names).isdisjoint(test.names)
    assert len(train) + len(test) == len(data)
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=K), np.full(K, 20))
    i = data.names.index(test.names[0])
    np.testing.assert_array_equal(test.x[0], data.x[i])
    assert test.render.background_seed[0] == data.render.background_seed[i]
    again = split_synthetic(data, test_fraction=0.25, seed=3)[1]
    assert again.names == test.names


def test_composite_size_fixed() -> None:
    d = generate_synthetic(1, seed=2)
    for i in range(len(d)):
        im = render_composite(d, i)
        assert im.mode == "RGB" and im.size == (640, 96)
    assert render_composite(d, 0, frames=3, frame_size=(64, 48)).size == (192, 48)


def test_answerer_accuracy(tmp_path) -> None:
    d = generate_synthetic(12, seed=21)
    images = [render_composite(d, i) for i in range(len(d))]
    answers = [answer_holding_object(im) for im in images]
    pred = np.array([a == "yes" for a, _ in answers])
    acc = float((pred == d.holds_object).mean())
    print(f"answerer accuracy (PIL images): {acc:.3f}")
    assert acc >= 0.95
    assert all((a == "yes") == (p >= 0.5) and 0.0 <= p <= 1.0 for a, p in answers)
    # Same on the JPEG files, and the FRM feature is [p_yes, p_no].
    write_composites(d, tmp_path)
    feats = synthetic_text_features([tmp_path / f"{n}.jpg" for n in d.names])
    assert feats.shape == (len(d), 2) and feats.dtype == np.float32
    np.testing.assert_allclose(feats.sum(1), 1.0, atol=1e-6)
    acc_jpg = float(((feats[:, 0] >= 0.5) == d.holds_object).mean())
    print(f"answerer accuracy (JPEG files): {acc_jpg:.3f}")
    assert acc_jpg >= 0.95
    # Pixels only: a resized copy (e.g. for a CNN) gets the same answers.
    resized = synthetic_text_features([im.resize((224, 224), Image.BILINEAR) for im in images[::5]])
    assert (((resized[:, 0] >= 0.5) == d.holds_object[::5]).mean()) >= 0.95


def test_write_composites_resumable(tmp_path) -> None:
    d = generate_synthetic(1, seed=4)
    first = write_composites(d, tmp_path, indices=range(5))
    assert len(first) == 5
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    rest = write_composites(d, tmp_path)
    assert len(rest) == len(d) - 5
    assert write_composites(d, tmp_path) == []  # second full call writes nothing new
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted(f"{n}.jpg" for n in d.names)  # no temp files left
    assert all(tmp_path.joinpath(n).stat().st_mtime_ns == t for n, t in mtimes.items())
    with Image.open(tmp_path / f"{d.names[0]}.jpg") as im:
        assert im.size == (640, 96)


def test_generation_speed() -> None:
    t0 = time.perf_counter()
    d = generate_synthetic(84, seed=5)  # 1008 samples
    dt = time.perf_counter() - t0
    print(f"generated {len(d)} samples in {dt:.2f} s")
    assert dt < 10.0
