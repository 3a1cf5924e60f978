"""Fuzz every reader of user files: damaged copies of a valid file must load or fail cleanly.

Clean means the reader's documented error type (a ``ValueError`` subclass such as
``SkeletonFileError``, ``DataError``, ``CheckpointError``, ``CardMismatchError``, ``KinectV1Error``, ``NTUPrepareError``,
``StoreError``) whose message names the file; anything else (``IndexError``, ``EOFError``, a
``KeyError``, a message without the file) is a crash. Mutations: truncation, byte flips, inserted
and deleted runs, random bytes, an empty file, and for JSON/.npy files structural edits (a node
replaced by a string, bool, null, huge number, list or object; other shapes and dtypes).

``MMCL_FUZZ_N`` sets the inputs per reader (default 40 here); ``pytest -s`` prints the table.
"""

from __future__ import annotations

import io
import json
import pickle
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from mmcl.checkpoints import CardMismatchError, ModelCard, open_checkpoint
from mmcl.checkpoints.official import reference_state_dict
from mmcl.datasets.base import DataError
from mmcl.datasets.pipeline import InputSpec
from mmcl.datasets.prepared import PreparedSource, ReferenceNpzSource
from mmcl.export import export_backbone
from mmcl.formats.checkpoint_file import CheckpointError
from mmcl.formats.kinect_v1 import KinectV1Error, load_kinect_v1
from mmcl.formats.ntu_parse import NTUPrepareError
from mmcl.formats.sample_store import write_dataset
from mmcl.formats.skeleton_file import Pose2DInput, SkeletonFileError, read_skeleton_file
from mmcl.modalities.store import FeatureStore, StoreError
from mmcl.models import build_backbone
from mmcl.prepare.ntu_synth import format_skeleton, random_sample

N = int(os.environ.get("MMCL_FUZZ_N", "40"))
CLEAN = (SkeletonFileError, DataError, CheckpointError, CardMismatchError, KinectV1Error, NTUPrepareError, StoreError)
JUNK = ["x", "", True, False, None, 1e39, -1, 0, 10**20, [], [1, 2], {}, {"a": 1}, float("nan")]


# --------------------------------------------------------------------------- mutations


def mutate_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    n = len(data)
    kind = int(rng.integers(0, 7))
    if kind == 0 or n == 0:
        return data[: int(rng.integers(0, max(n, 1)))]  # truncated
    if kind == 1:
        b = bytearray(data)
        for i in rng.integers(0, n, size=int(rng.integers(1, 9))):
            b[int(i)] = int(rng.integers(0, 256))
        return bytes(b)
    if kind == 2:
        i = int(rng.integers(0, n))
        return data[:i] + rng.bytes(int(rng.integers(1, 64))) + data[i:]
    if kind == 3:
        i = int(rng.integers(0, n))
        return data[:i] + data[i + int(rng.integers(1, 64)) :]
    if kind == 4:
        return rng.bytes(n)
    if kind == 5:
        return b""
    i, j = sorted(int(v) for v in rng.integers(0, n, size=2))
    return data[:j] + data[i:j] + data[j:]  # a duplicated run


def mutate_annotation(data: bytes, rng: np.random.Generator) -> bytes:
    """A PYSKL annotation with one key dropped or replaced: junk, a wrong-shaped or NaN array."""
    ann = pickle.loads(data)
    key = sorted(ann)[int(rng.integers(0, len(ann)))]
    choice = rng.random()
    if choice < 0.2:
        del ann[key]
    elif choice < 0.5:
        ann[key] = JUNK[int(rng.integers(0, len(JUNK)))]
    elif choice < 0.8 and isinstance(ann[key], np.ndarray):
        shape = list(ann[key].shape)
        shape[int(rng.integers(0, len(shape)))] = int(rng.integers(0, 4))
        ann[key] = np.zeros(shape, np.float32)
    elif isinstance(ann[key], np.ndarray):
        arr = ann[key].copy()
        arr.flat[int(rng.integers(0, arr.size))] = rng.choice([np.nan, np.inf, 1e38])
        ann[key] = arr
    return pickle.dumps(ann)


def mutate_json(text: bytes, rng: np.random.Generator) -> bytes:
    """Replace one random node of the document with a value of another kind."""
    obj = json.loads(text)
    paths: list[list[object]] = []

    def walk(node: object, path: list[object], depth: int = 0) -> None:
        paths.append(path)
        if depth > 6:
            return
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for k, v in list(items)[:8]:
            walk(v, path + [k], depth + 1)

    walk(obj, [])
    path = paths[int(rng.integers(0, len(paths)))]
    value = JUNK[int(rng.integers(0, len(JUNK)))]
    if not path:
        return json.dumps(value).encode()
    node = obj
    for k in path[:-1]:
        node = node[k]  # type: ignore[index]
    if isinstance(node, dict) and rng.random() < 0.2:
        del node[path[-1]]  # a missing key
    else:
        node[path[-1]] = value  # type: ignore[index]
    return json.dumps(obj).encode()


def random_npy(rng: np.random.Generator) -> bytes:
    """An array of a random shape and dtype, as a user might save by mistake."""
    dims = [int(d) for d in rng.choice([0, 1, 2, 3, 4, 20, 25, 75, 150], size=int(rng.integers(0, 6)))]
    dtype = [np.float32, np.float64, np.int16, np.uint8, np.bool_, np.complex64, "U3", np.float16][int(rng.integers(0, 8))]
    with np.errstate(all="ignore"):
        arr = (np.asarray(rng.normal(size=dims)) * 10.0 ** int(rng.integers(0, 40))).astype(dtype)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


# --------------------------------------------------------------------------- readers


@dataclass
class Target:
    """A valid file (or folder) and how to read it; ``files`` are the ones mutated."""

    name: str
    build: Callable[[Path], Path]  # writes the valid input under a folder, returns what the reader gets
    read: Callable[[Path], object]
    files: tuple[str, ...] = ()  # paths relative to the input (a folder) to mutate; () = the input itself
    structured: Callable[[bytes, np.random.Generator], bytes] | None = None


def _ntu(root: Path) -> Path:
    p = root / "S001C001P001R001A050.skeleton"
    p.write_text(format_skeleton(random_sample(np.random.default_rng(0), 12, 2)))
    return p


def _nwucla(root: Path) -> Path:
    p = root / "a01_s01_e00_v01.json"
    p.write_text(json.dumps({"skeletons": np.random.default_rng(0).normal(size=(6, 20, 3)).round(3).tolist()}))
    return p


def _utd(root: Path) -> Path:
    from scipy.io import savemat

    p = root / "a1_s1_t1_skeleton.mat"
    savemat(str(p), {"d_skel": np.random.default_rng(0).normal(size=(20, 3, 8))})
    return p


def _npy(root: Path) -> Path:
    p = root / "sample.npy"
    np.save(p, np.random.default_rng(0).normal(size=(3, 10, 25, 2)).astype(np.float32))
    return p


def _kinect_json(root: Path) -> Path:
    p = root / "k.json"
    p.write_text(json.dumps(np.random.default_rng(0).normal(size=(5, 20, 3)).round(3).tolist()))
    return p


CARD = ModelCard("ctrgcn", 10, InputSpec("kinect20", 1, window=16), dataset="nwucla", base_channels=8)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone(num_classes=10, layout="kinect20", num_persons=1, base_channels=8)


def _official_ckpt(root: Path) -> Path:
    p = root / "official.pt"
    torch.save(reference_state_dict(_model()), p)  # official CTR-GCN key names
    return p


def mutate_state_dict(data: bytes, rng: np.random.Generator) -> bytes:
    """Load the weights and damage their content: a key dropped, a shape or dtype changed, NaN,
    a value that is not a tensor, or another wrapping (Lightning, DataParallel, a list)."""
    sd = torch.load(io.BytesIO(data), weights_only=True)
    keys = list(sd)
    key = keys[int(rng.integers(0, len(keys)))]
    kind = int(rng.integers(0, 7))
    if kind == 0:
        del sd[key]
    elif kind == 1:
        sd[key] = torch.zeros(*[int(d) for d in rng.integers(1, 5, size=int(rng.integers(0, 4)))])
    elif kind == 2:
        sd[key] = sd[key].to(torch.int64)
    elif kind == 3:
        sd[key] = torch.full_like(sd[key].float(), float("nan"))
    elif kind == 4:
        sd[key] = JUNK[int(rng.integers(0, len(JUNK)))]
    elif kind == 5:
        sd = {["state_dict", "model", "weights", "module"][int(rng.integers(0, 4))]: sd}
    else:
        sd = list(sd.values())
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()


def _export(root: Path) -> Path:
    out = root / "model"
    export_backbone(_model(), out, card=CARD, formats=("safetensors",))
    return out


def _pose_clip(seed: int = 0, frames: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 300, size=(2, frames, 17, 2)).round(2), rng.uniform(0.1, 1, size=(2, frames, 17)).round(3)


def _kinetics(root: Path) -> Path:
    kp, sc = _pose_clip()
    data = [{"frame_index": f + 1, "skeleton": [{"pose": (kp[m, f] / 340).ravel().tolist(), "score": sc[m, f].tolist()} for m in (0, 1)]}
            for f in range(kp.shape[1])]
    p = root / "clip.json"
    p.write_text(json.dumps({"data": data, "label": "x", "label_index": 1}))
    return p


def _openpose(root: Path) -> Path:
    kp, sc = _pose_clip()
    clip = root / "clip"
    clip.mkdir()
    for f in range(3):
        people = [{"person_id": [-1], "pose_keypoints_2d": np.concatenate([kp[m, f], sc[m, f, :, None]], 1).ravel().tolist()} for m in (0, 1)]
        (clip / f"clip_{f:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    return clip


def _coco(root: Path) -> Path:
    kp, sc = _pose_clip()
    images = [{"id": f, "frame_id": f, "width": 340, "height": 256} for f in range(kp.shape[1])]
    anns = [{"image_id": f, "track_id": m, "keypoints": np.concatenate([kp[m, f], sc[m, f, :, None]], 1).ravel().tolist()}
            for f in range(kp.shape[1]) for m in (0, 1)]
    p = root / "coco.json"
    p.write_text(json.dumps({"images": images, "annotations": anns}))
    return p


def _pyskl(root: Path) -> Path:
    kp, sc = _pose_clip()
    p = root / "one.pkl"
    p.write_bytes(pickle.dumps({"frame_dir": "one", "label": 1, "img_shape": (256, 340), "keypoint": kp.astype(np.float32),
                                "keypoint_score": sc.astype(np.float32)}))
    return p


def _npy_2d(root: Path) -> Path:
    p = root / "xy.npy"
    np.save(p, np.random.default_rng(0).normal(size=(2, 8, 17, 1)).astype(np.float32))
    return p


POSE = Pose2DInput(17, 2, "image", (340.0, 256.0))


def _read_pose(p: Path) -> object:
    return read_skeleton_file(p, pose=POSE)


def _prepared(root: Path) -> Path:
    """A prepared folder in the padded per-split form of earlier versions (still read)."""
    rng = np.random.default_rng(0)
    meta = {"dataset": "nw-ucla", "benchmark": "cross_view", "layout": "kinect20", "num_classes": 10, "num_persons": 1,
            "counts": {"train": 4}}
    prep = root / "prep"
    prep.mkdir(parents=True)
    np.save(prep / "x_train.npy", rng.normal(size=(4, 8, 60)).astype(np.float32))
    np.save(prep / "y_train.npy", np.arange(4))
    np.save(prep / "len_train.npy", np.array([8, 8, 5, 3], np.int32))
    (prep / "names_train.txt").write_text("a\nb\nc\nd\n")
    (prep / "meta.json").write_text(json.dumps(meta))
    return prep


def _prepared_store(root: Path) -> Path:
    """A dataset root with the compact store and one benchmark (cross_view)."""
    rng = np.random.default_rng(0)
    samples = [rng.normal(size=(3, t, 20, 1)).astype(np.float32) for t in (8, 8, 5, 3)]
    write_dataset(root / "ds", samples, [0, 1, 2, 3], ["a", "b", "c", "d"], dataset="nw-ucla", layout="kinect20",
                  num_classes=10, benchmarks={"cross_view": {"train": [0, 1, 2, 3], "test": [3]}}, groups=["1", "1", "2", "2"])
    return root / "ds"


def _read_store_split(p: Path) -> None:
    _read_all(PreparedSource(p / "cross_view", "train"))


def _npz(root: Path) -> Path:
    rng = np.random.default_rng(0)
    p = root / "ref.npz"
    eye = np.eye(60)
    np.savez(p, x_train=rng.normal(size=(3, 20, 150)).astype(np.float32), y_train=eye[[0, 1, 2]],
             x_test=rng.normal(size=(2, 20, 150)).astype(np.float32), y_test=eye[[3, 4]])
    return p


def _store(root: Path) -> Path:
    store = FeatureStore.create(root / "store", dim=4, kind="cnn", meta={"model": "fuzz"})
    store.append(["a", "b", "c"], np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32))
    return root / "store"


def _read_all(source: object) -> None:
    for i in range(len(source)):  # type: ignore[arg-type]
        source.raw(i)  # type: ignore[attr-defined]


def _read_store(path: Path) -> None:
    store = FeatureStore.open(path)
    for name in store.names:
        store.get(name)


TARGETS = [
    Target("NTU .skeleton", _ntu, read_skeleton_file),
    Target("NW-UCLA .json", _nwucla, read_skeleton_file, structured=mutate_json),
    Target("UTD-MHAD .mat", _utd, read_skeleton_file),
    Target("skeleton .npy", _npy, read_skeleton_file, structured=lambda b, rng: random_npy(rng)),
    Target("Kinect-v1 .json", _kinect_json, load_kinect_v1, structured=mutate_json),
    Target("official checkpoint", _official_ckpt, lambda p: open_checkpoint(p, dataset="nwucla").build_model(),
           structured=mutate_state_dict),
    Target("export model.json", _export, lambda p: open_checkpoint(p).build_model(), files=("model.json",), structured=mutate_json),
    Target("export .safetensors", _export, lambda p: open_checkpoint(p).build_model(), files=("model.safetensors",)),
    Target("prepared meta.json", _prepared, lambda p: _read_all(PreparedSource(p, "train")), files=("meta.json",), structured=mutate_json),
    Target("prepared x_train.npy", _prepared, lambda p: _read_all(PreparedSource(p, "train")), files=("x_train.npy",),
           structured=lambda b, rng: random_npy(rng)),
    Target("prepared len/names", _prepared, lambda p: _read_all(PreparedSource(p, "train")), files=("len_train.npy", "names_train.txt")),
    Target("store meta.json", _prepared_store, _read_store_split, files=("samples/meta.json", "cross_view/meta.json"),
           structured=mutate_json),
    Target("store arrays", _prepared_store, _read_store_split,
           files=("samples/joints.npy", "samples/offsets.npy", "samples/labels.npy", "cross_view/train.npy"),
           structured=lambda b, rng: random_npy(rng)),
    Target("store names/groups", _prepared_store, _read_store_split, files=("samples/names.txt", "samples/groups.txt")),
    Target("Kinetics-Skeleton .json", _kinetics, _read_pose, structured=mutate_json),
    Target("OpenPose folder", _openpose, _read_pose, files=tuple(f"clip_{f:012d}_keypoints.json" for f in range(3)), structured=mutate_json),
    Target("COCO keypoints .json", _coco, _read_pose, structured=mutate_json),
    Target("PYSKL .pkl", _pyskl, _read_pose, structured=mutate_annotation),
    Target("2-D .npy", _npy_2d, _read_pose, structured=lambda b, rng: random_npy(rng)),
    Target("reference .npz", _npz, lambda p: _read_all(ReferenceNpzSource(p, "train"))),
    Target("feature store", _store, _read_store, files=("meta.json", "manifest.json"), structured=mutate_json),
]


def fuzz(target: Target, root: Path, n: int, seed: int = 0) -> dict[str, object]:
    """Try ``n`` damaged inputs; returns counts and the first crashes."""
    rng = np.random.default_rng(seed)
    base = root / "seed"
    base.mkdir(parents=True, exist_ok=True)
    valid = target.build(base)
    counts = {"inputs": 0, "loaded": 0, "clean_errors": 0, "crashes": 0}
    crashes: list[str] = []
    for k in range(n):
        case = root / f"case{k}"
        shutil.copytree(base, case)
        given = case / valid.relative_to(base)
        victims = [given / f for f in target.files] if target.files else [given]
        victim = victims[int(rng.integers(0, len(victims)))]
        data = victim.read_bytes()
        if target.structured is not None and rng.random() < 0.5:
            try:
                new = target.structured(data, rng)
            except (ValueError, TypeError):  # the structured edit needs a valid document
                new = mutate_bytes(data, rng)
        else:
            new = mutate_bytes(data, rng)
        victim.write_bytes(new)
        counts["inputs"] += 1
        try:
            target.read(given)
            counts["loaded"] += 1
        except CLEAN as exc:
            text = str(exc)
            if victim.name in text or given.name in text or str(given) in text:
                counts["clean_errors"] += 1
            else:
                counts["crashes"] += 1
                crashes.append(f"{type(exc).__name__} without the file name: {text[:160]}")
        except Exception as exc:  # noqa: BLE001 - that is what the fuzz counts
            counts["crashes"] += 1
            crashes.append(f"{type(exc).__name__}: {str(exc)[:160]}")
        shutil.rmtree(case)
    return {**counts, "examples": crashes[:5]}


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_damaged_inputs_load_or_fail_cleanly(target: Target, tmp_path: Path) -> None:
    result = fuzz(target, tmp_path, N)
    print(f"\n{target.name:22s} inputs {result['inputs']:5d}  loaded {result['loaded']:5d}  "
          f"clean errors {result['clean_errors']:5d}  crashes {result['crashes']:3d}")
    assert result["crashes"] == 0, result["examples"]
