"""The writer side of an extraction: a process that writes finished batches into the file.

netCDF4 holds the GIL while it writes, so a writer thread would not overlap with the
forward pass: a forked process does. Batches travel to it through a small ring of
shared-memory slots (one copy, no pickling). After each batch it syncs the data,
appends the batch's image records to ``<out>.partial.sources``, then counts the batch
in ``batches_done`` and syncs again: a batch counted is a batch on disk. It reports each
batch to the extraction, ignores Ctrl-C (the extraction tells it to finish the batches
it holds) and stops by itself once the extraction's process is gone.
"""

from __future__ import annotations

import math
import mmap
import multiprocessing as mp
import os
import queue
import shutil
import traceback
from pathlib import Path

import numpy as np

from . import _locks, store
from .errors import WriteFailed

SLOTS = 3


def sources_path(partial: Path) -> Path:
    """``<out>.partial.sources``: size, mtime and hash of each image file already written."""
    return partial.with_name(partial.name + ".sources")


def slot_views(buf, offset0: int, layout) -> dict:
    views, off = {}, offset0
    for s in layout.specs:
        shape = (layout.batch_size, layout.timesteps, s.n)
        views[s.name] = np.ndarray(shape, dtype=s.stored, buffer=buf, offset=off)
        off += int(np.prod(shape)) * np.dtype(s.stored).itemsize
    return views


class Writer:
    """The writer process and the way to it: shared-memory slots, a work queue, its reports."""

    def __init__(self, partial, layout, done):
        ctx = mp.get_context("fork")
        self.partial, self.layout, self.done = partial, layout, done
        self.slot_bytes = layout.batch_nbytes()
        self.buf = mmap.mmap(-1, self.slot_bytes * SLOTS)    # shared with the forked writer
        self.work, self.free, self.result = ctx.Queue(), ctx.Queue(), ctx.Queue()
        for s in range(SLOTS):
            self.free.put(s)
        self.proc = ctx.Process(target=_main, daemon=True,
                                args=(str(partial), self.buf, self.slot_bytes, layout, self.work, self.free,
                                      self.result, os.getpid()))
        self.proc.start()
        _locks.note_writer(partial, self.proc.pid)

    def slot(self) -> int:
        while True:
            try:
                return self.free.get(timeout=0.2)
            except queue.Empty:
                self.poll()

    def poll(self, block: float = 0.0) -> bool:
        """Take the writer's reports; True once it has finished. Raises what stopped it."""
        while True:
            try:
                status = self.result.get(timeout=block) if block else self.result.get_nowait()
            except queue.Empty:
                if not self.proc.is_alive():
                    self._died()
                return False
            if status[0] == "batch":
                self.done[0] = status[1]
            elif status[0] == "ok":
                return True
            else:
                raise self._failed(status[1])

    def _died(self):
        # a report may have arrived just before it exited
        try:
            while True:
                status = self.result.get_nowait()
                if status[0] == "batch":
                    self.done[0] = status[1]
                elif status[0] == "error":
                    raise self._failed(status[1])
        except queue.Empty:
            pass
        code = self.proc.exitcode
        how = f"was killed (signal {-code}{', e.g. by the out-of-memory killer' if code == -9 else ''})" \
            if code is not None and code < 0 else f"exited (code {code})"
        raise WriteFailed(f"the writer process {how}", "find out why (memory, a signal)")

    def _failed(self, msg: str):
        folder = self.partial.parent
        free = shutil.disk_usage(folder).free
        total = math.ceil(self.layout.n_stimuli / self.layout.batch_size)
        need = (total - self.done[0]) * self.slot_bytes
        if "No space left" in msg or "ENOSPC" in msg or free < 2 * self.slot_bytes:
            return WriteFailed(f"{folder}: the disk is full ({free / 2**20:.1f} MiB free; the batches left need up "
                                f"to {need / 2**20:.1f} MiB uncompressed)", "free space")
        if msg.startswith("OSError"):
            return WriteFailed(f"writing the activation file failed: {msg.strip().splitlines()[-1]}",
                                "fix the cause")
        return RuntimeError(f"the writer process failed:\n{msg}")

    def finish(self):
        self.work.put(None)
        while not self.poll(block=0.5):
            pass
        self.proc.join()

    def stop(self, gently: bool):
        """Ctrl-C: let it write the batches already handed to it; on an error: stop it now."""
        if gently:
            self.work.put(None)
            self.proc.join(timeout=60)
        if self.proc.is_alive():
            self.proc.terminate()
        self.proc.join()
        try:
            self.poll()
        except BaseException:
            pass
        self.buf.close()


def _main(path, buf, slot_bytes, layout, work, free, result, parent_pid):
    """Writer process: take filled slots, write them, sync, free the slot, report the batch."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C: the extraction tells it to finish its batches
    sources = None
    try:
        with store.appending(path, check=False) as ds:
            targets = {s.name: (ds.variables[s.name] if s.group is None else ds.groups[s.group].variables["activation"])
                       for s in layout.specs}
            for v in targets.values():
                v.set_auto_maskandscale(False)
            while True:
                try:
                    item = work.get(timeout=0.5)
                except queue.Empty:
                    if os.getppid() != parent_pid:  # the extraction was killed: stop cleanly
                        break
                    continue
                if item is None:
                    break
                slot, lo, k, b, recs = item
                views = slot_views(buf, slot * slot_bytes, layout)
                store.write_rows(ds, targets, lo, views, k)
                ds.sync()                            # the data on disk before it is counted
                if recs is not None:                 # and its sources: a batch counted is a batch checked
                    if sources is None:
                        sources = open(sources_path(Path(path)), "ab")
                    sources.write(recs.tobytes())
                    sources.flush()
                    os.fsync(sources.fileno())
                ds.setncattr("batches_done", b + 1)
                ds.sync()
                free.put(slot)
                result.put(("batch", b + 1))
        result.put(("ok", ""))
    except BaseException:
        result.put(("error", traceback.format_exc()))
    finally:
        if sources is not None:
            sources.close()
