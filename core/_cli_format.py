"""Plain-text tables, CSV and JSON for the simulator CLIs (no pandas: `mixaq cost` must start fast)."""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Sequence

from mixaq.core._util import json_ready

__all__ = ["format_number", "render_csv", "render_json", "render_table"]


def format_number(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    value = float(value)
    if math.isinf(value):
        return "inf"
    if abs(value) >= 1e4 or (value.is_integer() and abs(value) < 1e15):
        return f"{value:,.0f}"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:.4f}".rstrip("0").rstrip(".")


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Right-aligned columns, one line per row."""
    cells = [[format_number(row.get(col)) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    lines = ["  ".join(col.rjust(w) for col, w in zip(columns, widths))]
    lines += ["  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def render_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return buf.getvalue().rstrip("\n")


def render_json(payload: dict[str, Any]) -> str:
    return json.dumps(json_ready(payload), indent=2)
