"""Nothing half-written: files and sets of files appear whole or not at all.

- :func:`atomic_write` writes one file to a temporary name beside it and renames it.
- :func:`file_set` writes the files of a report into a temporary folder beside the
  target folder and moves them in at the end as one set: the target holds the old
  report or the whole new one, and files of other kinds in it are left alone.

Temporary names carry the writer's identity, ``.<name>.partial-<pid>-<start>-<boot>``
(process id, the process's start time, and the first 8 characters of the kernel's boot
id), so "left by a dead run" has one definition (:func:`left_by_dead_run`): another
boot, or no live process with that id and start time. Every write first cleans such
leftovers beside its target (:func:`clean_stale`); a file set whose move had begun
when its run died is moved in to the end, one that had not is deleted.

Files and folders are created with the permissions the umask gives (as ``open`` and
``mkdir`` do), never the private 0600/0700 of ``tempfile``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path
from typing import Callable, Iterable

COMMIT = ".vrnn-commit.json"     # inside a file set's temporary folder: the move into the target has begun
_TEMP = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)-(?P<start>\d+)-(?P<boot>[0-9a-f]{8}|none)"
                   r"(?:-[0-9a-f]{6})?$")


# -- who wrote it, and is that run still alive ---------------------------------------------------
def boot_id() -> str:
    """The first 8 hex digits of this boot's id (Linux), else "none"."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:8] or "none"
    except OSError:
        return "none"


def process_start(pid: int) -> int:
    """Start time of process ``pid`` in clock ticks since boot (Linux), 0 where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (exited, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] not in "ZX"
    except (OSError, ValueError, IndexError):
        return True


def umask() -> int:
    """This process's umask (read without changing it where Linux allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _public(path: Path) -> None:
    """Give a file the permissions ``open`` would (some writers, e.g. safetensors, make it 0600)."""
    os.chmod(path, 0o666 & ~umask())


def temp_path(target) -> Path:
    """A temporary name beside ``target`` that records this process (see the module docstring)."""
    target = Path(target)
    pid = os.getpid()
    return target.with_name(f".{target.name}.partial-{pid}-{process_start(pid)}-{boot_id()}-{uuid.uuid4().hex[:6]}")


def this_process() -> dict:
    """The identity a run records in what it writes: process id, start time, boot id."""
    pid = os.getpid()
    return {"pid": pid, "start": process_start(pid), "boot": boot_id()}


def is_dead(record: dict) -> bool:
    """Whether the run that wrote ``record`` (see :func:`this_process`) has ended: another boot, no
    live process with that id, or a live one that started at another time (the id was reused)."""
    try:
        pid, start, boot = int(record["pid"]), int(record.get("start", 0)), str(record.get("boot", "none"))
    except (KeyError, TypeError, ValueError):
        return True
    here = boot_id()
    if boot != here and "none" not in (boot, here):
        return True
    if not _alive(pid):
        return True
    now = process_start(pid)
    return bool(start and now and now != start)


def left_by_dead_run(path) -> bool:
    """Whether ``path`` is a temporary file or folder of :mod:`vision_rnn.atomic` whose run has ended."""
    m = _TEMP.match(Path(path).name)
    return m is not None and is_dead({"pid": m["pid"], "start": m["start"], "boot": m["boot"]})


def clean_stale(folder) -> list[Path]:
    """Remove (or finish moving in) what dead runs left in ``folder``; return what was handled."""
    folder = Path(folder)
    done = []
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(".") and ".partial-" in e.name]
    except OSError:
        return done
    for e in entries:
        p = Path(e.path)
        if not left_by_dead_run(p):
            continue
        try:
            if p.is_dir() and (p / COMMIT).exists():
                _move_in(p)                         # the move had begun: finish it
            elif p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
            done.append(p)
        except OSError:
            continue                                # another process got there first
    return done


# -- one file ------------------------------------------------------------------------------------
def _no_space(e: BaseException, target) -> BaseException:
    """A full disk (or quota) while writing ``target`` as the user's error, one line; anything else as it is."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        from .errors import VRNNError

        return VRNNError(f"{target}: no space left on the device ({e.strerror}); nothing was changed: free "
                         "space or write elsewhere, and run again")
    return e


def atomic_write(path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary name beside ``path``, then rename it to ``path``.

    If ``write`` fails, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    clean_stale(path.parent)
    tmp = temp_path(path)
    try:
        write(tmp)
        _public(tmp)
        os.replace(tmp, path)
    except OSError as e:
        err = _no_space(e, path)
        if err is e:
            raise
        raise err from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


# -- a set of files --------------------------------------------------------------------------------
def owned_files(folder, patterns: Iterable[str]) -> list[str]:
    """Names of the files in ``folder`` that match one of ``patterns`` (fnmatch)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pats = list(patterns)
    return sorted(p.name for p in folder.iterdir() if p.is_file() and any(fnmatch(p.name, x) for x in pats))


def check_set_folder(out, owns: Iterable[str], overwrite: bool, what: str = "a report") -> Path:
    """Refuse (VRNNError) a folder for a file set that is a file, whose parent is missing, or that
    holds files of an earlier set (``owns`` patterns) when ``overwrite`` is False."""
    from .errors import VRNNError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise VRNNError(f"`out={out}`: exists and is not a folder; choose a folder for {what}")
    if not out.parent.exists():
        raise VRNNError(f"`out={out}`: folder {out.parent} does not exist; create it or choose another `out`")
    old = owned_files(out, owns)
    if old and not overwrite:
        raise VRNNError(f"`out={out}`: holds {what} from an earlier run ({', '.join(old[:3])}"
                        f"{' ...' if len(old) > 3 else ''}); pass `overwrite=True` to replace it or choose another `out`")
    return out


@contextmanager
def file_set(target, owns: Iterable[str] = ()):
    """Write files into the yielded temporary folder; at the end they replace the set in ``target``.

    ``owns`` are the patterns of the files the set replaces: files of ``target`` that
    match them and that the new set does not hold are removed; every other file of
    ``target`` stays. On an exception nothing in ``target`` changes.

    >>> with file_set("report", owns=["*.png", "summary.json"]) as tmp:     # doctest: +SKIP
    ...     (tmp / "summary.json").write_text("{}")
    """
    target = Path(target)
    clean_stale(target.parent)
    tmp = temp_path(target)
    tmp.mkdir()
    try:
        yield tmp
        new = sorted(p.name for p in tmp.iterdir())
        for name in new:
            _public(tmp / name)
        stale = [n for n in owned_files(target, owns) if n not in new]
        record = tmp / (COMMIT + ".tmp")
        record.write_text(json.dumps({"target": str(target.resolve()), "files": new, "remove": stale}))
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        err = _no_space(e, target)
        if err is e:
            raise
        raise err from None
    os.replace(record, tmp / COMMIT)                # from here on the set is moved in, even by a later run
    _move_in(tmp)                                   # renames only: needs no space


def _move_in(tmp: Path) -> None:
    """Move the files of a committed temporary folder into its target, remove the stale ones, then the folder."""
    plan = json.loads((tmp / COMMIT).read_text())
    target = Path(plan["target"])
    target.mkdir(parents=True, exist_ok=True)
    for name in plan["files"]:
        if (tmp / name).exists():
            os.replace(tmp / name, target / name)
    for name in plan["remove"]:
        try:
            (target / name).unlink()
        except FileNotFoundError:
            pass
    (tmp / COMMIT).unlink()
    tmp.rmdir()


def safe_name(name: str) -> str:
    """``name`` with every character other than letters, digits, ``_``, ``.`` and ``-`` made ``_``,
    so it can be a file or group name anywhere.

    >>> safe_name("IT/posterior (left)")
    'IT_posterior__left_'
    """
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(name))


def remove(path) -> None:
    """Remove a file or a folder (a Zarr store, say) if it is there."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def replace(src, dst) -> None:
    """Move the file or folder ``src`` to ``dst``, replacing what is there (a folder: moved aside
    first, then removed: a failure leaves the old folder or the new one whole)."""
    src, dst = Path(src), Path(dst)
    if (src.is_dir() or dst.is_dir()) and dst.exists():
        aside = dst.with_name(f".{os.getpid()}.replaced.{dst.name}")
        remove(aside)
        os.replace(dst, aside)
        os.replace(src, dst)
        remove(aside)
        return
    os.replace(src, dst)
