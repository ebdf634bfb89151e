"""Matching stimulus ids across sources: exact id, else file stem, else a user's id map.

An activation file names stimuli by path (``cats/a.png``), a recording often by
bare name (``a``) or by its own numbering. :func:`match_stimuli` pairs two id
lists and says how many matched and how; :func:`match_rows` matches table rows
(a metadata CSV) to stimuli. Analyses, recordings and comparisons all use these.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DataError, StimuliError

__all__ = ["StimulusMatch", "match_stimuli", "match_rows", "read_id_map", "stem"]


def stem(stimulus_id: str) -> str:
    """File stem of an id: no folders, no extension.

    >>> stem("cats/a.png")
    'a'
    """
    return Path(stimulus_id).stem


@dataclass
class StimulusMatch:
    """Index pairs of matched stimuli (``a[i]`` matches ``b[i]``) and how they matched."""

    a: np.ndarray
    b: np.ndarray
    n_a: int
    n_b: int
    by: dict = field(default_factory=dict)

    @property
    def n_matched(self) -> int:
        return len(self.a)

    def __str__(self) -> str:
        how = ", ".join(f"{n} by {k}" for k, n in self.by.items() if n) or "none"
        return f"{self.n_matched} stimuli matched ({how}) of {self.n_a} and {self.n_b}"


def read_id_map(id_map) -> dict:
    """An id map as a dict: ``None`` (empty), a dict, or a CSV file with a header row and two
    columns (an id or stem of the first source, an id or stem of the second)."""
    if id_map is None:
        return {}
    if isinstance(id_map, dict):
        return {str(k): str(v) for k, v in id_map.items()}
    path = Path(id_map)
    if not path.exists():
        raise DataError(f"id map {path} does not exist; pass a CSV with two columns: ids of the first "
                        "source, ids of the second")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r]
    except UnicodeDecodeError as e:
        raise DataError(f"id map {path}: not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8 CSV") from None
    except (OSError, csv.Error) as e:
        raise DataError(f"id map {path}: unreadable as CSV ({e})") from None
    if not rows or len(rows[0]) < 2:
        raise DataError(f"{path}: an id map needs two columns (first source, second source) and a header row")
    return {r[0].strip(): r[1].strip() for r in rows[1:] if len(r) >= 2}


def match_stimuli(a_ids, b_ids, id_map=None) -> StimulusMatch:
    """Match two lists of stimulus ids: exact id, else file stem, else ``id_map``.

    Each id of ``a_ids`` is tried in that order; a stem must be unique on both sides to
    count. ``id_map`` is a dict or a CSV file with a header and two columns (an id or stem of
    the first source, an id or stem of the second). Pairs are in the order of ``a_ids``.

    >>> m = match_stimuli(["cats/a.png", "b.jpg", "x"], ["a", "b", "zz"], id_map={"x": "zz"})
    >>> m.a.tolist(), m.b.tolist(), str(m)
    ([0, 1, 2], [0, 1, 2], '3 stimuli matched (2 by stem, 1 by id_map) of 3 and 3')
    """
    a_ids = [str(s) for s in a_ids]
    b_ids = [str(s) for s in b_ids]
    exact = {s: i for i, s in enumerate(b_ids)}

    def unique_stems(ids):
        out, dup = {}, set()
        for i, s in enumerate(ids):
            st = stem(s)
            if st in out:
                dup.add(st)
            out[st] = i
        return {k: v for k, v in out.items() if k not in dup}

    b_stems = unique_stems(b_ids)
    a_stem_ok = unique_stems(a_ids)
    mapping = read_id_map(id_map)
    ia, ib, used = [], [], set()
    by = {"id": 0, "stem": 0, "id_map": 0}
    for i, s in enumerate(a_ids):
        j, how = None, None
        if s in exact:
            j, how = exact[s], "id"
        elif stem(s) in b_stems and stem(s) in a_stem_ok:
            j, how = b_stems[stem(s)], "stem"
        elif mapping:
            target = mapping.get(s, mapping.get(stem(s)))
            if target is not None:
                j = exact.get(target, b_stems.get(stem(target)))
                how = "id_map"
        if j is not None and j not in used:
            used.add(j)
            ia.append(i)
            ib.append(j)
            by[how] += 1
    return StimulusMatch(np.asarray(ia, dtype=np.int64), np.asarray(ib, dtype=np.int64),
                         len(a_ids), len(b_ids), by)


def match_rows(ids: Sequence[str], keys: Sequence[str], where: str) -> tuple[dict, list]:
    """Match table rows to stimuli: ``({stimulus index: row index}, [unmatched keys])``.

    A key matches the stimulus with that exact id, else the one stimulus with that
    file stem. A stem shared by several stimuli, or two rows reaching one
    stimulus, is ambiguous and refused (StimuliError naming ``where``).

    >>> match_rows(["cat/a.png", "dog/b.png"], ["a", "dog/b.png", "zebra"], "t.csv")
    ({0: 0, 1: 1}, ['zebra'])
    """
    exact = {s: i for i, s in enumerate(ids)}
    by_stem: dict = {}
    for i, s in enumerate(ids):
        by_stem.setdefault(stem(s), []).append(i)
    rows, unmatched, ambiguous = {}, [], []
    for r, key in enumerate(keys):
        if key in exact:
            hits = [exact[key]]
        else:
            hits = by_stem.get(key, [])
        if not hits:
            unmatched.append(key)
            continue
        if len(hits) > 1:
            ambiguous.append(f"{key!r} is the file stem of {len(hits)} stimuli "
                             f"({', '.join(ids[i] for i in hits[:3])}{' ...' if len(hits) > 3 else ''})")
            continue
        i = hits[0]
        if i in rows:
            ambiguous.append(f"{keys[rows[i]]!r} and {key!r} both name stimulus {ids[i]!r}")
            continue
        rows[i] = r
    if ambiguous:
        shown = "; ".join(ambiguous[:3]) + (f"; and {len(ambiguous) - 3} more" if len(ambiguous) > 3 else "")
        raise StimuliError(f"{where}: ambiguous 'stimulus' values: {shown}; use the full stimulus ids "
                           "(paths relative to the stimuli folder)")
    return rows, unmatched
