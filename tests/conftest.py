"""Fixtures shared by several test files."""
from __future__ import annotations

from pathlib import Path

import pytest

from mixaq.simulator import MixaqError


@pytest.fixture(scope="session")
def mmdet_python() -> Path:
    """The mmdetection oracle's python (its own venv, built by `make mmdet-venv` or on first use);
    the test skips where it cannot be built."""
    from benchmarks._mmdet import ensure_mmdet_venv

    try:
        return ensure_mmdet_venv()
    except MixaqError as exc:
        pytest.skip(f"mmdetection oracle unavailable, its venv could not be built: {exc}")
