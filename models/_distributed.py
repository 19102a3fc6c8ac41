"""One training run over several processes (torch.distributed): who this process is, the few
collectives the training loop needs, and SyncBatchNorm that also works on CPU (gloo).

A process is a rank of a distributed run when torch's launcher (`torchrun`, or `mixaq qat|adapt
--nproc N`, which calls the same elastic launcher) set `WORLD_SIZE` > 1 in its environment. Then
`DistContext.from_environment` joins the process group (gloo on CPU, NCCL on CUDA; rank r uses
`cuda:LOCAL_RANK`) with a timeout, and every collective of the run inherits that timeout: a rank that
dies or hangs ends the others' waits instead of blocking them forever (team rule: no wait without
a timeout). A single process gets `SINGLE`, whose collectives are identities, so the loop has one
code path.
"""
from __future__ import annotations

import datetime
import os
import signal
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn as nn

from mixaq.core._errors import MixaqError

__all__ = ["DEFAULT_TIMEOUT_S", "KILL_ENV", "PEER_LOST_EXIT", "SINGLE", "CpuSyncBatchNorm", "DistContext", "in_launched_job",
           "sync_batchnorm"]

DEFAULT_TIMEOUT_S = 1800.0  # torch's own default for process groups, made explicit
PEER_LOST_EXIT = 75  # a rank that stops because another rank died exits with this (the launcher names the other)
# Test hook: "RANK:STEP" makes that rank SIGKILL itself right after optimizer step STEP (a rank dying
# without any cleanup, as an out-of-memory kill or a lost node would).
KILL_ENV = "MIXAQ_TEST_KILL_RANK_AT"


def in_launched_job() -> bool:
    """True inside a process started by torch's launcher with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


@dataclass(frozen=True)
class DistContext:
    """This process's place in a run: `rank` of `world` processes, its device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def main(self) -> bool:
        """Rank 0 writes checkpoints and logs and shows the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @classmethod
    def from_environment(cls, device_name: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple["DistContext", str]:
        """(context, device name of this rank). Joins the process group when launched with WORLD_SIZE > 1."""
        if not in_launched_job():
            return SINGLE, device_name
        import torch.distributed as dist

        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
        if device_name not in ("auto", "cpu", "cuda"):
            raise MixaqError(f"--device {device_name}: a distributed run uses one GPU per process (cuda:LOCAL_RANK); "
                             "pass --device cuda, cpu or auto")
        cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
        if cuda:
            if not torch.cuda.is_available():
                raise MixaqError("--device cuda: no CUDA GPU is available here")
            if local >= torch.cuda.device_count():
                raise MixaqError(f"rank {rank}: LOCAL_RANK {local} but only {torch.cuda.device_count()} GPU(s) visible")
            torch.cuda.set_device(local)
        ctx = cls(rank, world, local, float(timeout_s))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=float(timeout_s)),
                                    **({"device_id": torch.device("cuda", local)} if cuda else {}))
        return ctx, (f"cuda:{local}" if cuda else "cpu")

    # --- collectives (identities for a single process); each inherits the process group's timeout ---

    def sum_values(self, values: Sequence[float], device: torch.device) -> list[float]:
        """Element-wise sum over ranks (float64, so counts stay exact)."""
        if not self.distributed:
            return [float(v) for v in values]
        import torch.distributed as dist

        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when it is true on one (stop conditions: no rank leaves the others waiting)."""
        if not self.distributed:
            return bool(flag)
        return self.sum_values([1.0 if flag else 0.0], device)[0] > 0

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order (on every rank)."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

    def maybe_die(self, step: int) -> None:
        """The `MIXAQ_TEST_KILL_RANK_AT=RANK:STEP` test hook (see KILL_ENV)."""
        spec = os.environ.get(KILL_ENV)
        if spec and spec == f"{self.rank}:{step}":
            os.kill(os.getpid(), signal.SIGKILL)


SINGLE = DistContext()


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of every rank's input is the sum of the output gradients (the
    same collective again), which is what a global batch statistic's chain rule needs."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        import torch.distributed as dist

        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        import torch.distributed as dist

        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm over the global batch of every rank, for CPU tensors (torch's SyncBatchNorm is
    CUDA-only). Statistics in two passes (mean, then the centred second moment) so they match a
    single process's BatchNorm over the concatenated batch to float rounding; running statistics
    use the unbiased global variance, as torch's BatchNorm does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype)
        total = _AllReduceSum.apply(torch.cat([x.sum(dims), count]))
        n = total[-1].detach()
        mean = total[:-1] / n.clamp(min=1)
        shape = [1, -1] + [1] * (x.dim() - 2)
        centred = x - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / n.clamp(min=1)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1).clamp(min=1), alpha=m)
        out = centred / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def sync_batchnorm(model: nn.Module, device: torch.device) -> int:
    """Every BatchNorm of `model` normalised over the global batch (the cascade's 4conv1fc heads);
    returns how many were converted. CUDA: torch's `SyncBatchNorm`; CPU: `CpuSyncBatchNorm`."""
    count = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) not in ((nn.BatchNorm1d, nn.BatchNorm2d) if device.type == "cuda" else (nn.BatchNorm2d,)):
                continue
            if device.type == "cuda":
                new = nn.SyncBatchNorm.convert_sync_batchnorm(child)
            else:
                new = CpuSyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                       child.track_running_stats)
                new.load_state_dict(child.state_dict())
            setattr(module, child_name, new)
            count += 1
    return count
