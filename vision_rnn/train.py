"""Training a BLT network: a loss at every step, checkpoints that resume exactly, and
data parallel training under ``torchrun``.

The objective is the (weighted) sum over steps of the cross-entropy of each
step's logits, ``sum_t w_t * CE(logits_t, y)`` with ``w_t = 1`` by default, as
in the CCN23 training code; the optimiser is Adam (lr 1e-3); on CUDA the forward
pass runs under bfloat16 autocast. The network is built from the registry with
the data set's class names and normalisation, so the saved configuration
carries them and ``vision_rnn.load_model(out)`` restores the trained model.

A run folder holds::

    config.json            model, classes, mean/std, steps, seed, epoch, data set
                           (source, sha256/bytes), training options
    model.safetensors      latest weights (config and run facts in the metadata)
    epoch_NNN.safetensors  weights after epoch NNN (epoch_000: the initialisation)
    optimizer.pt           Adam state, epoch and RNG state (tensors and plain Python:
                           loads with torch.load(weights_only=True))
    log.jsonl              one JSON line per epoch: train loss, validation accuracy per step

Every file is written to a temporary name and renamed. The data order of epoch
``e`` is a permutation drawn from a generator seeded with ``seed * 1000 + e``
and augmentation is seeded per (seed, epoch, image), so ``resume=True``
continues from the last completed epoch and, on CPU, ends with the same
weights as an uninterrupted run.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) each process trains
on its own shard of every epoch's permutation with DistributedDataParallel
(gloo on CPU, nccl on CUDA); ``batch_size`` is per process; only rank 0
writes files and prints.

>>> from vision_rnn.train import train
>>> summary = train("lateral", "fashion-mnist", "runs/lateral", epochs=3)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .atomic import atomic_text, atomic_write
from .datasets import make_batch, open_training_data
from .errors import DataError, VRNNError
from .models.blt import BLTConfig, BLTNet
from .models.loading import build
from .models.state import load_state, read_safetensors, save_weights
from .models.registry import PRESETS, get_config, split_name

RUN_FILES = ("config.json", "model.safetensors", "optimizer.pt", "log.jsonl")
# Presets whose class count follows the data; the ccn23 presets are the published
# architecture with a 100-class readout and refuse other counts unless num_classes says so.
ADAPTIVE_PRESETS = ("tiny",)
DEFAULTS = dict(batch_size=64, lr=1e-3, seed=0, augment=False, split_seed=0, timesteps=None,
                step_weights=None, max_batches=None, epochs=10)
RECORDED = tuple(DEFAULTS)  # options a resumed run takes from its config.json
RECORD_KEYS = ("model", "preset", "variant", "model_config", "data", "seed", "epochs")


@dataclass
class Dist:
    """This process' place in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "Dist":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over processes, in place (identity without torchrun)."""
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(values)
        return values


def train(model_name=None, data=None, out="runs/run", epochs=None, batch_size=None, lr=None, seed=None,
          timesteps=None, augment=None, device=None, resume=False, workers=0, step_weights=None,
          progress=True, max_batches=None, split_seed=None, num_classes=None) -> dict:
    """Train ``model_name`` (a registry name, e.g. ``"lateral"``) on ``data`` into ``out``.

    Options left at None take their defaults (batch_size 64, lr 1e-3, seed 0,
    augment False, split_seed 0, the preset's steps, equal step weights); with
    ``resume=True`` they, the model and the data default to the run's recorded
    values and an explicit value that differs is refused.

    Parameters
    ----------
    model_name : str, optional
        A registry name, e.g. ``"lateral"``; required unless ``resume=True``.
    data : str or os.PathLike, optional
        An HDF5 path, an image folder or ``fashion-mnist[:DIR]`` (see
        :mod:`vision_rnn.datasets`); required unless ``resume=True``.
    out : str or os.PathLike, optional
        The run's folder: config, training log and the weights of every epoch.
    epochs : int, optional
        The total number of epochs (default 10).
    batch_size : int, optional
        Images per training batch.
    lr : float, optional
        Adam's learning rate.
    seed : int, optional
        Seeds the initialisation and the order of the images.
    timesteps : int, optional
        Steps to unroll; default the preset's.
    augment : bool, optional
        Augment the training images (TrivialAugmentWide, seeded per seed, epoch and image).
    device : str or torch.device, optional
        Default: CUDA when available, else the CPU.
    resume : bool, optional
        Continue the interrupted run in ``out``.
    workers : int, optional
        Prepare that many batches ahead in threads.
    step_weights : sequence of float, optional
        The per-step loss weights, one per step.
    progress : bool, optional
        Show progress bars and a line per epoch.
    max_batches : int, optional
        Cap the batches per epoch (for tests).
    split_seed : int, optional
        Seeds the split into training and validation images, for data without
        a validation split of its own (Fashion-MNIST, an image folder without ``val/``).
    num_classes : int, optional
        The class count the model must have (checked against the data); the tiny
        preset otherwise adapts to the data's classes.

    Returns
    -------
    dict
        A summary: ``out``, ``model``, ``epochs``, ``classes``, ``mean``, ``std``,
        ``val_accuracy`` (per step, last epoch), ``train_loss``, ``seconds``,
        ``data``, ``world_size`` and ``device``.
    """
    out = Path(out)
    dist = Dist.from_env()
    given = dict(batch_size=batch_size, lr=lr, seed=seed, augment=augment, split_seed=split_seed,
                 timesteps=timesteps, step_weights=step_weights, max_batches=max_batches, epochs=epochs)
    record = _check_out(out, resume)
    if resume:
        _read_resume_state(out)              # refuse a damaged or code-carrying checkpoint before any work
        opts = _resume_options(out, record, given, model_name)
        model_name, data = record["model"], data or record["data"]["source"]
    else:
        if not model_name or not data:
            raise VRNNError("`model_name` and `data` are required to start a run (only `resume=True` may omit them)")
        opts = {k: (DEFAULTS[k] if v is None else v) for k, v in given.items()}
    opts["step_weights"] = [float(w) for w in opts["step_weights"]] if opts["step_weights"] else None
    created = _make_out(out) if dist.main else []
    try:
        dataset = open_training_data(data, split_seed=int(opts["split_seed"]),
                                     size=_input_size(model_name, record if resume else None))
        if resume:
            _check_same_data(dataset.describe(), record["data"], out)
            config = BLTConfig.from_dict(record["model_config"])
        else:
            config = _model_config(model_name, dataset, opts["timesteps"], num_classes)
        steps = opts["timesteps"] = config.timesteps
        if opts["step_weights"] is not None and len(opts["step_weights"]) != steps:
            raise VRNNError(f"`step_weights` has {len(opts['step_weights'])} values for a model with "
                            f"{steps} steps; give one per step")
        dev = _device(device, dist)
    except VRNNError:
        _remove_empty(created)
        raise
    weights = torch.tensor(opts["step_weights"] or [1.0] * steps)

    if dist.world > 1:
        import torch.distributed as tdist

        tdist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    try:
        summary = _run(config, dataset, out, opts, weights, dev, dist, resume, record, workers, progress)
        if dist.world > 1:
            tdist.barrier()  # every rank leaves together, after rank 0 has written its files
        return summary
    finally:
        if dist.world > 1:
            tdist.destroy_process_group()


def _run(config, dataset, out, opts, weights, dev, dist, resume, record, workers, progress) -> dict:
    seed = int(opts["seed"])
    raw = build(config, seed)
    start, state = 0, None
    if resume:
        state = _read_resume_state(out)
        start = int(state["epoch"])
        wfile = out / f"epoch_{start:03d}.safetensors"
        load_state(raw, read_safetensors(wfile)[0], wfile)
    raw.to(dev)
    opt = torch.optim.Adam(raw.parameters(), lr=float(opts["lr"]))
    if state is not None:
        opt.load_state_dict(state["optimizer"])  # moves the state to the parameters' device
    model = raw
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(raw, device_ids=[dev.index] if dev.type == "cuda" else None)
    weights = weights.to(dev)
    run = dict(config=config, dataset=dataset, out=out, opts=opts, dev=dev, dist=dist,
               created=record.get("created") if resume else _now())
    log = _read_log(out, start) if resume else []
    if dist.main and not resume:
        _checkpoint(raw, opt, run, 0, log)
    epochs = int(opts["epochs"])
    for epoch in range(start + 1, epochs + 1):
        t0 = time.perf_counter()
        train_stats = _train_epoch(model, opt, weights, run, epoch, workers, progress)
        val = evaluate(raw, dataset.val, config, dev, dist, int(opts["batch_size"]) * 2)
        entry = {"epoch": epoch, **train_stats, "val_loss": val["loss"], "val_accuracy": val["accuracy"],
                 "seconds": round(time.perf_counter() - t0, 3)}
        log.append(entry)
        if dist.main:
            _checkpoint(raw, opt, run, epoch, log)
            if progress:
                tqdm.write(f"epoch {epoch}/{epochs}: train loss {entry['train_loss']:.4f}, "
                           f"val accuracy (last step) {entry['val_accuracy'][-1]:.4f}")
    last = log[-1] if log else {}
    return {"out": str(out), "model": config.full_name, "epochs": max(start, epochs),
            "classes": list(config.classes), "mean": list(config.mean), "std": list(config.std),
            "val_accuracy": last.get("val_accuracy"), "train_loss": last.get("train_loss"),
            "seconds": round(sum(e.get("seconds", 0.0) for e in log), 3), "data": dataset.describe(),
            "world_size": dist.world, "device": str(dev)}


def step_loss(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(weighted sum over steps, per-step mean cross-entropy) of logits (batch, time, class)."""
    per_step = F.cross_entropy(logits.float().transpose(1, 2), y[:, None].expand(-1, logits.shape[1]),
                               reduction="none").mean(dim=0)
    return (per_step * weights).sum(), per_step


def train_step(model, opt, x, y, weights, amp: bool):
    """One forward + backward + Adam step; returns (loss, per-step loss, logits), detached."""
    opt.zero_grad(set_to_none=True)
    with _autocast(amp):
        logits = model(x)
    loss, per_step = step_loss(logits, y, weights)
    loss.backward()
    opt.step()
    return loss.detach(), per_step.detach(), logits.detach()


def epoch_order(n: int, seed: int, epoch: int, dist: Dist) -> np.ndarray:
    """This process' image indices for ``epoch``: a permutation seeded with
    seed * 1000 + epoch, cut to a multiple of the world size and dealt round-robin."""
    gen = torch.Generator().manual_seed(int(seed) * 1000 + int(epoch))
    perm = torch.randperm(n, generator=gen).numpy()
    if dist.world > 1:
        perm = perm[: n - n % dist.world][dist.rank:: dist.world]
    return perm


def _train_epoch(model, opt, weights, run, epoch, workers, progress) -> dict:
    config, dataset, opts, dev, dist = (run[k] for k in ("config", "dataset", "opts", "dev", "dist"))
    bs = int(opts["batch_size"])
    order = epoch_order(len(dataset.train), int(opts["seed"]), epoch, dist)
    batches = [order[i:i + bs] for i in range(0, len(order), bs)]
    if opts["max_batches"]:
        batches = batches[: int(opts["max_batches"])]
    key = (int(opts["seed"]), epoch) if opts["augment"] else None

    def make(idx):
        return make_batch(dataset.train, idx, config.input_size, config.mean, config.std, key)

    steps = config.timesteps
    sums = torch.zeros(2 + 2 * steps, dtype=torch.float64, device=dev)  # loss, n, per-step loss, correct
    model.train()
    bar = tqdm(total=len(batches), desc=f"epoch {epoch}/{opts['epochs']}", unit="batch",
               disable=not (progress and dist.main), leave=False, dynamic_ncols=True)
    for i, (x, y) in enumerate(_prefetch(make, batches, workers)):
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        loss, per_step, logits = train_step(model, opt, x, y, weights, dev.type == "cuda")
        correct = (logits.argmax(-1) == y[:, None]).sum(0)
        sums += torch.cat([(loss * len(y)).view(1), torch.ones(1, device=dev) * len(y),
                           per_step * len(y), correct]).double()
        bar.update(1)
        if i % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    sums = dist.sum(sums).cpu()
    n = max(sums[1].item(), 1.0)
    return {"train_loss": sums[0].item() / n, "train_loss_per_step": (sums[2:2 + steps] / n).tolist(),
            "train_accuracy": (sums[2 + steps:] / n).tolist(), "train_images": int(sums[1].item())}


@torch.no_grad()
def evaluate(model: BLTNet, split, config, dev, dist: Dist = Dist(), batch_size: int = 128) -> dict:
    """Loss (sum over steps) and accuracy at every step on a split, summed over processes."""
    model.eval()
    steps = config.timesteps
    sums = torch.zeros(2 + steps, dtype=torch.float64, device=dev)  # loss, n, correct per step
    idx = np.arange(len(split))[dist.rank:: dist.world]
    for i in range(0, len(idx), batch_size):
        x, y = make_batch(split, idx[i:i + batch_size], config.input_size, config.mean, config.std)
        x, y = x.to(dev), y.to(dev)
        with _autocast(dev.type == "cuda"):
            logits = model(x)
        loss, _ = step_loss(logits, y, torch.ones(steps, device=dev))
        correct = (logits.argmax(-1) == y[:, None]).sum(0)
        sums += torch.cat([(loss * len(y)).view(1), torch.ones(1, device=dev) * len(y), correct]).double()
    model.train()
    sums = dist.sum(sums).cpu()
    n = max(sums[1].item(), 1.0)
    return {"loss": sums[0].item() / n, "accuracy": (sums[2:] / n).tolist(), "images": int(sums[1].item())}


# -- checkpoints ------------------------------------------------------------------------------------
def _checkpoint(raw: BLTNet, opt, run: dict, epoch: int, log: list) -> None:
    """Write epoch_NNN, log, optimizer state, latest weights, then config.json (each atomic)."""
    out, opts, dataset, config = run["out"], run["opts"], run["dataset"], run["config"]
    data = dataset.describe()
    meta = {"seed": int(opts["seed"]), "epoch": epoch, "data": data["source"],
            "data_sha256": data.get("sha256", ""), "data_bytes": data.get("bytes", 0)}
    save_weights(raw, out / f"epoch_{epoch:03d}.safetensors", meta)
    atomic_text(out / "log.jsonl", "".join(json.dumps(e) + "\n" for e in log))
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and run["dev"].type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(run["dev"])
    atomic_write(out / "optimizer.pt", lambda tmp: torch.save({"epoch": epoch, "optimizer": opt.state_dict(),
                                                                  "rng": rng}, tmp))
    save_weights(raw, out / "model.safetensors", meta)
    from ._version import __version__

    record = {"model": config.full_name, "preset": config.preset, "variant": config.name,
              "classes": list(config.classes), "mean": list(config.mean), "std": list(config.std),
              "timesteps": config.timesteps, "seed": int(opts["seed"]), "epoch": epoch,
              "epochs": int(opts["epochs"]), "data": data,
              "training": {**{k: opts[k] for k in RECORDED if k != "epochs"}, "optimizer": "adam",
                           "loss": "sum over steps of step_weights[t] * cross_entropy(logits[t], label)",
                           "amp": "bfloat16" if run["dev"].type == "cuda" else None,
                           "world_size": run["dist"].world, "device": run["dev"].type},
              "val_accuracy": log[-1]["val_accuracy"] if log else None,
              "model_config": config.to_dict(), "vision_rnn_version": __version__,
              "created": run["created"], "updated": _now()}
    atomic_text(out / "config.json", json.dumps(record, indent=2) + "\n")




def _read_log(out: Path, upto: int) -> list:
    path = out / "log.jsonl"
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in entries if e["epoch"] <= upto]


def _check_out(out: Path, resume: bool) -> dict:
    """Refuse an unusable output folder; return the recorded config.json of a run to resume."""
    if out.exists() and not out.is_dir():
        raise VRNNError(f"`out={out}` is a file; pass a folder for the run")
    previous = [f for f in RUN_FILES if (out / f).exists()] if out.is_dir() else []
    if previous and not resume:
        raise VRNNError(f"`out={out}` already holds a training run ({previous[0]}); pass `resume=True` "
                        "to continue it or choose another `out`")
    if resume and not all((out / f).exists() for f in ("config.json", "optimizer.pt")):
        raise VRNNError(f"`resume=True`: {out} holds no run to continue (no config.json/optimizer.pt); "
                        "start a new run there without `resume`")
    if not resume:
        return {}
    path = out / "config.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise VRNNError(f"{path}: unreadable ({e}); cannot resume this run") from None
    missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
    if missing or not isinstance(record.get("data"), dict) or "source" not in record["data"] \
            or not isinstance(record.get("model_config"), dict) or not isinstance(record.get("training", {}), dict):
        what = f"lacks {', '.join(missing)}" if missing and isinstance(record, dict) else "is not a run record"
        raise VRNNError(f"{path}: {what} (a JSON object written by vrnn train with model, model_config, data, "
                        "seed, epochs and training); cannot resume this run: start a new one in another `out`")
    try:
        BLTConfig.from_dict(record["model_config"])
    except VRNNError as e:
        raise VRNNError(f"{path}: model_config: {e}; cannot resume this run") from None
    return record


def _read_resume_state(out: Path) -> dict:
    """The optimizer state and epoch of a run to resume, read as tensors only (never code)."""
    path = out / "optimizer.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        text = str(e)
        if "weights only load failed" in text.lower():
            raise VRNNError(f"{path}: refused: it holds Python objects or code, not an optimizer state of tensors; "
                            "vision-rnn reads it with weights_only=True and ran nothing from it; this run cannot "
                            "be resumed: start a new one in another `out`") from None
        raise VRNNError(f"{path}: unreadable ({e.__class__.__name__}: {text.splitlines()[0][:120] if text else ''}); "
                        "the file is damaged (truncated?): this run cannot be resumed: start a new one in "
                        "another `out`") from None
    epoch = state.get("epoch") if isinstance(state, dict) else None
    if not isinstance(epoch, int) or epoch < 0 or not isinstance(state.get("optimizer"), dict):
        raise VRNNError(f"{path}: not an optimizer checkpoint written by vrnn train (needs 'epoch' and "
                        "'optimizer'); this run cannot be resumed: start a new one in another `out`")
    wfile = out / f"epoch_{epoch:03d}.safetensors"
    if not wfile.exists():
        raise VRNNError(f"{wfile}: missing, but {path} says the run stopped after epoch {epoch}; "
                        "this run cannot be resumed: start a new one in another `out`")
    return state


def _make_out(out: Path) -> list:
    """Create the output folder and check that it is writable; return the folders created."""
    created = [p for p in [out, *out.parents] if not p.exists()][::-1]
    probe = out / f".write-test-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise VRNNError(f"`out={out}` is not writable ({e.strerror or e}); choose a folder you can write to") from None
    return created


def _remove_empty(folders: list) -> None:
    for d in reversed(folders):
        try:
            d.rmdir()
        except OSError:
            return


def _resume_options(out: Path, record: dict, given: dict, model_name) -> dict:
    """The run's recorded options; an explicitly given value must match the recorded one."""
    if model_name and split_name(model_name) != (record["preset"], record["variant"]):
        raise VRNNError(f"`model_name={model_name}` differs from the run's {record['model']} in {out}; "
                        "resume with the same model or choose another `out`")
    recorded = {**record.get("training", {}), "seed": record.get("seed"), "epochs": record.get("epochs"),
                "timesteps": record.get("timesteps")}
    opts = {}
    for k in RECORDED:
        value, then = given[k], recorded.get(k, DEFAULTS[k])
        if k == "step_weights" and value is not None:
            value = [float(v) for v in value]
        if value is not None and k != "epochs" and value != then:
            raise VRNNError(f"`{k}={value}` differs from the run's {then} in "
                            f"{out / 'config.json'}; resume with the same options or train into another `out`")
        opts[k] = then if value is None else value
    return opts


def _check_same_data(now: dict, then: dict, out: Path) -> None:
    keys = [k for k in ("sha256", "bytes", "train_images", "val_images") if k in then]
    if any(now.get(k) != then.get(k) for k in keys):
        raise DataError(f"`data={now['source']}` is not the data the run in {out} was trained on "
                        f"({then['source']}, sha256 {then.get('sha256', '?')[:12]}); pass the same `data`")


def _input_size(model_name, record) -> int | None:
    """The model's input size, known before the data is read (image folders decode for it)."""
    try:
        return int((BLTConfig.from_dict(record["model_config"]) if record else get_config(model_name)).input_size)
    except Exception:            # an unknown name is refused, with its message, once the data is known
        return None


def _model_config(model_name: str, dataset, timesteps, num_classes) -> BLTConfig:
    preset, _ = split_name(model_name)
    k = len(dataset.classes)
    expected = num_classes if num_classes is not None else (
        None if preset in ADAPTIVE_PRESETS else PRESETS[preset]["num_classes"])
    if expected is not None and int(expected) != k:
        raise DataError(f"`data={dataset.source}` has {k} classes but the model {model_name} has {expected}; "
                        f"pass `num_classes={k}` to train it with {k} classes, or use data with {expected} classes")
    return get_config(model_name, num_classes=k, classes=tuple(dataset.classes), mean=dataset.mean,
                      std=dataset.std, timesteps=timesteps)


# -- small helpers ----------------------------------------------------------------------------------
def _device(device, dist: Dist) -> torch.device:
    from .devices import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", dist.local_rank if dist.world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    return dev


def _prefetch(make, batches, workers: int):
    """Yield make(b) for each batch in order, preparing up to ``workers`` batches ahead in threads."""
    if workers <= 0:
        for b in batches:
            yield make(b)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending = deque()
        for b in batches:
            pending.append(pool.submit(make, b))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _autocast(amp: bool):
    """bfloat16 autocast on CUDA; nothing elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
