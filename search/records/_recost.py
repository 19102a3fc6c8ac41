"""What a reader needs to re-cost any front point with `mixaq cost`: the model's Swin geometry (a
preset name or `arch.yaml` in the run directory), its input size, and the command itself."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from mixaq.search.space._settings import SweepSettings

__all__ = ["ARCH_FILE", "arch_label", "cost_command", "image_label", "write_arch"]

ARCH_FILE = "arch.yaml"


def arch_label(context: dict[str, Any]) -> str:
    """The study's arch as `mixaq cost --arch` takes it: a preset's name, else `arch.yaml` (written
    next to the tables by `write_arch`)."""
    from mixaq.simulator import get_arch
    from mixaq.simulator import SWIN_ARCHS

    if not context.get("arch"):
        return ""
    arch = get_arch(context["arch"])
    return next((name for name, preset in SWIN_ARCHS.items() if preset == arch), ARCH_FILE)


def image_label(context: dict[str, Any]) -> str:
    hw = context.get("image_hw")
    return f"{int(hw[0])}x{int(hw[1])}" if hw else ""


def write_arch(context: dict[str, Any], out_dir: Path) -> Path | None:
    """arch.yaml: the model's SwinArch fields (what `mixaq cost --arch FILE` reads)."""
    import dataclasses

    import yaml

    from mixaq.simulator import get_arch

    if not context.get("arch"):
        return None
    fields = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(get_arch(context["arch"])).items()}
    path = Path(out_dir) / ARCH_FILE
    path.write_text("# the swept model's Swin geometry: mixaq cost --arch arch.yaml\n" + yaml.safe_dump(fields, sort_keys=False))
    return path


def cost_command(row: pd.Series, settings: SweepSettings, context: dict[str, Any]) -> str:
    """`mixaq cost ...` that recomputes this (ratio-mode) trial's simulated cost, run from the run
    directory (a co-exploration point names its `specs/<name>.yaml`); "" where it cannot."""
    s = settings.space
    if s.mode != "ratio" or not context.get("arch"):
        return ""
    pairs = range(s.num_pairs)
    low = [row.get(f"low_ratio_p{p}", 0.0) for p in pairs]
    prune = [row.get(f"prune_ratio_p{p}", 0.0) for p in pairs]
    bits = [row.get(k) for k in ("high_act_bits", "low_act_bits", "weight_bits")]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in [*low, *prune, *bits]):
        return ""
    spec = f"specs/{row['spec_name']}.yaml" if settings.hw_space is not None and isinstance(row.get("spec_name"), str) \
        else settings.spec
    ratios = lambda vs: ",".join(f"{float(v):g}" for v in vs)  # noqa: E731
    return (f"mixaq cost --spec {spec} --arch {arch_label(context)} --image {image_label(context)} "
            f"--high-bits {int(bits[0])} --low-bits {int(bits[1])} --weight-bits {int(bits[2])} "
            f"--low-ratios {ratios(low)} --prune-ratios {ratios(prune)}")
