"""Nothing half-written: atomic files, reports written as one set, leftovers of dead runs, the umask."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from vision_rnn import atomic
from vision_rnn.atomic import atomic_write, clean_stale, file_set, left_by_dead_run, temp_path
from vision_rnn.errors import VRNNError
from vision_rnn.report import REPORT_FILES

from synthetic import settling_network, write_activations
from clirun import run


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def acts(tmp_path_factory):
    gap, labels, w = settling_network(n_per_class=10, n_classes=3, timesteps=4, units=12)
    path = tmp_path_factory.mktemp("acts") / "acts.nc"
    return write_activations(path, {"gap": gap}, labels, w, classes=["cat", "dog", "car"])


# -- "left by a dead run": one definition ---------------------------------------------------------
def test_left_by_dead_run(tmp_path):
    mine = temp_path(tmp_path / "report")
    assert mine.name.startswith(".report.partial-") and not left_by_dead_run(mine)
    pid, start, boot = os.getpid(), atomic.process_start(os.getpid()), atomic.boot_id()
    assert start > 0 and len(boot) == 8
    assert left_by_dead_run(tmp_path / f".report.partial-{dead_pid()}-{start}-{boot}")        # process gone
    assert left_by_dead_run(tmp_path / f".report.partial-{pid}-{start + 1}-{boot}")           # pid reused
    other = "0" * 8 if boot != "0" * 8 else "1" * 8
    assert left_by_dead_run(tmp_path / f".report.partial-{pid}-{start}-{other}")               # another boot
    assert not left_by_dead_run(tmp_path / f".report.partial-{pid}-{start}-{boot}")
    for name in ("report", "acts.nc.partial", ".report.partial", f"report.partial-{dead_pid()}-1-{boot}"):
        assert not left_by_dead_run(tmp_path / name)                   # not ours: never touched


def test_clean_stale_removes_only_what_dead_runs_left(tmp_path):
    boot = atomic.boot_id()
    dead_dir = tmp_path / f".r.partial-{dead_pid()}-5-{boot}"
    dead_dir.mkdir()
    (dead_dir / "x.png").write_bytes(b"half")
    dead_file = tmp_path / f".w.safetensors.partial-{dead_pid()}-5-{boot}"
    dead_file.write_bytes(b"half")
    alive = temp_path(tmp_path / "r")
    alive.mkdir()
    resume_me = tmp_path / "acts.nc.partial"                    # an extraction's .partial is kept for --resume
    resume_me.write_bytes(b"keep")
    assert sorted(p.name for p in clean_stale(tmp_path)) == sorted([dead_dir.name, dead_file.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, "acts.nc.partial"])


# -- file sets ------------------------------------------------------------------------------------
def test_file_set_replaces_its_own_files_and_keeps_others(tmp_path):
    target = tmp_path / "rep"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    (target / "old.png").write_bytes(b"old")
    (target / "summary.json").write_text("{}")
    with file_set(target, owns=["*.png", "summary.json"]) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".rep.partial-")
        (tmp / "new.png").write_bytes(b"new")
        (tmp / "summary.json").write_text('{"v": 2}')
    assert snapshot(target) == {"new.png": b"new", "notes.txt": b"mine", "summary.json": b'{"v": 2}'}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_file_set_failure_changes_nothing(tmp_path):
    target = tmp_path / "rep"
    target.mkdir()
    (target / "a.png").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with file_set(target, owns=["*.png"]) as tmp:
            (tmp / "a.png").write_bytes(b"new")
            raise RuntimeError("figure failed")
    assert snapshot(target) == {"a.png": b"old"} and sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_a_dead_runs_committed_set_is_moved_in_by_the_next_run(tmp_path):
    target = tmp_path / "rep"
    target.mkdir()
    (target / "a.png").write_bytes(b"old a")
    (target / "b.png").write_bytes(b"old b")
    (target / "c.png").write_bytes(b"old c")
    # a run killed in the middle of moving its set in: a.png moved, b.png not yet, c.png to be removed
    left = tmp_path / f".rep.partial-{dead_pid()}-7-{atomic.boot_id()}"
    left.mkdir()
    (left / "b.png").write_bytes(b"new b")
    (target / "a.png").write_bytes(b"new a")
    (left / atomic.COMMIT).write_text(json.dumps({"target": str(target.resolve()), "files": ["a.png", "b.png"],
                                                  "remove": ["c.png"]}))
    atomic_text_target = tmp_path / "other.txt"
    atomic.atomic_text(atomic_text_target, "x")                  # any write beside it finishes the move
    assert snapshot(target) == {"a.png": b"new a", "b.png": b"new b"} and not left.exists()


WRITER = """
import sys, time
from pathlib import Path
from vision_rnn.atomic import file_set
with file_set(Path(sys.argv[1]), owns=["*.png"]) as tmp:
    (tmp / "a.png").write_bytes(b"half")
    print("inside", flush=True)
    time.sleep(60)
"""


def test_a_sigkilled_writers_folder_is_cleaned_by_the_next_run(acts, tmp_path):
    target = tmp_path / "report"
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "inside"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    left = [x for x in tmp_path.iterdir() if x.name.startswith(".report.partial-")]
    assert len(left) == 1 and left_by_dead_run(left[0])
    r = run("analyze", acts, "-o", tmp_path / "other_report", "--bootstrap", "0")          # the next run beside it cleans up
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other_report"]


def recording_for(acts, path):
    import vision_rnn as vrnn
    from vision_rnn.recordings import save_recording

    with vrnn.open_activations(acts) as tree:
        ids = [str(s) for s in tree["stimulus"].values]
    rng = np.random.default_rng(0)
    rec = xr.DataArray(rng.normal(size=(len(ids), 1, 6)), dims=("stimulus", "time", "neuroid"),
                       coords={"stimulus": ids, "time": [100.0], "time_bin_start": ("time", [50.0]),
                               "time_bin_end": ("time", [150.0])}, name="response")
    return save_recording(rec, path)


def test_a_sigkilled_compare_leaves_nothing_the_next_run_does_not_clean(acts, tmp_path):
    rec = recording_for(acts, tmp_path / "rec.nc")
    out = tmp_path / "reports"
    out.mkdir()
    p = subprocess.Popen([sys.executable, "-m", "vision_rnn", "compare", str(acts), str(rec), "-o",
                          str(out / "first"), "--bootstrap", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and not any(out.glob(".first.partial-*/*")):
        time.sleep(0.01)
    assert p.poll() is None, "compare finished before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert [x.name.startswith(".first.partial-") for x in out.iterdir()] == [True]
    r = run("compare", acts, rec, "-o", out / "second", "--bootstrap", "0")
    assert r.exit_code == 0, r.output
    assert sorted(x.name for x in out.iterdir()) == ["second"]


# -- the umask ----------------------------------------------------------------------------------
@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_files_and_folders_respect_the_umask(acts, tmp_path, umask_027):
    import vision_rnn as vrnn
    from vision_rnn.compare import run_comparison
    from vision_rnn.models.state import save_weights

    assert atomic.umask() == 0o027
    run("analyze", acts, "-o", tmp_path / "rep", "--bootstrap", "0")
    recording_for(acts, tmp_path / "rec.nc")
    run_comparison(acts, tmp_path / "rec.nc", n_bootstrap=0).write(tmp_path / "cmp")
    save_weights(vrnn.load_model("lateral", weights="random"), tmp_path / "w.safetensors")
    atomic_write(tmp_path / "t.txt", lambda p: p.write_text("x"))
    for folder in ("rep", "cmp"):
        assert (tmp_path / folder).stat().st_mode & 0o777 == 0o750, folder
    files = [*(tmp_path / "rep").iterdir(), *(tmp_path / "cmp").iterdir(), tmp_path / "w.safetensors",
             tmp_path / "t.txt", tmp_path / "rec.nc"]
    assert len(files) > 12
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o640, f


# -- vrnn analyze interrupted -------------------------------------------------------------------
def _interrupt_analyze(acts, report, sig):
    """Start `vrnn analyze --overwrite`, stop it with ``sig`` once it has written a figure of the new set."""
    # a test run started as a background job inherits SIGINT ignored, and Python then keeps it ignored
    p = subprocess.Popen([sys.executable, "-m", "vision_rnn", "analyze", str(acts), "-o", str(report),
                          "--overwrite", "--bootstrap", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        tmp = [x for x in report.parent.iterdir() if x.name.startswith(f".{report.name}.partial-")]
        if tmp and any(tmp[0].glob("*.png")):
            break
        time.sleep(0.01)
    assert p.poll() is None, "analyze finished before it could be interrupted"
    os.kill(p.pid, sig)
    return p.wait()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_an_interrupted_analyze_leaves_the_old_report_whole(acts, tmp_path, sig):
    report = tmp_path / "report"
    report.mkdir()
    (report / "acts_copy.nc").write_bytes(b"other files stay")
    assert run("analyze", acts, "-o", report, "--bootstrap", "0").exit_code == 0
    old = snapshot(report)
    assert set(old) == {*REPORT_FILES, "acts_copy.nc"}
    code = _interrupt_analyze(acts, report, sig)
    assert code == (-9 if sig == signal.SIGKILL else 130)
    assert snapshot(report) == old                                   # the old report, whole
    # replacing it needs --overwrite; the next run cleans what the killed one left
    r = run("analyze", acts, "-o", report, "--bootstrap", "0")
    assert r.exit_code == 2 and "--overwrite" in r.stderr
    assert run("analyze", acts, "-o", report, "--overwrite", "--bootstrap", "0").exit_code == 0
    assert set(snapshot(report)) == set(old) and sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_a_full_disk_is_one_line_and_changes_nothing(acts, tmp_path, monkeypatch):
    """ENOSPC while a report is written (here from the PNG writer) is the user's error: one line, no leftovers."""
    import errno

    report = tmp_path / "report"
    report.mkdir()
    (report / "keep.txt").write_text("x")
    from matplotlib.figure import Figure

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    r = run("analyze", acts, "-o", report, "--bootstrap", "0")
    assert r.exit_code == 2 and "no space left on the device" in r.stderr and "nothing was changed" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"] and [p.name for p in report.iterdir()] == ["keep.txt"]
    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(VRNNError, match="no space left"):
        atomic_write(tmp_path / "t.txt", lambda p: p.write_text("x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
