"""vision-rnn: recurrent convolutional networks (the BLT family) for vision neuroscience.

>>> import vision_rnn as vrnn
>>> model = vrnn.load_model("lateral", weights="random", seed=0)
"""

__version__ = "0.1.0"

from .errors import VRNNError
from .models import list_models, load_model
from .stimuli import Stimuli, load_stimuli
from .extract import extract
from .store import layer, open_activations

__all__ = ["Stimuli", "VRNNError", "extract", "layer", "list_models", "load_model",
           "load_stimuli", "open_activations", "__version__"]
