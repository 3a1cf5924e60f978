"""Centring as part of a model's input contract (``data.centre``): data that was not centred when
prepared (the demo's camera-frame skeletons, custom recordings) is centred identically in training,
evaluation and raw-file prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmcl.checkpoints import ModelCard
from mmcl.config import Config, ConfigError
from mmcl.datasets.pipeline import InputSpec
from mmcl.formats.skeleton_file import read_skeleton_file
from mmcl.predict import model_input
from mmcl.skeleton.transforms import NTU_ORIGIN_JOINT, NTUTransform, centre_on_first_frame


def _sample(rng: np.random.Generator, frames: int = 30, lead: int = 3, persons: int = 2) -> np.ndarray:
    x = np.zeros((3, 40, 25, persons), dtype=np.float32)
    x[:, lead:frames] = rng.normal(0, 0.3, (3, frames - lead, 25, persons)) + np.array([0.4, -0.2, 3.1])[:, None, None, None]
    if persons > 1:
        x[:, lead : lead + 5, :, 1] = 0  # person 2 absent for a while
    return x


def test_centring_puts_person_1s_spine_middle_of_its_first_frame_at_the_origin() -> None:
    x = _sample(np.random.default_rng(0))
    out = centre_on_first_frame(x)
    assert np.array_equal(out[:, 3, NTU_ORIGIN_JOINT, 0], np.zeros(3, np.float32))  # first non-zero frame is 3
    assert np.allclose(out[:, 10, :, 0] - out[:, 20, :, 0], x[:, 10, :, 0] - x[:, 20, :, 0], atol=1e-6)  # a translation
    assert not out[:, :3].any() and not out[:, 30:].any() and not out[:, 3:8, :, 1].any()  # absent stays zero
    assert np.array_equal(centre_on_first_frame(out), out)  # idempotent: prepared (centred) data is unchanged
    with pytest.raises(ValueError, match="person 1 is zero in every frame"):
        centre_on_first_frame(np.zeros((3, 5, 25, 1), np.float32))


def test_a_centred_contract_makes_predictions_independent_of_where_the_person_stood() -> None:
    rng = np.random.default_rng(1)
    x = _sample(rng, persons=1)
    shifted = x.copy()
    shifted[:, 3:30] += np.array([1.5, 0.3, -0.7], np.float32)[:, None, None, None]
    transform = NTUTransform(train=False, window=16, p_interval=[0.95], rotation_theta=0.0, centre=True)
    a = transform(x, None, rng)
    b = transform(shifted, None, rng)
    assert np.allclose(a, b, atol=1e-5)
    plain = NTUTransform(train=False, window=16, p_interval=[0.95], rotation_theta=0.0)
    assert not np.allclose(plain(x, None, rng), plain(shifted, None, rng), atol=1e-2)


def test_the_card_carries_centring_and_old_cards_read_as_uncentred() -> None:
    cfg = Config()
    cfg.data.num_classes, cfg.data.num_persons, cfg.data.centre = 5, 1, True
    card = ModelCard.from_config(cfg.validate())
    assert card.input.centre and "centred" in card.input.describe()
    again = ModelCard.from_dict(card.to_dict())
    assert again.input == card.input
    old = card.to_dict()
    del old["input"]["centre"]  # a card written before centring existed
    assert ModelCard.from_dict(old).input.centre is False
    back = again.apply_to_config(Config())
    assert back.data.centre is True
    with pytest.raises(ValueError, match="ucla transform centres by itself"):
        InputSpec("kinect20", 1, transform="ucla", window=52, centre=True)
    bad = Config()
    bad.data.transform, bad.data.layout, bad.data.centre = "ucla", "kinect20", True
    with pytest.raises(ConfigError, match="data.centre"):
        bad.validate()


def test_predict_applies_the_cards_centring_to_a_raw_file(tmp_path: Path) -> None:
    cfg = Config()
    cfg.data.num_classes, cfg.data.num_persons, cfg.data.window, cfg.data.centre = 4, 1, 16, True
    card = ModelCard.from_config(cfg.validate())
    x = _sample(np.random.default_rng(2), persons=1)
    np.save(tmp_path / "a.npy", x)
    np.save(tmp_path / "b.npy", x + (x != 0) * np.float32(2.0))  # the same motion two metres away
    a = model_input(read_skeleton_file(tmp_path / "a.npy"), card)
    b = model_input(read_skeleton_file(tmp_path / "b.npy"), card)
    assert a.shape == (3, 16, 25, 1) and np.allclose(a, b, atol=1e-5)
