"""The fine-tuning loop shared by QAT and SAQA: CPU, deterministic, logged, resumable.

It reuses the detection training pieces (datasets, stream sampler, learning-rate schedule,
checkpoint format) and adds what quantized training needs: converting and initialising the
quantizers (calibration or a previous QAT checkpoint), a parameter group for the quantizer steps,
an optional fresh window mix per step, and a resume file with the optimizer state.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn

from mixaq.models._config import QuantConfig
from mixaq.models.detection._train import optimizer_step, read_config_sections
from mixaq.simulator import MixaqError

__all__ = ["FineTuneConfig", "FineTuneRun", "load_finetune_config", "fine_tune", "resume_path", "TRAIN_SCOPES", "KINDS"]

TRAIN_SCOPES = ("all", "blocks")
_QUANT_PARTS = (".act_quant.", ".weight_quant.")
_RESUME_FORMAT = "mixaq-finetune-resume"


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

    def __post_init__(self) -> None:
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


def load_finetune_config(path: str | Path) -> FineTuneRun:

    raw = read_config_sections(path, ("data", "quant", "train", "adapt"))

    def fields(cls, section: str) -> dict:
        data = dict(raw.get(section) or {})
        bad = set(data) - set(cls.__dataclass_fields__)
        if bad:
            raise MixaqError(f"{path}: {section}: unknown field(s) {sorted(bad)} (known: {sorted(cls.__dataclass_fields__)})")
        return data

    quant = fields(QuantConfig, "quant")
    if "targets" in quant:
        quant["targets"] = tuple(quant["targets"])
    try:
        return FineTuneRun(data=dict(raw["data"]), quant=QuantConfig(**{"learnable": True, **quant}),
                           train=FineTuneConfig(**fields(FineTuneConfig, "train")), adapt=dict(raw.get("adapt") or {}))
    except TypeError as exc:
        raise MixaqError(f"{path}: {exc}") from None


def resume_path(out: str | Path) -> Path:
    """Where a run writing `out` keeps its optimizer state until it finishes."""
    out = Path(out)
    return out.with_name(out.name + ".resume")


def _calibration_batches(data, n: int, batch_size: int, seed: int):  # noqa: ANN001, ANN202
    ids = np.random.default_rng([seed, 17]).choice(len(data), size=min(n, len(data)), replace=False)
    for start in range(0, len(ids), batch_size):
        yield [data[int(i)][0] for i in ids[start:start + batch_size]]


def _trainable(model: nn.Module, scope: str) -> set[str]:
    from mixaq.models._two_branch import converted_blocks

    names = {n for n, _ in model.named_parameters()}
    if scope == "all":
        return names
    blocks = [name + "." for name, _ in converted_blocks(model)]
    return {n for n in names if any(n.startswith(b) for b in blocks)}


def _optimizer(model: nn.Module, cfg: FineTuneConfig) -> torch.optim.Optimizer:
    groups: dict[str, list] = {"decay": [], "no_decay": [], "quant": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if any(part in "." + name for part in _QUANT_PARTS):
            groups["quant"].append(p)
        elif p.ndim <= 1 or "relative_position_bias_table" in name:
            groups["no_decay"].append(p)
        else:
            groups["decay"].append(p)
    settings = {"decay": (cfg.weight_decay, 1.0), "no_decay": (0.0, 1.0), "quant": (0.0, cfg.quant_lr / cfg.lr)}
    return torch.optim.AdamW([{"params": params, "weight_decay": settings[name][0], "lr_scale": settings[name][1]}
                              for name, params in groups.items() if params], lr=cfg.lr)


def _sync_low_to_high(model: nn.Module) -> None:
    """Uniform QAT trains only the high branch; copy it to the low branch (same bits) so the
    checkpoint is the uniform model whatever mix it later runs with."""
    from mixaq.models._two_branch import converted_blocks

    for _, block in converted_blocks(model):
        block.norm1_low.load_state_dict(block.norm1.state_dict())
        block.norm2_low.load_state_dict(block.norm2.state_dict())
        for target, fq in block.act_quant["low"].items():
            fq.load_state_dict(block.act_quant["high"][target].state_dict())


def _initial_model(source: Path, quant: QuantConfig, data, cfg: FineTuneConfig):  # noqa: ANN001, ANN202
    """(converted model, config, categories, source extra) initialised for `quant`: from a QAT/SAQA
    checkpoint the fitting trained parts are restored; the rest is calibrated on training images."""
    from mixaq.models._two_branch import calibrating, convert_swin, set_mix
    from mixaq.models.detection._checkpoint import load_detector
    from mixaq.models.qat._state import QAT_KEY, restore_quantized

    model, config, categories, extra = load_detector(source)

    def calibrate(m: nn.Module) -> None:
        m.eval()
        with torch.no_grad(), calibrating(m):
            for images in _calibration_batches(data, cfg.calib_images, cfg.batch_size, cfg.seed):
                m(images)

    convert_swin(model, quant)
    set_mix(model, None)
    if QAT_KEY in extra:
        restore_quantized(model, extra[QAT_KEY], quant, calibrate)
    else:
        calibrate(model)
    return model, config, categories, extra


KINDS = ("qat", "saqa")
ADAPT_FIELDS = ("max_ratio", "prune_probability", "max_prune_share", "distill_weight")


def _sampler(run: FineTuneRun, num_pairs: int):  # noqa: ANN202 (MixSampler, distill weight)
    from mixaq.models.qat._sampling import MixSampler

    settings = dict(run.adapt)
    bad = set(settings) - set(ADAPT_FIELDS)
    if bad:
        raise MixaqError(f"adapt: unknown field(s) {sorted(bad)} (known: {', '.join(ADAPT_FIELDS)})")
    distill = float(settings.pop("distill_weight", 0.0))
    if distill < 0:
        raise MixaqError(f"adapt.distill_weight must be >= 0, got {distill}")
    return MixSampler(num_pairs=num_pairs, seed=run.train.seed, **settings), distill


def fine_tune(source: str | Path, out: str | Path, run: FineTuneRun, *, kind: str, resume: bool = False,
              config_dir: Path | None = None, log_path: str | Path | None = None,
              progress: bool = True, device: str | None = "auto") -> dict[str, Any]:
    """Train the converted detector from checkpoint `source` for `run.quant`; write `out`.

    `kind="qat"` trains the uniform model (every window high-bit); `kind="saqa"` sets a fresh
    window mix every step from `run.adapt` (a `MixSampler`). `resume` continues an interrupted run
    from `out`'s resume file.
    """
    if kind not in KINDS:
        raise MixaqError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "qat" and run.quant.low_act_bits != run.quant.high_act_bits:
        # QAT trains the uniform model; its low branch is a copy of the high one (see _sync_low_to_high).
        run = replace(run, quant=replace(run.quant, low_act_bits=run.quant.high_act_bits))
    from tqdm import tqdm

    from mixaq.models._device import resolve_device
    from mixaq.models._two_branch import convert_swin, set_mix
    from mixaq.models.detection._coco import collate
    from mixaq.models.detection._checkpoint import load_checkpoint
    from mixaq.models.detection._detector import DetectorConfig, build_detector
    from mixaq.models.detection._train import _dataset, _lr_at, _StreamSampler
    from mixaq.models.qat._distill import DistillTap
    from mixaq.models.qat._state import QAT_KEY, quant_from_dict, quant_to_dict, save_quantized_checkpoint

    cfg, quant = run.train, run.quant
    dev = resolve_device(device)
    out, source = Path(out), Path(source)
    log_path = Path(log_path) if log_path else out.with_suffix(".log.jsonl")
    state_file = resume_path(out)
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)

    start_step, resumed = 0, None
    if resume:
        if not state_file.is_file():
            raise FileNotFoundError(f"nothing to resume: {state_file} does not exist")
        resumed = torch.load(state_file, map_location="cpu", weights_only=True)
        if not isinstance(resumed, dict) or resumed.get("format") != _RESUME_FORMAT or resumed.get("kind") != kind:
            raise MixaqError(f"{state_file}: not a resume file of a `{kind}` run")
        stored = dict(resumed["run"])
        current = _run_dict(run, exclude=("max_minutes", "threads", "loader_workers"))
        # QuantConfig compares as a dataclass, so fields added to it later take their defaults
        same_quant = quant_from_dict(stored.pop("quant")) == quant_from_dict(current.pop("quant"))
        if not same_quant or stored != current:
            raise MixaqError(f"{state_file}: the run settings differ from the interrupted run's (only max_minutes, "
                             "threads and loader_workers may change on resume)")
        config = DetectorConfig.from_dict(resumed["config"], where=f"{state_file}: config")
        categories = resumed["categories"]
        data = _dataset(run.data, config.image_hw, config_dir, "data")
        model = convert_swin(build_detector(config), quant_from_dict(resumed["quant"]))
        model.load_state_dict(resumed["state"])
        source_extra = resumed["source_extra"]
        start_step = int(resumed["step"])
    else:
        config = DetectorConfig.from_dict(load_checkpoint(source, trainable=True)["config"], where=f"{source}: config")
        data = _dataset(run.data, config.image_hw, config_dir, "data")
        model, config, categories, source_extra = _initial_model(source, quant, data, cfg)
        source_extra = {k: v for k, v in source_extra.items() if k != QAT_KEY}
    if data.num_classes != config.num_classes:
        raise MixaqError(f"training data has {data.num_classes} categories but the model predicts {config.num_classes}")

    sampler, distill_weight = _sampler(run, config.swin_arch.num_pairs) if kind == "saqa" else (None, 0.0)
    model.to(dev)
    trainable = _trainable(model, cfg.train_scope)
    for name, p in model.named_parameters():
        p.requires_grad_(name in trainable)
    model.train()
    opt = _optimizer(model, cfg)
    if resumed is not None:
        opt.load_state_dict(resumed["optimizer"])
    offset = model.label_offset
    loader = torch.utils.data.DataLoader(
        data, batch_size=cfg.batch_size,
        sampler=_StreamSampler(len(data), cfg.steps * cfg.batch_size, cfg.seed, start=start_step * cfg.batch_size),
        collate_fn=collate, num_workers=cfg.loader_workers, drop_last=True)
    batches = iter(loader)  # draws the loader's base seed from torch's generator, so restore that after
    if resumed is not None:
        torch.set_rng_state(resumed["torch_rng"])  # stochastic depth continues as if never stopped

    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("a" if resumed is not None else "w")
    began = time.perf_counter()
    seconds_before = float(resumed["seconds"]) if resumed is not None else 0.0
    step, stopped_early = start_step, False
    window: dict[str, list[float]] = {}
    history = {"source": str(source), "kind": kind, "run": _run_dict(run), "sampler": asdict(sampler) if sampler else None,
               "distill_weight": distill_weight}

    def save(final: bool) -> None:
        seconds = round(seconds_before + time.perf_counter() - began, 1)
        extra = {**source_extra, QAT_KEY: {**history, "steps_done": step, "finished": final and not stopped_early,
                                           "seconds": seconds}}
        if final and sampler is None and quant.low_act_bits == quant.high_act_bits:
            _sync_low_to_high(model)
        save_quantized_checkpoint(out, model, config, categories, quant, extra)
        if final and not stopped_early:
            state_file.unlink(missing_ok=True)
            return
        payload = {"format": _RESUME_FORMAT, "kind": kind, "step": step, "seconds": seconds,
                   "run": _run_dict(run, exclude=("max_minutes", "threads", "loader_workers")),
                   "config": config.to_dict(), "categories": categories, "quant": quant_to_dict(quant),
                   "state": model.state_dict(), "optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state(),
                   "source_extra": source_extra}
        tmp = state_file.with_name(state_file.name + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(state_file)

    tap = DistillTap(model) if distill_weight > 0 else None
    bar = tqdm(total=cfg.steps, initial=start_step, desc=kind, disable=not progress, unit="step")
    try:
        if tap is not None:
            tap.__enter__()
        for images, targets in batches:
            images = [i.to(dev, non_blocking=True) for i in images]
            targets = [{k: v.to(dev, non_blocking=True) for k, v in t.items()} for t in targets]
            for t in targets:
                t["labels"] = t["labels"] + offset
            lr = _lr_at(step, cfg)
            for g in opt.param_groups:
                g["lr"] = lr * g["lr_scale"]
            mix = sampler.mix(step) if sampler is not None else None
            set_mix(model, mix)
            losses = dict(model(images, targets))
            if tap is not None:
                losses["distill"] = distill_weight * tap.pop_loss()
            loss = optimizer_step(losses, opt, (p for p in model.parameters() if p.requires_grad), cfg.grad_clip,
                                  f"{kind} diverged at step {step}", "lower train.lr / quant_lr")
            step += 1
            for k, v in losses.items():
                window.setdefault(k, []).append(float(v.detach()))
            window.setdefault("loss", []).append(float(loss.detach()))
            if mix is not None:
                window.setdefault("low_ratio_mean", []).append(float(np.mean(mix.low_ratios)))
                window.setdefault("prune_ratio_mean", []).append(float(np.mean(mix.prune_ratios)))
            bar.update(1)
            elapsed = time.perf_counter() - began
            if step % cfg.log_every == 0 or step == cfg.steps:
                rec = {"step": step, "lr": round(lr, 7), "seconds": round(seconds_before + elapsed, 1),
                       **{k: round(float(np.mean(v)), 4) for k, v in window.items()}}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                bar.set_postfix(loss=rec["loss"])
                window.clear()
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save(final=False)
            if cfg.max_minutes is not None and elapsed > cfg.max_minutes * 60 and step < cfg.steps:
                stopped_early = True
                break
    finally:
        if tap is not None:
            tap.__exit__(None, None, None)
        bar.close()
    set_mix(model, None)
    model.eval()
    save(final=True)
    seconds = seconds_before + time.perf_counter() - began
    log.write(json.dumps({"step": step, "final": True, "stopped_early": stopped_early, "seconds": round(seconds, 1)}) + "\n")
    log.close()
    return {"steps_done": step, "stopped_early": stopped_early, "seconds": round(seconds, 1), "checkpoint": str(out),
            "log": str(log_path), "resume_file": str(state_file) if stopped_early else None}


def _run_dict(run: FineTuneRun, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    from mixaq.models.qat._state import quant_to_dict

    train = {k: v for k, v in asdict(run.train).items() if k not in exclude}
    return {"data": json.loads(json.dumps(dict(run.data))), "quant": quant_to_dict(run.quant), "train": train,
            "adapt": json.loads(json.dumps(dict(run.adapt)))}
