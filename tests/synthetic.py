"""Activation files with planted structure, written in the store's layout (for the analysis tests)."""

from __future__ import annotations

import numpy as np

from vision_rnn import store


def write_activations(path, layers: dict, labels, weight, bias=None, classes=None, logits=None,
                      batch_size=16, readout_layer="gap"):
    """Write ``layers`` ({name: (stimulus, time, unit) array}) as a complete activation file.

    ``logits`` default to ``weight @ a + bias`` of the readout layer, as the network would compute.
    """
    act = layers[readout_layer]
    n, t, _ = act.shape
    weight = np.asarray(weight, dtype=np.float32)
    k = weight.shape[0]
    classes = list(classes) if classes is not None else [f"class_{i}" for i in range(k)]
    if logits is None:
        logits = np.einsum("stu,ku->stk", act.astype(np.float64), weight.astype(np.float64))
        if bias is not None:
            logits = logits + np.asarray(bias)
    specs = [store.VarSpec("logits", None, k, "float32")]
    specs += [store.VarSpec(name, name, a.shape[2], "float32") for name, a in layers.items()]
    layout = store.Layout(n, t, min(batch_size, n), specs)
    labels = np.asarray(labels)
    names = [classes[l] if l >= 0 else "unknown" for l in labels]
    attrs = {"model": "synthetic", "model_config": "{}", "weights": "planted", "weights_sha256": "",
             "seed": 0, "vision_rnn_version": "0.1.0", "created": "", "stimuli_source": "synthetic",
             "stimuli_fingerprint": "", "n_stimuli": n, "input_size": 0, "readout_layer": readout_layer,
             "layers": ",".join(layers), "timesteps": t, "batch_size": layout.batch_size, "pool": "none",
             "dtype": "float32", "compression": "none", "skipped": "[]"}
    store.create(path, layout, stimuli_ids=[f"{names[i]}/s{i:05d}" for i in range(n)], labels=labels,
                 label_names=names, metadata=None, classes=classes, readout_weight=weight,
                 readout_bias=None if bias is None else np.asarray(bias, dtype=np.float32),
                 attrs=attrs, compression="none")
    with store.appending(path) as ds:
        ds.variables["logits"][:] = np.asarray(logits, dtype=np.float32)
        for name, a in layers.items():
            ds.groups[name].variables["activation"][:] = np.asarray(a, dtype=np.float32)
        ds.setncattr("complete", 1)
    return path


def settling_network(n_per_class=30, n_classes=5, timesteps=6, units=24, seed=0):
    """Readout-layer activations of a network whose predictions settle at various steps.

    Each stimulus starts near the readout direction of a random class and moves
    towards that of its label with a stimulus-specific speed; norms grow while
    settling. Returns (gap, labels, weight).
    """
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n_classes, units))
    proto = np.maximum(w, 0) * 3 + 0.2
    labels = np.repeat(np.arange(n_classes), n_per_class)
    n = labels.size
    start = np.where(rng.random(n) < 0.6, labels, rng.integers(0, n_classes, n))
    tau = rng.integers(0, timesteps, n)
    steps = np.arange(timesteps)
    alpha = 1 / (1 + np.exp(-2.5 * (steps[None, :] - tau[:, None] + 0.5)))
    a = (1 - alpha)[..., None] * proto[start][:, None] + alpha[..., None] * proto[labels][:, None]
    a = a * (1 + 0.1 * steps)[None, :, None] + rng.normal(scale=0.4, size=a.shape)
    return np.maximum(a, 0), labels, w
