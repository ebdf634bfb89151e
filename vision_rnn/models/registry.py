"""Model names -> configurations, and the list of what is available.

A name is ``[preset/]variant``: ``lateral`` is ``tiny/lateral``,
``ccn23-64/lateral-mult`` is the published 64 px BL network with the
multiplicative interaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from .blt import BLTConfig

FASHION_MNIST_CLASSES = ("tshirt_top", "trouser", "pullover", "dress", "coat",
                         "sandal", "shirt", "sneaker", "bag", "ankle_boot")
# Fashion-MNIST training set (60k images), per-pixel mean and std on a 0-1 scale;
# the grey image is replicated into three channels.
FASHION_MNIST_MEAN = (0.2860,) * 3
FASHION_MNIST_STD = (0.3530,) * 3
# MiniEcoset training set, per-channel mean and std on a 0-1 scale.
MINIECOSET_MEAN = (0.4987, 0.4702, 0.4050)
MINIECOSET_STD = (0.2711, 0.2635, 0.2810)

PRESETS = {
    "tiny": dict(input_size=32, kernel_size=3, retina_channels=16, channels=(16, 32, 64, 128),
                 num_classes=10, timesteps=8, v1_recurrent=True, classes=FASHION_MNIST_CLASSES,
                 mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD),
    "ccn23-64": dict(input_size=64, kernel_size=3, retina_channels=32, channels=(64, 128, 256, 512),
                     num_classes=100, timesteps=10, v1_recurrent=False,
                     mean=MINIECOSET_MEAN, std=MINIECOSET_STD),
    "ccn23-128": dict(input_size=128, kernel_size=5, retina_channels=32, channels=(64, 128, 256, 512),
                      num_classes=100, timesteps=10, v1_recurrent=False,
                      mean=MINIECOSET_MEAN, std=MINIECOSET_STD),
}
PRESET_TEXT = {
    "tiny": "32 px, 16-128 channels, 8 steps, 10 classes (Fashion-MNIST)",
    "ccn23-64": "published CCN23 architecture, 64 px, 64-512 channels, 10 steps, 100 classes",
    "ccn23-128": "published CCN23 architecture, 128 px, 5x5 kernels, 10 steps, 100 classes",
}
VARIANTS = {
    "feedforward": (dict(lateral=False, topdown=False, interaction="additive"),
                    "B: bottom-up only, the same pass repeated at every step"),
    "lateral": (dict(lateral=True, topdown=False, interaction="additive"),
                "BL: bottom-up + lateral, additive"),
    "topdown": (dict(lateral=False, topdown=True, interaction="additive"),
                "BT: bottom-up + top-down, additive"),
    "lateral-topdown": (dict(lateral=True, topdown=True, interaction="additive"),
                        "BLT: bottom-up + lateral + top-down, additive"),
    "lateral-mult": (dict(lateral=True, topdown=False, interaction="multiplicative"),
                     "BL: bottom-up x (1 + lateral), multiplicative"),
    "topdown-mult": (dict(lateral=False, topdown=True, interaction="multiplicative"),
                     "BT: bottom-up x (1 + top-down), multiplicative"),
    "lateral-topdown-mult": (dict(lateral=True, topdown=True, interaction="multiplicative"),
                             "BLT: bottom-up x (1 + lateral + top-down), multiplicative"),
    "cornet-rt": (dict(family="cornet-rt", lateral=False, topdown=False),
                  "CORnet-RT-style: blocks with their own recurrent state, conv -> norm -> ReLU"),
    "convgru": (dict(family="convgru", lateral=False, topdown=False),
                "convolutional GRU cells in every area"),
}
TINY_ONLY = ("cornet-rt", "convgru")     # families beyond BLT: the tiny preset's input and classes only
DEFAULT_PRESET = "tiny"
WEIGHTS_DIR = Path(__file__).parent / "weights"


def split_name(name: str) -> tuple[str, str]:
    """'lateral' -> ('tiny', 'lateral'); 'ccn23-64/topdown' -> ('ccn23-64', 'topdown')."""
    preset, _, variant = name.rpartition("/")
    preset = preset or DEFAULT_PRESET
    if preset not in PRESETS or variant not in VARIANTS or (variant in TINY_ONLY and preset != DEFAULT_PRESET):
        raise ModelError(f"unknown model {name!r}; known names: {', '.join(all_names())} "
                         "(or a checkpoint folder / weights file)")
    return preset, variant


def all_names() -> list[str]:
    names = list(VARIANTS)
    names += [f"{p}/{v}" for p in PRESETS if p != DEFAULT_PRESET for v in VARIANTS if v not in TINY_ONLY]
    return names


def get_config(name: str, **overrides) -> BLTConfig:
    """The configuration of a registered name, with optional field overrides."""
    preset, variant = split_name(name)
    kw = dict(PRESETS[preset])
    kw.update(VARIANTS[variant][0])
    kw.update(name=variant, preset=preset)
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return BLTConfig(**kw)


def weights_path(name: str) -> Path:
    preset, variant = split_name(name)
    return WEIGHTS_DIR / f"{preset.replace('-', '_')}_{variant.replace('-', '_')}.safetensors"


def model_card(name: str) -> dict | None:
    """The shipped model card (JSON beside the weights), or None if none ships."""
    card = weights_path(name).with_suffix(".json")
    if not card.exists():
        return None
    return json.loads(card.read_text())


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    pretrained: bool
    accuracy: float | None = None  # last-step test accuracy of the shipped weights

    def __str__(self):
        acc = f"{self.accuracy:.3f}" if self.accuracy is not None else "-"
        flag = "pretrained" if self.pretrained else "random only"
        return f"{self.name:<32} {flag:<11}  {acc:<5}  {self.description}"


def list_models() -> list[ModelInfo]:
    """Every registered name with a one-line description and whether weights ship.

    Returns
    -------
    list of ModelInfo
        One per registered name, in registry order: ``name``, ``description``,
        ``pretrained`` (whether weights ship) and ``accuracy`` (last-step test
        accuracy of the shipped weights, None without them).

    Examples
    --------
    >>> import vision_rnn as vrnn
    >>> [m.name for m in vrnn.list_models()][:2]
    ['feedforward', 'lateral']
    """
    out = []
    for name in all_names():
        preset, variant = split_name(name)
        card = model_card(name)
        pretrained = card is not None and weights_path(name).exists()
        acc = None
        if card is not None:
            per_step = card.get("test_accuracy_per_step")
            acc = per_step[-1] if per_step else None
        out.append(ModelInfo(name, f"{VARIANTS[variant][1]}; {PRESET_TEXT[preset]}", pretrained, acc))
    return out
