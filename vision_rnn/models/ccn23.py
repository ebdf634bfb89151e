"""Read the published CCN23 networks (``BLT_net_64`` / ``BLT_net_128`` state dicts).

The CCN23 release (KietzmannLab/BLT-pytorch-CCN23, weights at OSF, DOI
10.17605/OSF.IO/PW238) ships one PyTorch state dict per trained network, named
after its hyper-parameters::

    b64_l_1_t_0_ltinteract_additive_T_10_ltposition_all_num_1.pth
    b128_l_0_t_0_ltinteract_None_T_1_ltposition_None_num_1.pth   (T=1: no recurrence)

:func:`load_ccn23` turns such a file into a :class:`BLTNet` with the published
wiring (v1 sees only the retina, top-down acts in v2 and v4, ``ltposition_last``
keeps only the gap lateral connection). The architecture (image size, lateral,
top-down, readout bias, number of classes) is read from the keys and shapes; the
interaction, the number of steps and the LT position from the file name or from
arguments. Files are read as tensors only (``weights_only=True``): a file that
would need Python code to unpickle is refused, never executed.
:func:`ccn23_state_dict` maps a model back to the authors' key format.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ..errors import ModelError
from .blt import BLTConfig, BLTNet
from .state import load_state, read_safetensors
from .registry import PRESETS

_FIELDS = {  # parse_name field -> pattern on the file name's stem
    "image_size": r"(?:^|_)b(64|128)(?=_|$)",
    "lateral": r"(?:^|_)l_([01])(?=_|$)",
    "topdown": r"(?:^|_)t_([01])(?=_|$)",
    "interaction": r"(?:^|_)ltinteract_(additive|multiplicative|None)(?=_|$)",
    "timesteps": r"(?:^|_)T_(\d+)(?=_|$)",
    "lt_position": r"(?:^|_)ltposition_(all|last|None)(?=_|$)",
    "number": r"(?:^|_)num_([A-Za-z0-9]+)(?=_|$)",
    "epoch": r"(?:^|_)epoch_(-?\d+)(?=_|$)",
}
_CONVERT = {"image_size": int, "lateral": lambda v: v == "1", "topdown": lambda v: v == "1",
            "timesteps": int, "epoch": int}
# Every key a BLT_net_64/128 state dict may hold (norm_type='LN').
_AUTHOR_KEY = re.compile(r"(retina\.(weight|bias)|(v1|v2|v4|it)\.(bottom_up|lateral|top_down)\.weight"
                         r"|(v1|v2|v4|it|gap)_ln\.(weight|bias)|gap\.lateral\.weight|readout\.(weight|bias))")
_WRAPPERS = ("state_dict", "model_state_dict", "model", "net", "network")


def parse_name(filename) -> dict:
    """The hyper-parameters a CCN23 file name carries; a field the name lacks is None.

    Keys: ``image_size`` (64/128), ``lateral``, ``topdown`` (bool), ``interaction``
    ("additive"/"multiplicative"), ``timesteps`` (int), ``lt_position`` ("all"/"last"),
    ``number`` (the run identifier, a string) and ``epoch`` (``..._epoch_N.pth``
    snapshots). The authors' ``None`` (written for T=1 networks) reads as None.

    >>> parse_name("b64_l_1_t_0_ltinteract_additive_T_10_ltposition_all_num_1.pth")["interaction"]
    'additive'
    """
    stem = Path(str(filename)).name
    stem = re.sub(r"\.(pth|pt|safetensors)$", "", stem)
    out = {}
    for field, pattern in _FIELDS.items():
        m = re.search(pattern, stem)
        value = m.group(1) if m and m.group(1) != "None" else None
        out[field] = _CONVERT.get(field, str)(value) if value is not None else None
    return out


def read_state(path) -> dict:
    """The tensors of a ``.pth``/``.pt`` (tensors only) or ``.safetensors`` file.

    Unwraps ``{"state_dict": ...}``-style checkpoints and ``module.`` /
    ``_orig_mod.`` prefixes (DataParallel, torch.compile).
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        state = read_safetensors(path)[0]
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            text = str(e)
            if "weights only load failed" not in text.lower():
                raise ModelError(f"{path}: not a readable PyTorch weights file "
                                 f"({e.__class__.__name__}: {text[:200]})") from None
            why = [ln.strip() for ln in text.splitlines() if re.search(r"GLOBAL|Unsupported", ln)]
            raise ModelError(
                f"{path}: refused: not a plain tensors-only state dict; unpickling it would need "
                f"Python objects or code (or the file is damaged). vision-rnn reads weights with "
                f"weights_only=True and ran nothing from it; re-save a trusted file with "
                f"torch.save(model.state_dict(), path) ({'; '.join(why) or 'weights_only load failed'})"
            ) from None
    while isinstance(state, dict) and not all(torch.is_tensor(v) for v in state.values()):
        inner = [state[k] for k in _WRAPPERS if isinstance(state.get(k), dict)]
        if not inner:
            break
        state = inner[0]
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        what = type(state).__name__ if not isinstance(state, dict) else "dict without tensors"
        raise ModelError(f"{path}: holds a {what}, not a state dict (parameter names -> tensors); "
                         "pass the .pth file of a CCN23 BLT_net_64 / BLT_net_128")
    for prefix in ("module.", "_orig_mod."):
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _architecture(state: dict, path) -> dict:
    """Image size, lateral/top-down keys, readout bias and classes from keys and shapes."""
    odd = sorted(k for k in state if not _AUTHOR_KEY.fullmatch(k))
    if any(re.fullmatch(r"(v1|v2|v4|it)\.\w+\.bias|gap\.lateral\.bias", k) for k in odd):
        raise ModelError(f"{path}: convolutions with biases and no LayerNorm (norm_type='None') "
                         "are not supported; only the published LayerNorm networks are")
    if odd or "retina.weight" not in state or "readout.weight" not in state:
        detail = f"unexpected keys {odd[:4]}" if odd else "no retina.weight / readout.weight"
        raise ModelError(f"{path}: keys fit no known CCN23 architecture ({detail}); "
                         "expected a BLT_net_64 / BLT_net_128 state dict")
    retina = state["retina.weight"]
    sizes = {3: 64, 5: 128}
    if retina.dim() != 4 or retina.shape[-1] not in sizes:
        raise ModelError(f"{path}: retina.weight has shape {tuple(retina.shape)}; a CCN23 network "
                         "has 3x3 (64 px) or 5x5 (128 px) kernels")
    size = sizes[retina.shape[-1]]
    ln = state.get("v1_ln.weight")
    if ln is not None and ln.dim() == 3 and ln.shape[-1] != size:
        raise ModelError(f"{path}: {retina.shape[-1]}x{retina.shape[-1]} kernels but a v1 LayerNorm "
                         f"over {ln.shape[-1]} px; fits neither BLT_net_64 nor BLT_net_128")
    return dict(image_size=size, conv_lateral="v2.lateral.weight" in state,
                conv_topdown="v2.top_down.weight" in state, gap_lateral="gap.lateral.weight" in state,
                readout_bias="readout.bias" in state, num_classes=state["readout.weight"].shape[0])


def _pick(field, argument, from_name, path):
    if argument is not None and from_name is not None and argument != from_name:
        raise ModelError(f"{path}: {field}={argument!r} was passed but the file name says "
                         f"{from_name!r}; rename the file or drop the argument")
    return argument if argument is not None else from_name


def _dataset_info(hdf5) -> dict:
    """Per-channel mean/std (0-1 scale) and class names from a MiniEcoset HDF5 file."""
    import h5py

    out = {}
    try:
        with h5py.File(hdf5, "r") as f:
            for key, field in (("train_img_mean_channels", "mean"), ("train_img_std_channels", "std")):
                if key in f:
                    out[field] = tuple(float(v) / 255.0 for v in f[key][()])
            if "categories" in f:
                out["classes"] = tuple(c.decode() if isinstance(c, bytes) else str(c)
                                       for c in f["categories"][()])
    except OSError as e:
        raise ModelError(f"{hdf5}: cannot be read as an HDF5 file ({e})") from None
    if not out:
        raise ModelError(f"{hdf5}: has none of train_img_mean_channels, train_img_std_channels, "
                         "categories; pass the MiniEcoset .h5 the network was trained on")
    return out


def load_ccn23(path, timesteps=None, interaction=None, lt_position=None, classes=None, mean=None,
               std=None, hdf5=None, **ignored) -> BLTNet:
    """A :class:`BLTNet` holding the weights of a published CCN23 ``.pth`` file.

    ``interaction``, ``timesteps`` and ``lt_position`` are needed only where the
    file name does not carry them (``timesteps`` also sets the default number of
    steps to unroll). Normalisation and class names come from ``hdf5`` (the
    MiniEcoset ``.h5``: ``train_img_mean_channels``/``train_img_std_channels``
    on a 0-255 scale, ``categories``) when given, else the registry's MiniEcoset
    constants and ``class_000``...; ``classes``, ``mean``, ``std`` override both.
    """
    path = Path(path)
    named = parse_name(path)
    state = read_state(path)
    arch = _architecture(state, path)
    if named["image_size"] not in (None, arch["image_size"]):
        raise ModelError(f"{path}: the name says {named['image_size']} px but the weights are "
                         f"for {arch['image_size']} px images")
    lateral = arch["gap_lateral"]
    recurrent_convs = arch["conv_lateral"] or arch["conv_topdown"]
    lt = _pick("lt_position", lt_position, named["lt_position"], path)
    if lt not in (None, "all", "last"):
        raise ModelError(f"{path}: lt_position {lt!r} is not 'all' or 'last'")
    if lateral and not recurrent_convs:
        inferred_lt = "last"
    elif not lateral and not recurrent_convs and lt == "last":
        inferred_lt = "last"  # e.g. l_0_t_1 ... ltposition_last: no recurrence at all
    else:
        inferred_lt = "all"
    if lt is not None and lt != inferred_lt:
        raise ModelError(f"{path}: lt_position {lt!r} does not fit the weights, which have "
                         f"{'' if recurrent_convs else 'no '}lateral/top-down convolutions")
    topdown = arch["conv_topdown"] or bool(inferred_lt == "last" and named["topdown"])
    for field, value in (("lateral", lateral), ("topdown", topdown)):
        if named[field] is not None and named[field] != value:
            raise ModelError(f"{path}: the name says {field[0]}_{int(named[field])} but the weights "
                             f"have {'' if value else 'no '}{field} connections")
    steps = timesteps if timesteps is not None else named["timesteps"]
    if steps is None:
        raise ModelError(f"{path}: the file name carries no T_<steps>; pass timesteps=N")
    inter = _pick("interaction", interaction, named["interaction"], path)
    if lateral or recurrent_convs:
        if inter is None:
            raise ModelError(f"{path}: the file name carries no ltinteract_<...>; pass "
                             "interaction='additive' or interaction='multiplicative'")
    inter = inter or "additive"  # no recurrence: the interaction plays no part
    variant = "-".join([n for n, on in (("lateral", lateral), ("topdown", topdown)) if on]
                       or ["feedforward"])
    if inter == "multiplicative" and variant != "feedforward":
        variant += "-mult"
    if inferred_lt == "last":
        variant += "-last"

    info = _dataset_info(hdf5) if hdf5 is not None else {}
    preset = f"ccn23-{arch['image_size']}"
    kw = dict(PRESETS[preset])
    kw.update(name=variant, preset=preset, lateral=lateral, topdown=topdown, interaction=inter,
              lt_position=inferred_lt, timesteps=int(steps), readout_bias=arch["readout_bias"],
              num_classes=int(arch["num_classes"]), classes=(), v1_recurrent=False)
    kw.update(info)
    kw.update({k: tuple(v) for k, v in (("classes", classes), ("mean", mean), ("std", std))
               if v is not None})
    kw["extra"] = {"format": "ccn23", "file": path.name, "number": named["number"],
                   "trained_timesteps": named["timesteps"]}
    try:
        config = BLTConfig(**kw)
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None
    ours = {re.sub(r"^(v1|v2|v4|it|gap)_ln\.", r"\1.ln.", k): v for k, v in state.items()
            if not k.startswith(("v1.lateral.", "v1.top_down."))}  # unused in the published wiring
    model = load_state(BLTNet(config), ours, path)
    model.weights_source = str(path)
    model.eval()
    return model


def ccn23_state_dict(model: BLTNet) -> dict:
    """The model's weights in the authors' key format (``v1_ln.weight``, ...).

    For the published wiring (``v1_recurrent=False``) zero ``v1.lateral`` /
    ``v1.top_down`` weights are added where the authors' class has them (it
    builds but never uses them), so ``BLT_net_64(...).load_state_dict`` accepts
    the result.
    """
    c = model.config
    out = {re.sub(r"^(v1|v2|v4|it|gap)\.ln\.", r"\1_ln.", k): v.detach().clone()
           for k, v in model.state_dict().items()}
    if not c.v1_recurrent and c.lt_position == "all":
        k, v1, v2 = c.kernel_size, c.channels[0], c.channels[1]
        if c.lateral:
            out["v1.lateral.weight"] = torch.zeros(v1, v1, k, k)
        if c.topdown:
            out["v1.top_down.weight"] = torch.zeros(v2, v1, k, k)
    return out
