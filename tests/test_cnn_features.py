"""CNN feature cache: weight resolution (never downloads), preprocessing, resumable extraction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
from PIL import Image  # noqa: E402

from mmcl.modalities.cnn import (  # noqa: E402
    STANDARD_WEIGHT_FILES,
    ImagePreprocess,
    build_image_encoder,
    extract_cnn_features,
)
from mmcl.modalities.store import FeatureStore, check_store  # noqa: E402


@pytest.fixture(autouse=True)
def _empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    torch.set_num_threads(2)


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="RANDOM"):
        return build_image_encoder("resnet34", None, allow_random=True, output="pool")


def test_missing_weights_error_names_the_flag_and_file() -> None:
    with pytest.raises(FileNotFoundError, match=r"--rgb-weights.*inception_v3_google-0cc3c7bd\.pth"):
        build_image_encoder("inception_v3", None)
    with pytest.raises(FileNotFoundError, match="not found"):
        build_image_encoder("resnet34", "/nonexistent/resnet34.pth")
    with pytest.raises(ValueError, match="unknown image encoder"):
        build_image_encoder("vgg", None, allow_random=True)


def test_weights_from_file_and_hub_cache(tmp_path: Path, resnet) -> None:
    from torchvision.models import resnet34

    torch.manual_seed(1)
    net = resnet34().eval()
    sd = {f"module.{k}": v for k, v in net.state_dict().items()}  # DataParallel prefix is stripped
    f = tmp_path / "r34.pth"
    torch.save(sd, f)
    enc2, _ = build_image_encoder("resnet34", f, output="logits")
    assert enc2.weights_source == str(f)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(enc2(x), net(x))
    enc, _ = resnet
    # the standard torchvision cache file is used when present (no download)
    ck = Path(torch.hub.get_dir()) / "checkpoints"
    ck.mkdir(parents=True)
    torch.save(net.state_dict() | {"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)},
               ck / STANDARD_WEIGHT_FILES["resnet34"])
    enc3, _ = build_image_encoder("resnet34", None, output="logits")
    assert enc3.weights_source.endswith("resnet34-b627a593.pth") and enc3.feature_dim == 1000
    assert torch.count_nonzero(enc3(x)) == 0


def test_preprocess_grayscale_rgba_and_short_side() -> None:
    tf = ImagePreprocess()
    for mode in ("L", "RGBA", "RGB"):
        x = tf(Image.new(mode, (800, 320)))
        assert x.shape == (3, 299, 747)  # torchvision Resize(299) size for 800×320
    white = tf(Image.new("RGB", (10, 10), (255, 255, 255)))
    assert white[0, 0, 0].item() == pytest.approx((1 - 0.485) / 0.229, rel=1e-5)


def test_inception_logits_shape() -> None:
    with pytest.warns(UserWarning, match="RANDOM"):
        enc, _ = build_image_encoder("inception_v3", None, allow_random=True, output="logits")
    assert enc.feature_dim == 1000 and enc.net.transform_input
    with torch.inference_mode():
        assert enc(torch.randn(1, 3, 75, 75)).shape == (1, 1000)  # 75 px: Inception's minimum, fast on CPU


def test_extract_resumable(tmp_path: Path, resnet) -> None:
    enc, _ = resnet
    d = tmp_path / "img"
    d.mkdir()
    names = [f"n{i}" for i in range(5)]
    rng = np.random.default_rng(0)
    for n in names[:4]:
        Image.fromarray(rng.integers(0, 255, (32, 80, 3), dtype=np.uint8)).save(d / f"{n}.jpg")
    (d / "n3.jpg").write_bytes(b"broken")
    tf = ImagePreprocess(short_side=32)  # small images keep the CPU test fast
    s = extract_cnn_features(d, names[:2], tmp_path / "st", enc, 2, "cpu", transform=tf, progress=False)
    assert s.written == 2
    s = extract_cnn_features(d, names, tmp_path / "st", enc, 2, "cpu", transform=tf, progress=False)
    assert s.skipped_existing == 2 and s.written == 1
    assert s.missing_images == ["n4"] and list(s.unreadable) == ["n3"]
    st = FeatureStore.open(tmp_path / "st")
    assert st.dim == 512 and st.meta["model"] == "resnet34" and st.meta["kind"] == "cnn_pool"
    with torch.inference_mode():
        ref = enc(tf(Image.open(d / "n2.jpg"))[None])[0].numpy()
    np.testing.assert_allclose(st.get("n2"), ref, rtol=1e-4, atol=1e-4)
    chk = check_store(tmp_path / "st", names)
    assert chk.missing == ["n3", "n4"] and not chk.duplicates and not chk.nonfinite
