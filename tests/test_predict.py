"""``mmcl predict``: raw NTU / NW-UCLA / UTD / .npy files, official-checkpoint shape inference, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mmcl.config import Config, config_to_dict
from mmcl.checkpoints.official import reference_state_dict
from mmcl.models import build_backbone
from mmcl.checkpoints import CardMismatchError, open_checkpoint
from mmcl.checkpoints.official import infer_backbone_shape
from mmcl.formats.skeleton_file import RawSkeleton, SkeletonFileError, read_skeleton_file
from mmcl.predict import load_model, model_input
from mmcl.prepare.ntu_synth import random_sample, sample_name, write_skeleton

from cli_runner import run  # noqa: E402  (shared in-process CLI runner)

HAND_WAVING = 22  # NTU A023 (REFERENCE §10.1)



def biased_model(num_classes: int, layout: str, persons: int, favourite: int, name: str = "ctrgcn") -> torch.nn.Module:
    """A backbone whose logits are its fc bias (zero fc weight): the ranking is known in advance."""
    torch.manual_seed(0)
    m = build_backbone(name, num_classes=num_classes, layout=layout, num_persons=persons).eval()
    with torch.no_grad():
        m.fc.weight.zero_()
        m.fc.bias.copy_(-torch.arange(num_classes, dtype=torch.float32) * 0.01)
        m.fc.bias[favourite] = 20.0
    return m


def save_official(model: torch.nn.Module, path: Path) -> Path:
    """An 'official' checkpoint: reference key names with the DataParallel ``module.`` prefix."""
    torch.save({f"module.{k}": v for k, v in reference_state_dict(model).items()}, path)
    return path


def save_mmcl_ckpt(model: torch.nn.Module, path: Path, *, dataset: str, window: int, transform: str) -> Path:
    """A checkpoint in our training format (Lightning state_dict under ``backbone.`` + ``mmcl_config``)."""
    cfg = Config()
    args = model.builder_args
    cfg.data.dataset, cfg.data.layout, cfg.data.num_classes = dataset, args["layout"], args["num_classes"]
    cfg.data.num_persons, cfg.data.window, cfg.data.transform = args["num_persons"], window, transform
    state = {f"backbone.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "mmcl_config": config_to_dict(cfg), "epoch": 0}, path)
    return path


@pytest.fixture(scope="module")
def ntu120_official(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ckpt")
    return save_official(biased_model(120, "ntu25", 2, HAND_WAVING), d / "ctrgcn_ntu120_official.pt")


@pytest.fixture(scope="module")
def ucla_official(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ckpt")
    return save_official(biased_model(10, "kinect20", 1, 3), d / "ctrgcn_nwucla_official.pt")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from scipy.io import savemat

    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    files = {
        "skeleton": write_skeleton(d / f"{sample_name(a=23)}.skeleton", random_sample(rng, 30, 1)),
        "npy": d / "prepared.npy",
        "mat": d / "a3_s1_t1_skeleton.mat",
        "json": d / "a01_s01_e00_v03.json",
    }
    np.save(files["npy"], rng.normal(size=(3, 40, 25, 2)).astype(np.float32))
    savemat(files["mat"], {"d_skel": rng.normal(size=(20, 3, 35))})
    files["json"].write_text(json.dumps({"file_name": "a01_s01_e00_v03", "skeletons": rng.normal(size=(25, 20, 3)).tolist(), "label": 1}))
    return files


# ----------------------------------------------------------------------------- shape inference
def test_infer_shape_from_official_state_dict(ntu120_official: Path) -> None:
    sd = torch.load(ntu120_official, weights_only=True)
    shape = infer_backbone_shape(sd)
    assert shape == {"name": "ctrgcn", "num_classes": 120, "layout": "ntu25", "num_persons": 2, "in_channels": 3, "base_channels": 64}
    card = open_checkpoint(ntu120_official).card
    assert (card.source, card.dataset, card.input.transform, card.input.window, card.input.p_interval) == ("inferred", "ntu120", "ntu", 64, (0.95,))
    assert card.input.stream == "joint" and card.class_names[HAND_WAVING] == "hand waving"


def test_infer_shape_ctrs_gcn_kinect20(tmp_path: Path) -> None:
    m = build_backbone("ctrs-gcn", num_classes=10, layout="kinect20", num_persons=1)
    path = save_official(m, tmp_path / "ctrs.pt")
    card = open_checkpoint(path, stream="bone").card
    assert (card.backbone, card.num_classes, card.input.layout, card.input.num_persons) == ("ctrs-gcn", 10, "kinect20", 1)
    assert (card.dataset, card.input.transform, card.input.window, card.input.stream) == ("nwucla", "ucla", 52, "bone")


def test_flags_must_agree_with_the_weights(ntu120_official: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="num_classes = 120, but --dataset ntu60 asks for 60"):
        open_checkpoint(ntu120_official, dataset="ntu60")
    code, _, err = run(["predict", "--checkpoint", str(ntu120_official), "--num-classes", "60", "x.npy"], capsys)
    assert code == 2 and err.startswith("mmcl: error:") and "--num-classes asks for 60" in err


def test_mmcl_checkpoint_carries_its_shape(tmp_path: Path) -> None:
    m = build_backbone(num_classes=10, layout="kinect20", num_persons=1)
    path = save_mmcl_ckpt(m, tmp_path / "best.ckpt", dataset="nwucla", window=52, transform="ucla")
    loaded = load_model(path)
    assert loaded.kind == "mmcl-train" and loaded.card.source == "config"  # an older checkpoint: card rebuilt from its config
    assert loaded.class_names is not None and loaded.class_names[0] == "pick up with one hand"
    with pytest.raises(CardMismatchError, match="the checkpoint is a 10-class Kinect-20 joint-stream ctrgcn model .*--stream asks for bone"):
        load_model(path, stream="bone")


# ----------------------------------------------------------------------------- inputs
def test_readers_and_model_input(inputs: dict[str, Path], ntu120_official: Path) -> None:
    card = open_checkpoint(ntu120_official).card
    raw = read_skeleton_file(inputs["skeleton"])
    assert raw.kind == "ntu-skeleton" and raw.num_actors == 1 and raw.data.shape == (3, 30, 25, 2)
    x = model_input(raw, card)  # NTU-120: lone actor duplicated (REFERENCE §2.6)
    assert x.shape == (3, 64, 25, 2) and np.array_equal(x[..., 0], x[..., 1])
    assert not model_input(raw, card, lone_actor="zero")[..., 1].any()
    for key in ("mat", "json"):  # 20 Kinect-v1 joints -> NTU-25 only when asked: zero-shot preprocessing, zero second person
        with pytest.raises(ValueError, match="20-joint .* --cross-layout"):
            model_input(read_skeleton_file(inputs[key]), card)
        x = model_input(read_skeleton_file(inputs[key]), card, cross_layout=True)
        assert x.shape == (3, 64, 25, 2) and not x[..., 1].any()
        assert np.allclose(x[:, 0, 1, 0], 0, atol=1e-6)  # centred on J2 of the first frame
    rows = np.random.default_rng(1).normal(size=(12, 150)).astype(np.float32)  # T×(M·V·C), prepared-folder row
    path = inputs["npy"].with_name("row.npy")
    np.save(path, rows)
    assert np.array_equal(read_skeleton_file(path).data[:, 3, 4, 1], rows[3, 75 + 12 : 75 + 15])


def test_unreadable_inputs_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "clip.avi"
    bad.write_bytes(b"x")
    with pytest.raises(SkeletonFileError, match="clip.avi: unsupported file type"):
        read_skeleton_file(bad)
    np.save(tmp_path / "wrong.npy", np.zeros((4, 7)))
    with pytest.raises(SkeletonFileError, match="wrong.npy: expected"):
        read_skeleton_file(tmp_path / "wrong.npy")
    raw = RawSkeleton("npy", np.ones((3, 5, 25, 1), np.float32), 1, True)
    with pytest.raises(ValueError, match="25-joint input cannot feed a 10-class Kinect-20"):
        model_input(raw, open_checkpoint(save_official(build_backbone(num_classes=10, layout="kinect20", num_persons=1), tmp_path / "u.pt")).card)


# ----------------------------------------------------------------------------- CLI
def test_predict_cli_text_and_json(inputs: dict[str, Path], ntu120_official: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(inputs[k]) for k in ("skeleton", "npy", "mat", "json")]
    code, out, err = run(["predict", "--checkpoint", str(ntu120_official), "--json", *files], capsys)
    assert code == 1 and "2 of 4 files failed" in err and "--cross-layout" in err  # 20-joint files need the flag
    code, out, err = run(["predict", "--checkpoint", str(ntu120_official), "--json", "--cross-layout", *files], capsys)
    assert code == 0 and "2 file(s): 20-joint Kinect-v1 input interpolated" in err
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["file"] for o in objs] == files
    assert [o["kind"] for o in objs] == ["ntu-skeleton", "npy", "utd-mat", "nwucla-json"]
    for o in objs:
        assert set(o) == {"file", "kind", "frames", "top"}
        assert [t["rank"] for t in o["top"]] == [1, 2, 3, 4, 5]
        assert o["top"][0] == {"rank": 1, "label": HAND_WAVING, "name": "hand waving", "score": pytest.approx(1.0, abs=1e-3)}
        assert o["top"][1]["label"] == 0 and o["top"][1]["name"] == "drink water"
        scores = [t["score"] for t in o["top"]]
        assert scores == sorted(scores, reverse=True) and sum(scores) <= 1.0 + 1e-6


def test_bad_file_among_good_ones(inputs: dict[str, Path], ucla_official: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "a02_s01_e00_v01.json"
    broken.write_text('{"skeletons": [[[0, 1]]]}')
    files = [str(inputs["json"]), str(broken), str(tmp_path / "missing.json")]
    code, out, err = run(["predict", "--checkpoint", str(ucla_official), "--json", *files], capsys)
    assert code == 1
    objs = [json.loads(line) for line in out.splitlines()]
    assert "top" in objs[0] and set(objs[1]) == set(objs[2]) == {"file", "error"}
    assert objs[1]["error"].startswith(str(broken)) and "missing.json" in objs[2]["error"]
    assert "2 of 3 files failed" in err and str(broken) in err


def test_kinect20_model_text_output(inputs: dict[str, Path], ucla_official: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["predict", "--checkpoint", str(ucla_official), "--dataset", "nw-ucla", "--top", "2", str(inputs["json"]), str(inputs["mat"])], capsys)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 7
    assert lines.pop(0).startswith("model: a 10-class Kinect-20 joint-stream ctrgcn model (1 person), official-ctrgcn (torch runtime)")
    assert lines[0] == f"{inputs['json']}  (nwucla-json, 25 frames)" and lines[3].startswith(f"{inputs['mat']}  (utd-mat")
    for rank1, rank2 in ((lines[1], lines[2]), (lines[4], lines[5])):
        assert rank1.split() == ["1.", "100.00%", "3", "walk", "around"]
        assert rank2.split()[0] == "2." and rank2.split()[2:] == ["0", "pick", "up", "with", "one", "hand"]
