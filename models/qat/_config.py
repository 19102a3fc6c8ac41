"""What a QAT / SAQA run is (torch-free): the YAML `train:` settings, the run config file, and the
names the CLI offers (`--train-scope`), so `mixaq qat|adapt --help` never imports torch."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from mixaq.models._config import QuantConfig
from mixaq.core._errors import MixaqError
from mixaq.core._util import check_fields, dataclass_from_mapping, read_config_sections

__all__ = ["ADAPT_FIELDS", "FineTuneConfig", "FineTuneRun", "KINDS", "METHODS", "TRAIN_SCOPES", "apply_method",
           "load_finetune_config"]

TRAIN_SCOPES: tuple[str, ...] = ("all", "blocks")
# QAT methods: LSQ (learned steps everywhere) or OFQ (StatsQ weights, QKR attention, CGA late phase).
METHODS: tuple[str, ...] = ("lsq", "ofq")
KINDS: tuple[str, ...] = ("qat", "saqa")
# The `adapt:` section: MixSampler fields and the distillation weight.
ADAPT_FIELDS: tuple[str, ...] = ("max_ratio", "prune_probability", "max_prune_share", "distill_weight")


@dataclass(frozen=True)
class FineTuneConfig:
    """Optimisation settings (YAML `train:` section)."""

    seed: int = 0
    steps: int = 400
    batch_size: int = 8
    lr: float = 2.0e-4  # weights: fine-tuning a trained float model
    quant_lr: float = 1.0e-3  # quantizer steps / zero points (Adam: a relative change per step)
    weight_decay: float = 0.05
    warmup_steps: int = 20
    grad_clip: float = 5.0
    checkpoint_every: int = 50
    log_every: int = 10
    max_minutes: float | None = None
    threads: int = 1
    loader_workers: int = 0
    calib_images: int = 32  # training images that initialise the activation steps (PTQ observers)
    train_scope: str = "all"  # "all" parameters, or only the Swin "blocks" (weights, LNs, quantizers)
    method: str = "lsq"  # "ofq": StatsQ weights + QKR (quant) and CGA over the last `cga_fraction` of the steps
    # OFQ's scripts fine-tune 30 epochs with CGA after 300 (~9 %); their boundary range 0.005, constant.
    cga_fraction: float = 0.1
    cga_boundary_range: float = 0.005
    # "float64": the model and batches in double precision, for exact comparisons (the distributed
    # test: Adam's first steps turn float32 rounding of near-zero gradients into +-lr). Never faster.
    dtype: str = "float32"
    # stochastic depth of the Swin blocks while training; None: the Mask R-CNN families take their
    # official 3x config's (Swin-T/S 0.2, Swin-B 0.3), other detectors keep what they were built with
    drop_path_rate: float | None = None

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "float64"):
            raise MixaqError(f"train.dtype must be float32 or float64, got {self.dtype!r}")
        if self.drop_path_rate is not None and not 0.0 <= self.drop_path_rate < 1.0:
            raise MixaqError(f"train.drop_path_rate must lie in [0, 1), got {self.drop_path_rate!r}")
        if self.method not in METHODS:
            raise MixaqError(f"train.method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not 0.0 <= self.cga_fraction <= 1.0:
            raise MixaqError(f"train.cga_fraction must lie in [0, 1], got {self.cga_fraction!r}")
        if not 0.0 <= self.cga_boundary_range < 0.5:
            raise MixaqError(f"train.cga_boundary_range must lie in [0, 0.5), got {self.cga_boundary_range!r}")
        if self.train_scope not in TRAIN_SCOPES:
            raise MixaqError(f"train.train_scope must be one of {', '.join(TRAIN_SCOPES)}, got {self.train_scope!r}")
        if self.steps < 1 or self.batch_size < 1 or self.calib_images < 1:
            raise MixaqError("train: steps, batch_size and calib_images must be >= 1")


@dataclass(frozen=True)
class FineTuneRun:
    """A QAT/SAQA config file: `data` (as `mixaq train`), `quant` (QuantConfig fields), `train`,
    and for SAQA `adapt` (MixSampler fields and `distill_weight`)."""

    data: Mapping[str, Any]
    quant: QuantConfig
    train: FineTuneConfig
    adapt: Mapping[str, Any] = field(default_factory=dict)


def apply_method(run: FineTuneRun) -> FineTuneRun:
    """The run with its quantization set for `train.method`: OFQ -> StatsQ weights and QKR; LSQ refuses
    those two (they are OFQ's, and without CGA half of it)."""
    from dataclasses import replace

    if run.train.method == "ofq":
        return replace(run, quant=replace(run.quant, weight_observer="statsq", qkr=True))
    if run.quant.weight_observer == "statsq" or run.quant.qkr:
        raise MixaqError("quant.weight_observer 'statsq' and quant.qkr are OFQ's: set train.method: ofq (or --method ofq)")
    return run


def load_finetune_config(path: str | Path) -> FineTuneRun:
    raw = read_config_sections(path, ("data", "quant", "train", "adapt"))
    quant = dict(raw.get("quant") or {})
    check_fields(quant, (f.name for f in fields(QuantConfig)), f"{path}: quant")
    if "targets" in quant:
        quant["targets"] = tuple(quant["targets"])
    adapt = dict(raw.get("adapt") or {})
    return FineTuneRun(data=dict(raw["data"]),
                       quant=dataclass_from_mapping(QuantConfig, {"learnable": True, **quant}, f"{path}: quant"),
                       train=dataclass_from_mapping(FineTuneConfig, raw.get("train"), f"{path}: train"), adapt=adapt)
