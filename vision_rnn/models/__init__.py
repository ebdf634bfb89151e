"""The BLT model family, its registry and weight loading, and `record` for any recurrent module."""

from .blt import BLTConfig, BLTNet, DEFAULT_LAYERS, LAYERS, init_weights
from .loading import build, load_model
from .record import Recorded, record
from .state import save_weights
from .registry import ModelInfo, get_config, list_models

__all__ = ["BLTConfig", "BLTNet", "DEFAULT_LAYERS", "LAYERS", "ModelInfo", "Recorded", "build", "get_config",
           "init_weights", "list_models", "load_model", "record", "save_weights"]
