"""Analyses of activations and recordings; every public function of the submodules is re-exported.

Submodules: ``readout`` (predictions, accuracy, stability, readout zones),
``dynamics`` (norms, drift), ``rsa`` (RDMs over time, comparisons),
``timeaxis`` (model steps to milliseconds), ``encoding`` (ridge encoding models).
"""

from importlib import import_module

_MODULES = ("readout", "dynamics", "summary", "rsa", "timeaxis", "encoding")
__all__ = []
for _name in _MODULES:
    try:
        _mod = import_module(f".{_name}", __name__)
    except ModuleNotFoundError as _e:
        if _e.name == f"{__name__}.{_name}":
            continue
        raise
    for _public in getattr(_mod, "__all__", ()):
        globals()[_public] = getattr(_mod, _public)
        __all__.append(_public)
