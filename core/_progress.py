"""A progress bar for a phase of a command (tqdm on stderr), or nothing when disabled."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

__all__ = ["phase"]


@contextlib.contextmanager
def phase(desc: str, total: int | None = None, unit: str = "it", enabled: bool = True) -> Iterator[Any]:
    """`with phase("baselines", total=3) as bar: ... bar.update(1)`: a tqdm bar named `desc` that
    closes on exit (errors included); disabled, a bar that draws nothing."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True, leave=True)
    try:
        yield bar
    finally:
        bar.close()
