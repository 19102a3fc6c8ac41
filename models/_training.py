"""The one training loop. `mixaq train` (`evaluation._train.train`) and `mixaq qat|adapt`
(`qat._loop.fine_tune`) configure it with hooks; it owns what every run shares: the seeded stream
sampler, warmup + cosine learning rate, optimizer parameter groups, the finite-loss optimizer step,
the loss window and JSON-lines log, the progress bar, the wall-clock limit and the checkpoint cadence.

A run plugs in through `LoopHooks`: `losses` (a batch -> named losses; anything per step such as a
fresh window mix goes here), `after_step` (e.g. an EMA update; numbers it returns are logged),
`log` (extra fields of a periodic log record, e.g. validation), `before_optimizer` (after backward,
before clipping and the step: e.g. OFQ's CGA zeroing frozen weights' gradients), `checkpoint` (called on the
cadence and once at the end) and `finish` (after the last step, before the final checkpoint).
Batches are moved to the model's device, so the loop itself is device-agnostic.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol

import numpy as np
import torch
import torch.nn as nn

from mixaq.core._errors import MixaqError
from mixaq.core._util import json_ready

__all__ = ["LoopConfig", "LoopHooks", "LoopState", "StreamSampler", "lr_at", "make_optimizer", "optimizer_step",
           "run_loop", "to_device"]

# Parameters whose names contain these are fake-quantizer steps / zero points (their own lr).
_QUANT_PARTS = (".act_quant.", ".weight_quant.")


class LoopConfig(Protocol):
    """What the loop reads from a run's `train:` settings (`TrainConfig`, `FineTuneConfig`)."""

    seed: int
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    grad_clip: float
    checkpoint_every: int
    log_every: int
    max_minutes: float | None
    loader_workers: int


class StreamSampler(torch.utils.data.Sampler):
    """`total` indices from `start`: epochs of seeded permutations (a long synthetic stream is one
    epoch), so a resumed run continues with exactly the batches it would have seen.

    Distributed (`world` > 1, the `DistributedSampler` of the loop): the stream positions are the
    same global order; consecutive chunks of `chunk` positions (the per-rank batch) go to rank 0, 1,
    ... in turn, so global batch s is the single-process stream's positions [s*chunk*world, (s+1)*
    chunk*world) and each rank holds a disjoint slice of it (`start`, `total`: global positions)."""

    def __init__(self, n: int, total: int, seed: int, start: int = 0, rank: int = 0, world: int = 1,
                 chunk: int = 1) -> None:
        self.n, self.total, self.seed, self.start = n, total, seed, start
        self.rank, self.world, self.chunk = rank, world, chunk

    def __iter__(self) -> Iterator[int]:
        for pos in range(self.start, self.total):
            epoch, i = divmod(pos, self.n)
            if i == 0 or pos == self.start:
                perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            if (pos // self.chunk) % self.world == self.rank:
                yield int(perm[i])

    def _mine_below(self, x: int) -> int:
        full, rest = divmod(x, self.chunk * self.world)
        return full * self.chunk + min(max(rest - self.rank * self.chunk, 0), self.chunk)

    def __len__(self) -> int:
        return self._mine_below(self.total) - self._mine_below(self.start)


def lr_at(step: int, cfg: LoopConfig) -> float:
    """Linear warmup to `cfg.lr`, then cosine decay to 2 % of it at `cfg.steps`."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, quant_lr: float | None = None,
                   no_decay: Callable[[str], bool] | None = None) -> torch.optim.AdamW:
    """AdamW over the trainable parameters in three groups: weights (decayed); norms, biases and
    relative-position tables (not decayed; or the parameters whose name `no_decay` accepts, e.g. the
    R-CNN configs' rule); quantizer steps (not decayed, `quant_lr`). Each group carries `lr_scale`,
    its learning rate relative to the schedule's."""
    groups: dict[str, list] = {"decay": [], "no_decay": [], "quant": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if any(part in "." + name for part in _QUANT_PARTS):
            groups["quant"].append(p)
        elif no_decay(name) if no_decay is not None else (p.ndim <= 1 or "relative_position_bias_table" in name):
            groups["no_decay"].append(p)
        else:
            groups["decay"].append(p)
    settings = {"decay": (weight_decay, 1.0), "no_decay": (0.0, 1.0),
                "quant": (0.0, (lr if quant_lr is None else quant_lr) / lr)}
    return torch.optim.AdamW([{"params": params, "weight_decay": settings[name][0], "lr_scale": settings[name][1]}
                              for name, params in groups.items() if params], lr=lr)


def optimizer_step(losses: Mapping[str, torch.Tensor], opt: torch.optim.Optimizer, params, grad_clip: float,
                   diverged: str, hint: str, before_step: Callable[[], None] | None = None) -> torch.Tensor:
    """Sum the losses, refuse a non-finite one (one-line error), backward, [before_step], clip, step;
    returns the loss."""
    loss = sum(losses.values())
    if not torch.isfinite(loss):
        raise MixaqError(f"{diverged} (loss {loss.item()}); {hint}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if before_step is not None:
        before_step()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(list(params), grad_clip)
    opt.step()
    return loss


def to_device(batch: Any, device: torch.device) -> Any:
    """Every tensor of a (nested list / tuple / dict) batch moved to `device` (a no-op when already there)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


@dataclass
class LoopState:
    """Where a run stands; hooks read it (`step` counts optimizer steps done, resumed ones included)."""

    step: int = 0
    stopped_early: bool = False
    seconds_before: float = 0.0  # wall clock of the interrupted run this one resumes
    began: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.began


def _nothing(state: LoopState) -> Mapping[str, Any]:
    return {}


def _no_checkpoint(state: LoopState, final: bool) -> None:
    return None


@dataclass(frozen=True)
class LoopHooks:
    """How a run plugs into `run_loop` (see the module docstring)."""

    losses: Callable[[LoopState, Any], Mapping[str, torch.Tensor]]
    after_step: Callable[[LoopState], Mapping[str, float] | None] = _nothing
    log: Callable[[LoopState], Mapping[str, Any]] = _nothing
    checkpoint: Callable[[LoopState, bool], None] = _no_checkpoint
    finish: Callable[[LoopState], Mapping[str, Any]] = _nothing
    before_optimizer: Callable[[LoopState], None] | None = None
    # Distributed runs: the loss values to log instead of this process's (the global batch's, from
    # the losses hook; with the total under "loss").
    report: Callable[[LoopState], Mapping[str, float]] | None = None


def _trim_log(path: Path, last_step: int) -> None:
    """Keep the records up to `last_step` (and drop a line cut by a killed process)."""
    kept = []
    for line in path.read_text().splitlines():
        try:
            if int(json.loads(line).get("step", 0)) <= last_step:
                kept.append(line + "\n")
        except (ValueError, AttributeError):
            continue
    path.write_text("".join(kept))


def _write(log: Any, record: Mapping[str, Any]) -> None:
    # strict JSON: numpy scalars as numbers, a non-finite loss as null (json.dumps would write NaN)
    log.write(json.dumps(json_ready(record), allow_nan=False) + "\n")
    log.flush()


def run_loop(model: nn.Module, optimizer: torch.optim.Optimizer, data: torch.utils.data.Dataset,
             collate: Callable[[list], Any], cfg: LoopConfig, hooks: LoopHooks, *, log_path: str | Path,
             desc: str, diverged: str, hint: str, start_step: int = 0, seconds_before: float = 0.0,
             rng_state: torch.Tensor | None = None, progress: bool = True, dist: Any = None) -> LoopState:
    """Train `model` for `cfg.steps` optimizer steps (from `start_step` when resuming) or until
    `cfg.max_minutes`; returns the final state. The JSON-lines log at `log_path` gets one record per
    `cfg.log_every` steps (means over the window) and a final one; a resumed run appends to it.

    `rng_state`: torch's CPU generator state of the interrupted run, restored after the data loader
    has drawn its base seed so that stochastic depth continues as if never stopped. A non-finite
    loss is a one-line `MixaqError` ("`diverged` at step N (...); `hint`").

    `dist` (a `models._distributed.DistContext`, None: one process): `cfg.batch_size` is the batch of
    each rank, the global batch `batch_size * world`; every rank reads its slice of the global
    stream; only rank 0 writes the log and shows the progress bar; the wall-clock stop is agreed by
    all ranks (a collective), so none waits for a rank that has left.
    """
    from tqdm import tqdm

    from mixaq.models._distributed import SINGLE

    dist = dist or SINGLE
    per_step = cfg.batch_size * dist.world
    loader = torch.utils.data.DataLoader(
        data, batch_size=cfg.batch_size,
        sampler=StreamSampler(len(data), cfg.steps * per_step, cfg.seed, start=start_step * per_step,
                              rank=dist.rank, world=dist.world, chunk=cfg.batch_size),
        collate_fn=collate, num_workers=cfg.loader_workers, drop_last=True,
        persistent_workers=cfg.loader_workers > 0)
    batches = iter(loader)  # draws the loader's base seed from torch's generator, so restore that after
    if rng_state is not None:
        torch.set_rng_state(rng_state)
    device = next(model.parameters()).device
    trainable = [p for p in model.parameters() if p.requires_grad]
    state = LoopState(step=start_step, seconds_before=seconds_before)
    window: dict[str, list[float]] = {}
    log_path = Path(log_path) if dist.main else Path(os.devnull)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if start_step and dist.main and log_path.is_file():  # a resumed run redoes the steps after its checkpoint
        _trim_log(log_path, start_step)
    with log_path.open("a" if start_step else "w") as log:
        with tqdm(total=cfg.steps, initial=start_step, desc=desc, disable=not progress or not dist.main,
                  unit="step") as bar:
            for batch in batches:
                lr = lr_at(state.step, cfg)
                for group in optimizer.param_groups:
                    group["lr"] = lr * group.get("lr_scale", 1.0)
                losses = dict(hooks.losses(state, to_device(batch, device)))
                before = None if hooks.before_optimizer is None else (lambda: hooks.before_optimizer(state))
                loss = optimizer_step(losses, optimizer, trainable, cfg.grad_clip,
                                      f"{diverged} at step {state.step}", hint, before)
                state.step += 1
                numbers = hooks.after_step(state) or {}
                if hooks.report is not None:
                    for k, v in hooks.report(state).items():
                        window.setdefault(k, []).append(float(v))
                else:
                    for k, v in losses.items():
                        window.setdefault(k, []).append(float(v.detach()))
                    window.setdefault("loss", []).append(float(loss.detach()))
                for k, v in numbers.items():
                    window.setdefault(k, []).append(float(v))
                bar.update(1)
                if state.step % cfg.log_every == 0 or state.step == cfg.steps:
                    record = {"step": state.step, "lr": round(lr, 7), "seconds": round(state.seconds, 1),
                              **{k: round(float(np.mean(v)), 4) for k, v in window.items()}}
                    record.update(hooks.log(state))
                    _write(log, record)
                    bar.set_postfix(loss=record["loss"])
                    window.clear()
                if state.step % cfg.checkpoint_every == 0 and state.step < cfg.steps:
                    hooks.checkpoint(state, False)
                out_of_time = cfg.max_minutes is not None and time.perf_counter() - state.began > cfg.max_minutes * 60
                if dist.any(out_of_time, device) and state.step < cfg.steps:
                    state.stopped_early = True
                    break
        final = dict(hooks.finish(state))
        hooks.checkpoint(state, True)
        _write(log, {"step": state.step, "final": True, "stopped_early": state.stopped_early,
                     "seconds": round(state.seconds, 1), **final})
    return state
