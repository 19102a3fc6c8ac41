"""The one exception type users see: a one-line message naming the problem."""
from __future__ import annotations

__all__ = ["MixaqError"]


class MixaqError(ValueError):
    """Bad input (spec, bit width, file, checkpoint, dataset, storage URL).

    The CLI prints `mixaq <command>: error: <message>` and exits 2; library callers can catch it.
    Messages name the offending field/file and fit on one line.
    """
