"""`--device cpu|cuda|cuda:N|auto` -> a torch device, checked before any work starts."""
from __future__ import annotations

import contextlib
import re
from typing import Iterator

from mixaq.core._errors import MixaqError

__all__ = ["DEVICE_HELP", "check_device_name", "resolve_device", "strict_fp32"]

DEVICE_HELP = "cpu, cuda, cuda:N or auto (default auto: the first GPU if there is one, else cpu)"
_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_name(name: str | None) -> str:
    """The name if it is well formed (torch-free: usable before torch is imported)."""
    name = "auto" if name is None else str(name)
    if not _PATTERN.match(name):
        raise MixaqError(f"--device must be {DEVICE_HELP}; got {name!r}")
    return name


def resolve_device(name: str | None = "auto"):  # noqa: ANN201 (torch.device; torch imported lazily)
    """A torch.device for `name`; a CUDA device that does not exist is a one-line error."""
    import torch

    name = check_device_name(name)
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise MixaqError(f"--device {name}: no CUDA GPU is available here (torch {torch.__version__})")
    index = int(name.split(":")[1]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise MixaqError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) visible")
    return torch.device(f"cuda:{index}")


@contextlib.contextmanager
def strict_fp32(device) -> Iterator[None]:  # noqa: ANN001 (torch.device)
    """Inside, CUDA float math stays FP32: no TF32 in matmuls or cuDNN convolutions (torch enables
    it for cuDNN by default); the reference configs evaluate in FP32 (`fp16 = None`). The previous
    settings come back on exit."""
    import torch

    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
