"""The BLT family: bottom-up, lateral and top-down recurrent convolutional networks.

One configurable network covers the feed-forward baseline (B), lateral (BL),
top-down (BT) and both (BLT), each with an additive or a multiplicative
interaction between the bottom-up drive and the recurrent drives::

    retina  conv + ReLU, computed from the image at each step (no recurrence)
    v1      conv                     (+ lateral, + top-down from v2 if v1_recurrent)
    v2      2x2 max-pool, conv       (+ lateral, + top-down from v4)
    v4      2x2 max-pool, conv       (+ lateral, + top-down from it)
    it      2x2 max-pool, conv       (+ lateral)
    gap     global average of it     (+ lateral, a linear map)
    readout linear map of gap -> class logits

At every step a layer computes its bottom-up drive ``b`` from the layer below at
the same step, a lateral drive ``l`` from itself at the previous step and a
top-down drive ``d`` from the layer above at the previous step, then::

    additive:        a = ReLU(LN(b + l + d))
    multiplicative:  a = ReLU(LN(b * (1 + l + d)))

where LN is a LayerNorm over (channel, row, col). At step 0 no recurrent input
exists yet, so the pass is purely feed-forward. The time loop is written out in
:meth:`BLTNet.run`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ModelError
from .protocol import ConfiguredNet

LAYERS = ("retina", "v1", "v2", "v4", "it", "gap")
DEFAULT_LAYERS = ("v1", "v2", "v4", "it", "gap")
INTERACTIONS = ("additive", "multiplicative")
FAMILIES = ("blt", "cornet-rt", "convgru")     # the network a config builds (models/loading.py: network_class)


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _tuple_of(values, name: str, ok, what: str) -> tuple:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise ModelError(f"{name} must be a list of {what} (got {values!r})")
    if not all(ok(v) for v in values):
        raise ModelError(f"{name} must be a list of {what} (got {list(values)!r})")
    return tuple(values)


@dataclass
class BLTConfig:
    """Everything that defines a network's architecture and its input.

    ``channels`` are the v1, v2, v4 and it widths; gap has the width of it.
    ``v1_recurrent=False`` reproduces the published CCN23 wiring, where v1
    takes only the retina output at every step (top-down then enters v2 and
    v4 only). ``lt_position="last"`` keeps only the gap lateral connection.
    ``mean``/``std`` are the per-channel input normalisation on a 0-1 scale.
    ``family`` names the network the config builds: ``"blt"`` (this module),
    ``"cornet-rt"`` or ``"convgru"``; those two use the channels, kernel size,
    input, classes and steps, and ignore the BLT wiring fields (lateral,
    topdown, interaction, v1_recurrent, lt_position).
    """

    name: str = "lateral"
    preset: str = "tiny"
    input_size: int = 32
    in_channels: int = 3
    kernel_size: int = 3
    retina_channels: int = 16
    channels: tuple = (16, 32, 64, 128)
    num_classes: int = 10
    timesteps: int = 8
    lateral: bool = True
    topdown: bool = False
    interaction: str = "additive"
    v1_recurrent: bool = True
    lt_position: str = "all"
    readout_bias: bool = False
    family: str = "blt"
    classes: tuple = ()
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.5, 0.5, 0.5)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        ints = {"input_size": 8, "in_channels": 1, "kernel_size": 1, "retina_channels": 1, "num_classes": 1,
                "timesteps": 1}
        for name, low in ints.items():
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                raise ModelError(f"{name} must be an integer of at least {low} (got {value!r})")
        for name in ("lateral", "topdown", "v1_recurrent", "readout_bias"):
            if not isinstance(getattr(self, name), bool):
                raise ModelError(f"{name} must be true or false (got {getattr(self, name)!r})")
        if self.family not in FAMILIES:
            raise ModelError(f"family must be one of {', '.join(FAMILIES)} (got {self.family!r})")
        for name in ("name", "preset"):
            if not isinstance(getattr(self, name), str):
                raise ModelError(f"{name} must be a string (got {getattr(self, name)!r})")
        if not isinstance(self.extra, dict):
            raise ModelError(f"extra must be a mapping (got {self.extra!r})")
        self.channels = _tuple_of(self.channels, "channels", lambda c: _is_int(c) and c >= 1, "positive integers")
        if len(self.channels) != 4:
            raise ModelError(f"channels must list 4 widths (v1, v2, v4, it); got {list(self.channels)}")
        for name in ("mean", "std"):
            values = _tuple_of(getattr(self, name), name,
                               lambda m: isinstance(m, (int, float)) and not isinstance(m, bool) and math.isfinite(m),
                               "finite numbers")
            if len(values) != self.in_channels:
                raise ModelError(f"{name} must have one value per input channel ({self.in_channels}); got {list(values)}")
            setattr(self, name, tuple(float(v) for v in values))
        if any(v <= 0 for v in self.std):
            raise ModelError(f"std must be positive (got {list(self.std)})")
        if not self.classes:
            self.classes = tuple(f"class_{i:03d}" for i in range(self.num_classes))
        self.classes = _tuple_of(self.classes, "classes", lambda c: isinstance(c, str), "strings")
        if len(self.classes) != self.num_classes:
            raise ModelError(
                f"config has {len(self.classes)} class names for num_classes={self.num_classes}; "
                "give one name per class")
        if self.interaction not in INTERACTIONS:
            raise ModelError(f"interaction {self.interaction!r} is not one of {', '.join(INTERACTIONS)}")
        if self.lt_position not in ("all", "last"):
            raise ModelError(f"lt_position {self.lt_position!r} is not 'all' or 'last'")
        if self.kernel_size % 2 != 1:
            raise ModelError(f"kernel_size must be odd (got {self.kernel_size})")
        if self.input_size % 8 != 0:
            raise ModelError(f"input_size must be a multiple of 8 (got {self.input_size}): "
                             "three 2x2 poolings follow v1")

    @property
    def full_name(self) -> str:
        return f"{self.preset}/{self.name}"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        d["classes"] = list(self.classes)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        if self.family == "blt":
            del d["family"]                 # BLT configs read as they always have
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "BLTConfig":
        if not isinstance(d, dict):
            raise ModelError(f"a model config is a JSON object of fields; got {type(d).__name__} {str(d)[:40]}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ModelError(f"model config has unknown fields {unknown}; "
                             "was it written by a newer vision-rnn?")
        return cls(**d)


class MaxPool2x2(nn.Module):
    """2x2 max-pool with stride 2, as the maximum of four strided views.

    The same numbers as ``nn.MaxPool2d(2, 2)`` on even-sized maps, several
    times faster on the CPU for these small feature maps.
    """

    def forward(self, x):
        top = torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2])
        bottom = torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2])
        return torch.maximum(top, bottom)


class RecurrentConv(nn.Module):
    """One recurrent convolutional layer (v1, v2, v4 or it).

    ``forward(bottom, previous, above)`` takes the layer below at this step,
    this layer at the previous step and the layer above at the previous step
    (the last two are ``None`` at step 0) and returns the new activation.
    """

    def __init__(self, in_channels, channels, kernel_size, size, *, pool, lateral,
                 topdown_channels, interaction):
        super().__init__()
        self.pool = MaxPool2x2() if pool else None
        self.bottom_up = nn.Conv2d(in_channels, channels, kernel_size, padding="same", bias=False)
        self.lateral = (nn.Conv2d(channels, channels, kernel_size, padding="same", bias=False)
                        if lateral else None)
        self.top_down = None
        if topdown_channels:
            self.top_down = nn.ConvTranspose2d(
                topdown_channels, channels, kernel_size, stride=2,
                padding=(kernel_size - 1) // 2, output_padding=1, bias=False)
        self.ln = nn.LayerNorm([channels, size, size])
        self.interaction = interaction

    @property
    def recurrent(self) -> bool:
        return self.lateral is not None or self.top_down is not None

    def drives(self, bottom, previous=None, above=None):
        """The bottom-up drive and the list of recurrent drives (lateral, top-down)."""
        b = self.bottom_up(self.pool(bottom) if self.pool is not None else bottom)
        recurrent = []
        if self.lateral is not None and previous is not None:
            recurrent.append(self.lateral(previous))
        if self.top_down is not None and above is not None:
            recurrent.append(self.top_down(above))
        return b, recurrent

    def forward(self, bottom, previous=None, above=None):
        b, recurrent = self.drives(bottom, previous, above)
        return F.relu(self.ln(combine(b, recurrent, self.interaction)))


class GlobalPoolLayer(nn.Module):
    """gap: global average of ``it`` with a lateral (linear) connection."""

    def __init__(self, channels, *, lateral, interaction):
        super().__init__()
        self.lateral = nn.Linear(channels, channels, bias=False) if lateral else None
        self.ln = nn.LayerNorm([channels])
        self.interaction = interaction

    @property
    def recurrent(self) -> bool:
        return self.lateral is not None

    def forward(self, it, previous=None):
        b = F.avg_pool2d(it, it.shape[-2:]).flatten(1)  # global mean, summed as the published code does
        recurrent = [self.lateral(previous)] if self.lateral is not None and previous is not None else []
        return F.relu(self.ln(combine(b, recurrent, self.interaction)))


def combine(b, recurrent, interaction):
    """b + l + d (additive) or b * (1 + l + d) (multiplicative), summed left to right."""
    if not recurrent:
        return b
    if interaction == "additive":
        out = b
        for r in recurrent:
            out = out + r
        return out
    gain = 1.0
    for r in recurrent:
        gain = gain + r
    return b * gain


class BLTNet(ConfiguredNet):
    """A BLT network built from a :class:`BLTConfig`.

    ``model(x)`` returns logits (batch, time, class); ``model.run(x)`` returns
    every layer at every step. ``x`` is an image batch (batch, C, H, W),
    normalised with ``model.mean``/``model.std``, or a sequence
    (batch, time, C, H, W) that shows image t at step t.

    >>> import torch, vision_rnn as vrnn
    >>> model = vrnn.load_model("lateral", weights="random", seed=0)
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 8, 10])
    """

    def __init__(self, config: BLTConfig):
        super().__init__(config)
        c = config
        k = c.kernel_size
        s = c.input_size
        ch = c.channels
        conv_lateral = c.lateral and c.lt_position == "all"
        conv_topdown = c.topdown and c.lt_position == "all"
        v1_rec = c.v1_recurrent
        self.retina = nn.Conv2d(c.in_channels, c.retina_channels, k, padding="same")
        self.v1 = RecurrentConv(c.retina_channels, ch[0], k, s, pool=False,
                                lateral=conv_lateral and v1_rec,
                                topdown_channels=ch[1] if conv_topdown and v1_rec else 0,
                                interaction=c.interaction)
        self.v2 = RecurrentConv(ch[0], ch[1], k, s // 2, pool=True, lateral=conv_lateral,
                                topdown_channels=ch[2] if conv_topdown else 0,
                                interaction=c.interaction)
        self.v4 = RecurrentConv(ch[1], ch[2], k, s // 4, pool=True, lateral=conv_lateral,
                                topdown_channels=ch[3] if conv_topdown else 0,
                                interaction=c.interaction)
        self.it = RecurrentConv(ch[2], ch[3], k, s // 8, pool=True, lateral=conv_lateral,
                                topdown_channels=0, interaction=c.interaction)
        self.gap = GlobalPoolLayer(ch[3], lateral=c.lateral, interaction=c.interaction)
        self.readout = nn.Linear(ch[3], c.num_classes, bias=c.readout_bias)

    layer_names = LAYERS
    default_layers = DEFAULT_LAYERS

    # -- the time loop (``run``, with its checks, is ConfiguredNet's) ------------------
    def _steps(self, x, steps, layers, record):
        logits = []
        sequence = x.dim() == 5
        prev = dict.fromkeys(DEFAULT_LAYERS)
        retina = None if sequence else F.relu(self.retina(x))
        for t in range(steps):
            if sequence:
                retina = F.relu(self.retina(x[:, t]))
            if t > 0 and not sequence and not self.v1.recurrent:
                v1 = prev["v1"]  # same input, no recurrence: v1 does not change
            else:
                v1 = self.v1(retina, prev["v1"], prev["v2"])
            v2 = self.v2(v1, prev["v2"], prev["v4"])
            v4 = self.v4(v2, prev["v4"], prev["it"])
            it = self.it(v4, prev["it"])
            gap = self.gap(it, prev["gap"])
            prev = {"v1": v1, "v2": v2, "v4": v4, "it": it, "gap": gap}
            logits.append(self.readout(gap))
            for n in layers:
                record[n].append(retina if n == "retina" else prev[n])
        return logits


def init_weights(model: nn.Module, seed: int) -> nn.Module:
    """Seeded initialisation: Xavier-uniform convolutions and linear maps (as in the
    CCN23 training code), PyTorch defaults elsewhere. Same seed, same weights."""
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight, generator=gen)
                if m.bias is not None:
                    fan_in = m.weight.shape[1] * m.weight[0, 0].numel()
                    if isinstance(m, nn.ConvTranspose2d):
                        fan_in = m.weight.shape[0] * m.weight[0, 0].numel()
                    bound = 1.0 / fan_in ** 0.5
                    m.bias.uniform_(-bound, bound, generator=gen)
            elif isinstance(m, nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
    return model
