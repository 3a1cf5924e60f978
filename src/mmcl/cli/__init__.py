"""The ``mmcl`` command line: arguments in, library calls below, one-line errors out.

One module per command area, each with ``register(subparsers)``: :mod:`.run` (train, test, info,
demo), :mod:`.prepare`, :mod:`.extract` (and features check), :mod:`.results` (ensemble, report),
:mod:`.inference` (predict, zero-shot, export). User mistakes (missing data, unknown stream, bad
checkpoint, bad config key, an output that cannot be written, a full disk) print one line
``mmcl: error: …`` and exit with status 2; set
``MMCL_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

from mmcl import __version__
from mmcl.cli import extract, inference, prepare, results, run

__all__ = ["main", "build_parser", "parse_arguments", "AREAS"]

AREAS = (run, prepare, extract, results, inference)  # the order of `mmcl --help`

EXAMPLES = """\
examples:
  mmcl demo                                   synthetic data, train + evaluate on the CPU (no downloads)
  mmcl train --config configs/nwucla.yaml --data ../shared/data/nw-ucla/all_sqe --stream bone
  mmcl train --config configs/ntu120_xsub.yaml --data data/ntu120/xsub optim.base_lr=0.05 trainer.epochs=10
  mmcl test --checkpoint runs/ntu120_xsub_joint/checkpoints/best.ckpt --data data/ntu120/xsub
  mmcl info --config configs/ntu120_xsub.yaml
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmcl",
        description="Skeleton-based action recognition with multi-modality co-learning (MMCL).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mmcl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for area in AREAS:
        area.register(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the user gave something wrong', reported in one line."""
    from mmcl.io import LockedError

    # OSError: missing/unreadable paths, a full disk, a read-only folder (the message names the file)
    # ImportError: an optional extra is missing (the message names the pip install)
    errors: list[type[BaseException]] = [OSError, ValueError, KeyError, ImportError, LockedError]
    # the command's own errors; a module the command never imported cannot have raised one (and
    # importing training code here would cost a `prepare` error seconds of Lightning start-up)
    for module, name in (("mmcl.datasets.multimodal", "MissingModalityError"), ("mmcl.training.run_dir", "RunDirectoryError"),
                         ("mmcl.training.module", "NonFiniteLossError")):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


def _is_override(token: str) -> bool:
    """``KEY=VALUE`` with a dotted or plain config key (not an option, not a path)."""
    key, sep, _ = token.partition("=")
    return bool(sep) and not token.startswith("-") and key.replace(".", "").replace("_", "").isalnum()


def parse_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """argparse, plus what users expect of KEY=VALUE overrides: they work wherever they stand
    (also after options), and ``--resume`` never takes one as its value."""
    args, extra = parser.parse_known_args(argv)
    if hasattr(args, "overrides"):
        if isinstance(getattr(args, "resume", None), str) and _is_override(args.resume) and not Path(args.resume).exists():
            args.overrides = [*args.overrides, args.resume]  # `--resume trainer.epochs=2`: a bare --resume, then an override
            args.resume = "auto"
        stray = [t for t in args.overrides if not _is_override(t)]
        if stray:
            parser.error(f"unrecognized arguments: {' '.join(stray)} (config overrides are KEY=VALUE, e.g. trainer.epochs=2)")
        found = Counter([*args.overrides, *(t for t in extra if _is_override(t))])
        args.overrides = []
        for token in argv:  # command-line order: a later override of a key wins
            if found[token]:
                found[token] -= 1
                args.overrides.append(token)
        extra = [t for t in extra if not _is_override(t)]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """The ``mmcl`` command; ``argv`` given: called in-process (tests, notebooks), which get their SIGTERM
    handler back. As a process (``argv`` None) a training that reported a stop keeps SIGTERM ignored until
    the interpreter has shut down, so the exit status stays 130 (see cmd_train)."""
    term = signal.getsignal(signal.SIGTERM)
    try:
        return _main(argv)
    finally:
        if argv is not None and term is not None:
            signal.signal(signal.SIGTERM, term)


def _main(argv: Sequence[str] | None) -> int:
    logging.basicConfig(level=os.environ.get("MMCL_LOGLEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    tokens = sys.argv[1:] if argv is None else list(argv)
    args = parse_arguments(parser, tokens)
    args.command_line = tokens  # what a stopped training prints as the command that continues it
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    from mmcl.memory import keep_freed_memory

    keep_freed_memory()  # large-batch CPU inference: no mmap/munmap per activation (mmcl.memory)
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("mmcl: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as exc:
        if os.environ.get("MMCL_DEBUG"):
            raise
        text = str(exc).strip()
        # a report of missing inputs lists names on further lines; anything else is one line
        message = text if hasattr(exc, "checks") else (text.splitlines()[0] if text else type(exc).__name__)
        if isinstance(exc, KeyError):
            message = f"unknown key {message}"
        print(f"mmcl: error: {message}  (MMCL_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
