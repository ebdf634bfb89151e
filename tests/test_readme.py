"""The README's Python blocks run as pasted: in order, in one session, in a fresh folder after `vrnn demo`.

A block whose first lines say `# needs: <what>` needs a file nobody has locally and is skipped.
"""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ["VRNN_DATA"]) if os.environ.get("VRNN_DATA") else ROOT.parent / "shared" / "data"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_every_block_is_found_and_needs_are_marked():
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 5
    needs = [b for b in blocks if b.lstrip().startswith("# needs:")]
    assert needs and all("load_model" in b and ".pth" in b for b in needs)
    # a block that reads a .pth must say where it comes from
    for b in blocks:
        if ".pth" in b:
            assert b in needs and "osf.io" in b.lower()


@pytest.mark.skipif(not (DATA / "kriegeskorte2008").is_dir(), reason=f"no 92-image data at {DATA}")
def test_readme_python_blocks_run_in_order_after_the_demo(tmp_path):
    env = dict(os.environ, VRNN_DATA=str(DATA), MPLBACKEND="Agg")
    demo = subprocess.run([sys.executable, "-m", "vision_rnn", "demo", "-q"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr[-2000:]
    blocks = [b for b in python_blocks((ROOT / "README.md").read_text()) if not b.lstrip().startswith("# needs:")]
    script = "\n".join(f"print('--- block {i}', flush=True)\n{textwrap.dedent(b)}" for i, b in enumerate(blocks))
    script += "\nprint('--- all blocks ran', flush=True)\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    ran = [l for l in done.stdout.splitlines() if l.startswith("--- ")]
    assert done.returncode == 0, f"failed in {ran[-1] if ran else 'the first block'}: {done.stderr[-2000:]}"
    assert ran[-1] == "--- all blocks ran"
