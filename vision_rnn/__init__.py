"""vision-rnn: recurrent convolutional networks (the BLT family) for vision neuroscience.

>>> import vision_rnn as vrnn
>>> model = vrnn.load_model("lateral", weights="random", seed=0)

PyTorch is imported only when a model is needed, so reading activation files
and running analyses stay light.
"""

from importlib import import_module

from ._version import __version__
from .errors import VRNNError
from .stimuli import Stimuli, load_stimuli
from .extract import extract
from .store import layer, merge, open_activations

_LAZY = {
    "load_model": ".models",
    "list_models": ".models",
    "record": ".models",
    "analysis": None,
    "data_dir": ".datafolder",
    "recordings": None,
    "compare": None,
    "stimulus_ids": None,
    "plotting": None,
}

__all__ = ["Stimuli", "VRNNError", "analysis", "data_dir", "extract", "layer", "list_models", "load_model",
           "compare", "load_stimuli", "merge", "open_activations", "plotting", "record", "recordings", "stimulus_ids",
           "__version__"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'vision_rnn' has no attribute {name!r}")
    if _LAZY[name] is None:
        return import_module(f".{name}", __name__)
    return getattr(import_module(_LAZY[name], __name__), name)
