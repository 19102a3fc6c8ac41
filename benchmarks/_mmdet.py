"""mmdetection 3.3.0 as the oracle for the Mask R-CNN / Cascade Mask R-CNN families.

mmdet lives in its own venv (`make mmdet-venv` -> `.venv-mmdet/`, ~15 s: mmdet, mmcv-lite and
mmengine; torch, torchvision and timm are the project venv's own) and runs in a subprocess on
`_mmdet_driver.py`. Used by tests/test_detection_oracle.py and benchmarks/bench_oracle.py; nothing
in mixaq depends on it.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from mixaq.simulator import MixaqError

__all__ = ["MMDET_VENV", "ensure_mmdet_venv", "run_mmdet"]

REPO_ROOT = Path(__file__).resolve().parent.parent
MMDET_VENV = REPO_ROOT / ".venv-mmdet"
DRIVER = Path(__file__).resolve().parent / "_mmdet_driver.py"


def ensure_mmdet_venv(timeout_s: float = 900.0) -> Path:
    """Build `.venv-mmdet` with `make mmdet-venv` if needed; returns its python.

    Raises MixaqError (one line, with the tail of make's output) when it cannot be built.
    """
    python = MMDET_VENV / "bin" / "python"
    if (MMDET_VENV / ".installed").exists() and python.exists():
        return python
    key = hashlib.sha1(str(REPO_ROOT).encode()).hexdigest()[:12]
    with open(Path(tempfile.gettempdir()) / f"mixaq-mmdet-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers: one builds, the others wait
        if (MMDET_VENV / ".installed").exists() and python.exists():
            return python
        try:
            proc = subprocess.run(["make", "-C", str(REPO_ROOT), "mmdet-venv"], capture_output=True, text=True,
                                  timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MixaqError(f"cannot build {MMDET_VENV}: {exc}") from None
    if proc.returncode != 0 or not python.exists():
        tail = " ".join((proc.stdout + proc.stderr).strip().splitlines()[-2:])
        raise MixaqError(f"`make mmdet-venv` failed (exit {proc.returncode}): {tail}")
    return python


def run_mmdet(task: dict[str, Any], python: Path | None = None, timeout_s: float = 900.0) -> None:
    """Run one `_mmdet_driver.py` task (it writes its results to the paths the task names)."""
    python = python or ensure_mmdet_venv()
    with tempfile.TemporaryDirectory(prefix="mixaq-mmdet-") as tmp:
        spec = Path(tmp) / "task.json"
        spec.write_text(json.dumps(task))
        proc = subprocess.run([str(python), str(DRIVER), str(spec)], cwd=tmp, capture_output=True, text=True,
                              timeout=timeout_s)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise MixaqError(f"mmdet oracle ({task['kind']}) failed (exit {proc.returncode}): {tail}")
