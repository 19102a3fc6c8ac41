"""QAT/SAQA over several processes: DistributedDataParallel around the step's losses, the loss
weighting that makes the averaged gradient the global batch's, and every rank's random generators.

Why the weighting: every loss term is a sum over the batch divided by a normaliser of that batch
(mmdet's avg_factor: sampled anchors, sampled RoIs, mask pixels of the positives; FCOS: foreground
locations). DDP averages the ranks' gradients, so plain per-rank losses give the mean over ranks of
per-rank normalised sums, which is not the global batch's loss when ranks' normalisers differ.
Rank r's term is weighted by W * n_r / N (n_r its normaliser, N the sum over ranks, W the world
size): the average over ranks of the weighted gradients is then sum(grad S_r) / N, exactly the
gradient a single process computes on the global batch. Terms without a known normaliser (the
distillation term, other torchvision heads) are averaged over ranks as mmdet does with per-GPU losses.

`find_unused_parameters=True`: a step can leave parameters without a gradient on one rank and not
on another, and which ones changes from step to step: the two-branch block's low branch (its LN copies
and activation quantizers) is unused while QAT routes every window high, and under SAQA in any block
whose drawn mix puts no window low; the mask head gets no gradient on a rank whose batch has no
positive RoI, and each cascade stage likewise. DDP must find those per step, or the reduction waits
forever for their gradients.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn as nn

from mixaq.core._errors import MixaqError

__all__ = ["cast_floats", "distributed_losses", "fcos_counts", "restore_rng", "rng_states"]

Losses = Callable[[Any, Any], Mapping[str, torch.Tensor]]


class _Step(nn.Module):
    """The model's parameters under one forward that returns the step's named losses, so that DDP's
    forward sees the whole loss computation (its unused-parameter search starts from these outputs)."""

    def __init__(self, model: nn.Module, fn: Losses) -> None:
        super().__init__()
        self.model = model
        self._fn = fn

    def forward(self, state: Any, batch: Any) -> dict[str, torch.Tensor]:
        return dict(self._fn(state, batch))


def distributed_losses(model: nn.Module, local: Losses, factors: dict[str, float], dist: Any, device: torch.device, *,
                       diverged: str, hint: str) -> tuple[Losses, Callable[[Any], Mapping[str, float]]]:
    """(losses hook, report hook) of a distributed run: `local` (which fills `factors` with this rank's
    normalisers) under DDP, each term weighted as the module docstring says; the report is the global
    batch's loss values. A non-finite global loss stops every rank at the same step (one-line error)."""
    from torch.nn.parallel import DistributedDataParallel

    ddp = DistributedDataParallel(_Step(model, local), device_ids=None, find_unused_parameters=True)
    report: dict[str, float] = {}

    def losses(state: Any, batch: Any) -> dict[str, torch.Tensor]:
        terms = dict(ddp(state, batch))
        names = list(terms)
        counts = [factors.get(n) for n in names]
        totals = dist.sum_values([0.0 if c is None else c for c in counts], device)
        weighted = {n: terms[n] * (1.0 if c is None else dist.world * max(c, 1.0) / max(t, 1.0))
                    for n, c, t in zip(names, counts, totals)}
        values = dist.sum_values([float(v.detach()) for v in weighted.values()], device)
        report.clear()
        report.update({n: v / dist.world for n, v in zip(names, values)})
        report["loss"] = total = sum(v / dist.world for v in values)
        if not math.isfinite(total):
            raise MixaqError(f"{diverged} at step {state.step} (loss {total}); {hint}")
        return weighted

    return losses, lambda state: dict(report)


@contextlib.contextmanager
def fcos_counts(model: nn.Module, factors: dict[str, float]) -> Iterator[None]:
    """Inside, torchvision FCOS's loss records its normaliser (foreground locations of the batch) in
    `factors` under its three loss names; other heads record nothing (their terms are averaged)."""
    from torchvision.models.detection import FCOS

    if not isinstance(model, FCOS):
        yield
        return
    head = model.head
    original = head.compute_loss

    def counting(targets, head_outputs, anchors, matched_idxs):  # noqa: ANN001, ANN202
        n = float(sum(int((m >= 0).sum()) for m in matched_idxs))
        out = original(targets, head_outputs, anchors, matched_idxs)
        factors.update({k: n for k in out})
        return out

    head.compute_loss = counting
    try:
        yield
    finally:
        del head.compute_loss  # back to the class's method


def rng_states(device: torch.device) -> dict[str, Any]:
    """This process's torch generators (CPU, and its CUDA device's)."""
    return {"cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def restore_rng(resumed: Mapping[str, Any], rank: int, device: torch.device) -> torch.Tensor:
    """Restore rank `rank`'s CUDA generator from a resume file now; return its CPU state (the loop sets
    it after the data loader has drawn its seed)."""
    per_rank = resumed.get("rank_rng")
    if isinstance(per_rank, list) and rank < len(per_rank):
        state = per_rank[rank]
        if device.type == "cuda" and state.get("cuda") is not None:
            torch.cuda.set_rng_state(state["cuda"], device)
        return state["cpu"]
    return resumed["torch_rng"]


def cast_floats(batch: Any, dtype: torch.dtype) -> Any:
    """Every floating tensor of a (nested list / tuple / dict / dataclass) batch cast to `dtype`."""
    import dataclasses

    if isinstance(batch, torch.Tensor):
        return batch.to(dtype) if batch.is_floating_point() else batch
    if isinstance(batch, dict):
        return {k: cast_floats(v, dtype) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        return type(batch)(cast_floats(v, dtype) for v in batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(batch, **{f.name: cast_floats(getattr(batch, f.name), dtype)
                                             for f in dataclasses.fields(batch) if f.init})
    return batch
