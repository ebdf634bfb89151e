"""Any PyTorch recurrent network as a model: forward hooks that keep every step.

Many recurrent vision networks run their time loop inside ``forward`` (CORnet's
blocks, ConvGRU stacks, a lab's own class). :func:`record` wraps such a module
so that extraction, the analyses and the comparisons see it as they see a BLT
network: a forward hook on each named submodule keeps every call, the t-th call
in one forward being step t, so ``run(x)`` returns ``{layer: (batch, time, ...),
"logits": (batch, time, class)}``.

The model protocol (what :func:`vision_rnn.extract` and the activation store
rely on) is, beside ``run``: ``name``, ``layer_names``, ``default_layers``,
``layer_shape(layer)``, ``timesteps``, ``input_size``, ``mean``, ``std``,
``classes``, ``provenance`` (config, weights, weights hash, seed), ``to``/``eval``
as on a torch module, and optionally ``readout_layer`` with
``readout_parameters()`` (the linear map from that layer to the logits).
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch
import torch.nn as nn

from ..errors import ModelError
from .protocol import state_sha256

RESERVED = ("logits",)


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


class Recorded(nn.Module):
    """A module whose time loop is inside ``forward``, seen through the model protocol.

    Build it with :func:`record`. ``recorded(x)`` returns the logits
    (batch, time, class); ``recorded.run(x)`` every recorded layer at every step.
    The wrapped module is ``recorded.module`` (its weights are this object's
    weights: ``.to``, ``.eval`` and ``state_dict`` act on it).
    """

    def __init__(self, module, layers, timesteps, readout, readout_from, input_size, mean, std, classes,
                 output, name):
        super().__init__()
        self.module = module
        self._layers = tuple(layers)
        self.timesteps = int(timesteps)
        self._readout = readout
        self._readout_from = readout_from
        self._input_size = int(input_size)
        self._mean = tuple(float(m) for m in mean)
        self._std = tuple(float(s) for s in std)
        self._classes = [str(c) for c in classes]
        self._output = int(output)
        self._name = name
        self.weights_source = "module's own"
        self.seed = None
        self._shapes = None

    # -- the protocol ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def layer_names(self) -> tuple:
        return self._layers

    @property
    def default_layers(self) -> tuple:
        return self._layers

    @property
    def input_size(self) -> int:
        return self._input_size

    @property
    def mean(self) -> tuple:
        return self._mean

    @property
    def std(self) -> tuple:
        return self._std

    @property
    def classes(self) -> list:
        return list(self._classes)

    @property
    def readout_layer(self):
        """The recorded layer the logits are a linear map of (``readout_from``), or None."""
        return self._readout_from if self._linear_readout() is not None else None

    def readout_parameters(self):
        """``(weight (class, feature), bias or None)`` as numpy arrays when the logits are a linear map
        (a ``torch.nn.Linear``) of the flattened ``readout_from`` layer; otherwise None."""
        fn = self._linear_readout()
        if fn is None:
            return None
        weight = fn.weight.detach().cpu().float().numpy()
        bias = fn.bias.detach().cpu().float().numpy() if fn.bias is not None else None
        return weight, bias

    def _linear_readout(self):
        """The readout when it is an ``nn.Linear`` of the flattened ``readout_from`` layer, else None."""
        if self._readout_from is None:
            return None
        fn = self._readout_fn()
        if not isinstance(fn, nn.Linear) or fn.in_features != math.prod(self.layer_shape(self._readout_from)) \
                or fn.out_features != len(self._classes):
            return None
        return fn

    def layer_shape(self, layer: str) -> tuple:
        """Shape of one stimulus' activation at one step (found by one forward of two blank images)."""
        if layer == "logits":
            return (len(self._classes),)
        if layer not in self._layers:
            raise ModelError(f"unknown layer {layer!r}; this model records {', '.join(self._layers)}")
        if self._shapes is None:
            self.check()
        return self._shapes[layer]

    @property
    def config(self) -> dict:
        return {"kind": "record", "module": f"{type(self.module).__module__}.{type(self.module).__qualname__}",
                "layers": list(self._layers), "timesteps": self.timesteps,
                "readout": self._readout if isinstance(self._readout, str) or self._readout is None
                else _callable_name(self._readout),
                "readout_from": self._readout_from, "output": self._output, "input_size": self._input_size,
                "mean": list(self._mean), "std": list(self._std), "classes": list(self._classes)}

    @property
    def provenance(self) -> dict:
        return {"config": json.dumps(self.config, sort_keys=True), "weights": str(self.weights_source),
                "weights_sha256": state_sha256(self), "seed": self.seed}

    def weights_sha256(self) -> str:
        return state_sha256(self)

    # -- running -----------------------------------------------------------------------
    def check(self) -> None:
        """Run two blank images through the module and check every recorded layer and the logits
        (call counts, shapes); remember the layer shapes."""
        device = next((p.device for p in self.module.parameters()), torch.device("cpu"))
        x = torch.zeros(2, len(self._mean), self._input_size, self._input_size, device=device)
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                out = self._forward(x, self._layers)
        finally:
            self.module.train(was_training)
        self._shapes = {n: tuple(out[n].shape[2:]) for n in self._layers}

    def forward(self, x, timesteps=None):
        return self.run(x, timesteps=timesteps, layers=())["logits"]

    def run(self, x, timesteps=None, layers=None):
        """Run the module once; return ``{layer: (batch, time, ...), "logits": (batch, time, class)}``.

        ``timesteps`` is fixed by the module's ``forward`` (None or the recorded
        number); ``layers`` selects the recorded layers returned (default: all).
        """
        if timesteps is not None and timesteps != self.timesteps:
            raise ModelError(f"`timesteps={timesteps}`: {self._name} runs its own time loop of {self.timesteps} "
                             "steps; leave `timesteps` unset")
        layers = self._layers if layers is None else tuple(layers)
        unknown = [n for n in layers if n not in self._layers]
        if unknown:
            raise ModelError(f"unknown layer(s) {unknown}; this model records {', '.join(self._layers)}")
        if not torch.is_tensor(x) or x.dim() != 4:
            raise ModelError(f"input must be a (batch, C, H, W) tensor; got "
                             f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
        expected = (len(self._mean), self._input_size, self._input_size)
        if tuple(x.shape[1:]) != expected:
            raise ModelError(f"input images must be {expected} (C, H, W); got {tuple(x.shape[1:])}")
        return self._forward(x, layers)

    def _readout_fn(self):
        r = self._readout
        return self.module.get_submodule(r) if isinstance(r, str) else r

    def _forward(self, x, layers):
        T = self.timesteps
        hooked = list(dict.fromkeys(list(layers) + ([self._readout_from] if self._readout_from else [])))
        calls = {n: 0 for n in hooked}              # calls so far; each copied straight into its step's slot
        bufs, shapes = {}, {n: set() for n in hooked}
        per_step_readout = isinstance(self._readout, str) and self._readout_from is None
        readout_calls = []
        handles = []

        def tensor_of(name, out, select):
            if select and isinstance(out, (tuple, list)):
                if not -len(out) <= self._output < len(out):
                    raise ModelError(f"layer {name!r} returns {len(out)} outputs; output={self._output} "
                                     "is not one of them")
                out = out[self._output]
            if not torch.is_tensor(out):
                raise ModelError(f"{'the readout' if name is None else f'layer {name!r}'} returns "
                                 f"{type(out).__name__}, not a tensor; choose `output=` (the element of a "
                                 "tuple output)")
            return out.detach()

        def keeper(name):
            def hook(mod, inputs, out):
                out = tensor_of(name, out, True)
                t = calls[name]
                calls[name] = t + 1
                shapes[name].add(tuple(out.shape))
                if t >= T or len(shapes[name]) > 1:
                    return                               # refused after the forward, with the counts
                if name not in bufs:
                    bufs[name] = out.new_empty((out.shape[0], T) + tuple(out.shape[1:]))
                bufs[name][:, t].copy_(out)              # a copy: later in-place updates cannot reach it
            return hook

        def readout_keeper(mod, inputs, out):
            readout_calls.append(tensor_of(None, out, False).clone())

        try:
            for n in hooked:
                handles.append(self.module.get_submodule(n).register_forward_hook(keeper(n)))
            if per_step_readout:
                handles.append(self.module.get_submodule(self._readout).register_forward_hook(readout_keeper))
            result = self.module(x)
        finally:
            for h in handles:
                h.remove()
        counts = dict(calls, **({" readout": len(readout_calls)} if per_step_readout else {}))
        for n, got in counts.items():
            if got != T:
                what = f"the readout {self._readout!r}" if n == " readout" else f"layer {n!r}"
                raise ModelError(f"{what} was called {got} times in one forward of {self._name}, but "
                                 f"timesteps={T}: each recorded submodule must be called once per step")
        for n in hooked:
            if len(shapes[n]) > 1:
                raise ModelError(f"layer {n!r} changes shape between steps ({sorted(shapes[n])}); record a "
                                 "submodule whose output has one shape at every step")
        states = bufs
        if per_step_readout:
            logits = self._stacked_logits(readout_calls)
        elif self._readout_from is not None:
            fn = self._readout_fn()
            a = states[self._readout_from]
            logits = self._stacked_logits([fn(a[:, t]) for t in range(T)])
        else:
            logits = self._logits_from_output(result)
        want = (x.shape[0], T, len(self._classes))
        if tuple(logits.shape) != want:
            raise ModelError(f"the logits of {self._name} have shape {tuple(logits.shape)}, not (batch, time, "
                             f"class) = {want}; check `classes` ({len(self._classes)}) and the readout")
        for n in layers:
            if states[n].shape[0] != x.shape[0]:
                raise ModelError(f"layer {n!r} has {states[n].shape[0]} rows for a batch of {x.shape[0]}; record "
                                 "submodules whose output starts with the batch")
        out = {n: states[n] for n in layers}
        out["logits"] = logits
        return out

    @staticmethod
    def _stacked_logits(per_step):
        if not all(torch.is_tensor(p) for p in per_step):
            raise ModelError("the readout returns something other than a tensor of logits (batch, class)")
        try:
            return torch.stack([p.reshape(p.shape[0], -1) for p in per_step], dim=1)
        except RuntimeError:
            raise ModelError("the readout returns logits of a different shape at different steps") from None

    def _logits_from_output(self, result):
        if torch.is_tensor(result):
            if result.dim() == 3:
                return result
            raise ModelError(f"{self._name}'s forward returns shape {tuple(result.shape)}, not logits (batch, "
                             "time, class); name the readout (`readout=`, with `readout_from=` for a decoder "
                             "called once per forward)")
        if isinstance(result, (list, tuple)) and len(result) == self.timesteps and \
                all(torch.is_tensor(r) and r.dim() == 2 for r in result):
            return torch.stack(list(result), dim=1)
        raise ModelError(f"{self._name}'s forward returns {type(result).__name__}, not logits per step; name "
                         "the readout (`readout=`, with `readout_from=` for a decoder called once per forward)")


def _callable_name(fn) -> str:
    if isinstance(fn, nn.Module):
        return f"{type(fn).__module__}.{type(fn).__qualname__}"
    return getattr(fn, "__qualname__", type(fn).__qualname__)


def record(module, layers, timesteps, readout=None, readout_from=None, input_size=224,
           mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), classes=None, output=0, name=None) -> Recorded:
    """Wrap a module whose time loop is inside ``forward`` as a model with every step kept.

    Forward hooks on the named submodules record each call: the t-th call in one
    forward is step t, and every named submodule must be called ``timesteps``
    times per forward (a different count is refused). Recorded tensors are
    copies, so in-place updates inside the module cannot change them.

    Parameters
    ----------
    module : torch.nn.Module
        The network; ``module(x)`` with ``x`` (batch, C, H, W) runs all its steps.
    layers : sequence of str
        Names of submodules (as in ``module.named_modules()``) to record, in model order.
    timesteps : int
        Calls of each named submodule per forward.
    readout : str or callable, optional
        Where the logits per step come from: the name of a submodule called once
        per step (its output is the logits at that step); with ``readout_from``,
        a callable (or submodule name) applied to that layer at every step
        (CORnet's decoder, called once per forward). Default: the module's
        output, (batch, time, class) or a list of ``timesteps`` (batch, class) tensors.
    readout_from : str, optional
        A recorded layer that ``readout`` reads. When ``readout`` is a
        ``torch.nn.Linear`` of that layer's flattened units, its weight is stored
        as the file's readout and the readout-zone analyses use it.
    input_size : int, optional
        Side of the square input images in pixels.
    mean, std : sequence of float, optional
        Per-channel input normalisation on a 0-1 scale (one value per input channel).
    classes : sequence of str
        The class names, in logit order.
    output : int, optional
        The element of a tuple output a recorded submodule returns (CORnet blocks
        return ``(output, state)``).
    name : str, optional
        The model's name in files and reports (default: the module's class name).

    Returns
    -------
    Recorded
        An object with the model protocol (``run``, ``layer_shape``, ...).

    Examples
    --------
    >>> import torch, vision_rnn as vrnn
    >>> class Loop(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    ...         self.fc = torch.nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         h = torch.zeros(x.shape[0], 4, 8, 8)
    ...         out = []
    ...         for _ in range(3):
    ...             h = torch.relu(self.conv(x) + h)
    ...             out.append(self.fc(h.mean((2, 3))))
    ...         return out
    >>> m = vrnn.record(Loop(), layers=["conv"], timesteps=3, input_size=8, classes=["a", "b"])
    >>> m.run(torch.zeros(5, 3, 8, 8))["conv"].shape
    torch.Size([5, 3, 4, 8, 8])
    """
    if not isinstance(module, nn.Module):
        raise ModelError(f"record: module must be a torch.nn.Module (got {type(module).__name__})")
    if isinstance(layers, str):
        layers = [layers]
    try:
        layers = [str(n) if isinstance(n, str) else n for n in layers]
    except TypeError:
        raise ModelError(f"record: layers must be a list of submodule names (got {layers!r})") from None
    if not layers or not all(isinstance(n, str) and n for n in layers):
        raise ModelError(f"record: layers must name at least one submodule (got {layers!r})")
    if len(set(layers)) != len(layers):
        raise ModelError(f"record: a layer is named twice ({', '.join(layers)})")
    known = dict(module.named_modules())
    for n in layers + [r for r in (readout,) if isinstance(r, str)]:
        if n in RESERVED:
            raise ModelError(f"record: {n!r} is reserved for the logits; record the submodule under another path")
        if n not in known or n == "":
            some = [k for k in known if k][:12]
            raise ModelError(f"record: {type(module).__name__} has no submodule {n!r}; it has "
                             f"{', '.join(some)}{', ...' if len(known) > 13 else ''}")
    if not _is_int(timesteps) or timesteps < 1:
        raise ModelError(f"record: timesteps must be a whole number of at least 1 (got {timesteps!r})")
    if readout_from is not None:
        if readout_from not in layers:
            raise ModelError(f"record: readout_from={readout_from!r} is not one of the recorded layers "
                             f"({', '.join(layers)})")
        if readout is None or not (isinstance(readout, str) or callable(readout)):
            raise ModelError("record: readout_from needs readout, a callable (or submodule name) that maps "
                             "that layer at one step to logits")
    elif readout is not None and not isinstance(readout, str):
        raise ModelError("record: a callable readout needs readout_from, the recorded layer it reads")
    if not _is_int(input_size) or input_size < 1:
        raise ModelError(f"record: input_size must be a whole number of pixels (got {input_size!r})")
    for what, values in (("mean", mean), ("std", std)):
        ok = isinstance(values, (list, tuple)) and values and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
        if not ok:
            raise ModelError(f"record: {what} must be a list of numbers, one per input channel (got {values!r})")
    if len(mean) != len(std):
        raise ModelError(f"record: mean has {len(mean)} values and std {len(std)}; give one per input channel")
    if any(s <= 0 for s in std):
        raise ModelError(f"record: std must be positive (got {list(std)})")
    if classes is None or isinstance(classes, str) or not len(classes) or \
            not all(isinstance(c, str) and c for c in classes):
        raise ModelError("record: classes must list the class names, in logit order")
    if len(set(classes)) != len(classes):
        raise ModelError("record: a class name is given twice")
    if not _is_int(output):
        raise ModelError(f"record: output must be an integer index (got {output!r})")
    name = type(module).__name__ if name is None else str(name)
    rec = Recorded(module, layers, int(timesteps), readout, readout_from, input_size, mean, std, classes,
                   output, name)
    rec.check()
    return rec
