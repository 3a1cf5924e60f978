"""Multimodal training items: a skeleton item joined BY SAMPLE NAME with its RGB composite (or cached CNN
feature) and its LLM text feature (MMCL training inputs, REFERENCE §7.6).

Why by name: the reference feeder pairs the i-th image/feature with the i-th skeleton row through a
separate list that nothing checks (REFERENCE §7.6); here the name is the key.

Before training (in the constructor, again with :meth:`MultiModalDataset.check`), every missing or unreadable
image/feature is listed (count + first names). Without ``allow_missing`` this raises
:class:`MissingModalityError`; with it, those samples get ``has_rgb`` / ``has_text`` False and train with
the skeleton losses only (the counts are logged). Image headers are opened during the check; an image that
fails to DECODE later is treated the same way (error, or ``has_rgb`` False with a warning).

Images (fixes REFERENCE §12.16): ``convert("RGB")`` (grayscale, palette, RGBA work), resized to one fixed
``image_size`` = (H, W) with PIL bilinear, so every batch collates, then ToTensor + ImageNet mean/std
(REFERENCE §7.2). Default (299, 747): the reference resizes the SHORTER side to 299 keeping the aspect ratio;
for the 800×320 composites of ``mmcl.modalities.composite`` that is exactly 747×299, so the default
reproduces the reference on our composites while also forcing any other image to that size.

Item keys added to the skeleton item ``{"x", "label", "name", "index"}``:

- ``"rgb"`` float32 3×H×W (with ``rgb_dir``) or ``"rgb_feature"`` float32 D (with ``rgb_store``);
- ``"has_rgb"`` bool;
- ``"text"`` float32 L×d and ``"text_mask"`` bool L (with ``text_store``; a fixed-width feature D gives
  L = 1, a variable-length L×d feature such as token IDs stored as L×1 keeps its length); ``"has_text"``.

When a sample lacks a configured modality its keys are zero tensors of the right shape (text: 1×d with
mask [False]), so batches always collate. ``has_rgb``/``has_text`` are always present (False when the
modality is not configured). :func:`multimodal_collate` pads text to the longest L with mask False.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate

from mmcl.modalities.store import FeatureStore

__all__ = [
    "DEFAULT_IMAGE_SIZE",
    "IMAGE_EXTENSIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MissingModalityError",
    "ModalityCheck",
    "MultiModalDataset",
    "load_image",
    "multimodal_collate",
]

log = logging.getLogger(__name__)

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)  # REFERENCE §7.2
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)  # REFERENCE §7.2
# (H, W): reference shorter side 299 (REFERENCE §7.2) applied to the 800×320 composites of
# mmcl.modalities.composite (5 tiles of 160×320): W = int(299 * 800 / 320) = 747.
DEFAULT_IMAGE_SIZE: tuple[int, int] = (299, 747)
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")  # reference reads <name>.jpg (REFERENCE §7.6)
MAX_LISTED = 10  # names shown in messages


class MissingModalityError(RuntimeError):
    """Some samples have no (readable) image / feature and ``allow_missing`` is False."""

    def __init__(self, checks: Sequence[ModalityCheck]) -> None:
        self.checks = list(checks)
        super().__init__(
            "missing or unreadable multimodal inputs (pass allow_missing=True / --allow-missing to train "
            "those samples with the skeleton losses only):\n  " + "\n  ".join(c.summary() for c in self.checks)
        )


@dataclass
class ModalityCheck:
    """Result of checking one modality source against the skeleton sample names."""

    modality: str  # "rgb" or "text"
    source: str
    total: int
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unreadable)

    @property
    def bad(self) -> list[str]:
        return self.missing + self.unreadable

    def summary(self) -> str:
        def head(names: list[str]) -> str:
            more = f", ... (+{len(names) - MAX_LISTED})" if len(names) > MAX_LISTED else ""
            return ", ".join(names[:MAX_LISTED]) + more

        parts = [f"{self.modality} from {self.source}: {self.total - len(self.bad)}/{self.total} available"]
        if self.missing:
            parts.append(f"{len(self.missing)} missing [{head(self.missing)}]")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable [{head(self.unreadable)}]")
        return "; ".join(parts)


def load_image(path: str | Path, image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE) -> torch.Tensor:
    """Read an image as a normalised float32 3×H×W tensor (RGB, bilinear resize to (H, W), ImageNet norm)."""
    h, w = image_size
    with Image.open(path) as img:
        img = img.convert("RGB")
        if img.size != (w, h):
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(IMAGENET_MEAN, dtype=np.float32)) / np.asarray(IMAGENET_STD, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def _open_store(store: Any) -> Any:
    if store is None or hasattr(store, "get"):
        return store

    return FeatureStore.open(store)


def _as_text(feature: np.ndarray) -> np.ndarray:
    """Store feature -> L×d: D -> 1×D; L×d kept; 1×L×d squeezed (reference .npy 1×3 -> 1×3)."""
    arr = np.array(feature, dtype=np.float32)  # a writable copy (stores hand out read-only memmap views)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1:
        arr = arr[None, :]
    elif arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"text feature must be D or L×d, got shape {arr.shape}")
    return arr


class MultiModalDataset(Dataset):
    """Skeleton dataset + RGB (images in ``rgb_dir`` or CNN features in ``rgb_store``) + text (``text_store``).

    ``skeleton_dataset``: items ``{"x", "label", "name", "index"}`` (``SkeletonDataset``), keys (``int`` or
    ``(epoch, index)``) are passed through. Stores are ``mmcl.modalities.store.FeatureStore`` objects or
    paths. ``verify_images`` opens every image header during the check (catches empty/corrupt files).
    """

    def __init__(
        self,
        skeleton_dataset: Any,
        *,
        rgb_dir: str | Path | None = None,
        rgb_store: Any = None,
        text_store: Any = None,
        image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
        allow_missing: bool = False,
        verify_images: bool = True,
    ) -> None:
        if rgb_dir is not None and rgb_store is not None:
            raise ValueError("give either rgb_dir (images, trainable CNN) or rgb_store (frozen CNN features)")
        if len(image_size) != 2 or min(image_size) < 1:
            raise ValueError(f"image_size must be (H, W) with positive sides, got {image_size!r}")
        self.skeleton = skeleton_dataset
        self.rgb_dir = None if rgb_dir is None else Path(rgb_dir)
        self.rgb_store = _open_store(rgb_store)
        self.text_store = _open_store(text_store)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.allow_missing = bool(allow_missing)
        self.verify_images = bool(verify_images)
        names = getattr(skeleton_dataset, "names", None)
        if names is None:
            names = [skeleton_dataset[i]["name"] for i in range(len(skeleton_dataset))]
        self.names: list[str] = [str(n) for n in names]
        self._image_paths: dict[str, Path] = {}
        self.rgb_feature_dim: int | None = None
        self.text_dim: int | None = None
        self.has_rgb: dict[str, bool] = {}
        self.has_text: dict[str, bool] = {}
        self.checks: list[ModalityCheck] = []
        self.check()

    # ------------------------------------------------------------------ pre-training check
    @property
    def with_rgb(self) -> bool:
        return self.rgb_dir is not None or self.rgb_store is not None

    @property
    def with_text(self) -> bool:
        return self.text_store is not None

    def _check_images(self) -> ModalityCheck:
        assert self.rgb_dir is not None
        result = ModalityCheck("rgb", str(self.rgb_dir), len(self.names))
        by_stem: dict[str, Path] = {}
        if self.rgb_dir.is_dir():
            for entry in os.scandir(self.rgb_dir):
                stem, ext = os.path.splitext(entry.name)
                if ext.lower() in IMAGE_EXTENSIONS and (stem not in by_stem or ext.lower() == ".jpg"):
                    by_stem[stem] = Path(entry.path)
        for name in self.names:
            path = by_stem.get(name)
            if path is None:
                result.missing.append(name)
                continue
            if self.verify_images:
                try:
                    with Image.open(path) as img:
                        if img.size[0] < 1 or img.size[1] < 1:
                            raise OSError("empty image")
                except Exception:  # noqa: BLE001 - any failure means unreadable; the name is reported
                    result.unreadable.append(name)
                    continue
            self._image_paths[name] = path
        return result

    def _check_store(self, store: Any, modality: str) -> ModalityCheck:
        source = str(getattr(store, "path", type(store).__name__))
        result = ModalityCheck(modality, source, len(self.names))
        present = set(store.names)
        first: np.ndarray | None = None
        for name in self.names:
            if name not in present:
                result.missing.append(name)
            elif first is None:
                try:
                    first = np.asarray(store.get(name))
                except Exception:  # noqa: BLE001
                    result.unreadable.append(name)
        dim = getattr(store, "dim", None)
        if first is not None:
            dim = int(first.shape[-1]) if first.ndim else 1
        if modality == "rgb":
            self.rgb_feature_dim = None if dim is None else int(dim)
        else:
            self.text_dim = None if dim is None else int(dim)
        return result

    def check(self) -> list[ModalityCheck]:
        """(Re)check every configured modality; raise or mark samples (see module docstring)."""
        self.checks = []
        self._image_paths = {}
        if self.rgb_dir is not None:
            self.checks.append(self._check_images())
        elif self.rgb_store is not None:
            self.checks.append(self._check_store(self.rgb_store, "rgb"))
        if self.text_store is not None:
            self.checks.append(self._check_store(self.text_store, "text"))
        problems = [c for c in self.checks if not c.ok]
        if problems and not self.allow_missing:
            raise MissingModalityError(problems)
        bad = {c.modality: set(c.bad) for c in self.checks}
        self.has_rgb = {n: self.with_rgb and n not in bad.get("rgb", ()) for n in self.names}
        self.has_text = {n: self.with_text and n not in bad.get("text", ()) for n in self.names}
        for c in self.checks:
            if c.ok:
                log.info("multimodal: %s", c.summary())
            else:
                log.warning("multimodal (allow_missing: skeleton losses only for these): %s", c.summary())
        return self.checks

    @property
    def missing_counts(self) -> dict[str, int]:
        """Samples trained without each configured modality (for logging)."""
        out: dict[str, int] = {}
        if self.with_rgb:
            out["rgb"] = sum(not v for v in self.has_rgb.values())
        if self.with_text:
            out["text"] = sum(not v for v in self.has_text.values())
        return out

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return len(self.skeleton)

    @property
    def labels(self) -> Any:
        return self.skeleton.labels

    @property
    def num_classes(self) -> int:
        return int(self.skeleton.num_classes)

    def _zero_text(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(1, self.text_dim or 1), torch.zeros(1, dtype=torch.bool)

    def _unreadable(self, modality: str, name: str, exc: Exception) -> None:
        if not self.allow_missing:
            raise MissingModalityError(
                [ModalityCheck(modality, f"{type(exc).__name__}: {exc}", 1, unreadable=[name])]
            ) from exc
        log.warning("multimodal: %s of %s unreadable (%s); skeleton losses only", modality, name, exc)

    def __getitem__(self, key: Any) -> dict[str, Any]:
        item = dict(self.skeleton[key])
        name = str(item["name"])
        has_rgb = self.has_rgb.get(name, False)
        if self.rgb_dir is not None:
            rgb = None
            if has_rgb:
                try:
                    rgb = load_image(self._image_paths[name], self.image_size)
                except Exception as exc:  # noqa: BLE001 - decode failure after the header check
                    self._unreadable("rgb", name, exc)
                    has_rgb = False
            item["rgb"] = rgb if rgb is not None else torch.zeros(3, *self.image_size)
        elif self.rgb_store is not None:
            feat = None
            if has_rgb:
                try:
                    feat = torch.from_numpy(np.array(self.rgb_store.get(name), dtype=np.float32).reshape(-1))
                except Exception as exc:  # noqa: BLE001
                    self._unreadable("rgb", name, exc)
                    has_rgb = False
            item["rgb_feature"] = feat if feat is not None else torch.zeros(self.rgb_feature_dim or 1)
        item["has_rgb"] = bool(has_rgb)
        has_text = self.has_text.get(name, False)
        if self.text_store is not None:
            text = None
            if has_text:
                try:
                    arr = _as_text(self.text_store.get(name))
                    text = torch.from_numpy(np.ascontiguousarray(arr))
                    mask = torch.ones(arr.shape[0], dtype=torch.bool)
                except Exception as exc:  # noqa: BLE001
                    self._unreadable("text", name, exc)
                    has_text = False
            if text is None:
                text, mask = self._zero_text()
            item["text"], item["text_mask"] = text, mask
        item["has_text"] = bool(has_text)
        return item


def multimodal_collate(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Default collation, except ``text`` (L×d) / ``text_mask`` (L) padded to the longest L (mask False)."""
    batch: dict[str, Any] = {}
    keys = list(items[0].keys())
    for key in keys:
        if key in ("text", "text_mask"):
            continue
        batch[key] = default_collate([it[key] for it in items])
    if "text" in items[0]:
        texts = [torch.as_tensor(it["text"], dtype=torch.float32) for it in items]
        dims = {t.shape[1] for t in texts}
        if len(dims) != 1:
            raise ValueError(f"text features of different widths in one batch: {sorted(dims)}")
        length = max(t.shape[0] for t in texts)
        text = torch.zeros(len(items), length, dims.pop())
        mask = torch.zeros(len(items), length, dtype=torch.bool)
        for i, (t, it) in enumerate(zip(texts, items)):
            text[i, : t.shape[0]] = t
            mask[i, : t.shape[0]] = torch.as_tensor(it.get("text_mask", torch.ones(t.shape[0], dtype=torch.bool)))
        batch["text"], batch["text_mask"] = text, mask
    return batch
