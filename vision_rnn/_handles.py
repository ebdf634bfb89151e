"""One read handle per activation file and process, shared by every reader of :mod:`vision_rnn.store`.

HDF5 keeps one shared object per file and process; with two netCDF handles on
one file, closing one can leave that object freed under the other, and the next
open of the file crashes the interpreter (HDF5 issue 3649, netcdf4-python issue
1444). So readers borrow one reference-counted handle per file, identified by
device and inode: DataTrees through :class:`SharedFileManager` (xarray's
FileManager interface), attribute reads through :func:`reading`. A reader the
garbage collector takes gives its reference back at the next safe point, never
inside a finaliser. Writers call :func:`check_not_open` first.
"""

from __future__ import annotations

import collections
import os
import threading
from contextlib import contextmanager

from .errors import StoreError

class _Handle:
    """A netCDF4.Dataset opened read-only, shared by every reader of that file in this process."""

    def __init__(self, key, path: str, ds):
        self.key, self.path, self.ds, self.users = key, path, ds, 0


_HANDLES: dict = {}                      # (st_dev, st_ino) -> _Handle
_REGISTRY = threading.RLock()
_DEFERRED: collections.deque = collections.deque()   # handles released by garbage-collected readers


def netcdf_lock():
    from xarray.backends.netCDF4_ import NETCDF4_PYTHON_LOCK

    return NETCDF4_PYTHON_LOCK


def _file_key(path) -> tuple:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def _drain_deferred() -> None:
    """Release the handles of readers the garbage collector took, at a safe point (never in a finaliser)."""
    while _DEFERRED:
        try:
            h = _DEFERRED.popleft()
        except IndexError:
            return
        _release(h)


def _acquire(path, needs_lock: bool = True) -> _Handle:
    """The shared read handle of ``path`` (opened on first use); pair with :func:`_release`."""
    import netCDF4

    path = os.fspath(path)
    with _REGISTRY:
        _drain_deferred()
        try:
            key = _file_key(path)
        except OSError as e:
            raise StoreError(f"{path}: cannot be read ({e.strerror or e})") from None
        h = _HANDLES.get(key)
        if h is None:
            lock = netcdf_lock() if needs_lock else None
            try:
                if lock is not None:
                    lock.acquire()
                try:
                    ds = netCDF4.Dataset(path, "r")
                finally:
                    if lock is not None:
                        lock.release()
            except OSError as e:
                raise StoreError(f"{path}: not a readable netCDF file ({str(e).splitlines()[0]}); "
                                 "pass an activation file written by vrnn extract") from None
            h = _HANDLES[key] = _Handle(key, path, ds)
        h.users += 1
        return h


def _release(h: _Handle, needs_lock: bool = True) -> None:
    with _REGISTRY:
        h.users -= 1
        if h.users > 0 or _HANDLES.get(h.key) is not h:
            return
        del _HANDLES[h.key]
        lock = netcdf_lock() if needs_lock else None
        if lock is not None:
            lock.acquire()
        try:
            if h.ds.isopen():
                h.ds.close()
        finally:
            if lock is not None:
                lock.release()


@contextmanager
def reading(path):
    """The shared read handle of ``path`` for the length of a ``with`` block."""
    h = _acquire(path)
    try:
        yield h.ds
    finally:
        _release(h)


def check_not_open(path) -> None:
    """Writers: refuse a file this process holds open for reading (HDF5 cannot open it twice)."""
    with _REGISTRY:
        _drain_deferred()
        try:
            key = _file_key(path)
        except OSError:
            return
        if key in _HANDLES:
            raise StoreError(f"{path}: open for reading in this process (a DataTree from open_activations); "
                             "close it (tree.close()) before writing to the file")


def is_open(path) -> bool:
    """Whether this process holds a read handle on ``path`` (for tests and diagnostics)."""
    with _REGISTRY:
        _drain_deferred()
        try:
            return _file_key(path) in _HANDLES
        except OSError:
            return False


class SharedFileManager:
    """xarray's FileManager interface over the shared handle of one file.

    Every DataTree from :func:`open_activations` holds one of these; ``close`` (from
    ``tree.close()`` or any node's close) gives its reference back once, and reading
    after a close takes a new one, as xarray's own CachingFileManager reopens files
    (given back when the tree is collected). A manager the garbage collector takes
    hands its reference back at the next safe point. Pickled (dask's multiprocessing), it reopens the file by path.
    """

    def __init__(self, path):
        self._path = os.fspath(path)
        self._handle = _acquire(self._path)

    def acquire(self, needs_lock: bool = True):
        if self._handle is None:
            self._handle = _acquire(self._path, needs_lock)
        return self._handle.ds

    @contextmanager
    def acquire_context(self, needs_lock: bool = True):
        yield self.acquire(needs_lock)

    def close(self, needs_lock: bool = True) -> None:
        h, self._handle = self._handle, None
        if h is not None:
            _release(h, needs_lock)

    def __del__(self):
        h, self._handle = getattr(self, "_handle", None), None
        if h is not None:
            _DEFERRED.append(h)

    def __reduce__(self):
        return (type(self), (self._path,))
