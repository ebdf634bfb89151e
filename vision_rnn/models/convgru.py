"""A convolutional GRU network: four areas, each a ConvGRU cell over the area below.

After Ballas et al. (2016), "Delving deeper into convolutional networks for
learning video representations": the GRU's matrix products become
convolutions, so the state of each area (v1, v2, v4, it) is a feature map::

    b_t      = bottom_t                         (v2, v4, it: 2x2 max-pool of the area below at step t)
    z_t, r_t = sigmoid(conv_zr([b_t, h_{t-1}]))   update and reset gates
    n_t      = tanh(conv_n([b_t, r_t * h_{t-1}]))
    h_t      = (1 - z_t) * h_{t-1} + z_t * n_t     h_{-1} = 0
    gap_t    = spatial mean of it_t
    logits_t = readout(gap_t)

v1 reads the image through a conv + ReLU stem (no state). An area reads the area
below at the same step, so step 0 is a feed-forward pass. The time loop is
written out in :meth:`ConvGRUNet._steps`; every named submodule (v1, v2, v4,
it, gap, readout) is called once per step.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cornet_rt import SpatialMean
from .protocol import ConfiguredNet

LAYERS = ("v1", "v2", "v4", "it", "gap")


class ConvGRUCell(nn.Module):
    """``forward(bottom, h) -> h``: one GRU step with convolutions (``h`` None: zeros)."""

    def __init__(self, cin: int, c: int, k: int, *, pool: bool):
        super().__init__()
        self.pool = pool
        self.channels = c
        self.conv_zr = nn.Conv2d(cin + c, 2 * c, k, padding=k // 2)
        self.conv_n = nn.Conv2d(cin + c, c, k, padding=k // 2)

    def forward(self, bottom, h=None):
        if self.pool:
            bottom = F.max_pool2d(bottom, 2)
        if h is None:
            h = bottom.new_zeros(bottom.shape[0], self.channels, *bottom.shape[2:])
        z, r = torch.sigmoid(self.conv_zr(torch.cat([bottom, h], 1))).chunk(2, 1)
        n = torch.tanh(self.conv_n(torch.cat([bottom, r * h], 1)))
        return (1 - z) * h + z * n


class ConvGRUNet(ConfiguredNet):
    """The ConvGRU network of a :class:`~vision_rnn.models.blt.BLTConfig` with ``family="convgru"``.

    >>> import torch, vision_rnn as vrnn
    >>> model = vrnn.load_model("convgru", weights="random", seed=0)
    >>> model.run(torch.zeros(2, 3, 32, 32))["gap"].shape
    torch.Size([2, 8, 128])
    """

    layer_names = LAYERS
    default_layers = LAYERS

    def __init__(self, config):
        super().__init__(config)
        c, k = config, config.kernel_size
        ch = c.channels
        self.stem = nn.Conv2d(c.in_channels, c.retina_channels, k, padding=k // 2)
        self.v1 = ConvGRUCell(c.retina_channels, ch[0], k, pool=False)
        self.v2 = ConvGRUCell(ch[0], ch[1], k, pool=True)
        self.v4 = ConvGRUCell(ch[1], ch[2], k, pool=True)
        self.it = ConvGRUCell(ch[2], ch[3], k, pool=True)
        self.gap = SpatialMean()
        self.readout = nn.Linear(ch[3], c.num_classes, bias=c.readout_bias)

    def _steps(self, x, steps, layers, record):
        h = dict.fromkeys(("v1", "v2", "v4", "it"))
        stem = None if x.dim() == 5 else F.relu(self.stem(x))
        logits = []
        for t in range(steps):
            if x.dim() == 5:
                stem = F.relu(self.stem(x[:, t]))
            h["v1"] = self.v1(stem, h["v1"])
            h["v2"] = self.v2(h["v1"], h["v2"])
            h["v4"] = self.v4(h["v2"], h["v4"])
            h["it"] = self.it(h["v4"], h["it"])
            gap = self.gap(h["it"])
            logits.append(self.readout(gap))
            now = dict(h, gap=gap)
            for n in layers:
                record[n].append(now[n])
        return logits
