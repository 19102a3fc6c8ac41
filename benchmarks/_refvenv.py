"""Reference tools (SCALE-Sim, mmdetection) live in their own venvs, built by a make target on first use."""
from __future__ import annotations

import fcntl
import hashlib
import subprocess
import tempfile
from pathlib import Path

from mixaq.simulator import MixaqError

__all__ = ["REPO_ROOT", "ensure_venv"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def ensure_venv(venv: Path, make_target: str, timeout_s: float) -> Path:
    """Build `venv` with `make <make_target>` unless it is already installed; returns its python.

    Raises MixaqError (one line, with the tail of make's output) when it cannot be built,
    e.g. without access to PyPI.
    """
    python = venv / "bin" / "python"
    if (venv / ".installed").exists() and python.exists():
        return python
    key = hashlib.sha1(str(REPO_ROOT).encode()).hexdigest()[:12]
    with open(Path(tempfile.gettempdir()) / f"mixaq-{make_target}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers: one builds, the others wait
        if (venv / ".installed").exists() and python.exists():
            return python
        try:
            proc = subprocess.run(["make", "-C", str(REPO_ROOT), make_target], capture_output=True, text=True,
                                  timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MixaqError(f"cannot build {venv}: {exc}") from None
    if proc.returncode != 0 or not python.exists():
        tail = " ".join((proc.stdout + proc.stderr).strip().splitlines()[-2:])
        raise MixaqError(f"`make {make_target}` failed (exit {proc.returncode}): {tail}")
    return python
