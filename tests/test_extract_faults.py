"""Faults that keep progress: a full disk, a killed writer or main process, two runs at once,
images replaced between runs, and images that only a full decode shows to be bad.

Each scenario runs `vrnn extract` as a lab runs it: a separate process, killed or starved
from outside, then resumed, and the result compared value for value with a run that
was never interrupted.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vision_rnn as vrnn
from vision_rnn import _locks

N_IMAGES = 96
BATCH = 4


def write_images(folder: Path, n: int = N_IMAGES, size: int = 48, fmt: str = "png") -> Path:
    """``n`` seeded random images in two class folders."""
    rng = np.random.default_rng(0)
    for i in range(n):
        d = folder / ("coat" if i % 2 else "bag")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(d / f"{i:03d}.{fmt}")
    return folder


def cli(*args, **kwargs):
    cmd = [sys.executable, "-m", "vision_rnn", "extract", "--model", "lateral", "--weights", "random", "-q",
           *[str(a) for a in args]]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, [l for l in err.splitlines() if l.strip()]


# a slow, large extraction: every layer uncompressed, small batches, one decoding process
SLOW = ["--batch-size", str(BATCH), "--compression", "none", "--workers", "1"]


def batches_done(partial: Path) -> int:
    """batches_done of a partial that another process writes (read without the package's refusal)."""
    import netCDF4

    try:
        with netCDF4.Dataset(partial) as ds:
            return int(ds.getncattr("batches_done"))
    except (OSError, RuntimeError, AttributeError):
        return 0


def written(partial: Path) -> int:
    """Batches a running extraction has written, from its sources record (the file itself is
    locked by HDF5 while the writer has it open)."""
    from vision_rnn.extract import SOURCE, sources_path

    try:
        return sources_path(partial).stat().st_size // SOURCE.itemsize // BATCH
    except OSError:
        return 0


def wait_for(cond, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    raise AssertionError("timed out")


def lock_record(partial: Path) -> dict:
    return json.loads(_locks.lock_path(partial).read_text())


def assert_same(a: Path, b: Path):
    with vrnn.open_activations(a) as x, vrnn.open_activations(b) as y:
        assert list(x["stimulus"].values) == list(y["stimulus"].values)
        np.testing.assert_array_equal(x["logits"].values, y["logits"].values)
        assert set(x.children) == set(y.children)
        for name in x.children:
            np.testing.assert_array_equal(vrnn.layer(x, name).values, vrnn.layer(y, name).values)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("faults") / "images", fmt="jpg")


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.nc"
    code, _, err = finish(cli("--stimuli", folder, "-o", out, *SLOW))
    assert code == 0, err
    return out


# -- 4. a full disk ------------------------------------------------------------------------------
SCRIPT_DISK_FULL = r"""
import os, subprocess, sys, time
folder, small, out = sys.argv[1:4]
cmd = [sys.executable, "-m", "vision_rnn", "extract", "--model", "lateral", "--weights", "random", "-q",
       "--stimuli", folder, "-o", os.path.join(small, "x.nc"), "--batch-size", "4", "--compression", "none",
       "--workers", "1"]
run = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
partial = os.path.join(small, "x.nc.partial")
while not (os.path.exists(partial) and os.path.getsize(partial) > 6 * 2**20):
    time.sleep(0.005)
    assert run.poll() is None, "finished before the disk was filled"
filler = os.path.join(small, "filler")
with open(filler, "wb") as fh:                     # take every free block, as another program would
    try:
        while True:
            fh.write(b"\0" * 2**20)
            fh.flush()
    except OSError:
        pass
err = run.communicate()[1]
print("RC", run.returncode)
print("ERR", err.strip())
print("KEPT", os.path.exists(partial))
os.unlink(filler)
done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
print("RESUME", done.returncode, done.stderr.strip())
if done.returncode == 0:
    import shutil
    shutil.copyfile(os.path.join(small, "x.nc"), out)    # out of the mount, which ends with this process
"""


@pytest.mark.slow
def test_disk_full_keeps_the_batches_and_resume_completes_equal(folder, reference, tmp_path):
    """A disk that fills during the run (a real tmpfs, filled from outside): exit 2, one line,
    the .partial kept; after freeing space --resume gives the uninterrupted file."""
    small = tmp_path / "small"
    small.mkdir()
    script = tmp_path / "disk_full.py"
    script.write_text(SCRIPT_DISK_FULL)
    out = tmp_path / "resumed.nc"
    unshare = ["unshare", "-m", "--propagation", "private"] + ([] if os.geteuid() == 0 else ["-r"])
    shell = f"mount -t tmpfs -o size=200M tmpfs {small} && {sys.executable} {script} {folder} {small} {out}"
    done = subprocess.run(unshare + ["sh", "-c", shell], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    report = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert report.get("RC") == "2", done.stdout + done.stderr
    err = report["ERR"]
    assert "\n" not in err and "the disk is full" in err and "--resume" in err and "keeps the" in err, err
    assert report["KEPT"] == "True"
    assert report["RESUME"].startswith("0"), report["RESUME"]
    assert_same(out, reference)


# -- 5. the writer killed --------------------------------------------------------------------------
def test_killed_writer_keeps_the_batches_and_resume_completes_equal(folder, reference, tmp_path):
    out = tmp_path / "k.nc"
    partial = out.with_name("k.nc.partial")
    run = cli("--stimuli", folder, "-o", out, *SLOW)
    wait_for(lambda: written(partial) >= 3)
    os.kill(run.pid, signal.SIGSTOP)                                     # hold the run mid-way
    os.kill(lock_record(partial)["writer"]["pid"], signal.SIGKILL)       # as the out-of-memory killer does
    os.kill(run.pid, signal.SIGCONT)
    code, _, err = finish(run)
    assert code == 2 and len(err) == 1, err
    assert "writer process was killed (signal 9" in err[0] and "--resume" in err[0]
    assert partial.exists() and batches_done(partial) >= 2          # the batch being counted may be lost
    code, _, err = finish(cli("--stimuli", folder, "-o", out, *SLOW, "--resume"))
    assert code == 0, err
    assert_same(out, reference)


# -- 6. two runs at once; the lock belongs to the main process ---------------------------------------
@pytest.mark.slow
def test_a_second_run_is_refused_naming_the_first(folder, tmp_path):
    out = tmp_path / "two.nc"
    partial = out.with_name("two.nc.partial")
    first = cli("--stimuli", folder, "-o", out, *SLOW)
    wait_for(lambda: written(partial) >= 1)
    os.kill(first.pid, signal.SIGSTOP)                                   # still running, held mid-way
    for extra in ([], ["--overwrite"], ["--resume"]):
        code, _, err = finish(cli("--stimuli", folder, "-o", out, *SLOW, *extra))
        assert code == 2 and len(err) == 1, err
        assert f"being written by process {first.pid}" in err[0], err
    os.kill(first.pid, signal.SIGCONT)
    code, _, err = finish(first)
    assert code == 0, err


@pytest.mark.slow
def test_resume_right_after_the_main_process_was_killed(folder, reference, tmp_path):
    """SIGKILL of the main process: its writer may still be finishing; a resume started at once is
    not refused (it waits for that writer), and completes equal."""
    out = tmp_path / "m.nc"
    partial = out.with_name("m.nc.partial")
    run = cli("--stimuli", folder, "-o", out, *SLOW)
    wait_for(lambda: written(partial) >= 2)
    os.kill(run.pid, signal.SIGSTOP)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    code, _, err = finish(cli("--stimuli", folder, "-o", out, *SLOW, "--resume"))
    assert code == 0, err
    assert_same(out, reference)


@pytest.mark.slow
@pytest.mark.parametrize("who", ["dead process", "another boot"])
def test_a_stale_lock_is_not_a_false_positive(folder, reference, tmp_path, who):
    out = tmp_path / "s.nc"
    partial = out.with_name("s.nc.partial")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    record = {"pid": int(dead), "start": 1, "boot": "none"} if who == "dead process" else \
        {"pid": os.getpid(), "start": 1, "boot": "00000000"}
    _locks.lock_path(partial).write_text(json.dumps({**record, "since": "2026-01-01T00:00:00"}))
    code, _, err = finish(cli("--stimuli", folder, "-o", out, *SLOW))
    assert code == 0, err
    assert not _locks.lock_path(partial).exists()
    assert_same(out, reference)


# -- 7. an image replaced between runs ------------------------------------------------------------
def interrupted_copy(folder: Path, dest: Path, after_batches: int) -> tuple[Path, Path]:
    """A copy of ``folder`` extracted into a .partial with ``after_batches`` batches: the run is
    stopped by a truncated image right after them (then the image is restored)."""
    shutil.copytree(folder, dest)
    ids = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.jpg"))
    victim = dest / ids[after_batches * BATCH]
    original = victim.read_bytes()
    victim.write_bytes(original[: len(original) // 2])                    # a truncated JPEG
    out = dest.parent / f"{dest.name}.nc"
    code, _, err = finish(cli("--stimuli", dest, "-o", out, *SLOW))
    assert code == 2 and len(err) == 1, err
    victim.write_bytes(original)
    partial = out.with_name(out.name + ".partial")
    assert batches_done(partial) >= 1
    return out, partial


@pytest.mark.slow
def test_resume_refuses_an_image_replaced_after_it_was_written(folder, reference, tmp_path):
    out, partial = interrupted_copy(folder, tmp_path / "imgs", after_batches=5)
    first = sorted((tmp_path / "imgs").rglob("*.jpg"))[0]
    original, stat = first.read_bytes(), first.stat()
    other = bytearray(original)
    other[len(other) // 2] ^= 0x55                                        # the same size, other pixels
    first.write_bytes(bytes(other))
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    code, _, err = finish(cli("--stimuli", tmp_path / "imgs", "-o", out, *SLOW, "--resume"))
    assert code == 2 and len(err) == 1, err
    assert "already written have changed since" in err[0] and first.relative_to(tmp_path / "imgs").as_posix() in err[0]
    assert partial.exists()
    first.write_bytes(original)                                           # restored: the resume goes on
    code, _, err = finish(cli("--stimuli", tmp_path / "imgs", "-o", out, *SLOW, "--resume"))
    assert code == 0, err
    assert_same(out, reference)


@pytest.mark.slow
def test_a_touched_but_unchanged_image_resumes(folder, reference, tmp_path):
    out, _ = interrupted_copy(folder, tmp_path / "imgs", after_batches=3)
    first = sorted((tmp_path / "imgs").rglob("*.jpg"))[0]
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))   # same bytes
    code, _, err = finish(cli("--stimuli", tmp_path / "imgs", "-o", out, *SLOW, "--resume"))
    assert code == 0, err
    assert_same(out, reference)


# -- 8. images only a full decode shows to be bad ---------------------------------------------------
def truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_jpegs_before_the_first_batch_leave_nothing_and_are_all_named(tmp_path):
    imgs = write_images(tmp_path / "jpg", n=24, size=64, fmt="jpg")
    files = sorted(imgs.rglob("*.jpg"))
    truncate(files[0])                                   # in the first batch: passes the header check
    truncate(files[17])                                  # later: named too (a small folder is decoded whole)
    files[9].write_bytes(b"not an image")                # a header-check failure
    out = tmp_path / "t.nc"
    code, _, err = finish(cli("--stimuli", imgs, "-o", out, *SLOW))
    assert code == 2 and len(err) == 1, err
    assert "3 unreadable image(s)" in err[0], err
    for f in (files[0], files[9], files[17]):
        assert f.relative_to(imgs).as_posix() in err[0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("t.nc")]


def test_a_truncated_jpeg_later_keeps_the_batches_and_resume_continues(tmp_path):
    imgs = write_images(tmp_path / "jpg", n=40, size=64, fmt="jpg")
    files = sorted(imgs.rglob("*.jpg"))
    ids = sorted(f.relative_to(imgs).as_posix() for f in files)
    bad = imgs / ids[6 * BATCH + 1]                          # in the seventh batch
    truncate(bad)
    out = tmp_path / "t.nc"
    code, _, err = finish(cli("--stimuli", imgs, "-o", out, *SLOW))
    assert code == 2 and len(err) == 1, err
    assert bad.relative_to(imgs).as_posix() in err[0] and "keeps the" in err[0] and "--resume" in err[0], err
    partial = out.with_name("t.nc.partial")
    assert partial.exists() and batches_done(partial) >= 1
    # the user skips the bad file: the stimuli after the written ones change, the resume carries them over
    code, _, err = finish(cli("--stimuli", imgs, "-o", out, *SLOW, "--resume", "--skip-bad"))
    assert code == 0, err
    os.unlink(bad)                                             # the same run, fresh, on the folder without it
    fresh = tmp_path / "fresh.nc"
    code, _, err = finish(cli("--stimuli", imgs, "-o", fresh, *SLOW))
    assert code == 0, err
    assert_same(out, fresh)
    with vrnn.open_activations(out) as tree:
        assert json.loads(tree.attrs["skipped"]) == [bad.relative_to(imgs).as_posix()]
