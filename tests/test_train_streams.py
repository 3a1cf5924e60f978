"""benchmarks/train_streams.py: four streams trained to the end across interruptions, then fused."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from mmcl.demo import DEMO_BENCHMARK, prepare_demo_data

pytestmark = pytest.mark.slow  # multi-process / long: outside the fast loop (-m "not slow")

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("train_streams", ROOT / "benchmarks" / "train_streams.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_trains_every_stream_then_fuses_and_continues_interrupted_runs(tiny: tuple[Path, Path, Path], capsys) -> None:
    ts = _script()
    config, data, runs = tiny
    args = ["-c", str(config), "--data", str(data), "--parallel", "2", "--threads", "1"]
    assert ts.main(args, poll_seconds=0.2) == 0
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
    assert ts.main(args, poll_seconds=0.2) == 0
    assert {s: (runs / f"tiny_{s}.log").stat().st_size for s in streams} == sizes

    # an interrupted stream (checkpoint, no results) is continued with --resume, not restarted
    (runs / "tiny_bone" / "results.json").unlink()
    assert ts.stream_state(runs / "tiny_bone") == "interrupted"
    cmd = ts.train_command(str(config), str(data), "bone", runs / "tiny_bone", 1, [])
    assert cmd[-2:] == ["--resume", str(runs / "tiny_bone")] and "trainer.num_threads=1" in cmd
    assert ts.main([*args, "--streams", "bone"], poll_seconds=0.2) == 0
    assert ts.stream_state(runs / "tiny_bone") == "finished"
    assert "--resume" in (runs / "tiny_bone.log").read_text().rsplit("\n# ", 1)[1].splitlines()[0]
    assert "bone: finished" in capsys.readouterr().out


def test_a_failing_stream_is_reported_and_the_ensemble_skipped(tiny: tuple[Path, Path, Path], tmp_path: Path) -> None:
    ts = _script()
    config, _, runs = tiny
    missing = tmp_path / "no_such_data"
    assert ts.main(["-c", str(config), "--data", str(missing), "--streams", "joint"], poll_seconds=0.2) == 1
    assert ts.stream_state(runs / "tiny_joint") == "new"
    assert str(missing) in (runs / "tiny_joint.log").read_text()
    assert not (runs / "tiny_ensemble_4s").exists()
