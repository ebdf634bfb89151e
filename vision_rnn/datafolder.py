"""Where shared data sets live: ``$VRNN_DATA`` if set, else ``../shared/data`` next to the project.

The 92-image set, the MEG RDMs and the BrainIO examples are read from there by
name; every reader also takes an explicit path.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError

__all__ = ["data_dir", "data_folder"]


def data_dir(name: str | None = None) -> Path:
    """The shared data folder: ``$VRNN_DATA`` if set, else ``../shared/data`` next to the project
    (or the working directory); ``name`` is a sub-folder. DataError if none exists."""
    env = os.environ.get("VRNN_DATA")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[1].parent / "shared" / "data",
                   Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c / name if name else c
    where = ", ".join(str(c) for c in candidates)
    raise DataError(f"no data folder found (looked in {where}); set VRNN_DATA to the folder that holds "
                    f"{name or 'the data sets'} or pass the path explicitly")


def data_folder(path, sub: str, needed: tuple) -> Path:
    """``path`` (or ``data_dir(sub)`` when None) if it holds every file of ``needed``, else DataError."""
    folder = Path(path) if path is not None else data_dir(sub)
    missing = [f for f in needed if not (folder / f).exists()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}; pass the folder that holds "
                        f"{', '.join(needed)} (or set VRNN_DATA to the folder above '{sub}')")
    return folder
