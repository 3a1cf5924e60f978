"""MultiModalDataset: join by name, image handling, missing-modality policy, collation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from mmcl.datasets.multimodal import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MissingModalityError,
    MultiModalDataset,
    multimodal_collate,
)
from mmcl.modalities.store import FeatureStore

NAMES = ["S001C001P001R001A001", "S001C001P001R001A002", "S001C001P001R001A003", "S001C001P001R001A004"]
SIZE = (12, 30)  # (H, W), small for speed


class FakeSkeletons:
    """Stand-in for SkeletonDataset: items {"x", "label", "name", "index"}; accepts (epoch, index) keys."""

    names = NAMES
    labels = np.arange(len(NAMES))
    num_classes = 60

    def __len__(self) -> int:
        return len(NAMES)

    def __getitem__(self, key):
        i = key[1] if isinstance(key, tuple) else int(key)
        return {"x": torch.full((3, 4, 25, 2), float(i)), "label": i, "name": NAMES[i], "index": i}


def _images(root: Path, skip: tuple[int, ...] = (), corrupt: tuple[int, ...] = ()) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    makers = [
        lambda: Image.new("RGB", (80, 32), (255, 0, 128)),  # colour JPEG
        lambda: Image.new("L", (40, 20), 128),  # grayscale
        lambda: Image.new("RGBA", (50, 25), (0, 255, 0, 10)),  # RGBA
        lambda: Image.new("P", (30, 30), 3),  # palette
    ]
    for i, name in enumerate(NAMES):
        if i in skip:
            continue
        if i in corrupt:
            (root / f"{name}.jpg").write_bytes(b"not an image")
            continue
        img = makers[i]()
        if i == 0:
            img.save(root / f"{name}.jpg", quality=95)
        else:
            img.save(root / f"{name}.png")
    return root


def _text_store(root: Path, skip: tuple[int, ...] = ()) -> FeatureStore:
    store = FeatureStore.create(root, dim=1, kind="answer_ids", max_length=4)
    ids = [[101, 2748, 102], [101, 2053, 102, 7], [101, 9], [101, 2748, 102]]
    keep = [i for i in range(len(NAMES)) if i not in skip]
    store.append([NAMES[i] for i in keep], [np.asarray(ids[i], np.float32)[:, None] for i in keep])
    return store


def test_images_any_mode_are_rgb_fixed_size_normalised(tmp_path: Path) -> None:
    ds = MultiModalDataset(FakeSkeletons(), rgb_dir=_images(tmp_path / "img"), image_size=SIZE)
    for i in range(len(NAMES)):
        item = ds[(3, i)]
        assert item["name"] == NAMES[i] and item["has_rgb"] and not item["has_text"]
        assert item["rgb"].shape == (3, *SIZE) and item["rgb"].dtype == torch.float32
    red = (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert ds[0]["rgb"][0].mean().item() == pytest.approx(red, abs=0.05)  # JPEG, ImageNet-normalised
    gray = ds[1]["rgb"]
    assert torch.allclose(gray[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0], torch.full(SIZE, 128 / 255), atol=1e-5)
    batch = multimodal_collate([ds[i] for i in range(len(NAMES))])
    assert batch["rgb"].shape == (4, 3, *SIZE) and batch["has_rgb"].dtype == torch.bool


def test_default_size_matches_reference_resize_of_composites() -> None:
    from mmcl.datasets.multimodal import DEFAULT_IMAGE_SIZE

    assert DEFAULT_IMAGE_SIZE == (299, int(299 * 800 / 320))  # shorter side 299 of an 800×320 composite


def test_missing_and_unreadable_are_listed_before_training(tmp_path: Path) -> None:
    img = _images(tmp_path / "img", skip=(1,), corrupt=(2,))
    text = _text_store(tmp_path / "text", skip=(3,))
    with pytest.raises(MissingModalityError) as err:
        MultiModalDataset(FakeSkeletons(), rgb_dir=img, text_store=text, image_size=SIZE)
    msg = str(err.value)
    assert "1 missing [S001C001P001R001A002]" in msg and "1 unreadable [S001C001P001R001A003]" in msg
    assert "text from" in msg and "3/4 available; 1 missing [S001C001P001R001A004]" in msg
    ds = MultiModalDataset(FakeSkeletons(), rgb_dir=img, text_store=tmp_path / "text", image_size=SIZE,
                           allow_missing=True)
    assert ds.missing_counts == {"rgb": 2, "text": 1}
    items = [ds[i] for i in range(4)]
    assert [it["has_rgb"] for it in items] == [True, False, False, True]
    assert [it["has_text"] for it in items] == [True, True, True, False]
    assert torch.equal(items[1]["rgb"], torch.zeros(3, *SIZE))
    assert items[3]["text"].shape == (1, 1) and not items[3]["text_mask"].any()
    loader = DataLoader(ds, batch_size=4, collate_fn=multimodal_collate)
    batch = next(iter(loader))
    assert batch["text"].shape == (4, 4, 1)
    assert batch["text_mask"].tolist() == [
        [True, True, True, False], [True, True, True, True], [True, True, False, False], [False] * 4,
    ]
    assert batch["text"][1, :, 0].tolist() == [101, 2053, 102, 7]
    assert batch["name"] == NAMES and batch["x"].shape == (4, 3, 4, 25, 2)


def test_decode_failure_after_check(tmp_path: Path) -> None:
    img = _images(tmp_path / "img")
    ds = MultiModalDataset(FakeSkeletons(), rgb_dir=img, image_size=SIZE)
    path = img / f"{NAMES[0]}.jpg"
    path.write_bytes(path.read_bytes()[:40])  # truncated after the check
    with pytest.raises(MissingModalityError, match=NAMES[0]):
        ds[0]
    ds.allow_missing = True
    item = ds[0]
    assert not item["has_rgb"] and torch.equal(item["rgb"], torch.zeros(3, *SIZE))


def test_frozen_rgb_store_and_objective_end_to_end(tmp_path: Path) -> None:
    from mmcl.colearning import CoLearningHeads, FAMConfig, FRMConfig

    rgb = FeatureStore.create(tmp_path / "cnn", dim=6, kind="cnn_logits")
    rgb.append(NAMES[:3], np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32))
    with pytest.raises(ValueError, match="either"):
        MultiModalDataset(FakeSkeletons(), rgb_dir=tmp_path, rgb_store=rgb)
    ds = MultiModalDataset(FakeSkeletons(), rgb_store=rgb, text_store=_text_store(tmp_path / "t"),
                           allow_missing=True)
    batch = multimodal_collate([ds[i] for i in range(4)])
    assert batch["rgb_feature"].shape == (4, 6) and batch["has_rgb"].tolist() == [True, True, True, False]
    assert FRMConfig.for_store(ds.text_store) == FRMConfig(text_dim=3, kind="answer_ids")
    heads = CoLearningHeads(8, 60, fam=FAMConfig(mode="frozen", rgb_dim=ds.rgb_feature_dim),
                            frm=FRMConfig.for_store(ds.text_store))
    feats = torch.randn(4, 8, requires_grad=True)
    out = heads.losses(batch, feats, torch.randn(4, 60, requires_grad=True))
    assert torch.isfinite(out["total_aux"])
    out["total_aux"].backward()
    assert torch.all(feats.grad[3] == 0)
