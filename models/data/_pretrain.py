"""Backbone pretraining, the first phase of `mixaq train` when a config has a `pretrain:` section.

A real Swin learns to respond to objects while it is trained to classify them (ImageNet) before it
ever sees a detection loss; a detector trained from scratch on synthetic data skips that. This
phase gives the backbone the same kind of start: the detector's Swin (same arch, timm's
classification form) learns to tell the five shapes and background apart on object and background
crops of a synthetic generator (`ObjectCrops`), on the shared training loop. Its weights are written
as a timm-format state dict, which detection then loads like any `--init-backbone` file.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mixaq.models._runtime import seeded
from mixaq.models._training import LoopHooks, LoopState, make_optimizer, run_loop
from mixaq.models.data._crops import ObjectCrops, collate_crops
from mixaq.core._errors import MixaqError
from mixaq.core._util import check_fields, dataclass_from_mapping

__all__ = ["PretrainConfig", "pretrain_config_from", "pretrain_backbone", "crop_accuracy"]

_DATA_KEYS = {"seed", "num_images", "generator"}


@dataclass(frozen=True)
class PretrainConfig:
    """The `pretrain:` section: loop settings (as `train:`), the crops, and their synthetic source."""

    seed: int = 0
    steps: int = 600
    batch_size: int = 8  # images per step; each gives all its objects and `background_crops` squares
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    grad_clip: float = 5.0
    checkpoint_every: int = 200
    log_every: int = 50
    max_minutes: float | None = None
    loader_workers: int = 0
    crop_px: int = 64
    background_crops: int = 4
    val_images: int = 100  # held-out images (data seed + 1) for the final crop accuracy
    data: Mapping[str, Any] = field(default_factory=lambda: {"seed": 5, "num_images": 100000,
                                                             "generator": "scenes"})


def pretrain_config_from(raw: Mapping[str, Any] | None, where: str) -> PretrainConfig | None:
    """The `pretrain:` section checked (unknown fields, bad numbers, unknown generator); None if absent."""
    from mixaq.models.data._synth import renderer

    if not raw:
        return None
    raw = dict(raw)
    data = raw.pop("data", None)
    cfg = dataclass_from_mapping(PretrainConfig, raw, where)
    if data is not None:
        synthetic = data.get("synthetic") if isinstance(data, Mapping) else None
        if not isinstance(synthetic, Mapping) or set(data) != {"synthetic"}:
            raise MixaqError(f"{where}: data must be {{synthetic: {{seed, num_images, generator}}}} "
                             "(pretraining crops objects out of a synthetic generator)")
        check_fields(synthetic, _DATA_KEYS, f"{where}: data.synthetic")
        cfg = PretrainConfig(**{**asdict(cfg), "data": {**asdict(PretrainConfig())["data"], **synthetic}})
    renderer(cfg.data["generator"])
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.crop_px < 16 or cfg.background_crops < 0 or cfg.val_images < 1:
        raise MixaqError(f"{where}: steps, batch_size, val_images must be >= 1, crop_px >= 16, background_crops >= 0")
    return cfg


def _crops(cfg: PretrainConfig, image_hw: tuple[int, int], seed_offset: int = 0, num_images: int | None = None):
    d = cfg.data
    return ObjectCrops(int(d["seed"]) + seed_offset, int(num_images or d["num_images"]), image_hw,
                       generator=str(d["generator"]), crop_px=cfg.crop_px, background_crops=cfg.background_crops)


class _Normalized(nn.Module):
    """The classifier on raw [0, 1] crops, normalised as the detector's transform normalises images."""

    def __init__(self, swin: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.swin = swin
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32)[:, None, None], persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32)[:, None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (K, 3, P, P) -> (K, classes)
        return self.swin((x - self.mean) / self.std)


@torch.no_grad()
def crop_accuracy(classifier: torch.nn.Module, crops: ObjectCrops, batch_images: int = 16) -> dict[str, float]:
    """Top-1 accuracy over all crops of `crops`, and separately on objects and on background."""
    was_training = classifier.training
    device = next(classifier.parameters()).device
    classifier.eval()
    preds, labels = [], []
    for start in range(0, len(crops), batch_images):
        x, y = collate_crops([crops[i] for i in range(start, min(len(crops), start + batch_images))])
        preds.append(classifier(x.to(device)).argmax(1).cpu())
        labels.append(y)
    classifier.train(was_training)
    pred, label = torch.cat(preds), torch.cat(labels)
    background = label == crops.num_classes - 1
    ok = (pred == label).float()
    return {"accuracy": float(ok.mean()), "object_accuracy": float(ok[~background].mean()),
            "background_accuracy": float(ok[background].mean()) if background.any() else float("nan"),
            "crops": int(len(label))}


def pretrain_backbone(cfg: PretrainConfig, arch: Any, image_hw: tuple[int, int], out: str | Path, *,
                      image_mean: Sequence[float], image_std: Sequence[float], log_path: str | Path,
                      progress: bool = True, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Train `arch`'s timm classifier on crops (on `device`); write its state dict (timm format) to `out`.

    Crops come from `image_hw` images (the detector's input size), so objects keep the scale
    statistics detection sees, and are normalised with the detector's `image_mean`/`image_std`, so
    the patch embedding learns the inputs it will get. Returns a summary: steps, seconds, held-out
    crop accuracy.
    """
    from mixaq.models import build_swin

    out = Path(out)
    data = _crops(cfg, image_hw)
    with seeded(cfg.seed):
        swin = build_swin(arch, cfg.crop_px, num_classes=data.num_classes)
    classifier = _Normalized(swin, image_mean, image_std).to(device).train()  # the loop moves batches to it
    opt = make_optimizer(classifier, cfg.lr, cfg.weight_decay)
    result: dict[str, Any] = {}

    def losses(state: LoopState, batch: Any) -> dict[str, torch.Tensor]:
        x, y = batch
        return {"cross_entropy": F.cross_entropy(classifier(x), y)}

    def save(state: LoopState, final: bool) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        torch.save({k: v.detach().cpu().clone().contiguous() for k, v in swin.state_dict().items()}, tmp)
        tmp.replace(out)

    def finish(state: LoopState) -> dict[str, Any]:
        result["val"] = crop_accuracy(classifier, _crops(cfg, image_hw, seed_offset=1, num_images=cfg.val_images))
        return {"val": result["val"]}

    hooks = LoopHooks(losses=losses, checkpoint=save, finish=finish)
    with seeded(cfg.seed):
        state = run_loop(classifier, opt, data, collate_crops, cfg, hooks, log_path=log_path, desc="pretrain",
                         diverged="pretraining diverged", hint="lower pretrain.lr", progress=progress)
    return {"steps_done": state.step, "stopped_early": state.stopped_early, "seconds": round(state.seconds, 1),
            "val": result["val"], "config": {**asdict(cfg), "data": dict(cfg.data)}, "backbone": str(out)}
