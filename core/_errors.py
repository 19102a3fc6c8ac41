"""The one exception type users see: a one-line message naming the problem."""
from __future__ import annotations

__all__ = ["MixaqError", "first_line", "short"]


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


def short(value: object, limit: int = 60) -> str:
    """`repr(value)` cut to `limit` characters (`…` marks the cut), for quoting a bad value in a
    message: a value from a file can be megabytes (an expanded YAML alias, a nested list), and the
    repr of a deeply nested one would itself recurse too deep."""
    import reprlib

    # reprlib stops at a depth and a width: never builds the whole text of a huge value.
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 6, 6, 6, 6
    r.maxstring = r.maxother = r.maxlong = limit
    text = r.repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
