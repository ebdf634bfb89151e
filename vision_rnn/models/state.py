"""Weights on disk: safetensors files whose metadata holds the model configuration.

A weights file written by vision-rnn is self-describing (metadata key ``config``,
JSON). Loading never unpickles code: safetensors here, ``torch.load(weights_only=True)``
for the published ``.pth`` checkpoints (:mod:`vision_rnn.models.ccn23`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import atomic_write
from ..errors import ModelError

if TYPE_CHECKING:
    from .blt import BLTNet

__all__ = ["load_state", "read_safetensors", "read_state_file", "refuse_untrained", "save_weights"]


def save_weights(model: BLTNet, path, metadata: dict | None = None) -> None:
    """Write the weights as safetensors with the config in the metadata (atomic)."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = {"config": model.config.to_json()}
    meta.update({k: (v if isinstance(v, str) else json.dumps(v)) for k, v in (metadata or {}).items()})
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=meta))


def read_safetensors(path) -> tuple[dict, dict]:
    """(state dict, metadata) of a safetensors file, with a clear error if it is not one."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several types for a foreign file
        raise ModelError(f"{path}: not a readable safetensors file ({e}); "
                         "pass a file written by vrnn train or a .pth state dict") from None
    return state, meta


def load_state(model: BLTNet, state: dict, source) -> BLTNet:
    """Load a state dict in vision-rnn's key format, naming missing/extra keys on failure."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or extra or bad:
        detail = []
        if missing:
            detail.append(f"missing {missing[:4]}{'...' if len(missing) > 4 else ''}")
        if extra:
            detail.append(f"unexpected {extra[:4]}{'...' if len(extra) > 4 else ''}")
        if bad:
            detail.append(f"wrong shape for {bad[:4]}")
        name = getattr(model, "name", type(model).__name__)
        raise ModelError(f"{source}: weights do not fit {name} ({'; '.join(detail)}); "
                         "check the model name or use the matching weights file")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return model


def refuse_untrained(path: Path, meta: dict, allow_untrained: bool) -> None:
    """Weights written before a training run finished its first epoch (metadata epoch 0) are refused."""
    if meta.get("epoch") == "0" and not allow_untrained:
        raise ModelError(f"{path}: the initial weights of a training run with no finished epoch (an interrupted "
                         f"or just-started vrnn train); finish training (vrnn train --out {Path(path).parent} "
                         "--resume) or, to use the untrained weights on purpose, pass `allow_untrained=True`")


def read_state_file(wpath: Path, allow_untrained: bool = False) -> dict:
    """The state dict in a safetensors file or a tensors-only torch file (``weights_only``)."""
    import torch

    if wpath.suffix == ".safetensors":
        state, meta = read_safetensors(wpath)
        refuse_untrained(wpath, meta, allow_untrained)
        return state
    try:
        state = torch.load(wpath, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"{wpath}: cannot be read as a plain state dict ({e.__class__.__name__}); "
                         "weights must be safetensors or a tensors-only .pth") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise ModelError(f"{wpath}: holds no state dict (names -> tensors); save `module.state_dict()`")
    return state
