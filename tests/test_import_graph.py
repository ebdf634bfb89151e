"""The package's import graph has no cycle (DESIGN.md section 1: data flows one way).

Every module is parsed with ``ast``; every ``import`` and ``from ... import`` counts,
including those inside functions; relative imports are resolved; ``from . import name``
counts as an import of the package's ``__init__`` unless ``name`` is a submodule;
imports under ``if TYPE_CHECKING:`` are ignored.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "vision_rnn"
PACKAGE = "vision_rnn"


def module_names() -> dict:
    """Dotted module name -> file, for every .py file of the package."""
    out = {}
    for f in ROOT.rglob("*.py"):
        parts = list(f.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _type_checking(node) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree, skip=()):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            yield from (n for child in node.orelse for n in _imports_in(child))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def _imports_in(node):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    yield from _imports(node)


def _owner(name: str, modules: dict) -> str | None:
    """The package module that importing ``name`` runs last (the longest known prefix)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in modules:
            return cand
    return None


def graph(modules: dict) -> dict:
    edges = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        here = mod if is_pkg else mod.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = here.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = []
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append(sub if sub in modules else base)
            for t in targets:
                owner = _owner(t, modules) if t.split(".")[0] == PACKAGE else None
                if owner and owner != mod:
                    edges[mod].add(owner)
    return edges


def cycles(edges: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_graph_sees_what_it_must():
    """The parser counts imports in functions, resolves relative ones and ignores TYPE_CHECKING."""
    src = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import x\n"
           "def f():\n    from . import c\n    from .. import top\n")
    tree = ast.parse(src)
    got = [(n.level, n.module, [a.name for a in n.names]) for n in _imports(tree)]
    assert got == [(0, "typing", ["TYPE_CHECKING"]), (1, None, ["c"]), (2, None, ["top"])]
    modules = {"p": Path("p/__init__.py"), "p.a": Path("p/a.py"), "p.c": Path("p/c.py")}
    assert _owner("p.a.thing", modules) == "p.a" and _owner("p.zz", modules) == "p"
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_cycle():
    found = cycles(graph(module_names()))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("low, high", [("analysis", "recordings"), ("analysis", "compare")])
def test_analysis_imports_neither_recordings_nor_compare(low, high):
    edges = graph(module_names())
    bad = sorted(f"{m} -> {t}" for m, ts in edges.items() if m.startswith(f"{PACKAGE}.{low}")
                 for t in ts if t.startswith(f"{PACKAGE}.{high}"))
    assert not bad, bad
