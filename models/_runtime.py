"""Process state that library calls change only inside a scope: torch's thread count and its global
random generators. Each context manager restores what it changed, so `Evaluator`, `train` and
`fine_tune` leave the caller's process as they found it (the CLI may still set things process-wide).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

__all__ = ["seeded", "torch_threads"]


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `threads` (at least 1) inside, restored after; None: unchanged."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """torch's global generators (CPU, and every CUDA device when there is one) seeded with `seed`
    inside and restored after: weight init, dropout / stochastic depth and the data loader's base
    seed are reproducible without changing the caller's random stream."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield
