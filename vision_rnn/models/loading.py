"""load_model and the safetensors weight files.

A weights file written by vision-rnn is a safetensors file whose metadata holds
the model configuration (key ``config``, JSON), so it is self-describing. A
training run folder holds ``model.safetensors`` (the latest weights) beside its
``config.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


from ..errors import ModelError
from .blt import BLTConfig, BLTNet, init_weights
from .registry import get_config, model_card, split_name, weights_path
from .state import load_state, read_safetensors, read_state_file, refuse_untrained
from .userfile import is_user_file, load_user_model

CCN23_SUFFIXES = (".pth", ".pt")


def network_class(config: BLTConfig):
    """The network class a config builds: BLTNet, CORnetRT or ConvGRUNet (``config.family``)."""
    from .convgru import ConvGRUNet
    from .cornet_rt import CORnetRT

    return {"blt": BLTNet, "cornet-rt": CORnetRT, "convgru": ConvGRUNet}[config.family]


def build(config: BLTConfig, seed: int = 0) -> BLTNet:
    """A network with seeded random weights (of the family the config names).

    Parameters
    ----------
    config : BLTConfig
        The architecture and input of the network.
    seed : int, optional
        Seed of the initialisation (Xavier-uniform convolutions and linear maps):
        same seed, same weights.

    Returns
    -------
    BLTNet
        The network, with ``seed`` recorded and
        ``weights_source`` ``"random"``.
    """
    model = init_weights(network_class(config)(config), seed)
    model.seed = int(seed)
    model.weights_source = "random"
    return model


def config_from_json(text: str, where: str) -> BLTConfig:
    """A BLTConfig from JSON text; ModelError naming ``where`` if it is not a valid config."""
    try:
        d = json.loads(text)
    except (ValueError, TypeError) as e:
        raise ModelError(f"{where} is not JSON ({e}); the file is damaged or was not written by vision-rnn") from None
    try:
        return BLTConfig.from_dict(d)
    except ModelError as e:
        raise ModelError(f"{where}: {e}") from None


def _seed_from(meta: dict, path) -> int:
    try:
        seed = json.loads(meta["seed"])
    except (ValueError, TypeError):
        seed = None
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ModelError(f"{path}: metadata 'seed' is {meta['seed']!r}, not an integer; the file is damaged "
                         "or was not written by vision-rnn")
    return seed


def _from_weights_file(path: Path, config: BLTConfig | None, seed: int, allow_untrained: bool = False) -> BLTNet:
    state, meta = read_safetensors(path)
    refuse_untrained(path, meta, allow_untrained)
    if config is None:
        if "config" not in meta:
            raise ModelError(f"{path}: this safetensors file carries no model config; "
                             "load it as weights of a named model: load_model(NAME, weights=PATH)")
        config = config_from_json(meta["config"], f"{path}: metadata 'config'")
    model = load_state(network_class(config)(config), state, path)
    model.seed = _seed_from(meta, path) if "seed" in meta else seed
    model.weights_source = str(path)
    return model


def load_model(source: str, weights: str = "pretrained", seed: int = 0, timesteps: int | None = None,
               device=None, allow_untrained: bool = False, **options) -> BLTNet:
    """Load a network by registry name, training-run folder or weights file.

    Parameters
    ----------
    source : str or os.PathLike
        A registry name (``"lateral"``, ``"ccn23-64/topdown-mult"``, see
        :func:`list_models`), a folder written by ``vrnn train``, a
        ``.safetensors`` file written by vision-rnn, or a published CCN23
        ``.pth`` state dict (``b64_l_1_t_0_ltinteract_additive_T_10_...pth``),
        or ``"path/to/file.py:factory"``: a function in a user's file returning a
        model (see :func:`vision_rnn.models.userfile.load_user_model`).
    weights : str, optional
        For a registry name: ``"pretrained"`` (the shipped weights),
        ``"random"`` (seeded initialisation) or a path to a weights file. For a
        ``file.py:factory``: ``"pretrained"`` (as the factory returns it) or a
        weights file (safetensors or a tensors-only torch file) for its module.
    seed : int, optional
        Seed of the random initialisation.
    timesteps : int, optional
        Default number of steps to unroll (may exceed the trained number).
    device : str or torch.device, optional
        Torch device for the model (``"auto"``, ``"cpu"``, ``"cuda[:N]"``,
        ``"mps"``); default: where it was loaded (the CPU).
    allow_untrained : bool, optional
        Load the initial weights of a training run that has not finished an
        epoch (refused by default: they would pass for a trained model).
    **options
        For CCN23 ``.pth`` files whose name does not carry them:
        ``interaction``, ``timesteps``, ``lt_position``; also ``classes``, ``mean``, ``std``.

    Returns
    -------
    BLTNet
        The network, in evaluation mode, with its ``timesteps``, ``classes``,
        ``input_size``, ``seed`` and ``weights_source``.

    Examples
    --------
    >>> import vision_rnn as vrnn
    >>> model = vrnn.load_model("lateral", weights="random", seed=0)
    >>> model.timesteps, model.input_size
    (8, 32)
    """
    source = os.fspath(source)
    path = Path(source)
    if is_user_file(source):
        model = load_user_model(source, weights=weights, allow_untrained=allow_untrained)
    elif path.is_dir():
        model = _load_run_dir(path, seed, allow_untrained)
    elif path.suffix in CCN23_SUFFIXES:
        if not path.exists():
            raise ModelError(f"{path}: no such weights file")
        from .ccn23 import load_ccn23

        model = load_ccn23(path, timesteps=timesteps, **options)
    elif path.suffix == ".safetensors":
        if not path.exists():
            raise ModelError(f"{path}: no such weights file")
        model = _from_weights_file(path, None, seed, allow_untrained)
    else:
        if "/" in source and not source.split("/")[0] in ("tiny", "ccn23-64", "ccn23-128") and not path.exists():
            raise ModelError(f"{source}: no such folder or file, and not a model name; "
                             "see `vrnn models` for the names")
        split_name(source)  # raises with the list of names
        config = get_config(source, **{k: options[k] for k in ("classes", "mean", "std") if k in options})
        model = _load_named(source, config, weights, seed, allow_untrained)
    if timesteps is not None:
        model.timesteps = int(timesteps)
    model.eval()
    if device is not None:
        from ..devices import resolve_device

        model.to(resolve_device(device))
    return model


def _load_named(name: str, config: BLTConfig, weights, seed: int, allow_untrained: bool = False) -> BLTNet:
    weights = os.fspath(weights) if weights is not None else "random"
    if weights == "random":
        return build(config, seed)
    if weights == "pretrained":
        wpath = weights_path(name)
        if not wpath.exists() or model_card(name) is None:
            raise ModelError(f"no pretrained weights ship for {name!r}; use `weights=random` "
                             "or a weights file; `vrnn models` lists the pretrained names")
        model = _from_weights_file(wpath, None, seed)
        model.weights_source = f"pretrained:{wpath.name}"
        return model
    wpath = Path(weights)
    if not wpath.exists():
        raise ModelError(f"weights {weights!r}: not 'pretrained', 'random' or an existing file")
    state = read_state_file(wpath, allow_untrained)
    model = load_state(network_class(config)(config), state, wpath)
    model.seed = seed
    model.weights_source = str(wpath)
    return model


def _load_run_dir(path: Path, seed: int, allow_untrained: bool = False) -> BLTNet:
    wfile = path / "model.safetensors"
    if not wfile.exists():
        raise ModelError(f"{path}: folder has no model.safetensors; pass a folder written by vrnn train")
    return _from_weights_file(wfile, None, seed, allow_untrained)
