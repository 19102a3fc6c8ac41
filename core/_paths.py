"""Output paths named on the command line, checked before any work starts (torch-free, shared by
every `mixaq` command that writes)."""
from __future__ import annotations

import re
from pathlib import Path

from mixaq.core._errors import MixaqError

__all__ = ["check_out_dir", "check_out_file", "safe_filename", "path_inside", "atomic_write_text"]

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


def _probe_writable(path: Path, flag: str, shown: Path | None = None) -> None:
    """The nearest existing directory of `path` takes a new file (a real create-and-delete, since
    permission bits say nothing for root, read-only mounts or a full quota): found before the work,
    not after it."""
    import os
    import tempfile

    here = next((p for p in (path, *path.parents) if p.exists()), None)
    if here is None or not here.is_dir():
        return
    try:
        fd, probe = tempfile.mkstemp(prefix=".mixaq-probe-", dir=here)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise MixaqError(f"{flag} {str(shown or path)!r}: cannot write into {str(here)!r} "
                         f"({exc.strerror or exc})") from None


def check_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """A directory to write into: it exists as a directory, or can be created (no file in the way),
    and a file can be created there."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise MixaqError(f"{flag} {str(path)!r} exists and is not a directory")
    _first_existing_is_dir(path, flag)
    _probe_writable(path, flag)
    return path


def check_out_file(path: str | Path, flag: str = "--out") -> Path:
    """A file to (re)write: not an existing directory or device (`/dev/full`), and its directory
    exists or can be created and takes a new file (outputs are written as a temp file + rename)."""
    path = Path(path)
    if path.is_dir():
        raise MixaqError(f"{flag} {str(path)!r} is a directory; name the file to write")
    if path.exists() and not path.is_file():
        raise MixaqError(f"{flag} {str(path)!r} is not a regular file (a device or pipe); name a file to write")
    _first_existing_is_dir(path, flag)
    _probe_writable(path.parent, flag, path)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to a temp file next to `path`, then rename it over `path`: a full disk or a
    crash leaves the old file (or none), never a truncated one."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
