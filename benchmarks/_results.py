"""Shared by the benchmark scripts: replace one section of benchmarks/RESULTS.md."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(heading: str, text: str, path: Path = RESULTS) -> None:
    """Replace the section whose heading line is ``heading`` (up to the next '## ') or append it."""
    old = path.read_text() if path.exists() else "# Benchmark results\n\n"
    out, skip, done = [], False, False
    for line in old.splitlines(keepends=True):
        if line.rstrip() == heading.rstrip():
            skip = True
            if not done:                           # the first such section is replaced, any later copy dropped
                out.append(text.rstrip("\n") + "\n\n")
            done = True
            continue
        if skip and line.startswith("## "):
            skip = False
        if not skip:
            out.append(line)
    if not done:
        out.append(("\n" if out and not out[-1].endswith("\n\n") else "") + text.rstrip("\n") + "\n")
    path.write_text("".join(out).rstrip("\n") + "\n")
