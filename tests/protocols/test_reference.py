"""The reference doc's generated block matches the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocols.reference import BEGIN, DOC, END, main, render_tables, splice
from protocols.validate import REASONS


def test_reference_doc_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert splice(text) == text, "run: python -m protocols.reference"
    for reason in REASONS:
        assert f"`{reason}`" in text


def test_main_rewrites_only_the_block(tmp_path: Path) -> None:
    doc = tmp_path / "ref.md"
    doc.write_text(f"intro\n{BEGIN}\nold\n{END}\noutro\n", encoding="utf-8")
    assert main([str(doc)]) == 0
    assert doc.read_text(encoding="utf-8") == f"intro\n{BEGIN}\n{render_tables()}{END}\noutro\n"


def test_missing_markers() -> None:
    with pytest.raises(ValueError):
        splice("no markers here")
