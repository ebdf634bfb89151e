"""`vrnn train`: the run folder, exact resume, torchrun data parallel, user errors."""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import vision_rnn as vrnn
from vision_rnn.cli import main
from vision_rnn.datasets import write_hdf5
from vision_rnn.train import epoch_order, step_loss, Dist

CLASSES = ["red", "green", "blue"]
STEPS = 3
FAST = ["--timesteps", str(STEPS), "--batch-size", "8", "--device", "cpu"]


def coloured(n_per_class: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per_class)
    images = rng.integers(0, 80, (len(labels), 32, 32, 3)).astype(np.uint8)
    images[np.arange(len(labels)), :, :, labels] += 150
    return images, labels


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "mini.h5"
    return write_hdf5(path, {"train": coloured(8), "val": coloured(2, seed=1)}, CLASSES)


def run(*args):
    result = CliRunner().invoke(main, ["train", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def error_line(result):
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_train_writes_a_loadable_run(h5, tmp_path):
    out = tmp_path / "run"
    r = run("--model", "lateral", "--data", h5, "--out", out, "--epochs", 2, *FAST)
    assert r.exit_code == 0, r.output
    assert "tiny/lateral: 2 epoch(s)" in r.stdout
    log = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2]
    for e in log:
        assert len(e["val_accuracy"]) == STEPS and all(0 <= a <= 1 for a in e["val_accuracy"])
        assert e["train_images"] == 24 and np.isfinite(e["train_loss"])
        assert e["train_loss"] == pytest.approx(sum(e["train_loss_per_step"]), rel=1e-5)
    assert log[1]["train_loss"] < log[0]["train_loss"]
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "tiny/lateral" and config["classes"] == CLASSES and config["epoch"] == 2
    assert config["data"]["sha256"] and config["training"]["batch_size"] == 8 and config["timesteps"] == STEPS
    model = vrnn.load_model(out)
    assert model.classes == CLASSES and model.timesteps == STEPS and model.config.num_classes == 3
    assert list(model.mean) == config["mean"] and model.seed == 0
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, STEPS, 3)
    for name in ("epoch_000", "epoch_001", "epoch_002"):
        assert (out / f"{name}.safetensors").exists()
    assert torch.equal(load_file(out / "epoch_002.safetensors")["readout.weight"], model.readout.weight)
    state = torch.load(out / "optimizer.pt", weights_only=True)
    assert state["epoch"] == 2 and state["optimizer"]["state"]
    assert not list(out.glob("*.partial")) and not list(out.glob(".write-test*"))


def test_resume_equals_uninterrupted_run(h5, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    opts = [*FAST, "--augment", "--seed", 3, "--step-weights", "0.5,1,2"]
    assert run("--model", "lateral", "--data", h5, "--out", a, "--epochs", 2, *opts).exit_code == 0
    assert run("--model", "lateral", "--data", h5, "--out", b, "--epochs", 1, *opts).exit_code == 0
    r = run("--out", b, "--resume", "--epochs", 2)  # model, data and options come from the run
    assert r.exit_code == 0, r.output
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    la = [json.loads(l) for l in (a / "log.jsonl").read_text().splitlines()]
    lb = [json.loads(l) for l in (b / "log.jsonl").read_text().splitlines()]
    assert [e["val_accuracy"] for e in la] == [e["val_accuracy"] for e in lb]
    sa = torch.load(a / "optimizer.pt", weights_only=True)["optimizer"]["state"]
    sb = torch.load(b / "optimizer.pt", weights_only=True)["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    # a finished run resumed to the same epoch count trains nothing
    r = run("--out", b, "--resume")
    assert r.exit_code == 0 and "2 epoch(s)" in r.stdout


def test_step_loss_and_data_order():
    logits = torch.randn(4, 3, 5)
    y = torch.tensor([0, 1, 2, 3])
    total, per_step = step_loss(logits, y, torch.tensor([0.0, 0.0, 1.0]))
    assert total == pytest.approx(torch.nn.functional.cross_entropy(logits[:, 2], y).item())
    assert per_step[0] == pytest.approx(torch.nn.functional.cross_entropy(logits[:, 0], y).item())
    whole = epoch_order(10, seed=1, epoch=2, dist=Dist())
    assert sorted(whole) == list(range(10)) and not np.array_equal(whole, epoch_order(10, 1, 3, Dist()))
    shards = [epoch_order(10, 1, 2, Dist(rank=r, world=3)) for r in range(3)]
    assert all(len(s) == 3 for s in shards) and len(set(np.concatenate(shards))) == 9


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                    reason="torchrun is not installed beside this Python")
def test_torchrun_two_processes(h5, tmp_path):
    out = tmp_path / "ddp"
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [torchrun, "--nproc_per_node", "2", "--master_port", str(_free_port()), "-m", "vision_rnn", "train",
           "--model", "lateral", "--data", str(h5), "--out", str(out), "--epochs", "1", *FAST]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("tiny/lateral: 1 epoch(s)") == 1  # only rank 0 prints
    assert sorted(f.name for f in out.iterdir()) == sorted(
        ["config.json", "epoch_000.safetensors", "epoch_001.safetensors", "log.jsonl", "model.safetensors",
         "optimizer.pt"])
    assert sorted(f.name for f in tmp_path.iterdir()) == ["ddp"]
    log = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["train_images"] == 24 and len(log[0]["val_accuracy"]) == STEPS
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["world_size"] == 2
    assert vrnn.load_model(out).classes == CLASSES


# -- user errors: exit 2, one line naming the culprit ----------------------------------------
def test_missing_data_path(tmp_path):
    r = run("--model", "lateral", "--data", tmp_path / "missing.h5", "--out", tmp_path / "run", *FAST)
    assert r.exit_code == 2
    assert "missing.h5: no such file or folder" in error_line(r)
    assert not (tmp_path / "run").exists()  # nothing left behind


def test_hdf5_without_expected_groups(tmp_path):
    import h5py

    with h5py.File(tmp_path / "flat.h5", "w") as f:
        f["images"] = np.zeros((2, 32, 32, 3), np.uint8)
    r = run("--model", "lateral", "--data", tmp_path / "flat.h5", "--out", tmp_path / "run", *FAST)
    assert r.exit_code == 2
    assert "flat.h5: no group 'train'" in error_line(r)


def test_class_count_mismatch(h5, tmp_path):
    r = run("--model", "ccn23-64/lateral", "--data", h5, "--out", tmp_path / "run", *FAST)
    assert r.exit_code == 2
    line = error_line(r)
    assert "mini.h5 has 3 classes but the model ccn23-64/lateral has 100" in line and "--num-classes 3" in line
    r = run("--model", "lateral", "--data", h5, "--out", tmp_path / "run", "--num-classes", 10, *FAST)
    assert r.exit_code == 2 and "has 3 classes but the model lateral has 10" in error_line(r)


def test_output_not_writable(h5, tmp_path):
    (tmp_path / "file").write_text("x")
    r = run("--model", "lateral", "--data", h5, "--out", tmp_path / "file" / "run", *FAST)
    assert r.exit_code == 2 and "not writable" in error_line(r) and "file/run" in error_line(r)
    r = run("--model", "lateral", "--data", h5, "--out", tmp_path / "file", *FAST)
    assert r.exit_code == 2 and "is a file" in error_line(r)


def test_previous_run_needs_resume(h5, tmp_path):
    out = tmp_path / "run"
    assert run("--model", "lateral", "--data", h5, "--out", out, "--epochs", 1, "--max-batches", 1,
               *FAST).exit_code == 0
    r = run("--model", "lateral", "--data", h5, "--out", out, "--epochs", 1, *FAST)
    assert r.exit_code == 2
    assert "already holds a training run" in error_line(r) and "--resume" in error_line(r)
    r = run("--out", out, "--resume", "--lr", 0.01)
    assert r.exit_code == 2 and "--lr 0.01 differs from the run's 0.001" in error_line(r)
    r = run("--out", tmp_path / "empty", "--resume")
    assert r.exit_code == 2 and "holds no run to continue" in error_line(r)
    r = run("--model", "lateral", "--data", h5, "--out", tmp_path / "w", "--step-weights", "1,2", *FAST)
    assert r.exit_code == 2 and "--step-weights has 2 values for a model with 3 steps" in error_line(r)


def test_a_run_interrupted_before_its_first_epoch_is_not_a_trained_model(h5, tmp_path, monkeypatch):
    import vision_rnn.train as train_module
    from vision_rnn.errors import ModelError
    from vision_rnn.models.loading import build

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt                           # Ctrl-C during the first epoch

    monkeypatch.setattr(train_module, "_train_epoch", interrupted)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_module.train("lateral", h5, out, epochs=2, timesteps=STEPS, batch_size=8, device="cpu",
                           progress=False)
    monkeypatch.undo()
    assert (out / "model.safetensors").exists() and json.loads((out / "config.json").read_text())["epoch"] == 0
    for source in (out, out / "model.safetensors", out / "epoch_000.safetensors"):
        with pytest.raises(ModelError) as e:
            vrnn.load_model(source)
        assert "no finished epoch" in str(e.value) and "--resume" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ModelError, match="no finished epoch"):
        vrnn.load_model("lateral", weights=out / "model.safetensors")
    r = CliRunner().invoke(main, ["extract", "--model", str(out), "--stimuli", "builtin:fashion-mnist",
                                  "-o", str(tmp_path / "acts.nc")])
    assert r.exit_code == 2 and "no finished epoch" in error_line(r) and "--allow-untrained" in error_line(r)
    assert not (tmp_path / "acts.nc").exists() and not (tmp_path / "acts.nc.partial").exists()
    # on purpose, the initial weights load: the seeded initialisation
    model = vrnn.load_model(out, allow_untrained=True)
    init = build(model.config, 0)
    for k, v in init.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    # and resuming trains it into a model that loads
    assert run("--out", out, "--resume", "--epochs", 1).exit_code == 0
    assert vrnn.load_model(out).classes == CLASSES
