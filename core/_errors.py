"""The one exception type users see: a one-line message naming the problem."""
from __future__ import annotations

__all__ = ["MixaqError", "first_line"]


class MixaqError(ValueError):
    """Bad input (spec, bit width, file, checkpoint, dataset, storage URL).

    The CLI prints `mixaq <command>: error: <message>` and exits 2; library callers can catch it.
    Messages name the offending field/file and fit on one line.
    """


def first_line(exc: BaseException | str, limit: int = 160) -> str:
    """The first non-empty line of a (library) error message, for quoting inside a one-line error.

    Empty messages give the exception's type name. A long line ends at its last full sentence that
    fits, else at a word boundary marked with `…`: never mid-word.
    """
    text = str(exc).strip()
    if not text:
        return type(exc).__name__ if isinstance(exc, BaseException) else ""
    line = next(ln.strip() for ln in text.splitlines() if ln.strip())
    if len(line) <= limit:
        return line
    sentence = line[:limit].rfind(". ")
    if sentence >= limit // 3:
        return line[:sentence + 1]
    cut = line[:limit].rsplit(" ", 1)[0].rstrip(" ,;:([{")
    return (cut or line[:limit]) + " …"
