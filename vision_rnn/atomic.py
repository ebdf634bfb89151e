"""Nothing half-written: every file the toolkit writes goes to ``<path>.partial`` first."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def atomic_write(path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on ``<path>.partial``, then rename it to ``path``.

    If ``write`` fails, the partial file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))
