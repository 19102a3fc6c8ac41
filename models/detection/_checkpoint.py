"""Detector checkpoints (ours) and timm-format Swin backbone weights, with one-line errors."""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from mixaq.core._errors import MixaqError, first_line, short
from mixaq.models.detection._detector import build_detector
from mixaq.models.detection._registry import FCOS

__all__ = ["save_checkpoint", "load_checkpoint", "load_detector", "load_backbone_weights", "check_finite",
           "check_dtypes", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "mixaq-detector"
_VERSION = 1


def save_checkpoint(path: str | Path, model: nn.Module, config, categories: list[dict],  # noqa: ANN001
                    extra: dict[str, Any] | None = None) -> Path:
    """Write atomically (tmp + rename), so an interrupted run never leaves a truncated checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": _VERSION,
        "config": config.to_dict(),
        "categories": [{"id": int(c["id"]), "name": str(c["name"])} for c in categories],
        "state_dict": {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()},
        "extra": dict(extra or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def _read_weights(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own untyped errors on corrupt headers
            raise MixaqError(f"{path}: not a readable safetensors file ({type(exc).__name__})") from None
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "numpy" not in str(exc):
                raise
            # mmdet files may keep numpy scalars in `meta` (logged values): allow numpy's data types only.
            with torch.serialization.safe_globals(_numpy_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise MixaqError(f"{path}: not a readable torch checkpoint ({first_line(exc, 120)})") from None
    except Exception as exc:  # unpickling garbage raises UnpicklingError and friends
        raise MixaqError(f"{path}: not a readable torch checkpoint ({type(exc).__name__})") from None


def _numpy_globals() -> list:
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype,
            *{type(np.dtype(t)) for t in ("f2", "f4", "f8", "i4", "i8", "u1", "bool")}]


def check_finite(path: str | Path, tensors: dict[str, Any], what: str = "weight") -> None:
    """A file whose zip is intact but whose tensors were overwritten loads fine and evaluates to AP 0:
    refuse NaN/inf in floating-point tensors, naming how many and the first."""
    bad = [k for k, v in tensors.items()
           if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise MixaqError(f"{path}: {len(bad)} {what} tensor(s) hold NaN or inf (first: {bad[0]}); the file is corrupt")


def _is_swin_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and any(isinstance(k, str) and k.startswith("patch_embed.") for k in obj)


def load_checkpoint(path: str | Path, trainable: bool = False) -> dict[str, Any]:
    """The raw payload of one of our checkpoints, validated; `trainable`: of a family mixaq can train."""
    from mixaq.models.detection._import import is_foreign
    from mixaq.models.detection._registry import TRAINABLE_FAMILIES

    path = Path(path)
    payload = _read_weights(path)
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        for key in ("config", "categories", "state_dict"):
            if key not in payload:
                raise MixaqError(f"{path}: checkpoint lacks {key!r}")
        _check_fields(path, payload)
        head = payload["config"].get("head", FCOS) if isinstance(payload["config"], dict) else None
        if trainable and head not in TRAINABLE_FAMILIES:
            raise MixaqError(f"{path}: a {head} detector: mixaq trains {', '.join(TRAINABLE_FAMILIES)} only "
                             "here (`mixaq qat` and `adapt` take the Mask R-CNN families; eval and sweep take every family)")
        return payload
    if is_foreign(payload):
        raise MixaqError(f"{path}: an official / mmdet detector file: `mixaq eval`, `sweep`, `qat` and `adapt` take "
                         f"it; `mixaq train` needs one of mixaq's {', '.join(TRAINABLE_FAMILIES)} checkpoints")
    if _is_swin_state_dict(payload) or (isinstance(payload, dict) and _is_swin_state_dict(payload.get("model"))):
        raise MixaqError(f"{path}: a Swin backbone state dict, not a detector checkpoint "
                         "(train a detector from it with `mixaq train --init-backbone`)")
    raise MixaqError(f"{path}: not a mixaq detector checkpoint (no format={CHECKPOINT_FORMAT!r} marker)")


def _check_fields(path: Path, payload: dict) -> None:
    """The fields of our checkpoint format have the types `save_checkpoint` writes."""
    if not isinstance(payload["config"], dict):
        raise MixaqError(f"{path}: 'config' must be a mapping, got {short(payload['config'])}")
    cats = payload["categories"]
    if not isinstance(cats, list) or not all(
            isinstance(c, dict) and isinstance(c.get("id"), int) and not isinstance(c.get("id"), bool)
            and isinstance(c.get("name"), str) for c in cats):
        raise MixaqError(f"{path}: 'categories' must be a list of {{id: int, name: str}}, got {short(cats)}")
    if not isinstance(payload.get("extra", {}), dict):
        raise MixaqError(f"{path}: 'extra' must be a mapping, got {short(payload['extra'])}")
    if not isinstance(payload["state_dict"], dict):
        raise MixaqError(f"{path}: 'state_dict' is not a mapping of tensors")


def check_dtypes(where: str | Path, state: dict, model: nn.Module) -> None:
    """Every tensor has the kind (floating point or not) of the model's tensor it replaces: torch
    would copy int64 or bool weights into float parameters without a word, and the model would
    score 0."""
    target = model.state_dict()
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise MixaqError(f"{where}: {short(key)} is not a tensor (got {type(value).__name__})")
        want = target.get(key)
        if want is not None and want.is_floating_point() != value.is_floating_point():
            raise MixaqError(f"{where}: {key} holds {str(value.dtype).removeprefix('torch.')} values where the model "
                             f"has {str(want.dtype).removeprefix('torch.')} weights; the file is corrupt")


def _load_weights(model: nn.Module, state: Any, where: str, what: str) -> None:
    if not isinstance(state, dict):
        raise MixaqError(f"{where}: 'state_dict' is not a mapping of tensors")
    check_dtypes(where, state, model)
    check_finite(where, state)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise MixaqError(f"{where}: weights do not fit {what} ({_first_key_problem(exc)})") from None


def load_detector(path: str | Path, detector: str | None = None) -> tuple[nn.Module, Any, list[dict], dict[str, Any]]:
    """(model in eval mode, config, categories, extra) from one of our checkpoints, or from an
    official-release / mmdet-zoo Swin Mask R-CNN or Cascade Mask R-CNN file.

    `detector` forces a family (the file must fit it). A foreign file's categories are its class
    names (`{"name": ...}`, no ids) when its `meta` has them, else empty; `extra` says where it came from.
    """
    from mixaq.models.detection._import import is_foreign, read_foreign
    from mixaq.models.detection._registry import get_family

    path = Path(path)
    if detector is not None:
        get_family(detector)
    payload = _read_weights(path)
    if is_foreign(payload) and not (isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT):
        foreign = read_foreign(payload, str(path), detector)
        model = build_detector(foreign.config)
        _load_weights(model, foreign.state_dict, str(path), f"the architecture inferred from it ({foreign.config.head})")
        categories = [{"name": n} for n in foreign.class_names] if foreign.class_names else []
        return model.eval(), foreign.config, categories, {"source_format": foreign.source_format}
    payload = load_checkpoint(path)
    family = get_family(str(payload["config"].get("head", FCOS)))
    if detector is not None and detector != family.name:
        raise MixaqError(f"{path}: --detector {detector} does not fit this checkpoint (a {family.name} detector)")
    config = family.config_class().from_dict(payload["config"], where=f"{path}: config")
    model = build_detector(config)
    _load_weights(model, payload["state_dict"], str(path), "its config")
    return model.eval(), config, list(payload["categories"]), dict(payload.get("extra", {}))


def load_backbone_weights(model: nn.Module, path: str | Path) -> tuple[int, int]:
    """Load a timm-format Swin state dict (`layers.N.…`) into a detector's backbone body.

    Classification-only keys (final `norm`, `head`) are dropped. Returns (loaded, total) tensor counts;
    shape mismatches (another Swin variant) are an error naming the first offending key.
    """
    path = Path(path)
    state = _read_weights(path)
    if isinstance(state, dict) and "model" in state and _is_swin_state_dict(state["model"]):
        state = state["model"]  # the official Swin release nests weights under "model"
    if not _is_swin_state_dict(state):
        raise MixaqError(f"{path}: not a timm Swin state dict (no patch_embed.* keys)")
    check_finite(path, state)
    body = model.backbone.body
    target = body.state_dict()
    mapped = {}
    for key, value in state.items():
        new = re.sub(r"^layers\.(\d+)\.", r"layers_\1.", key)
        if new in target:
            if target[new].shape != value.shape:
                raise MixaqError(f"{path}: {key} has shape {tuple(value.shape)}, the backbone expects "
                                 f"{tuple(target[new].shape)} (different Swin variant?)")
            mapped[new] = value
    if not mapped:
        raise MixaqError(f"{path}: no key matches the detector's Swin backbone")
    body.load_state_dict(mapped, strict=False)
    return len(mapped), len(target)


def _first_key_problem(exc: RuntimeError) -> str:
    """torch's load_state_dict report is a multi-line list; keep its first problem, whole."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    detail = next((ln for ln in lines[1:]), lines[0] if lines else type(exc).__name__)
    return first_line(detail, 200)
