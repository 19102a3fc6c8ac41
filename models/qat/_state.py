"""Checkpoints of trained quantized detectors (`mixaq qat` / `mixaq adapt`) and their restoration.

A checkpoint is an ordinary detector checkpoint (`models.detection` format, loadable by anything
that loads a float detector) whose `extra["qat"]` carries what the two-branch form adds: the
trained quantizer parameters of both branches and the weights, the low branch's LayerNorm copies,
and the `QuantConfig` they were trained for. `restore_quantized` puts them back into a converted
copy of the detector, so `Evaluator` (and with it `mixaq eval` / `mixaq sweep`) evaluates the
trained quantizers instead of re-calibrating.
"""
from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from mixaq.models._config import QuantConfig
from mixaq.models.detection._checkpoint import check_finite
from mixaq.simulator import MixaqError

__all__ = ["QAT_KEY", "quant_to_dict", "quant_from_dict", "split_state", "save_quantized_checkpoint",
           "restore_quantized", "load_quantized"]

QAT_KEY = "qat"
# State-dict key parts that exist only in the converted (two-branch) form.
_TWO_BRANCH_PARTS = (".norm1_low.", ".norm2_low.", ".act_quant.", ".weight_quant.", ".repq.")


def quant_to_dict(quant: QuantConfig) -> dict[str, Any]:
    out = asdict(quant)
    out["targets"] = list(quant.targets)
    return out


def quant_from_dict(data: dict[str, Any], where: str = "checkpoint") -> QuantConfig:
    try:
        return QuantConfig(**{**data, "targets": tuple(data.get("targets", ()))})
    except TypeError as exc:
        raise MixaqError(f"{where}: bad stored QuantConfig ({exc})") from None


def _is_two_branch(key: str) -> bool:
    return any(part in "." + key for part in _TWO_BRANCH_PARTS)


def split_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(float-detector state, two-branch extras) of a converted detector; zero points snapped to
    their integer grid (training keeps them continuous behind a rounding STE)."""
    base, extra = {}, {}
    for key, value in model.state_dict().items():
        value = value.detach().clone().contiguous()
        if key.endswith("zero_point"):
            value = value.round()
        (extra if _is_two_branch(key) else base)[key] = value
    return base, extra


def save_quantized_checkpoint(path: str | Path, model: nn.Module, config, categories: list[dict],  # noqa: ANN001
                              quant: QuantConfig, extra: dict[str, Any]) -> Path:
    """Write `model` (converted, trained for `quant`) as a detector checkpoint with `extra["qat"]`."""
    from mixaq.models.detection._checkpoint import save_checkpoint
    from mixaq.models.detection._detector import build_detector

    base, two_branch = split_state(model)
    with torch.random.fork_rng():  # building draws initial weights: keep a training run's RNG untouched
        plain = build_detector(config)
    plain.load_state_dict(base)  # strict: the float part must be exactly a detector of `config`
    payload = {**extra, QAT_KEY: {**extra.get(QAT_KEY, {}), "quant": quant_to_dict(quant), "state": two_branch}}
    return save_checkpoint(path, plain, config, categories, extra=payload)


def restore_quantized(model: nn.Module, trained: dict[str, Any], quant: QuantConfig,
                      calibrate: Callable[[nn.Module], None]) -> QuantConfig:
    """Set `quant` on a converted detector, restoring the trained parts that fit it.

    `trained` is a checkpoint's `extra["qat"]`. The weight quantizers are restored when the weight
    bits match, each branch's activation quantizers when its bits (and the quantized targets and
    grid) match; LayerNorm copies always. Branches that do not match are calibrated with
    `calibrate(model)` (PTQ observers of `quant`). Restored quantizers keep their learned steps, so
    the model runs with `learnable=True` quantizers; the effective config is returned.
    """
    from mixaq.models._two_branch import set_quant

    try:
        stored, state = quant_from_dict(trained["quant"]), trained["state"]
    except (KeyError, TypeError):
        raise MixaqError("checkpoint: extra['qat'] lacks 'quant' or 'state'") from None
    same_grid = quant.targets == stored.targets and quant.act_symmetric == stored.act_symmetric
    match = {
        "high": same_grid and quant.high_act_bits == stored.high_act_bits,
        "low": same_grid and quant.low_act_bits == stored.low_act_bits,
        "weight": quant.weight_bits == stored.weight_bits,
    }
    restores = any(match[k] and getattr(quant, f) is not None for k, f in
                   (("high", "high_act_bits"), ("low", "low_act_bits"), ("weight", "weight_bits")))
    effective = replace(quant, learnable=True) if restores else quant
    if match["weight"] and (stored.weight_observer == "statsq" or stored.qkr):
        # OFQ-trained weights: their quantizer (StatsQ) and attention form (QKR) belong to the model
        effective = replace(effective, weight_observer=stored.weight_observer, qkr=stored.qkr)
    set_quant(model, effective)
    if any(bits is not None and not match[b] for b, bits in (("high", quant.high_act_bits), ("low", quant.low_act_bits))):
        calibrate(model)
    wanted = [".norm1_low.", ".norm2_low."]
    wanted += [p for p, ok in ((".act_quant.high.", match["high"]), (".act_quant.low.", match["low"]),
                               (".weight_quant.", match["weight"])) if ok]
    subset = {k: v for k, v in state.items() if any(w in "." + k for w in wanted)}
    check_finite("checkpoint extra['qat']", subset, "trained quantizer")
    own = model.state_dict()
    bad = [k for k, v in subset.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise MixaqError(f"checkpoint: trained quantizer state does not fit the model (first: {bad[0]})")
    model.load_state_dict(subset, strict=False)
    return effective


def load_quantized(path: str | Path) -> tuple[nn.Module, Any, list[dict], dict[str, Any], QuantConfig]:
    """(converted model with its trained quantizers, config, categories, extra, quant) of a QAT/SAQA
    checkpoint; eval mode, no mix set."""
    from mixaq.models._two_branch import convert_swin, set_mix
    from mixaq.models.detection._checkpoint import load_detector

    model, config, categories, extra = load_detector(path)
    if QAT_KEY not in extra:
        raise MixaqError(f"{path}: not a QAT/SAQA checkpoint (no trained quantizers; use `mixaq qat` first)")
    quant = quant_from_dict(extra[QAT_KEY].get("quant", {}), where=str(path))

    def no_calibration(_: nn.Module) -> None:  # every part matches its own config
        raise MixaqError(f"{path}: stored quantizers are incomplete")  # pragma: no cover

    convert_swin(model, quant)
    restore_quantized(model, extra[QAT_KEY], quant, no_calibration)
    set_mix(model, None)
    return model.eval(), config, categories, extra, quant
