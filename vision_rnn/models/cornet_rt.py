"""A CORnet-RT-style network: four areas, each a block with its own recurrent state.

After Kubilius et al. (2018), "CORnet: Modeling the Core Object Recognition
Pathway of the Brain": every area (v1, v2, v4, it) is a block that turns its
input into a drive (conv -> norm -> ReLU) and adds it to the block's state from
the previous step before a second conv -> norm -> ReLU; the result is the
area's output and its new state::

    drive_t  = ReLU(GN(conv_in(bottom_t)))            bottom_t: the area below at step t (v1: the image)
    out_t    = ReLU(GN(conv_rec(drive_t + out_{t-1})))  out_{-1} = 0
    gap_t    = spatial mean of it_t
    logits_t = readout(gap_t)

Unlike CORnet-RT's biological unrolling, an area reads the area below at the
same step, so step 0 is a full feed-forward pass (as in the BLT family). v2, v4
and it halve the map with a 2x2 max-pool before their input conv. The time loop
is written out in :meth:`CORnetRT.run`; every named submodule (v1, v2, v4, it,
gap, readout) is called once per step, so :func:`vision_rnn.record` sees the
same steps.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from .protocol import ConfiguredNet

LAYERS = ("v1", "v2", "v4", "it", "gap")


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class RTBlock(nn.Module):
    """One area: ``forward(bottom, state) -> (output, state)``, as CORnet's blocks return."""

    def __init__(self, cin: int, c: int, k: int, *, pool: bool):
        super().__init__()
        self.pool = pool
        self.conv_in = nn.Conv2d(cin, c, k, padding=k // 2)
        self.norm_in = _norm(c)
        self.conv_rec = nn.Conv2d(c, c, k, padding=k // 2, bias=False)
        self.norm_rec = _norm(c)

    def forward(self, bottom, state=None):
        if self.pool:
            bottom = F.max_pool2d(bottom, 2)
        drive = F.relu(self.norm_in(self.conv_in(bottom)))
        if state is not None:
            drive = drive + state
        out = F.relu(self.norm_rec(self.conv_rec(drive)))
        return out, out


class SpatialMean(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


class CORnetRT(ConfiguredNet):
    """The CORnet-RT-style network of a :class:`~vision_rnn.models.blt.BLTConfig` with
    ``family="cornet-rt"`` (its channels, kernel size, input, classes and steps).

    >>> import torch, vision_rnn as vrnn
    >>> model = vrnn.load_model("cornet-rt", weights="random", seed=0)
    >>> model.run(torch.zeros(2, 3, 32, 32))["v4"].shape
    torch.Size([2, 8, 64, 8, 8])
    """

    layer_names = LAYERS
    default_layers = LAYERS

    def __init__(self, config):
        super().__init__(config)
        c, k = config, config.kernel_size
        ch = c.channels
        self.v1 = RTBlock(c.in_channels, ch[0], k, pool=False)
        self.v2 = RTBlock(ch[0], ch[1], k, pool=True)
        self.v4 = RTBlock(ch[1], ch[2], k, pool=True)
        self.it = RTBlock(ch[2], ch[3], k, pool=True)
        self.gap = SpatialMean()
        self.readout = nn.Linear(ch[3], c.num_classes, bias=c.readout_bias)

    def _steps(self, x, steps, layers, record):
        state = dict.fromkeys(("v1", "v2", "v4", "it"))
        logits = []
        for t in range(steps):
            inp = x[:, t] if x.dim() == 5 else x
            v1, state["v1"] = self.v1(inp, state["v1"])
            v2, state["v2"] = self.v2(v1, state["v2"])
            v4, state["v4"] = self.v4(v2, state["v4"])
            it, state["it"] = self.it(v4, state["it"])
            gap = self.gap(it)
            logits.append(self.readout(gap))
            now = {"v1": v1, "v2": v2, "v4": v4, "it": it, "gap": gap}
            for n in layers:
                record[n].append(now[n])
        return logits

