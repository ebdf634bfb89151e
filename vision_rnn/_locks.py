"""Who is writing a ``.partial``: a lock file beside it naming the process (and its writer process).

The lock belongs to the process that runs the extraction; once that process has
ended (killed, crashed, the machine rebooted) the lock is stale and the next run
takes it over. Readers and other writers ask :func:`writer_of` / :func:`being_written`.
"""

from __future__ import annotations

import datetime
import json
import os
from contextlib import contextmanager
from pathlib import Path

from .errors import StoreError

__all__ = ["being_written", "lock_path", "note_writer", "writer_of", "writing"]


def lock_path(partial) -> Path:
    return Path(partial).with_name(Path(partial).name + ".lock")


def writer_of(partial) -> dict | None:
    """The live process writing ``partial`` (its lock record), or None."""
    from .atomic import is_dead

    lock = lock_path(partial)
    try:
        record = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    if not is_dead(record):
        return record
    writer = record.get("writer")
    if isinstance(writer, dict) and not is_dead(writer):   # the extraction was killed; its writer still finishes
        return {**record, "pid": writer["pid"]}
    lock.unlink(missing_ok=True)                 # left by a run that was killed
    return None


def being_written(partial) -> str:
    w = writer_of(partial)
    return "" if w is None else (f"{partial}: being written by process {w['pid']} (vrnn extract, since "
                                 f"{w.get('since', '?')}); wait for it to finish, or stop it and resume")


ORPHAN_WAIT_S = 60.0


def _wait_for_orphan_writer(partial, record) -> None:
    """The run that wrote ``partial``'s lock (``record``) is dead; its writer process may still be
    finishing the batches it was handed. Wait for it (it stops within a batch or two), then clear
    the lock."""
    import time

    from .atomic import is_dead

    lock = lock_path(partial)
    if not isinstance(record, dict):
        return
    writer = record.get("writer")
    deadline = time.monotonic() + ORPHAN_WAIT_S
    while isinstance(writer, dict) and not is_dead(writer):
        if time.monotonic() > deadline:
            raise StoreError(f"{partial}: the writer process {writer.get('pid')} of a stopped run is still "
                             "writing; wait for it to exit (or stop it), then resume")
        time.sleep(0.05)
    lock.unlink(missing_ok=True)


@contextmanager
def writing(partial):
    """Hold ``<partial>.lock`` for as long as this process writes ``partial``: other processes
    then refuse to write it and say who is writing it.

    The lock belongs to the process that runs the extraction: once it has ended (killed,
    crashed, or the machine rebooted) the lock is stale and the next run takes it over,
    after waiting for a writer process the dead run left behind to finish its batches."""
    from .atomic import is_dead, this_process

    lock = lock_path(partial)
    try:
        record = json.loads(lock.read_text())
    except (OSError, ValueError):
        record = None
    if isinstance(record, dict) and not is_dead(record):
        raise StoreError(being_written(partial) or f"{partial}: another process started writing it")
    _wait_for_orphan_writer(partial, record)
    record = {**this_process(), "since": datetime.datetime.now().isoformat(timespec="seconds")}
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except FileExistsError:
        raise StoreError(being_written(partial) or f"{partial}: another process started writing it") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(record))
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def note_writer(partial, pid: int) -> None:
    """Record in ``partial``'s lock the process that writes its batches (it may outlive the extraction)."""
    from .atomic import atomic_text, process_start

    lock = lock_path(partial)
    try:
        record = json.loads(lock.read_text())
    except (OSError, ValueError):
        return
    record["writer"] = {"pid": int(pid), "start": process_start(pid), "boot": record.get("boot", "none")}
    atomic_text(lock, json.dumps(record))
