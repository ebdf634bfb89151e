"""Make tests/data/ccn23_reference.npz: outputs of the authors' CCN23 networks.

Usage::

    python scripts/make_ccn23_reference.py PATH/TO/BLT-pytorch-CCN23 [OUT.npz]

PATH is a checkout of https://github.com/KietzmannLab/BLT-pytorch-CCN23 (MIT).
Its ``BLT_analyse/models/BLT_net.py`` is imported from there at run time; none
of its code is part of vision-rnn. For each case below the authors' network is
built, given a seeded random state dict (every tensor randomised, see
``random_state``) and run on a seeded random batch of 5 images. The npz holds,
per case ``<label>``:

    <label>__name      the CCN23 file name the test saves the state dict under
    <label>__seed      seed of the random state dict
    <label>__keys      the state dict's keys (sorted), to check the test's key list
    <label>__logprobs  (5, T, classes) log(clamp(softmax(logits), 1e-10, 1)) per step
    <label>__gap       (5, T, 512) gap activations per step (ReLU(gap_ln(...)))

and ``images_seed``. The test (tests/test_ccn23.py) redoes the state dicts and
images from the seeds without the authors' code.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

IMAGES_SEED = 12345
# label: (file name, seed, readout bias)
CASES = {
    "bl_add_64": ("b64_l_1_t_0_ltinteract_additive_T_3_ltposition_all_num_1.pth", 101, False),
    "blt_mult_64": ("b64_l_1_t_1_ltinteract_multiplicative_T_3_ltposition_all_num_1.pth", 102, False),
    "bt_add_64": ("b64_l_0_t_1_ltinteract_additive_T_3_ltposition_all_num_1.pth", 103, False),
    "blt_add_128": ("b128_l_1_t_1_ltinteract_additive_T_2_ltposition_all_num_1.pth", 104, True),
    "bl_mult_64_bias": ("b64_l_1_t_0_ltinteract_multiplicative_T_3_ltposition_all_num_2.pth", 105, True),
    "blt_add_64_last": ("b64_l_1_t_1_ltinteract_additive_T_3_ltposition_last_num_1.pth", 106, False),
    "b_64_T1": ("b64_l_0_t_0_ltinteract_None_T_1_ltposition_None_num_1.pth", 107, False),
}


def random_state(shapes: dict, seed: int) -> dict:
    """Seeded values for every tensor: in sorted-key order, one draw of
    ``torch.randn(shape)`` from ``torch.Generator().manual_seed(seed)``, scaled to
    ``1 + 0.1 * x`` for LayerNorm weights (``*_ln.weight``) and ``0.1 * x`` for
    everything else."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key in sorted(shapes):
        x = torch.randn(tuple(shapes[key]), generator=g)
        out[key] = 1 + 0.1 * x if key.endswith("_ln.weight") else 0.1 * x
    return out


def images(size: int) -> torch.Tensor:
    return torch.randn(5, 3, size, size, generator=torch.Generator().manual_seed(IMAGES_SEED))


def main(repo: Path, out: Path) -> None:
    spec = importlib.util.spec_from_file_location("ccn23_blt_net", repo / "BLT_analyse/models/BLT_net.py")
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    torch.set_grad_enabled(False)
    data = {"images_seed": np.int64(IMAGES_SEED)}
    for label, (name, seed, bias) in CASES.items():
        f = name.split("_")
        size, lat, top, inter, steps, pos = int(f[0][1:]), int(f[2]), int(f[4]), f[6], int(f[8]), f[10]
        inter, pos = (None if v == "None" else v for v in (inter, pos))
        cls = ref.BLT_net_64 if size == 64 else ref.BLT_net_128
        net = cls(lateral_connections=lat, topdown_connections=top, LT_interaction=inter,
                  timesteps=steps, LT_position=pos, classifier_bias=bias)
        shapes = {k: v.shape for k, v in net.state_dict().items()}
        net.load_state_dict(random_state(shapes, seed), strict=True)
        net.eval()
        gap = []
        hook = net.gap_ln.register_forward_hook(lambda m, i, o: gap.append(torch.relu(o)))
        result = net(images(size))
        hook.remove()
        outputs = result[0] if isinstance(result, tuple) else result
        data[f"{label}__name"] = np.str_(name)
        data[f"{label}__seed"] = np.int64(seed)
        data[f"{label}__keys"] = np.array(sorted(shapes), dtype=str)
        data[f"{label}__logprobs"] = torch.stack(outputs, 1).numpy().astype(np.float32)
        data[f"{label}__gap"] = torch.stack(gap, 1).numpy().astype(np.float32)
        print(f"{label:<18} {name}  logprobs {data[f'{label}__logprobs'].shape}")
    np.savez_compressed(out, **data)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB); reference commit: "
          f"{commit.stdout.strip() or 'unknown (not a git checkout)'}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    default = Path(__file__).resolve().parents[1] / "tests/data/ccn23_reference.npz"
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else default)
