"""CPU training of a detector from a YAML config: deterministic, logged, checkpointed as it goes.

The checkpoint holds an exponential moving average (EMA) of the weights, saved every
`checkpoint_every` steps, so a run stopped early by `max_minutes` still leaves a usable model.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn

from mixaq.simulator._errors import MixaqError
from mixaq.models.detection._coco import CocoDetection, SyntheticStream, collate, resolve_data
from mixaq.models.detection._detector import DetectorConfig, build_detector

__all__ = ["TrainConfig", "RunConfig", "load_run_config", "train"]


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    steps: int = 1000
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 200
    grad_clip: float = 5.0
    ema_decay: float = 0.999
    checkpoint_every: int = 250
    log_every: int = 25
    val_every: int = 0  # 0 = only at the end (when val data is configured)
    max_minutes: float | None = None
    threads: int = 2
    loader_workers: int = 0


@dataclass(frozen=True)
class RunConfig:
    model: DetectorConfig
    train: TrainConfig
    data: Mapping[str, Any]  # {"synthetic": {seed, num_images}} | {"dir": D} | {"images": I, "ann": A}
    val: Mapping[str, Any] | None = None


def _dataclass_from(cls, data: Mapping[str, Any] | None, where: str):
    data = dict(data or {})
    unknown = set(data) - set(cls.__dataclass_fields__)
    if unknown:
        raise MixaqError(f"{where}: unknown field(s) {sorted(unknown)} (known: {sorted(cls.__dataclass_fields__)})")
    return cls(**data)


def read_config_sections(path: str | Path, known: tuple[str, ...]) -> dict[str, Any]:
    """A YAML config file as a mapping of sections (`data` required), one-line errors naming the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MixaqError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise MixaqError(f"{path}: a config must be a mapping with {'/'.join(known)} sections")
    unknown = set(raw) - set(known)
    if unknown:
        raise MixaqError(f"{path}: unknown section(s) {sorted(unknown)} (known: {', '.join(known)})")
    if "data" not in raw:
        raise MixaqError(f"{path}: missing 'data' section")
    return raw


def load_run_config(path: str | Path) -> RunConfig:
    raw = read_config_sections(path, ("model", "data", "train", "val"))
    return RunConfig(
        model=DetectorConfig.from_dict(raw.get("model") or {}, where=f"{path}: model"),
        train=_dataclass_from(TrainConfig, raw.get("train"), f"{path}: train"),
        data=dict(raw["data"]),
        val=dict(raw["val"]) if raw.get("val") else None,
    )


def _dataset(spec: Mapping[str, Any], image_hw: tuple[int, int], base: Path | None, where: str):
    def rel(p):
        p = Path(p)
        return p if p.is_absolute() or base is None else base / p

    if "synthetic" in spec:
        s = dict(spec["synthetic"])
        return SyntheticStream(int(s.get("seed", 0)), int(s.get("num_images", 10000)), image_hw)
    if "dir" in spec:
        return resolve_data(rel(spec["dir"]))
    if "images" in spec or "ann" in spec:
        return resolve_data(images=rel(spec.get("images")), ann=rel(spec.get("ann")))
    raise MixaqError(f"{where}: give 'synthetic: {{seed, num_images}}', 'dir: DIR' or 'images:'+'ann:'")


def _val_dataset(spec: Mapping[str, Any], image_hw: tuple[int, int], base: Path | None, tmp: Path) -> CocoDetection:
    if "synthetic" in spec:
        from mixaq.models.detection._synth import write_synthetic

        s = dict(spec["synthetic"])
        out = tmp / "val"
        write_synthetic(out, int(s.get("num_images", 100)), int(s.get("seed", 0)), image_hw, progress=False)
        return resolve_data(out)
    ds = _dataset(spec, image_hw, base, "val")
    return ds


class _StreamSampler(torch.utils.data.Sampler):
    """`steps * batch_size` indices: epochs of seeded permutations (a long synthetic stream is one epoch)."""

    def __init__(self, n: int, total: int, seed: int, start: int = 0) -> None:
        self.n, self.total, self.seed, self.start = n, total, seed, start

    def __iter__(self):
        for pos in range(self.start, self.total):
            epoch, i = divmod(pos, self.n)
            if i == 0 or pos == self.start:
                perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            yield int(perm[i])

    def __len__(self) -> int:
        return self.total - self.start


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.state_dict().values(), model.state_dict().values()):
        if e.dtype.is_floating_point:
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        else:
            e.copy_(p)


def optimizer_step(losses: Mapping[str, torch.Tensor], opt: torch.optim.Optimizer, params, grad_clip: float,
                   diverged: str, hint: str) -> torch.Tensor:
    """Sum the losses, refuse a non-finite one (one-line error), backward, clip, step; returns the loss."""
    loss = sum(losses.values())
    if not torch.isfinite(loss):
        raise MixaqError(f"{diverged} (loss {loss.item()}); {hint}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(list(params), grad_clip)
    opt.step()
    return loss


def train(run: RunConfig, out: str | Path, *, config_dir: Path | None = None, init_backbone: str | Path | None = None,
          log_path: str | Path | None = None, progress: bool = True, device: str | None = "auto") -> dict[str, Any]:
    """Train `run.model` on `run.data`; write the EMA checkpoint to `out` and a JSON-lines log.

    `device`: cpu | cuda | cuda:N | auto. Returns a summary (steps done, final losses, val stats if
    configured, seconds).
    """
    import copy

    from mixaq.models._device import resolve_device

    from tqdm import tqdm

    from mixaq.models.detection._checkpoint import load_backbone_weights, save_checkpoint
    from mixaq.models.detection._cocoeval import coco_stats, predict

    cfg, mcfg = run.train, run.model
    dev = resolve_device(device)
    out = Path(out)
    log_path = Path(log_path) if log_path else out.with_suffix(".log.jsonl")
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.set_num_threads(max(1, cfg.threads))

    data = _dataset(run.data, mcfg.image_hw, config_dir, "data")
    if data.num_classes != mcfg.num_classes:
        mcfg = DetectorConfig.from_dict({**mcfg.to_dict(), "num_classes": data.num_classes})
    categories = [{"id": i, "name": n} for i, n in zip(data.category_ids, data.category_names)]
    model = build_detector(mcfg)
    if init_backbone:
        load_backbone_weights(model, init_backbone)
    model.to(dev).train()
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    offset = model.label_offset

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or "relative_position_bias_table" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)

    loader = torch.utils.data.DataLoader(
        data, batch_size=cfg.batch_size, sampler=_StreamSampler(len(data), cfg.steps * cfg.batch_size, cfg.seed),
        collate_fn=collate, num_workers=cfg.loader_workers, drop_last=True,
        persistent_workers=cfg.loader_workers > 0)

    tmp = Path(tempfile.mkdtemp(prefix="mixaq-train-"))
    val = _val_dataset(run.val, mcfg.image_hw, config_dir, tmp) if run.val else None

    def validate() -> dict[str, float] | None:
        if val is None:
            return None
        dets = predict(ema, val, val.image_ids, batch_size=16, device=dev)
        return coco_stats(val, dets, val.image_ids)

    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("w")
    start = time.perf_counter()
    window: dict[str, list[float]] = {}
    step = 0
    stopped_early = False
    extra_base = {"train": asdict(cfg), "data": dict(run.data), "seed": cfg.seed}

    def checkpoint(final: bool, val_stats=None) -> None:
        save_checkpoint(out, ema, mcfg, categories, extra={
            **extra_base, "steps_done": step, "finished": final and not stopped_early,
            "seconds": round(time.perf_counter() - start, 1), "val": val_stats})

    bar = tqdm(total=cfg.steps, desc="train", disable=not progress, unit="step")
    for images, targets in loader:
        images = [i.to(dev, non_blocking=True) for i in images]
        targets = [{k: v.to(dev, non_blocking=True) for k, v in t.items()} for t in targets]
        for t in targets:
            t["labels"] = t["labels"] + offset
        lr = _lr_at(step, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        losses = model(images, targets)
        loss = optimizer_step(losses, opt, model.parameters(), cfg.grad_clip,
                              f"training diverged at step {step}", "lower train.lr")
        step += 1
        _ema_update(ema, model, min(cfg.ema_decay, (1 + step) / (10 + step)))
        for k, v in losses.items():
            window.setdefault(k, []).append(float(v.detach()))
        window.setdefault("loss", []).append(float(loss.detach()))
        bar.update(1)
        elapsed = time.perf_counter() - start
        if step % cfg.log_every == 0 or step == cfg.steps:
            rec = {"step": step, "lr": round(lr, 6), "seconds": round(elapsed, 1),
                   **{k: round(float(np.mean(v)), 4) for k, v in window.items()}}
            if cfg.val_every and step % cfg.val_every == 0 and step != cfg.steps:
                rec["val"] = validate()
            log.write(json.dumps(rec) + "\n")
            log.flush()
            bar.set_postfix(loss=rec["loss"])
            window.clear()
        if step % cfg.checkpoint_every == 0:
            checkpoint(final=False)
        if cfg.max_minutes is not None and elapsed > cfg.max_minutes * 60 and step < cfg.steps:
            stopped_early = True
            break
    bar.close()
    val_stats = validate()
    shutil.rmtree(tmp, ignore_errors=True)
    log.write(json.dumps({"step": step, "final": True, "stopped_early": stopped_early,
                          "seconds": round(time.perf_counter() - start, 1), "val": val_stats}) + "\n")
    log.close()
    checkpoint(final=True, val_stats=val_stats)
    return {"steps_done": step, "stopped_early": stopped_early, "val": val_stats,
            "seconds": time.perf_counter() - start, "checkpoint": str(out), "log": str(log_path)}
