"""Transforms against hand-computed values (REFERENCE §3.1, §3.3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmcl.skeleton.transforms import (
    NTUTransform,
    UCLATransform,
    crop_bounds,
    crop_resize,
    random_rotation,
    resize_time,
    rotate,
    rotation_matrix,
    ucla_sample_indices,
    ucla_transform,
    ucla_view_matrix,
    ucla_view_normalise,
    valid_frame_count,
)


class StubRng:
    """Returns fixed draws and records the integer range asked for."""

    def __init__(self, u: float = 0.0, uniform: tuple[float, ...] = (0.0, 0.0, 0.0)) -> None:
        self.u = u
        self._uniform = np.array(uniform)
        self.int_range: tuple[int, int] | None = None

    def random(self) -> float:
        return self.u

    def integers(self, lo: int, hi: int) -> int:
        self.int_range = (lo, hi)
        return lo

    def uniform(self, lo: float, hi: float, size: int) -> np.ndarray:
        return self._uniform


def _ramp(valid: int, total: int, v: int = 2, m: int = 1) -> np.ndarray:
    """Frames t < valid hold the value t + 1 everywhere; padding frames are zero."""
    x = np.zeros((3, total, v, m), dtype=np.float32)
    x[:, :valid] = (np.arange(valid, dtype=np.float32) + 1)[None, :, None, None]
    return x


def test_valid_frame_count_counts_nonzero_frames() -> None:
    assert valid_frame_count(_ramp(7, 10)) == 7
    x = _ramp(7, 10)
    x[:, 3] = 0  # an all-zero frame in the middle is not counted (reference behaviour)
    assert valid_frame_count(x) == 6
    assert valid_frame_count(np.zeros((3, 5, 25, 2), np.float32)) == 0


@pytest.mark.parametrize(
    ("vn", "b", "length"),
    [(20, 0, 20), (39, 0, 39), (40, 1, 38), (41, 1, 39), (100, 2, 96), (300, 7, 286)],
)
def test_test_crop_table(vn: int, b: int, length: int) -> None:
    assert crop_bounds(vn, [0.95]) == (b, length)


def test_train_crop_bounds() -> None:
    rng = StubRng(u=0.4)  # p = 0.5 + 0.5 * 0.4 = 0.7
    assert crop_bounds(100, [0.5, 1.0], rng)[1] == 70
    assert rng.int_range == (0, 31)  # b in {0..30}
    rng = StubRng(u=0.1)  # p = 0.55 -> floor(55) < 64 -> lower bound 64
    assert crop_bounds(100, [0.5, 1.0], rng)[1] == 64
    for vn in (1, 30, 64):
        for u in (0.0, 0.5, 0.999):
            assert crop_bounds(vn, [0.5, 1.0], StubRng(u=u)) == (0, vn)


def test_train_crop_random_within_bounds() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        b, length = crop_bounds(100, [0.5, 1.0], rng)
        assert 64 <= length <= 100 and 0 <= b <= 100 - length


def test_resize_by_hand() -> None:
    x = np.array([0.0, 4.0], dtype=np.float32).reshape(1, 2, 1, 1)
    # L=2 -> W=4: src = 0(clamped), 0.25, 0.75, 1.25 (i1 clamped to 1)
    np.testing.assert_allclose(resize_time(x, 4)[0, :, 0, 0], [0.0, 1.0, 3.0, 4.0])
    x = np.array([0.0, 1.0, 2.0, 3.0], dtype=np.float32).reshape(1, 4, 1, 1)
    np.testing.assert_allclose(resize_time(x, 2)[0, :, 0, 0], [0.5, 2.5])  # src 0.5, 2.5
    x = np.array([0.0, 10.0, 20.0, 30.0, 40.0], dtype=np.float32).reshape(1, 5, 1, 1)
    np.testing.assert_allclose(resize_time(x, 2)[0, :, 0, 0], [7.5, 32.5])  # src 0.75, 3.25
    np.testing.assert_array_equal(resize_time(x, 5), x)  # same length: identity
    one = np.full((3, 1, 2, 1), 7.0, dtype=np.float32)
    np.testing.assert_array_equal(resize_time(one, 4), np.full((3, 4, 2, 1), 7.0))
    assert resize_time(one, 4).dtype == np.float32


def test_crop_resize_test_mode_keeps_centre_frames() -> None:
    x = _ramp(40, 50)  # V_n = 40 -> b = 1, L = 38
    out = crop_resize(x, 40, [0.95], 38)
    np.testing.assert_array_equal(out[0, :, 0, 0], np.arange(2, 40, dtype=np.float32))


def test_rotation_matrix_order_and_signs() -> None:
    q = math.pi / 2
    np.testing.assert_allclose(rotation_matrix(0, 0, q) @ [1, 0, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(rotation_matrix(q, 0, 0) @ [0, 1, 0], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(rotation_matrix(0, q, 0) @ [1, 0, 0], [0, 0, 1], atol=1e-12)
    # R = Rz · Ry · Rx: x first, then z (Rx·Rz would give (0, 1, 0))
    np.testing.assert_allclose(rotation_matrix(q, 0, q) @ [0, 0, 1], [1, 0, 0], atol=1e-12)


def test_random_rotation_known_angle_and_zero_joints() -> None:
    x = np.zeros((3, 2, 3, 2), dtype=np.float32)
    x[:, 0, 0, 0] = [1.0, 0.0, 0.0]
    x[:, 1, 2, 0] = [0.0, 2.0, 0.0]
    out = random_rotation(x, 0.3, StubRng(uniform=(0.0, 0.0, 0.25)))  # rotate about z by 0.25 rad
    c, s = math.cos(0.25), math.sin(0.25)
    np.testing.assert_allclose(out[:, 0, 0, 0], [c, -s, 0.0], atol=1e-6)
    np.testing.assert_allclose(out[:, 1, 2, 0], [2 * s, 2 * c, 0.0], atol=1e-6)
    mask = np.ones(x.shape[1:], bool)
    mask[0, 0, 0] = mask[1, 2, 0] = False
    assert (out[:, mask] == 0).all()  # absent joints / persons stay exactly zero
    assert out.dtype == np.float32


def test_random_rotation_uses_given_rng() -> None:
    x = np.random.default_rng(3).standard_normal((3, 4, 25, 2)).astype(np.float32)
    angles = np.random.default_rng(7).uniform(-0.3, 0.3, size=3)
    assert np.all(np.abs(angles) < 0.3)
    expected = rotate(x, rotation_matrix(*angles))
    np.testing.assert_array_equal(random_rotation(x, 0.3, np.random.default_rng(7)), expected)
    np.testing.assert_allclose(np.linalg.norm(expected, axis=0), np.linalg.norm(x, axis=0), rtol=1e-5)


def test_ntu_transform_train_and_test() -> None:
    x = np.random.default_rng(0).standard_normal((3, 300, 25, 2)).astype(np.float32)
    x[:, 100:] = 0
    test_t = NTUTransform(train=False)
    assert test_t.p_interval == (0.95,)
    out = test_t(x, 100, np.random.default_rng(1))
    assert out.shape == (3, 64, 25, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out, test_t(x, None, np.random.default_rng(2)))  # no randomness
    np.testing.assert_array_equal(out, crop_resize(x, 100, [0.95], 64))
    train_t = NTUTransform(train=True)
    assert train_t.p_interval == (0.5, 1.0)
    a = train_t(x, 100, np.random.default_rng(5))
    np.testing.assert_array_equal(a, train_t(x, 100, np.random.default_rng(5)))
    assert not np.array_equal(a, train_t(x, 100, np.random.default_rng(6)))
    no_rot = NTUTransform(train=True, rotation_theta=0.0)
    np.testing.assert_array_equal(
        no_rot(x, 100, np.random.default_rng(5)), crop_resize(x, 100, [0.5, 1.0], 64, np.random.default_rng(5))
    )


def test_ucla_view_matrix_row_convention() -> None:
    # p' = p · Ry · Rx · S; 90 degrees about x maps row (0, 1, 0) to (0, 0, 1)
    np.testing.assert_allclose(np.array([0, 1, 0]) @ ucla_view_matrix(90, 0, 1), [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(np.array([0, 0, 1]) @ ucla_view_matrix(90, 0, 1), [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(np.array([1, 0, 0]) @ ucla_view_matrix(0, 90, 2), [0, 0, -2], atol=1e-12)


def _ucla_clip(t: int) -> np.ndarray:
    """seq[t, v] = (t, v, t * v + v^2): axis 0 encodes the frame index."""
    tt, vv = np.meshgrid(np.arange(t, dtype=np.float64), np.arange(20, dtype=np.float64), indexing="ij")
    return np.stack([tt, vv, tt * vv + vv**2], axis=-1)


def test_ucla_normalisation_range_and_scale_cancel() -> None:
    seq = _ucla_clip(10)
    norm = ucla_view_normalise(seq)
    np.testing.assert_allclose(norm.reshape(-1, 3).min(axis=0), [-1, -1, -1])
    np.testing.assert_allclose(norm.reshape(-1, 3).max(axis=0), [1, 1, 1])
    np.testing.assert_allclose(norm[:, 0, 0], np.arange(10) / 9 * 2 - 1)  # centred then min-max
    np.testing.assert_allclose(ucla_view_normalise(seq, 30, -20, 0.5), ucla_view_normalise(seq, 30, -20, 1.5))


def test_ucla_constant_axis_is_zero_not_nan() -> None:
    seq = _ucla_clip(5)
    seq[..., 2] = 3.0  # constant depth
    with np.errstate(all="raise"):
        norm = ucla_view_normalise(seq)
    np.testing.assert_array_equal(norm[..., 2], 0)
    assert np.isfinite(norm).all()


def test_ucla_test_indices_linspace() -> None:
    idx = ucla_sample_indices(10, 52)
    # floor(i * 9 / 51): 0 for i <= 5, 1 for 6..11, 2 at 12, 8 at 50, 9 at 51
    assert idx[:6].tolist() == [0] * 6 and idx[6:12].tolist() == [1] * 6 and idx[12] == 2
    assert idx[50] == 8 and idx[51] == 9 and len(idx) == 52
    np.testing.assert_array_equal(ucla_sample_indices(52, 52), np.arange(52))
    np.testing.assert_array_equal(ucla_sample_indices(1, 52), np.zeros(52))
    out = ucla_transform(_ucla_clip(10), train=False)
    np.testing.assert_allclose((out[:, 0, 0] + 1) * 9 / 2, idx, atol=1e-5)  # frames recovered from axis 0


def test_ucla_train_indices() -> None:
    rng = np.random.default_rng(0)
    for length in (1, 3, 40, 201):
        idx = ucla_sample_indices(length, 52, train=True, rng=rng)
        assert len(idx) == 52 and (np.diff(idx) >= 0).all() and idx.min() >= 0 and idx.max() < length
    assert (ucla_sample_indices(1, 52, True, rng) == 0).all()


def test_ucla_transform_train_deterministic_and_bounded() -> None:
    seq = _ucla_clip(30)
    a = ucla_transform(seq, True, np.random.default_rng(4))
    np.testing.assert_array_equal(a, ucla_transform(seq, True, np.random.default_rng(4)))
    assert a.shape == (52, 20, 3) and a.dtype == np.float32
    assert a.min() >= -1 - 1e-6 and a.max() <= 1 + 1e-6


def test_ucla_transform_callable_ignores_padding() -> None:
    seq = _ucla_clip(30).astype(np.float32)
    x = seq.transpose(2, 0, 1)[..., None]
    padded = np.concatenate([x, np.zeros((3, 10, 20, 1), np.float32)], axis=1)
    for train in (False, True):
        t = UCLATransform(train=train)
        out = t(x, 30, np.random.default_rng(9))
        assert out.shape == (3, 52, 20, 1) and out.dtype == np.float32
        np.testing.assert_array_equal(out, t(padded, 30, np.random.default_rng(9)))


def _clip(t: int = 40, seed: int = 0) -> np.ndarray:
    """A C×T×V×1 NW-UCLA-shaped clip with distinct values everywhere."""
    return np.random.default_rng(seed).normal(size=(3, t, 20, 1)).astype(np.float32)


def test_ucla_augmentations_off_reproduce_the_reference_draw_for_draw() -> None:
    x = _clip()
    seq = x[:, :33, :, 0].transpose(1, 2, 0)
    ref = ucla_transform(seq, True, np.random.default_rng(7)).transpose(2, 0, 1)[..., None]
    for t in (UCLATransform(True), UCLATransform(True, crop_min=1.0, flip=0.0)):
        np.testing.assert_array_equal(t(x, 33, np.random.default_rng(7)), ref)


def test_ucla_crop_keeps_a_contiguous_span_before_normalising() -> None:
    x = _clip()
    seq = x[:, :, :, 0].transpose(1, 2, 0)
    spans = set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        keep = min(40, max(1, int(round(40 * rng.uniform(0.5, 1.0)))))
        start = int(rng.integers(0, 40 - keep + 1))
        expected = ucla_transform(seq[start : start + keep], True, rng).transpose(2, 0, 1)[..., None]
        got = UCLATransform(True, crop_min=0.5)(x, 40, np.random.default_rng(seed))
        np.testing.assert_array_equal(got, expected)
        assert 20 <= keep <= 40
        spans.add((start, keep))
    assert len(spans) > 20  # the span varies from sample to sample
    one = UCLATransform(True, crop_min=0.01)(_clip(1), 1, np.random.default_rng(0))  # a 1-frame clip stays 1 frame
    assert one.shape == (3, 52, 20, 1)


def test_ucla_flip_mirrors_after_normalising() -> None:
    from mmcl.skeleton.layouts import get_layout
    from mmcl.skeleton.transforms import mirror

    pairs = get_layout("kinect20").mirror_pairs
    x = _clip()
    plain = UCLATransform(True)(x, 40, np.random.default_rng(3))
    flipped = UCLATransform(True, flip=1.0, mirror_pairs=pairs)
    got = flipped(x, 40, np.random.default_rng(3))
    np.testing.assert_array_equal(got, mirror(plain, flipped.mirror))
    left_hand, right_hand = 7, 11  # Kinect v1 joints 8 and 12
    np.testing.assert_array_equal(got[0, :, left_hand], -plain[0, :, right_hand])
    np.testing.assert_array_equal(got[1:, :, right_hand], plain[1:, :, left_hand])
    test_time = UCLATransform(False, crop_min=0.5, flip=1.0, mirror_pairs=pairs)  # training-only options
    np.testing.assert_array_equal(test_time(x, 40, np.random.default_rng(0)), UCLATransform(False)(x, 40, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="mirror pairs"):
        UCLATransform(True, flip=0.5)
    with pytest.raises(ValueError, match="crop_min"):
        UCLATransform(True, crop_min=0.0)
