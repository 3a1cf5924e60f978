"""The command line behaves as people expect: overrides anywhere, --resume never eats one, plain output
in a log file, a start banner, both EMA and raw figures, one clear line for a dataset smaller than a
batch, Ctrl-C that says how to continue, and every config key discoverable."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch
import yaml
from cli_runner import run  # noqa: E402  (shared in-process CLI runner)

from mmcl.cli import build_parser, parse_arguments
from mmcl.demo import DEMO_BENCHMARK, prepare_demo_data

TINY = [
    "data.dataset=synthetic", "data.layout=ntu25", "data.num_classes=12", "data.num_persons=1", "data.window=8",
    "data.batch_size=8", "data.test_batch_size=16", "data.num_workers=0", "model.base_channels=8",
    "optim.warmup_epochs=0", "optim.lr_steps=[]", "trainer.seed=3",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    prepare_demo_data(root, per_class=3, seed=0)
    return root / DEMO_BENCHMARK


def test_resume_never_takes_an_override_and_overrides_work_after_options() -> None:
    parser = build_parser()
    args = parse_arguments(parser, ["train", "-c", "configs/x.yaml", "--resume", "trainer.epochs=2", "--stream", "bone", "data.repeat=1"])
    assert args.resume == "auto" and args.overrides == ["trainer.epochs=2", "data.repeat=1"] and args.stream == "bone"
    args = parse_arguments(parser, ["train", "data.repeat=1", "--resume", "runs/a", "trainer.epochs=2"])
    assert args.resume == "runs/a" and args.overrides == ["data.repeat=1", "trainer.epochs=2"]
    with pytest.raises(SystemExit):
        parse_arguments(parser, ["train", "--stream", "bone", "stray"])  # not KEY=VALUE: still an error


def test_bare_resume_with_nothing_to_resume_says_so(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["train", "--data", str(tiny), *TINY, f"trainer.work_dir={tmp_path / 'empty'}", "--resume"], capsys)
    assert code == 2 and "nothing to resume in" in err and "auto" not in err


def test_a_log_file_gets_plain_lines_a_banner_and_both_ema_and_raw_figures(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "run"
    code, out, err = run(["train", "--data", str(tiny), "--work-dir", str(work), *TINY, "trainer.epochs=3", "trainer.ema_decay=0.9"], capsys)
    assert code == 0, err
    both = out + err
    assert "\x1b[" not in both and "\r" not in both and "v_num" not in both  # no progress-bar residue
    assert "NW-UCLA" not in both and "Epoch 0" not in both
    assert re.search(r"\[mmcl\] samples: train 24, test 12; 3 steps per epoch x 3 epochs; device cpu, precision 32-true", out)
    lines = re.findall(r"^epoch (\d+)/3 .*eval top-1 ([\d.]+)%", out, re.M)
    assert [int(e) for e, _ in lines] == [1, 2, 3]
    summary = re.search(r"best epoch (\d+) of 3 \(selected on test\): test top-1 ([\d.]+)%.*\(EMA weights\)", out)
    assert summary and re.search(r"same checkpoint, raw weights: test top-1 [\d.]+%", out)
    best = int(summary.group(1))
    # the summary's epoch is the console's epoch (1 = first) and the checkpoint's (Lightning counts from 0)
    assert torch.load(work / "checkpoints" / "best.ckpt", weights_only=True)["epoch"] == best - 1
    evals = [float(v) for _, v in lines]
    assert evals[best - 1] == max(evals)
    # a resumed run with a later epoch count given after --resume continues (the override is not eaten)
    code, out, err = run(["train", "--data", str(tiny), "--work-dir", str(work), *TINY, "trainer.ema_decay=0.9", "--resume", "trainer.epochs=4"], capsys)
    assert code == 0, err
    assert "resuming at epoch 4" in out and re.findall(r"^epoch (\d+)/4", out, re.M) == ["4"]


def test_a_dataset_smaller_than_a_batch_is_one_line_and_leaves_nothing(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "run"
    code, _, err = run(["train", "--data", str(tiny), *TINY, "data.batch_size=32", f"trainer.work_dir={work}"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "24 sample(s), fewer than one batch of data.batch_size=32" in err and "last.ckpt" not in err
    assert not work.exists()


def test_every_key_is_discoverable(capsys: pytest.CaptureFixture[str]) -> None:
    config = Path(__file__).resolve().parents[1] / "configs" / "nwucla_cpu.yaml"
    code, out, _ = run(["config", "show", "-c", str(config), "--stream", "bone", "trainer.epochs=3"], capsys)
    shown = yaml.safe_load(out)
    assert code == 0 and shown["data"]["stream"] == "bone" and shown["trainer"]["epochs"] == 3
    assert "limit_train_batches" in shown["trainer"] and "colearning" in shown and "optim" in shown
    code, out, _ = run(["train", "--help"], capsys)
    assert code == 0 and "trainer.limit_train_batches" in out and "mmcl config show" in out


def test_a_stopped_training_called_in_process_gives_back_the_callers_sigterm_handler(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As a process, mmcl train ignores SIGTERM once it reports a stop (a real process is tested in
    test_interrupt.py); called in-process (a notebook, tests) it leaves the caller's handler as it was."""
    import signal

    import mmcl.training.fit as fit

    def stopped(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fit, "train", stopped)
    def callers_handler(signum: int, frame: object) -> None:
        pass

    before = signal.signal(signal.SIGTERM, callers_handler)
    try:
        code, _, err = run(["train", "--data", str(tiny), *TINY, f"trainer.work_dir={tmp_path / 'run'}"], capsys)
        assert code == 130 and "interrupted before the first checkpoint" in err
        assert signal.getsignal(signal.SIGTERM) is callers_handler
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_stopped_training_called_in_process_prints_its_own_command_to_continue(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """main(argv) in a notebook or a test: the resume hint is built from argv, not from the host
    process's sys.argv (pytest's here), minus any --resume already given."""
    import mmcl.training.fit as fit

    work = tmp_path / "run"

    def stopped_after_a_checkpoint(*args: object, **kwargs: object) -> None:
        (work / "checkpoints").mkdir(parents=True)
        (work / "checkpoints" / "last.ckpt").write_bytes(b"not read: only its presence matters here")
        raise KeyboardInterrupt

    monkeypatch.setattr(fit, "train", stopped_after_a_checkpoint)
    argv = ["train", "--data", str(tiny), *TINY, f"trainer.work_dir={work}", "--resume", "trainer.epochs=3"]
    code, _, err = run(argv, capsys)
    assert code == 130
    expected = " ".join(shlex.quote(a) for a in argv[:-2] + ["trainer.epochs=3"])
    assert f"continue exactly where it stopped with: mmcl {expected} --resume {shlex.quote(str(work))}" in err, err


def test_demo_help_states_its_real_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from mmcl.demo import DEMO_EPOCHS, DEMO_PER_CLASS

    code, out, _ = run(["demo", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0 and f"(default {DEMO_EPOCHS})" in text and f"(default {DEMO_PER_CLASS})" in text
