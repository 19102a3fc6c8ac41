"""docs/architecture.md's rule table is true: every `path:symbol` it names exists at that path."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"core": "mixaq.core", "simulator": "mixaq.simulator", "models": "mixaq.models", "search": "mixaq.search"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _rule_rows() -> list[tuple[str, str]]:
    text = (REPO / "docs" / "architecture.md").read_text()
    table = text.split("## One module per shared rule", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| rule ")]
    # Cells are separated by " | "; a `|` inside a cell's code (`mixaq train|qat`) has no spaces around it.
    return [tuple(c.strip() for c in row.strip().strip("|").split(" | ")) for row in rows]


def references(cell: str) -> list[tuple[str, str | None]]:
    """(path, symbol or None) named by a table cell; a bare `symbol` belongs to the last path named;
    text in parentheses is commentary."""
    out, path = [], None
    for token in re.findall(r"`([^`]+)`", re.sub(r"\([^()]*\)", "", cell)):
        where, colon, symbol = token.partition(":")
        if where.endswith(".py"):
            path = where
            out.append((path, symbol if colon else None))
        elif path is not None and _IDENT.match(token):
            out.append((path, token))
    return out


def _module(path: str) -> str:
    top, rest = path.split("/", 1)
    parts = [p for p in Path(rest).with_suffix("").parts if p != "__init__"]
    return ".".join([PACKAGES[top], *parts])


def test_the_table_has_rows_and_references():
    rows = _rule_rows()
    assert len(rows) >= 25
    assert all(references(cell) for _, cell in rows), [rule for rule, cell in rows if not references(cell)]


def test_reference_parser():
    assert references("`a/_x.py:f`, `g` (`not/_this.py:h`)") == [("a/_x.py", "f"), ("a/_x.py", "g")]


@pytest.mark.parametrize("rule,cell", _rule_rows())
def test_every_rule_symbol_exists_where_the_table_says(rule, cell):
    for path, symbol in references(cell):
        assert (REPO / path).is_file(), f"{rule}: {path} does not exist"
        if symbol is None:
            continue
        obj = importlib.import_module(_module(path))
        for part in symbol.split("."):
            assert hasattr(obj, part), f"{rule}: {path} has no {symbol}"
            obj = getattr(obj, part)
        # Defined there, not merely imported (a class/function's home module is the path named).
        home = getattr(obj, "__module__", None)
        if home is not None and callable(obj) and "." not in symbol:
            assert home == _module(path), f"{rule}: {symbol} is defined in {home}, not {path}"
