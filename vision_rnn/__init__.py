"""vision-rnn: recurrent convolutional networks (the BLT family) for vision neuroscience.

>>> import vision_rnn as vrnn
>>> model = vrnn.load_model("lateral", weights="random", seed=0)

PyTorch is imported only when a model is needed, so reading activation files
and running analyses stay light.
"""

from importlib import import_module

__version__ = "0.1.0"

from .errors import VRNNError
from .stimuli import Stimuli, load_stimuli
from .extract import extract
from .store import layer, open_activations
from ._shards import merge

_LAZY = {
    "load_model": ".models",
    "list_models": ".models",
    "analysis": None,
    "neural": None,
    "plotting": None,
}

__all__ = ["Stimuli", "VRNNError", "analysis", "extract", "layer", "list_models", "load_model",
           "load_stimuli", "merge", "neural", "open_activations", "plotting", "__version__"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'vision_rnn' has no attribute {name!r}")
    if _LAZY[name] is None:
        return import_module(f".{name}", __name__)
    return getattr(import_module(_LAZY[name], __name__), name)
