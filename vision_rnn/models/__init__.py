"""The built-in model families (BLT, CORnet-RT-style, ConvGRU), their registry and weight loading,
and `record` for any recurrent module."""

from .blt import BLTConfig, BLTNet, DEFAULT_LAYERS, LAYERS, init_weights
from .convgru import ConvGRUNet
from .cornet_rt import CORnetRT
from .loading import build, load_model
from .record import Recorded, record
from .state import save_weights
from .registry import ModelInfo, get_config, list_models

__all__ = ["BLTConfig", "BLTNet", "CORnetRT", "ConvGRUNet", "DEFAULT_LAYERS", "LAYERS", "ModelInfo", "Recorded",
           "build", "get_config", "init_weights", "list_models", "load_model", "record", "save_weights"]
