"""Torch devices by name: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.

Every command that runs a model takes its device through :func:`resolve_device`, so a
device that does not exist is refused in one line before any work.
"""

from __future__ import annotations

from .errors import VRNNError


def resolve_device(device=None, option: str = "device"):
    """``device`` (None or ``"auto"``: CUDA when available, else the CPU) -> ``torch.device``.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

    if isinstance(device, torch.device):
        name = str(device)
    else:
        name = "auto" if device is None else str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise VRNNError(f"`{option}={device}`: not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise VRNNError(f"`{option}={device}`: no CUDA device is available here; use cpu (or auto)")
        if dev.index is not None and dev.index >= count:
            raise VRNNError(f"`{option}={device}`: this machine has {count} CUDA device(s), cuda:0"
                            f"{f' to cuda:{count - 1}' if count > 1 else ''}")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise VRNNError(f"`{option}={device}`: no MPS device is available here; use cpu (or auto)")
    elif dev.type != "cpu":
        raise VRNNError(f"`{option}={device}`: vision-rnn runs on auto, cpu, cuda or mps")
    return dev
