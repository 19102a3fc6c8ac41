"""Output paths named on the command line, checked before any work starts (torch-free, shared by
every `mixaq` command that writes)."""
from __future__ import annotations

import re
from pathlib import Path

from mixaq.simulator._errors import MixaqError

__all__ = ["check_out_dir", "check_out_file", "safe_filename", "path_inside"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_MAX_NAME = 120


def safe_filename(name: str) -> str:
    """A name read from a file (a hardware space's or spec's `name`) as one plain file name: every
    character but letters, digits and `._+-` becomes `_`, leading dots go (no `..`, no hidden file),
    at most 120 characters. A name never becomes a path without passing through here."""
    text = _UNSAFE.sub("_", str(name)).lstrip(".")[:_MAX_NAME]
    return text or "_"


def path_inside(directory: Path, name: str) -> Path:
    """`directory / safe_filename(name)`, checked to resolve inside `directory` (the belt to the braces)."""
    path = Path(directory) / safe_filename(name)
    if Path(directory).resolve() not in path.resolve().parents:
        raise MixaqError(f"name {name[:60]!r} would write outside {str(directory)!r}")
    return path


def _first_existing_is_dir(path: Path, flag: str) -> None:
    for part in path.parents:
        if part.exists():
            if not part.is_dir():
                raise MixaqError(f"{flag} {str(path)!r}: {str(part)!r} exists and is not a directory")
            return


def check_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """A directory to write into: it exists as a directory, or can be created (no file in the way)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise MixaqError(f"{flag} {str(path)!r} exists and is not a directory")
    _first_existing_is_dir(path, flag)
    return path


def check_out_file(path: str | Path, flag: str = "--out") -> Path:
    """A file to (re)write: not an existing directory, and its parent can be created."""
    path = Path(path)
    if path.is_dir():
        raise MixaqError(f"{flag} {str(path)!r} is a directory; name the file to write")
    _first_existing_is_dir(path, flag)
    return path
