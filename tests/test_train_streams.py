"""mmcl streams: four streams trained to the end across interruptions, then fused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli_runner import run as mmcl  # noqa: E402

from mmcl.demo import DEMO_BENCHMARK, prepare_demo_data
from mmcl.training import streams as ts

pytestmark = pytest.mark.slow  # multi-process / long: outside the fast loop (-m "not slow")

ROOT = Path(__file__).resolve().parents[1]


TINY = """\
name: tiny
data:
  dataset: synthetic
  layout: ntu25
  num_classes: 12
  num_persons: 1
  window: 8
  batch_size: 8
  test_batch_size: 16
  num_workers: 0
model:
  base_channels: 8
optim:
  warmup_epochs: 1
  lr_steps: [1]
trainer:
  epochs: 1
  seed: 3
  final_checkpoint: last
  work_dir: {work_dir}
"""


@pytest.fixture()
def tiny(tmp_path: Path) -> tuple[Path, Path, Path]:
    data = tmp_path / "data"
    prepare_demo_data(data, per_class=2, seed=0)
    data = data / DEMO_BENCHMARK
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY.format(work_dir=tmp_path / "runs" / "tiny"))
    return config, data, tmp_path / "runs"


@pytest.fixture(autouse=True)
def _quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ts, "POLL_SECONDS", 0.2)


def test_trains_every_stream_then_fuses_and_continues_interrupted_runs(tiny: tuple[Path, Path, Path], capsys) -> None:
    config, data, runs = tiny
    args = ["streams", "-c", str(config), "--data", str(data), "--parallel", "2", "--threads", "1"]
    assert mmcl(args, capsys)[0] == 0
    streams = ("joint", "bone", "joint_motion", "bone_motion")
    for s in streams:
        run = runs / f"tiny_{s}"
        assert ts.stream_state(run) == "finished"
        assert yaml.safe_load((run / "config.yaml").read_text())["data"]["stream"] == s
        assert (runs / f"tiny_{s}.log").is_file()
    fused = json.loads((runs / "tiny_ensemble_4s" / "ensemble.json").read_text())
    assert fused["weights"] == pytest.approx({"joint": 0.6, "bone": 0.6, "joint_motion": 0.4, "bone_motion": 0.4})
    assert fused["num_samples"] == 12 and not any(fused["dropped_samples"].values())

    # a second call finds everything finished: nothing is trained again (the logs do not grow)
    sizes = {s: (runs / f"tiny_{s}.log").stat().st_size for s in streams}
    assert mmcl(args, capsys)[0] == 0
    assert {s: (runs / f"tiny_{s}.log").stat().st_size for s in streams} == sizes

    # an interrupted stream (checkpoint, no results) is continued with --resume, not restarted
    (runs / "tiny_bone" / "results.json").unlink()
    assert ts.stream_state(runs / "tiny_bone") == "interrupted"
    cmd = ts.train_command(str(config), str(data), "bone", runs / "tiny_bone", 1, [])
    assert cmd[-2:] == ["--resume", str(runs / "tiny_bone")] and "trainer.num_threads=1" in cmd
    code, out, _ = mmcl([*args, "--streams", "bone"], capsys)
    assert code == 0 and "bone: finished" in out
    assert ts.stream_state(runs / "tiny_bone") == "finished"
    assert "--resume" in (runs / "tiny_bone.log").read_text().rsplit("\n# ", 1)[1].splitlines()[0]


def test_a_failing_stream_is_reported_and_the_ensemble_skipped(tiny: tuple[Path, Path, Path], tmp_path: Path, capsys) -> None:
    config, _, runs = tiny
    missing = tmp_path / "no_such_data"
    code, out, _ = mmcl(["streams", "-c", str(config), "--data", str(missing), "--streams", "joint", "bone"], capsys)
    assert code == 1 and "not finished: joint, bone" in out
    assert ts.stream_state(runs / "tiny_joint") == "new"
    assert str(missing) in (runs / "tiny_joint.log").read_text()
    assert not (runs / "tiny_ensemble_4s").exists()


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux /proc")
def test_killing_mmcl_streams_leaves_no_training_running(tiny: tuple[Path, Path, Path]) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    config, data, runs = tiny
    parent = subprocess.Popen([sys.executable, "-m", "mmcl", "streams", "-c", str(config), "--data", str(data), "--parallel", "2",
                               "trainer.epochs=100000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, kids = time.time() + 60, []
    while time.time() < deadline and len(kids) < 2:
        time.sleep(0.3)
        kids = _children(parent.pid)
    assert len(kids) == 2, "the two trainings did not start"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(_running(k) for k in kids):
        time.sleep(0.2)
    assert [k for k in kids if _running(k)] == []


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


def test_hdgcn_six_way_recipe_trains_each_centre_and_fuses_like_hdgcn(tiny: tuple[Path, Path, Path], capsys) -> None:
    """--recipe hdgcn-6way: six HD-GCN runs (joint/bone × CoM 1, 2, 21), each with its own centre in its
    config and model card, fused with HD-GCN's equal weights on L2-normalised scores."""
    from mmcl.checkpoints import open_checkpoint

    config, data, runs = tiny
    code, out, err = mmcl(["streams", "-c", str(config), "--data", str(data), "--recipe", "hdgcn-6way", "--parallel", "2",
                           "--threads", "1"], capsys)
    assert code == 0, out + err
    for com in (1, 2, 21):
        for kind, stream in (("J", "joint"), ("B", "bone")):
            run = runs / f"tiny_HD{kind}{com}"
            cfg = yaml.safe_load((run / "config.yaml").read_text())
            assert (cfg["model"]["backbone"], cfg["model"]["com"], cfg["data"]["stream"]) == ("hdgcn", com, stream)
            card = open_checkpoint(run / "checkpoints" / "last.ckpt").card
            assert (card.backbone, card.com, card.input.stream) == ("hdgcn", com, stream)
    fused = json.loads((runs / "tiny_ensemble_6s" / "ensemble.json").read_text())
    assert fused["normalize"] == "l2" and fused["weight_source"] == "preset:hdgcn-6way"
    assert fused["weights"] == {"HDJ1": 1.0, "HDB1": 1.0, "HDJ2": 1.0, "HDB2": 1.0, "HDJ21": 1.0, "HDB21": 1.0}


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux /proc")
def test_ctrl_c_to_mmcl_streams_saves_every_training_where_it_stopped(tiny: tuple[Path, Path, Path]) -> None:
    """A terminal's Ctrl-C reaches the parent and its trainings; the parent then asks each to stop
    (SIGTERM). One stop each: every training saves after its current step, and a rerun continues."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    config, data, runs = tiny
    cmd = [sys.executable, "-m", "mmcl", "streams", "-c", str(config), "--data", str(data), "--streams", "joint", "bone",
           "--parallel", "2", "--threads", "1", "trainer.epochs=100000", "data.batch_size=2"]
    parent = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lasts = [runs / f"tiny_{s}" / "checkpoints" / "last.ckpt" for s in ("joint", "bone")]
    deadline = time.time() + 300
    while time.time() < deadline and not all(p.is_file() for p in lasts):
        time.sleep(0.2)
    assert all(p.is_file() for p in lasts), "the trainings did not reach their first checkpoint"
    time.sleep(1.0)  # inside a later epoch
    kids = _children(parent.pid)
    assert len(kids) == 2
    signalled = time.time()
    os.killpg(parent.pid, signal.SIGINT)  # as a terminal does: parent and children
    out, _ = parent.communicate(timeout=180)
    assert parent.returncode == 130, out[-2000:]
    for s, last in zip(("joint", "bone"), lasts):
        assert f"{s}: stopped" in out
        log = (runs / f"tiny_{s}.log").read_text()
        assert "saving after this step" in log and "Traceback" not in log, log[-2000:]
        assert last.stat().st_mtime >= signalled  # written on the stop, not the earlier epoch end
        saved = torch.load(last, weights_only=True)
        assert saved["global_step"] > 0 and ts.stream_state(runs / f"tiny_{s}") == "interrupted"
    assert [k for k in kids if _running(k)] == []


def test_runs_side_by_side_share_the_cpus_unless_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert [ts.threads_per_run(p, runs) for p, runs in ((1, 4), (2, 4), (4, 4), (4, 2), (2, 1), (16, 16))] == [0, 4, 2, 4, 0, 1]
    cmd = ts.train_command("c.yaml", None, "bone", tmp_path / "run", 4, ["trainer.num_threads=3"])
    assert cmd.index("trainer.num_threads=4") < cmd.index("trainer.num_threads=3")  # an explicit override wins
