"""Ship trained runs as the package's pretrained models, with their model cards.

For each run folder under RUNS (written by ``scripts/train_shipped_models.sh``):

1. copy the weights into ``vision_rnn/models/weights/tiny_<variant>.safetensors``
   (float32, config in the metadata) and write a JSON card beside them;
2. evaluate the shipped model on the full 10k Fashion-MNIST test set as a user
   would (``scripts/evaluate_model.py``: the test PNGs through ``vrnn extract``);
3. record the per-step accuracy in the JSON card and regenerate the Markdown
   card in ``data_cards/`` (``scripts/model_cards.py``).

    python scripts/ship_models.py runs/shipped [--machine "NVIDIA H200, torch 2.11"]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

PURPOSE = ("A small Fashion-MNIST network for trying the toolkit (extraction, analyses, comparisons) "
           "on real trained weights offline. It is not a model of the primate ventral stream: it saw "
           "32 px greyscale clothing images only. For natural images use the published CCN23 networks "
           "(ccn23-64/..., loaded from the authors' .pth files).")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ship(run: Path, machine: str, evaluate_fn, source: Path, cache: Path) -> dict:
    import vision_rnn as vrnn
    from vision_rnn.models import save_weights
    from vision_rnn.models.registry import VARIANTS, weights_path

    cfg = json.loads((run / "config.json").read_text())
    log = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines() if l.strip()]
    model = vrnn.load_model(run)
    name = model.config.name
    dest = weights_path(name)
    save_weights(model, dest, {"seed": cfg["seed"], "epoch": cfg["epoch"]})
    tr = cfg["training"]
    command = (f"vrnn train --model {name} --data fashion-mnist --out runs/shipped/{name} "
               f"--epochs {cfg['epoch']} --batch-size {tr['batch_size']} --lr {tr['lr']} --seed {cfg['seed']}")
    weights = tr.get("step_weights")
    if weights:
        command += " --step-weights " + ",".join(f"{w:g}" for w in weights)
    card = {
        "name": name,
        "preset": "tiny",
        "description": VARIANTS[name][1],
        "purpose": PURPOSE,
        "weights_file": dest.name,
        "file_sha256": sha256_file(dest),
        "weights_sha256": model.weights_sha256(),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "classes": model.classes,
        "input": {"size": model.input_size, "mean": list(model.mean), "std": list(model.std),
                  "pipeline": "grey 28 px -> RGB, shorter side resized to 32 px (bilinear, antialiased), normalised"},
        "timesteps": model.timesteps,
        "training": {
            "command": command,
            "script": "scripts/train_shipped_models.sh",
            "seed": cfg["seed"],
            "epochs": cfg["epoch"],
            "batch_size": tr["batch_size"],
            "lr": tr["lr"],
            "step_weights": weights,
            "augment": tr["augment"],
            "device": tr["device"],
            "data": cfg["data"],
            "wall_time_s": round(sum(e.get("seconds", 0.0) for e in log), 1),
            "machine": machine,
        },
        "val_accuracy_per_step": [round(float(a), 4) for a in cfg.get("val_accuracy", [])],
    }
    card_path = dest.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    res = evaluate_fn(name, source, cache)
    card["test_images"] = res["test_images"]
    card["test_accuracy_per_step"] = res["test_accuracy_per_step"]
    card["evaluation"] = {
        "command": f"python scripts/evaluate_model.py {name}",
        "what_it_runs": res["command"],
    }
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    return card


def main():
    from evaluate_model import evaluate
    from model_cards import write_all

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path)
    ap.add_argument("--machine", default=None, help="where the training ran (default: runs/machine.txt)")
    ap.add_argument("--source", default=Path("/usr/share/datasets/fashion-mnist"), type=Path)
    ap.add_argument("--cache", default=Path.home() / ".cache" / "vision-rnn", type=Path)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    machine = args.machine
    if machine is None and (args.runs / "machine.txt").exists():
        machine = (args.runs / "machine.txt").read_text().strip()
    for run in sorted(p for p in args.runs.iterdir() if (p / "config.json").exists()):
        if args.only and run.name not in args.only:
            continue
        card = ship(run, machine or "unknown", evaluate, args.source, args.cache)
        acc = card["test_accuracy_per_step"]
        print(f"{card['name']:<22} step 0 {acc[0]:.4f}  last {acc[-1]:.4f}  ({card['training']['epochs']} epochs)")
    write_all()


if __name__ == "__main__":
    main()
