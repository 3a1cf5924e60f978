"""The checkpoint reader and the model card: kinds, cards, clear errors, and that it is the only reader."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import mmcl
from mmcl.checkpoints import CardMismatchError, CheckpointError, ModelCard, open_checkpoint, read_checkpoint
from mmcl.checkpoints.official import reference_state_dict
from mmcl.config import Config, config_to_dict
from mmcl.datasets.pipeline import InputSpec
from mmcl.export import export_backbone
from mmcl.models import build_backbone

from cli_runner import run  # noqa: E402  (shared in-process CLI runner)

SRC = Path(mmcl.__file__).parent
UCLA_BONE = ModelCard("ctrgcn", 10, InputSpec("kinect20", 1, stream="bone", transform="ucla", window=52), base_channels=8, dataset="nwucla")


def _training_ckpt(path: Path, card: ModelCard, *, with_card: bool = True) -> Path:
    model = card.build()
    cfg = card.apply_to_config(Config())
    obj = {"state_dict": {f"backbone.{k}": v for k, v in model.state_dict().items()}, "mmcl_config": config_to_dict(cfg), "epoch": 0}
    if with_card:
        obj["mmcl_card"] = card.to_dict()
    torch.save(obj, path)
    return path


def test_card_round_trip_and_words() -> None:
    card = ModelCard.from_dict(json.loads(json.dumps(UCLA_BONE.to_dict())))
    assert card == UCLA_BONE and card.class_names is None  # class names come from the dataset when built from a config
    assert card.describe() == "a 10-class Kinect-20 bone-stream ctrgcn model (1 person)"
    assert card.input.describe() == "Kinect-20 bone stream, 1 person, ucla transform (52 frames)"
    built = ModelCard.from_config(card.apply_to_config(Config()))
    assert built.input == card.input and built.class_names[0] == "pick up with one hand" and len(built.training["config_hash"]) == 12
    with pytest.raises(ValueError, match="newer than this mmcl reads"):
        ModelCard.from_dict({**card.to_dict(), "card_version": 99})
    with pytest.raises(ValueError, match="3 class names for a 10-class model"):
        ModelCard("ctrgcn", 10, card.input, class_names=["a", "b", "c"])


def test_kinds_and_cards(tmp_path: Path) -> None:
    new = open_checkpoint(_training_ckpt(tmp_path / "new.ckpt", UCLA_BONE))
    assert (new.kind, new.card.source, new.card.input.stream) == ("mmcl-train", "card", "bone")
    old = open_checkpoint(_training_ckpt(tmp_path / "old.ckpt", UCLA_BONE, with_card=False))  # before cards: from the config
    assert (old.card.source, old.card.input) == ("config", UCLA_BONE.input)
    model = new.build_model()
    export_backbone(model, tmp_path / "exp", card=new.card, formats=("safetensors",))
    exp = open_checkpoint(tmp_path / "exp")
    assert exp.kind == "mmcl-export" and exp.card.input == UCLA_BONE.input
    assert open_checkpoint(tmp_path / "exp" / "model.safetensors").kind == "mmcl-export"
    official = tmp_path / "official.pt"
    torch.save({"model": {f"module.{k}": v for k, v in reference_state_dict(build_backbone(num_classes=60, layout="ntu25", num_persons=2)).items()}}, official)
    off = open_checkpoint(official, stream="joint_motion")
    assert (off.kind, off.card.source, off.card.dataset, off.card.input.stream, off.card.input.window) == ("official-ctrgcn", "inferred", "ntu60", "joint_motion", 64)
    assert off.notes == []
    assert "assuming joint" in open_checkpoint(official).notes[0]


def test_legacy_export_folder_still_loads(tmp_path: Path) -> None:
    """Exports written before the card (format 1: builder + meta) keep working."""
    from safetensors.torch import save_file

    model = UCLA_BONE.build()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "model.safetensors"))
    info = {"format_version": 1, "builder": {"name": "ctrgcn", "num_classes": 10, "layout": "kinect20", "num_persons": 1, "in_channels": 3},
            "meta": {"dataset": "nwucla", "transform": "ucla", "window": 52, "base_channels": 8}, "files": {"safetensors": "model.safetensors"}}
    (tmp_path / "model.json").write_text(json.dumps(info))
    opened = open_checkpoint(tmp_path)
    assert (opened.card.input.stream, opened.card.base_channels, opened.card.class_names[3]) == ("joint", 8, "walk around")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file (0 bytes)"),
        (b'{"not": "a checkpoint"}', "a JSON/text file, not a PyTorch checkpoint"),
        (b"PK\x03\x04 truncated zip", "truncated or not a PyTorch checkpoint"),
        (bytes(range(256)) * 4, "truncated or not a PyTorch checkpoint"),
    ],
)
def test_bad_files_get_one_clear_line(tmp_path: Path, content: bytes, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: {message}")):
        read_checkpoint(path)
    code, _, err = run(["predict", "--checkpoint", str(path), str(tmp_path)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "weights_only=False" not in err


class _RunsCode:
    def __reduce__(self):  # unpickling this would call os.system
        import os

        return (os.system, ("echo pwned",))


def test_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": _RunsCode()}, path)
    with pytest.raises(CheckpointError, match="holds Python objects besides tensors; refused"):
        read_checkpoint(path)


def test_nan_weights_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _training_ckpt(tmp_path / "nan.ckpt", UCLA_BONE)
    obj = torch.load(path, weights_only=True)
    obj["state_dict"]["backbone.fc.weight"][0, 0] = float("nan")
    torch.save(obj, path)
    for cmd in (["predict", "--checkpoint", str(path), str(tmp_path)], ["export", "--checkpoint", str(path), "--out", str(tmp_path / "o")]):
        code, _, err = run(cmd, capsys)
        assert code == 2 and "1 weight tensor(s) hold NaN or infinite values (first: fc.weight)" in err
    assert not (tmp_path / "o").exists()


def test_flags_must_agree_with_a_card(tmp_path: Path) -> None:
    path = _training_ckpt(tmp_path / "m.ckpt", UCLA_BONE)
    with pytest.raises(CardMismatchError, match="a 10-class Kinect-20 bone-stream ctrgcn model .*--dataset ntu60 means num_classes = 60"):
        open_checkpoint(path, dataset="ntu60")
    with pytest.raises(CardMismatchError, match="--persons asks for 2"):
        open_checkpoint(path, num_persons=2)
    assert open_checkpoint(path, stream="bone", dataset="nw-ucla").card.input.stream == "bone"


def test_predict_folder_and_class_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = ModelCard.from_config(UCLA_BONE.apply_to_config(Config()))  # as training writes it: with class names
    path = _training_ckpt(tmp_path / "m.ckpt", card)
    data = tmp_path / "clips"
    (data / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a01_s01_e00_v03", "sub/a02_s02_e00_v03"):
        (data / f"{name}.json").write_text(json.dumps({"skeletons": rng.normal(size=(20, 20, 3)).tolist()}))
    (data / "notes.txt").write_text("not a skeleton")
    code, out, err = run(["predict", "--checkpoint", str(path), str(data), "--top", "1"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "model: a 10-class Kinect-20 bone-stream ctrgcn model (1 person), mmcl-train (torch runtime); input: Kinect-20 bone stream, 1 person, ucla transform (52 frames)"
    assert [ln.split("  (")[0] for ln in lines if not ln.startswith(" ")][1:] == [str(data / "a01_s01_e00_v03.json"), str(data / "sub" / "a02_s02_e00_v03.json")]
    ranks = [ln.split() for ln in lines if ln.startswith("  1.")]
    assert len(ranks) == 2 and all(" ".join(r[3:]) == card.class_names[int(r[2])] for r in ranks)
    (data / "empty").mkdir()
    code, _, err = run(["predict", "--checkpoint", str(path), str(data / "empty")], capsys)
    assert code == 2 and "a folder without skeleton files" in err


def test_the_reader_is_the_only_place_that_loads_user_files() -> None:
    """Nothing in the package but the checkpoint-file format and the checkpoint reader deserialises a
    model or weight file (formats/checkpoint_file.py: torch.load / TorchScript; checkpoints/reader.py:
    safetensors and ONNX Runtime for exported models)."""
    loaders = re.compile(r"torch\.load\(|torch\.jit\.load\(|safetensors\.torch import load_file|\bload_file\(|InferenceSession\(|onnx\.load\(")
    allowed = {SRC / "formats" / "checkpoint_file.py", SRC / "checkpoints" / "reader.py", SRC / "export.py"}  # export.py: onnx.load of the file it has just written
    offenders = []
    for path in SRC.rglob("*.py"):
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if loaders.search(line) and path not in allowed:
                offenders.append(f"{path.relative_to(SRC)}:{no}: {line.strip()}")
    assert offenders == []
    export_src = (SRC / "export.py").read_text(encoding="utf-8")
    assert export_src.count("onnx.load(") == 1 and "torch.load(" not in export_src


def test_predict_reads_the_checkpoint_once(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = _training_ckpt(tmp_path / "m.ckpt", UCLA_BONE)
    clip = tmp_path / "a01_s01_e00_v03.json"
    clip.write_text(json.dumps({"skeletons": np.random.default_rng(0).normal(size=(20, 20, 3)).tolist()}))
    calls: list[str] = []
    real_load = torch.load

    def spy(f, *args, **kwargs):
        calls.append(str(f))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    code, _, err = run(["predict", "--checkpoint", str(path), str(clip)], capsys)
    assert code == 0, err
    assert calls == [str(path)]
