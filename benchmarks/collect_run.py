"""Copy the small, reviewable files of a finished run into ``benchmarks/results/<name>/``.

What is kept: resolved config, environment, results summary, test metrics / per-class / confusion,
the CSV training log, and the per-sample scores as text (``scores.csv``; ``val_scores.csv`` when the
run carved a validation split; ``eval_scores/epoch_NNN.csv`` when it kept every evaluation's scores). No checkpoints, no TensorBoard events, no plots (``mmcl report``
redraws them from these files). ``mmcl ensemble`` and ``mmcl report`` read the copy directly.

Usage::

    python benchmarks/collect_run.py runs/nwucla_cpu_joint [--name nwucla_cpu_joint]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from mmcl.results.scores import load_scores, save_scores

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("config.yaml", "env.json", "results.json", "test_metrics.json", "test_per_class.csv", "test_confusion.csv",
          "val_metrics.json", "val_per_class.csv", "val_confusion.csv")


def collect(run_dir: Path, dest: Path) -> list[str]:
    if not (run_dir / "scores.npz").is_file() or not (run_dir / "results.json").is_file():
        raise SystemExit(f"{run_dir}: not a finished run directory (needs scores.npz and results.json)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))  # swap in whole: no half copy
    staging.chmod(0o755)
    written = []
    for name in COPIED:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, staging / name)
            written.append(name)
    if (run_dir / "csv" / "metrics.csv").is_file():
        shutil.copy2(run_dir / "csv" / "metrics.csv", staging / "metrics.csv")
        written.append("metrics.csv")
    for stem in ("scores", "val_scores"):
        if (run_dir / f"{stem}.npz").is_file():
            save_scores(staging / f"{stem}.csv", *load_scores(run_dir / f"{stem}.npz"))
            written.append(f"{stem}.csv")
    kept = sorted((run_dir / "eval_scores").glob("epoch_*.npz"))  # trainer.keep_eval_scores: every evaluation
    if kept:
        (staging / "eval_scores").mkdir()
        for f in kept:
            save_scores(staging / "eval_scores" / f"{f.stem}.csv", *load_scores(f))
        written.append(f"eval_scores/ ({len(kept)} evaluations)")
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--name", help="folder name under benchmarks/results (default: the run directory's name)")
    args = parser.parse_args()
    dest = ROOT / "benchmarks" / "results" / (args.name or args.run_dir.resolve().name)
    written = collect(args.run_dir, dest)
    print(f"{dest}: {', '.join(written)}")


if __name__ == "__main__":
    main()
