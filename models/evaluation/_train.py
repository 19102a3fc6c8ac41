"""CPU training of a detector from a YAML config: deterministic, logged, checkpointed as it goes.

The checkpoint holds an exponential moving average (EMA) of the weights, saved every
`checkpoint_every` steps, so a run stopped early by `max_minutes` still leaves a usable model.
"""
from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

from mixaq.models._runtime import seeded, torch_threads
from mixaq.models._training import LoopHooks, LoopState, make_optimizer, run_loop
from mixaq.models.data._coco import CocoDetection, SyntheticStream, collate, resolve_data
from mixaq.models.detection._detector import DetectorConfig, build_detector
from mixaq.core._errors import MixaqError
from mixaq.core._util import check_fields, dataclass_from_mapping, read_config_sections

__all__ = ["TrainConfig", "RunConfig", "load_run_config", "train", "training_batch_losses"]


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
    data: Mapping[str, Any]  # {"synthetic": {seed, num_images, generator}} | {"dir": D} | {"images": I, "ann": A}
    val: Mapping[str, Any] | None = None
    pretrain: Any = None  # PretrainConfig: backbone pretraining on crops before detection (None: none)


def load_run_config(path: str | Path) -> RunConfig:
    from mixaq.models.data._pretrain import pretrain_config_from

    raw = read_config_sections(path, ("model", "data", "train", "val", "pretrain"))
    for section in ("data", "val"):  # a bad synthetic spec fails at load, before any work
        if isinstance(raw.get(section), Mapping) and "synthetic" in raw[section]:
            _synthetic_spec(raw[section], f"{path}: {section}")
    return RunConfig(
        model=DetectorConfig.from_dict(raw.get("model") or {}, where=f"{path}: model"),
        train=dataclass_from_mapping(TrainConfig, raw.get("train"), f"{path}: train"),
        data=dict(raw["data"]),
        val=dict(raw["val"]) if raw.get("val") else None,
        pretrain=pretrain_config_from(raw.get("pretrain"), f"{path}: pretrain"),
    )


_SYNTHETIC_KEYS = {"seed", "num_images", "generator"}


def _synthetic_spec(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The `synthetic:` mapping of a data section, checked (unknown keys, unknown generator)."""
    from mixaq.models.data._synth import renderer

    s = spec["synthetic"]
    if not isinstance(s, Mapping):
        raise MixaqError(f"{where}: 'synthetic' must be a mapping of {sorted(_SYNTHETIC_KEYS)}")
    check_fields(s, _SYNTHETIC_KEYS, f"{where}: synthetic")
    renderer(s.get("generator", "shapes"))  # an unknown name is a one-line error before any work
    return dict(s)


def _dataset(spec: Mapping[str, Any], image_hw: tuple[int, int], base: Path | None, where: str):
    def rel(p):
        p = Path(p)
        return p if p.is_absolute() or base is None else base / p

    if "synthetic" in spec:
        s = _synthetic_spec(spec, where)
        return SyntheticStream(int(s.get("seed", 0)), int(s.get("num_images", 10000)), image_hw,
                               generator=s.get("generator", "shapes"))
    if "dir" in spec:
        return resolve_data(rel(spec["dir"]))
    if "images" in spec or "ann" in spec:
        return resolve_data(images=rel(spec.get("images")), ann=rel(spec.get("ann")))
    raise MixaqError(f"{where}: give 'synthetic: {{seed, num_images}}', 'dir: DIR' or 'images:'+'ann:'")


def _val_dataset(spec: Mapping[str, Any], image_hw: tuple[int, int], base: Path | None, tmp: Path) -> CocoDetection:
    if "synthetic" in spec:
        from mixaq.models.data._synth import write_synthetic

        s = _synthetic_spec(spec, "val")
        out = tmp / "val"
        write_synthetic(out, int(s.get("num_images", 100)), int(s.get("seed", 0)), image_hw,
                        generator=s.get("generator", "shapes"), progress=False)
        return resolve_data(out)
    ds = _dataset(spec, image_hw, base, "val")
    return ds


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.state_dict().values(), model.state_dict().values()):
        if e.dtype.is_floating_point:
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        else:
            e.copy_(p)


def training_batch_losses(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
    """The detector's losses on one collated batch (dataset labels shifted to the head's indices)."""
    images, targets = batch
    targets = [{**t, "labels": t["labels"] + model.label_offset} for t in targets]
    return dict(model(images, targets))


def train(run: RunConfig, out: str | Path, *, config_dir: Path | None = None, init_backbone: str | Path | None = None,
          log_path: str | Path | None = None, progress: bool = True, device: str | None = "auto") -> dict[str, Any]:
    """Train `run.model` on `run.data`; write the EMA checkpoint to `out` and a JSON-lines log.

    `device`: cpu | cuda | cuda:N | auto (the loop moves batches to the model's device). Returns a summary (steps done, final losses, val stats if configured, seconds). torch's threads
    and random generators are set for the run only (`seeded`, `torch_threads`), and the synthetic
    val split lives in a temporary directory removed even when training fails.
    """
    from mixaq.models._device import resolve_device

    if run.pretrain is not None and init_backbone:
        raise MixaqError("the config pretrains the backbone (pretrain: section); --init-backbone would replace that")
    cfg, dev = run.train, resolve_device(device)
    with seeded(cfg.seed), torch_threads(cfg.threads), tempfile.TemporaryDirectory(prefix="mixaq-train-") as tmp:
        return _train(run, Path(out), config_dir, init_backbone, log_path, progress, Path(tmp), dev)


def _train(run: RunConfig, out: Path, config_dir: Path | None, init_backbone: str | Path | None,
           log_path: str | Path | None, progress: bool, tmp: Path, dev: torch.device) -> dict[str, Any]:
    import copy

    from mixaq.models.detection._checkpoint import load_backbone_weights, save_checkpoint
    from mixaq.models.evaluation._cocoeval import coco_stats, predict

    cfg, mcfg = run.train, run.model
    log_path = Path(log_path) if log_path else out.with_suffix(".log.jsonl")
    data = _dataset(run.data, mcfg.image_hw, config_dir, "data")
    if data.num_classes != mcfg.num_classes:
        mcfg = DetectorConfig.from_dict({**mcfg.to_dict(), "num_classes": data.num_classes})
    categories = [{"id": i, "name": n} for i, n in zip(data.category_ids, data.category_names)]
    model = build_detector(mcfg)
    pretrained = None
    if run.pretrain is not None:  # phase 1: the backbone learns objects vs background on crops
        from mixaq.models.data._pretrain import pretrain_backbone

        init_backbone = out.with_name(out.stem + ".backbone.pth")
        pretrained = pretrain_backbone(run.pretrain, mcfg.swin_arch, mcfg.image_hw, init_backbone,
                                       image_mean=model.transform.image_mean, image_std=model.transform.image_std,
                                       log_path=log_path.with_suffix(".pretrain.jsonl"), progress=progress,
                                       device=dev)
    if init_backbone:
        load_backbone_weights(model, init_backbone)
    model.to(dev).train()
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay)
    val = _val_dataset(run.val, mcfg.image_hw, config_dir, tmp) if run.val else None
    extra_base = {"train": asdict(cfg), "data": dict(run.data), "seed": cfg.seed,
                  **({"pretrain": pretrained} if pretrained is not None else {})}
    final_val: dict[str, Any] = {}

    def validate() -> dict[str, float] | None:
        if val is None:
            return None
        dets = predict(ema, val, val.image_ids, batch_size=16, device=dev)
        return coco_stats(val, dets, val.image_ids)

    def after_step(state: LoopState) -> None:
        _ema_update(ema, model, min(cfg.ema_decay, (1 + state.step) / (10 + state.step)))

    def log(state: LoopState) -> dict[str, Any]:
        if cfg.val_every and state.step % cfg.val_every == 0 and state.step != cfg.steps:
            return {"val": validate()}
        return {}

    def finish(state: LoopState) -> dict[str, Any]:
        final_val["val"] = validate()
        return final_val

    def checkpoint(state: LoopState, final: bool) -> None:
        save_checkpoint(out, ema, mcfg, categories, extra={
            **extra_base, "steps_done": state.step, "finished": final and not state.stopped_early,
            "seconds": round(state.seconds, 1), "val": final_val.get("val") if final else None})

    hooks = LoopHooks(losses=lambda state, batch: training_batch_losses(model, batch), after_step=after_step,
                      log=log, checkpoint=checkpoint, finish=finish)
    state = run_loop(model, opt, data, collate, cfg, hooks, log_path=log_path, desc="train",
                     diverged="training diverged", hint="lower train.lr", progress=progress)
    return {"steps_done": state.step, "stopped_early": state.stopped_early, "val": final_val["val"],
            "seconds": state.seconds, "checkpoint": str(out), "log": str(log_path),
            **({"pretrain": pretrained} if pretrained is not None else {})}
