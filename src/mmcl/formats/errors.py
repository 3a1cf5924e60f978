"""The error every raw-format reader raises: it names the file, the sample and the problem."""

from __future__ import annotations

import struct
import tokenize
import zipfile
from pathlib import Path

__all__ = ["DataError", "READ_ERRORS", "first_line"]

# What numpy, zipfile and json raise on a damaged file (a truncated header, a garbled shape literal
# in an .npy header (tokenize/SyntaxError), a broken zip directory, a wrong mmap length): readers
# turn these into their own error naming the file.
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, EOFError, IndexError, KeyError, TypeError, SyntaxError, tokenize.TokenError,
    struct.error, zipfile.BadZipFile, MemoryError, OverflowError,
)


class DataError(ValueError):
    """Unreadable or invalid input data; the message names the file, the sample and the problem.

    Constructed as ``DataError(problem, path=..., sample=...)``; a single positional message
    also works (so the error survives pickling and DataLoader worker re-raising).
    """

    def __init__(self, problem: str, path: str | Path | None = None, sample: str | int | None = None) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if sample is not None:
            where.append(f"sample {sample}")
        message = f"{', '.join(where)}: {problem}" if where else problem
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.sample = sample
        self.problem = problem


def first_line(exc: BaseException, limit: int | None = 200) -> str:
    """The first line of an exception's message (at most ``limit`` characters), or its type name."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
