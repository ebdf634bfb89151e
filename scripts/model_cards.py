"""Generate the Markdown model cards in data_cards/ from the JSON cards shipped beside the weights.

The JSON card (``vision_rnn/models/weights/<preset>_<variant>.json``) is the
source of truth that ``vrnn models`` and ``load_model`` read; this script
renders it, so the two never disagree.

    python scripts/model_cards.py            # rewrite every data_cards/model-*.md
    python scripts/model_cards.py --check    # exit 1 if a Markdown card is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "vision_rnn" / "models" / "weights"
CARDS = ROOT / "data_cards"


ARCHITECTURE = {
    "blt": "BLT family, `{preset}` preset: retina 16 channels, v1/v2/v4/it 16/32/64/128 channels, gap 128,\n"
           "  3x3 kernels, LayerNorm, readout without bias",
    "cornet-rt": "CORnet-RT-style family (`vision_rnn/models/cornet_rt.py`), `{preset}` preset: v1/v2/v4/it blocks of\n"
                 "  16/32/64/128 channels (conv -> GroupNorm -> ReLU, plus the block's previous output, then\n"
                 "  conv -> GroupNorm -> ReLU), 3x3 kernels, gap 128, readout without bias",
    "convgru": "ConvGRU family (`vision_rnn/models/convgru.py`), `{preset}` preset: a 16-channel conv + ReLU stem, then\n"
               "  ConvGRU cells of 16/32/64/128 channels in v1/v2/v4/it, 3x3 kernels, gap 128, readout without bias",
}


def render(card: dict) -> str:
    tr = card["training"]
    sw = tr.get("step_weights")
    loss = ("sum over steps of the cross-entropy at each step" if not sw else
            "sum over steps of the cross-entropy at each step, weighted " + ", ".join(f"{w:g}" for w in sw) +
            " (later steps count more)")
    acc = card.get("test_accuracy_per_step", [])
    val = card.get("val_accuracy_per_step", [])
    rows = "\n".join(f"| {t} | {a:.4f} | {val[t]:.4f} |" if t < len(val) else f"| {t} | {a:.4f} | |"
                     for t, a in enumerate(acc))
    data = tr["data"]
    arch = ARCHITECTURE.get(card["name"], ARCHITECTURE["blt"])
    return f"""# Model card: `{card['name']}` ({card['preset']} preset)

{card['description']}.

**What it is for.** {card['purpose']}

## Use

```python
import vision_rnn as vrnn
model = vrnn.load_model("{card['name']}")      # these weights
```

```bash
vrnn extract --model {card['name']} --stimuli builtin:fashion-mnist
```

## Architecture and input

- {arch.format(preset=card['preset'])}, {card['timesteps']} steps, {card['parameters']:,} parameters.
- Input: {card['input']['size']} px RGB; {card['input']['pipeline']};
  mean {card['input']['mean'][0]:.4f}, std {card['input']['std'][0]:.4f} per channel (0-1 scale).
- Classes: {', '.join(card['classes'])}.

## Training

- Command (from `{tr['script']}`): `{tr['command']}`
- Data: Fashion-MNIST training set, {data.get('train_images', '?')} images for training and
  {data.get('val_images', '?')} held out for validation (seeded split, seed {data.get('split_seed', 0)}); see
  `data_cards/fashion-mnist.md`.
- Loss: {loss}; Adam, lr {tr['lr']}, batch {tr['batch_size']},
  {tr['epochs']} epochs, seed {tr['seed']}, augmentation {'on' if tr['augment'] else 'off'}.
- Device: {tr['device']}; machine: {tr['machine']}; wall time {tr['wall_time_s']:.0f} s.

## Accuracy at every step

On the full 10,000-image Fashion-MNIST test set ({card.get('test_images', '?')} images), and on the
5,000 held-out validation images at the end of training.

| step | test accuracy | validation accuracy |
| --- | --- | --- |
{rows}

Reproduce the test column: `{card.get('evaluation', {}).get('command', '')}` (it writes the test images
as PNG files in class folders and runs `{card.get('evaluation', {}).get('what_it_runs', '')}`).

## Files

- `vision_rnn/models/weights/{card['weights_file']}` (safetensors, float32),
  sha256 `{card['file_sha256']}`
- parameter hash (`model.weights_sha256()`): `{card['weights_sha256']}`

## Limitations

32 px greyscale clothing on a plain background, 10 classes: the representations are those of a small
classifier of that data set. Use it to learn and test the toolkit, and to compare recurrent motifs with
each other; do not read its layers as a model of primate visual cortex.
"""


def write_all(check: bool = False) -> int:
    stale = 0
    for js in sorted(WEIGHTS.glob("*.json")):
        card = json.loads(js.read_text())
        if "test_accuracy_per_step" not in card:
            continue
        md = CARDS / f"model-{card['preset']}-{card['name']}.md"
        text = render(card)
        if check:
            if not md.exists() or md.read_text() != text:
                print(f"out of date: {md}")
                stale += 1
        else:
            md.write_text(text)
    return stale


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    sys.exit(1 if write_all(args.check) else 0)


if __name__ == "__main__":
    main()
