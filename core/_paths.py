"""Output paths named on the command line, checked before any work starts (torch-free, shared by
every `mixaq` command that writes)."""
from __future__ import annotations

from pathlib import Path

from mixaq.core._errors import MixaqError

__all__ = ["check_out_dir", "check_out_file"]


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
