"""What every built-in network shares: the model protocol on top of a config, and the checked run.

A subclass sets ``layer_names``/``default_layers``, builds its submodules in
``__init__`` (a ``readout`` ``nn.Linear`` of its last layer, ``gap``) and writes
its time loop in ``_steps(x, steps, layers, record) -> [logits per step]``,
appending each requested layer's output per step to ``record[layer]``.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn as nn

from ..errors import ModelError


def state_sha256(module: nn.Module) -> str:
    """A hash of every parameter and buffer of ``module`` (names, shapes and values)."""
    h = hashlib.sha256()
    for key, t in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()


class ConfiguredNet(nn.Module):
    """A recurrent network built from a config (:class:`~vision_rnn.models.blt.BLTConfig`), with the
    model protocol: ``run``, ``layer_shape``, ``classes``, ``mean``, ``std``, ``provenance``, ..."""

    layer_names: tuple = ()
    default_layers: tuple = ()
    readout_layer = "gap"

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.timesteps = config.timesteps
        self.weights_source = "random"
        self.seed = None

    # -- what the model carries -------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return list(self.config.classes)

    @property
    def input_size(self) -> int:
        return self.config.input_size

    @property
    def mean(self) -> tuple:
        return self.config.mean

    @property
    def std(self) -> tuple:
        return self.config.std

    @property
    def name(self) -> str:
        return self.config.full_name

    def layer_shape(self, layer: str) -> tuple:
        """Shape of one stimulus' activation at one step: (C, H, W) or (C,)."""
        c, s = self.config, self.config.input_size
        shapes = {"retina": (c.retina_channels, s, s), "v1": (c.channels[0], s, s),
                  "v2": (c.channels[1], s // 2, s // 2), "v4": (c.channels[2], s // 4, s // 4),
                  "it": (c.channels[3], s // 8, s // 8), "gap": (c.channels[3],),
                  "logits": (c.num_classes,)}
        if layer not in self.layer_names and layer != "logits":
            raise ModelError(f"unknown layer {layer!r}; this model has {', '.join(self.layer_names)}")
        return shapes[layer]

    def weights_sha256(self) -> str:
        """A hash of every parameter and buffer (names, shapes and values)."""
        return state_sha256(self)

    def readout_parameters(self):
        """``(weight (class, feature), bias or None)`` of the readout of gap, as numpy arrays."""
        bias = self.readout.bias
        return (self.readout.weight.detach().cpu().float().numpy(),
                None if bias is None else bias.detach().cpu().float().numpy())

    @property
    def provenance(self) -> dict:
        """What the activation files record of the model: config (JSON), weights, their hash, seed."""
        return {"config": self.config.to_json(), "weights": str(self.weights_source),
                "weights_sha256": self.weights_sha256(), "seed": self.seed}

    # -- the time loop ---------------------------------------------------------------
    def forward(self, x, timesteps=None):
        return self.run(x, timesteps=timesteps, layers=())["logits"]

    def run(self, x, timesteps=None, layers=None):
        """Unroll the network; return ``{layer: (batch, time, ...), "logits": (batch, time, class)}``.

        ``timesteps`` defaults to the trained number and may exceed it. With a
        sequence input (batch, time, C, H, W) the number of steps is the
        sequence length. ``layers`` selects what is returned (default: the
        model's default layers).
        """
        layers = self.default_layers if layers is None else tuple(layers)
        unknown = [n for n in layers if n not in self.layer_names]
        if unknown:
            raise ModelError(f"unknown layer(s) {unknown}; this model has {', '.join(self.layer_names)}")
        if x.dim() == 5:
            if timesteps is not None and timesteps != x.shape[1]:
                raise ModelError(f"timesteps={timesteps} but the input sequence has {x.shape[1]} steps")
            steps = x.shape[1]
        elif x.dim() == 4:
            steps = self.timesteps if timesteps is None else int(timesteps)
        else:
            raise ModelError(f"input must be (batch, C, H, W) or (batch, time, C, H, W); got shape {tuple(x.shape)}")
        if steps < 1:
            raise ModelError(f"timesteps must be at least 1 (got {steps})")
        expected = (self.config.in_channels, self.config.input_size, self.config.input_size)
        if tuple(x.shape[-3:]) != expected:
            raise ModelError(f"input images must be {expected} (C, H, W); got {tuple(x.shape[-3:])}")
        record = {n: [] for n in layers}
        logits = self._steps(x, steps, layers, record)
        out = {n: torch.stack(v, dim=1) for n, v in record.items()}
        out["logits"] = torch.stack(logits, dim=1)
        return out

    def _steps(self, x, steps, layers, record) -> list:
        raise NotImplementedError
