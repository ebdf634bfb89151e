"""Render the comparison notebooks (comparisons/*.py) to .ipynb files with their outputs.

The notebooks are jupytext percent-format scripts; this converts each with
jupytext, executes it with nbconvert's ExecutePreprocessor (a Python 3 kernel,
working directory the repository root) and writes ``<out>/<name>.ipynb``.
Figures the notebooks save go to ``<out>/figures/``. Needs the optional
dependencies (``pip install ".[notebooks]"``: jupytext, nbconvert, ipykernel)
and the shared data folder (``$VRNN_DATA`` or ``../shared/data``). The rendered
files are build outputs: regenerate them, do not edit or commit them.

    python scripts/render_notebooks.py                    # all, into rendered/
    python scripts/render_notebooks.py --out /tmp/nb time_axis
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "comparisons"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names without .py (default: all in comparisons/)")
    parser.add_argument("--out", type=Path, default=ROOT / "rendered", help="output folder [rendered/]")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell [1200]")
    args = parser.parse_args(argv)
    try:
        import jupytext
        import nbformat
        from nbconvert.preprocessors import ExecutePreprocessor
    except ImportError as e:
        print(f"render_notebooks: {e.name} is not installed; pip install \".[notebooks]\" "
              "(jupytext, nbconvert, ipykernel)", file=sys.stderr)
        return 2
    paths = [SOURCES / f"{n}.py" for n in args.names] if args.names else sorted(SOURCES.glob("*.py"))
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"render_notebooks: no notebook {missing[0]}; choose from "
              f"{', '.join(p.stem for p in sorted(SOURCES.glob('*.py')))}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("VRNN_FIGURES", str((args.out / "figures").resolve()))
    for path in paths:
        start = time.time()
        nb = jupytext.read(path)
        ExecutePreprocessor(timeout=args.timeout, kernel_name="python3").preprocess(
            nb, {"metadata": {"path": str(ROOT)}})
        target = args.out / f"{path.stem}.ipynb"
        partial = target.with_name(target.name + ".partial")
        nbformat.write(nb, partial)
        partial.replace(target)
        print(f"{target} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
