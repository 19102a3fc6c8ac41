"""Optional SAQA distillation: the low-bit branch imitates the high-bit branch on important windows.

While a `DistillTap` is active, every time a converted block runs its high branch on a set of
windows (the important ones, by the current mix), it also runs the low branch on the same windows
and records the relative MSE between the two outputs, the high output detached as the target. The
low branch thus learns, on the windows where the high branch's output is known, to reproduce it.
"""
from __future__ import annotations

import types

import torch
import torch.nn as nn

from mixaq.models._two_branch import TwoBranchSwinBlock, converted_blocks

__all__ = ["DistillTap"]

_EPS = 1e-12


class DistillTap:
    """Context manager; `pop_loss()` returns the mean recorded loss since the last pop (0 if none)."""

    def __init__(self, model: nn.Module) -> None:
        self.blocks = [b for _, b in converted_blocks(model)]
        self._losses: list[torch.Tensor] = []

    def _tapped(self, block: TwoBranchSwinBlock, branch: str, xw: torch.Tensor, bias: torch.Tensor, extras: tuple) -> torch.Tensor:
        out = TwoBranchSwinBlock._branch(block, branch, xw, bias, extras)
        if branch == "high" and block.training and torch.is_grad_enabled():
            low = TwoBranchSwinBlock._branch(block, "low", xw, bias, extras)  # (n, N, C)
            target = out.detach()
            self._losses.append((low - target).pow(2).mean() / target.pow(2).mean().clamp_min(_EPS))
        return out

    def __enter__(self) -> "DistillTap":
        tap = self

        def branch(block, name, xw, bias, extras):  # noqa: ANN001, ANN202 (the block method's signature)
            return tap._tapped(block, name, xw, bias, extras)

        for block in self.blocks:
            block._branch = types.MethodType(branch, block)  # instance attribute shadows the method
        return self

    def __exit__(self, *exc: object) -> None:
        for block in self.blocks:
            block.__dict__.pop("_branch", None)
        self._losses = []

    def pop_loss(self) -> torch.Tensor:
        losses, self._losses = self._losses, []
        return torch.stack(losses).mean() if losses else torch.zeros(())
