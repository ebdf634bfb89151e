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

__all__ = ["load_state", "read_safetensors", "save_weights"]


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
        raise ModelError(f"{source}: weights do not fit {model.name} ({'; '.join(detail)}); "
                         "check the model name or use the matching weights file")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return model
