"""A model defined in a user's Python file: ``path/to/file.py:factory``.

``factory()`` (called with no arguments) returns either an object with the model
protocol (a :class:`~vision_rnn.models.record.Recorded`, a
:class:`~vision_rnn.models.blt.BLTNet`, or a lab's own class), or a pair
``(module, spec)`` where ``spec`` is the dict of :func:`~vision_rnn.models.record.record`'s
keyword arguments (``layers``, ``timesteps``, ``readout``, ``classes``, ...).
Every model from a file is checked by one forward pass of two blank images
before it is used: layers, steps and logits must have the shapes it declares.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path

from ..errors import ModelError

PROTOCOL = ("run", "name", "layer_names", "default_layers", "layer_shape", "timesteps", "input_size", "mean",
            "std", "classes", "provenance")


def is_user_file(source) -> bool:
    """True for ``"path/to/file.py:factory"``."""
    text = os.fspath(source)
    path, sep, func = text.rpartition(":")
    return bool(sep) and path.endswith(".py") and func.isidentifier()


def load_user_model(source, weights="pretrained", allow_untrained: bool = False):
    """Call ``factory()`` from ``file.py`` and return the checked model.

    Parameters
    ----------
    source : str
        ``"path/to/file.py:factory"``.
    weights : str or os.PathLike, optional
        ``"pretrained"``: the weights the factory gives; otherwise a weights file
        (safetensors, or a tensors-only torch file read with ``weights_only``)
        loaded as the state dict of the factory's module.
    allow_untrained : bool, optional
        Accept a vision-rnn weights file written before its training finished an epoch.

    Returns
    -------
    An object with the model protocol.
    """
    text = os.fspath(source)
    file, _, func = text.rpartition(":")
    path = Path(file)
    if weights is not None and os.fspath(weights) == "random":
        raise ModelError(f"weights 'random': a model from {text} has the weights its factory gives; pass a "
                         "weights file, or 'pretrained' for the factory's own")
    if not path.is_file():
        raise ModelError(f"{text}: no such file {path}")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"vrnn_user_{path.stem if path.stem.isidentifier() else 'file'}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise ModelError(f"{text}: importing {path} raised {type(e).__name__}: {_first_line(e)}") from None
    factory = getattr(mod, func, None)
    if factory is None or not callable(factory):
        found = sorted(n for n, v in vars(mod).items()
                       if inspect.isfunction(v) and v.__module__ == module_name and not n.startswith("_"))
        raise ModelError(f"{text}: {path} defines no function {func!r}"
                         + (f"; it defines {', '.join(found)}" if found else ""))
    try:
        made = factory()
    except Exception as e:
        raise ModelError(f"{text}: {func}() raised {type(e).__name__}: {_first_line(e)}") from None
    model = _as_model(made, text)
    if weights not in (None, "pretrained"):
        _load_weights(model, Path(weights), text, allow_untrained)
    elif getattr(model, "weights_source", None) in (None, "module's own"):
        model.weights_source = text
    if hasattr(model, "eval"):
        model.eval()
    check_model(model, text)
    return model


def _first_line(e) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else "(no message)"


def _as_model(made, text):
    import torch.nn as nn

    from .record import record

    if isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], nn.Module) and isinstance(made[1], dict):
        module, spec = made
        try:
            return record(module, **spec)
        except TypeError as e:
            raise ModelError(f"{text}: the record spec is not record()'s keyword arguments ({e})") from None
        except ModelError as e:
            raise ModelError(f"{text}: {e}") from None
    missing = [a for a in PROTOCOL if not hasattr(made, a)]
    if missing:
        raise ModelError(f"{text}: the factory returned a {type(made).__name__}, not a model: it lacks "
                         f"{', '.join(missing)}; return vrnn.record(module, ...) or (module, record_spec)")
    return made


def _load_weights(model, wpath: Path, text: str, allow_untrained: bool) -> None:
    from .record import Recorded
    from .state import load_state, read_state_file

    if not wpath.exists():
        raise ModelError(f"weights {wpath}: no such file")
    target = model.module if isinstance(model, Recorded) else model
    if not hasattr(target, "load_state_dict"):
        raise ModelError(f"weights {wpath}: the model of {text} is not a torch module; load its weights in the "
                         "factory")
    load_state(target, read_state_file(wpath, allow_untrained), wpath)
    model.weights_source = str(wpath)


def check_model(model, where: str) -> None:
    """Run two blank images through ``model`` and refuse outputs that do not match what it declares."""
    import torch

    try:
        steps = int(model.timesteps)
        x = torch.zeros(2, len(model.mean), int(model.input_size), int(model.input_size))
        params = list(model.parameters()) if hasattr(model, "parameters") else []
        if params:
            x = x.to(params[0].device)
        layers = list(model.default_layers)
        with torch.no_grad():
            out = model.run(x, layers=layers)
    except ModelError as e:
        raise ModelError(f"{where}: {e}") from None
    except Exception as e:
        raise ModelError(f"{where}: a forward of two blank images raised {type(e).__name__}: "
                         f"{_first_line(e)}") from None
    want = {"logits": (2, steps, len(model.classes))}
    for n in layers:
        want[n] = (2, steps) + tuple(model.layer_shape(n))
    for n, shape in want.items():
        got = out.get(n) if isinstance(out, dict) else None
        if got is None or tuple(got.shape) != shape:
            raise ModelError(f"{where}: run() gives {n!r} of shape "
                             f"{None if got is None else tuple(got.shape)}, but the model declares {shape} "
                             "(batch, time, ...)")
