"""Every data set the toolkit reads or makes has a card naming its source, licence and citation."""

import re
from pathlib import Path

import pytest

CARDS = Path(__file__).resolve().parents[1] / "data_cards"
EXPECTED = ["kriegeskorte92.md", "cichy2014-meg.md", "brainio-examples.md", "miniecoset.md", "ecoset.md",
            "fashion-mnist.md", "synthetic-recordings.md"]


@pytest.mark.parametrize("name", EXPECTED)
def test_card_names_licence_citation_and_the_rest(name):
    path = CARDS / name
    assert path.exists(), f"missing data card {path}"
    text = path.read_text()
    section = re.search(r"^## Licence and citation\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, f"{name}: no '## Licence and citation' section"
    body = section.group(1)
    assert re.search(r"licen[cs]e|\bMIT\b|CC BY", body, re.I), f"{name}: the licence is not named"
    assert re.search(r"\(\d{4}\)|\d{4}\)?\.", body), f"{name}: no citation with a year"
    for what, pattern in {"source": r"source|where|homepage|generated", "size": r"\bsize\b|\bMB\b|\bGB\b|\bkB\b",
                          "format": r"format|layout", "how to obtain": r"obtain|download|generated on the fly",
                          "how the toolkit reads it": r"vrnn |vision_rnn|load_", "caveats": r"^## Caveats"}.items():
        assert re.search(pattern, text, re.I | re.M), f"{name}: says nothing about its {what}"
