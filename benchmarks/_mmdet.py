"""mmdetection 3.3.0 as the oracle for the Mask R-CNN / Cascade Mask R-CNN families.

mmdet lives in its own venv (`make mmdet-venv` -> `.venv-mmdet/`, ~15 s: mmdet, mmcv-lite and
mmengine; torch, torchvision and timm are the project venv's own) and runs in a subprocess on
`_mmdet_driver.py`. Used by tests/test_detection_oracle.py and benchmarks/bench_oracle.py; nothing
in mixaq depends on it.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from mixaq.simulator import MixaqError
from benchmarks._refvenv import REPO_ROOT, ensure_venv

__all__ = ["MMDET_VENV", "ensure_mmdet_venv", "run_mmdet"]

MMDET_VENV = REPO_ROOT / ".venv-mmdet"
DRIVER = Path(__file__).resolve().parent / "_mmdet_driver.py"


def ensure_mmdet_venv(timeout_s: float = 900.0) -> Path:
    """Build `.venv-mmdet` with `make mmdet-venv` if needed; returns its python.

    Raises MixaqError (one line, with the tail of make's output) when it cannot be built.
    """
    return ensure_venv(MMDET_VENV, "mmdet-venv", timeout_s)


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
