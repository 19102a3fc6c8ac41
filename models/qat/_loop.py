"""QAT and SAQA: the fine-tuning run `mixaq qat|adapt` configures on the shared training loop
(`models._training.run_loop`). CPU, deterministic, logged, resumable.

What quantized training adds to the loop: converting and initialising the quantizers (calibration
or a previous QAT checkpoint), the quantizer-step parameter group, an optional fresh window mix per
step (SAQA) with low-branch distillation, and a resume file with the optimizer state.
"""
from __future__ import annotations

import contextlib
import hashlib
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from mixaq.models._config import QuantConfig
from mixaq.models._runtime import seeded, torch_threads
from mixaq.models.detection._registry import RCNN_FAMILIES
from mixaq.models._training import LoopHooks, LoopState, make_optimizer, run_loop
from mixaq.models.qat._ddp import cast_floats, distributed_losses, fcos_counts, restore_rng, rng_states
from mixaq.models.qat._config import ADAPT_FIELDS, KINDS, FineTuneConfig, FineTuneRun, apply_method
from mixaq.simulator import MixaqError
from mixaq.core._errors import first_line
from mixaq.core._util import check_fields, json_ready

__all__ = ["checkpoint_family", "fine_tune", "resume_path"]

_RESUME_FORMAT = "mixaq-finetune-resume"


def resume_path(out: str | Path) -> Path:
    """Where a run writing `out` keeps its optimizer state until it finishes."""
    out = Path(out)
    return out.with_name(out.name + ".resume")


def _calibration_batches(data, n: int, batch_size: int, seed: int):  # noqa: ANN001, ANN202
    ids = np.random.default_rng([seed, 17]).choice(len(data), size=min(n, len(data)), replace=False)
    for start in range(0, len(ids), batch_size):
        images = [data[int(i)][0] for i in ids[start:start + batch_size]]
        if images and images[0].dtype == torch.uint8:  # R-CNN data: resized BGR images, the test path's input
            from mixaq.models.detection._preprocess import PreparedImage

            images = [PreparedImage(im, (int(im.shape[1]), int(im.shape[2])), (1.0, 1.0)) for im in images]
        yield images


def _rcnn_dataset(spec: dict, config, base: Path | None, seed: int):  # noqa: ANN001, ANN202
    """The train pipeline of the Mask R-CNN families on `data: {images, ann}` or `{dir}` (COCO with masks)."""
    from mixaq.models.detection._rcnn_data import RCNNTrainData
    from mixaq.models.data._synth import _ANN_NAME, _IMG_DIR

    def rel(p):  # noqa: ANN001, ANN202
        p = Path(p)
        return p if p.is_absolute() or base is None else base / p

    if "dir" in spec:
        images, ann = rel(spec["dir"]) / _IMG_DIR, rel(spec["dir"]) / _ANN_NAME
    elif "images" in spec and "ann" in spec:
        images, ann = rel(spec["images"]), rel(spec["ann"])
    else:
        raise MixaqError(f"data: a {config.head} trains on a COCO instances file with masks: give --data IMAGES_DIR "
                         "--ann INSTANCES.json (or 'data: {images, ann}'); the synthetic streams have no masks")
    kwargs: dict = {}
    if spec.get("scales"):
        kwargs["scales"] = [tuple(s) for s in spec["scales"]]
    # the official crop policy (on by default); `crop: false` trains with the resize-only policy
    if not spec.get("crop", True):
        kwargs["crop_scales"] = None
    elif spec.get("crop_scales"):
        kwargs["crop_scales"] = [tuple(s) for s in spec["crop_scales"]]
    if spec.get("crop_size"):
        kwargs["crop_size"] = tuple(spec["crop_size"])
    return RCNNTrainData(images, ann, seed=seed, **kwargs)


def _is_rcnn(config) -> bool:  # noqa: ANN001
    return getattr(config, "head", None) in RCNN_FAMILIES


def _trainable(model: nn.Module, scope: str) -> set[str]:
    from mixaq.models._two_branch import converted_blocks

    names = {n for n, _ in model.named_parameters()}
    if scope == "all":
        return names
    blocks = [name + "." for name, _ in converted_blocks(model)]
    return {n for n in names if any(n.startswith(b) for b in blocks)}


def _optimizer(model: nn.Module, cfg: FineTuneConfig, rcnn: bool = False) -> torch.optim.Optimizer:
    """AdamW groups; the Mask R-CNN families take their configs' no-decay rule (`_rcnn_train`)."""
    from mixaq.models.detection._rcnn_train import rcnn_no_decay

    return make_optimizer(model, cfg.lr, cfg.weight_decay, quant_lr=cfg.quant_lr,
                          no_decay=rcnn_no_decay if rcnn else None)


def _set_stochastic_depth(model: nn.Module, config, cfg: FineTuneConfig, rcnn: bool) -> None:  # noqa: ANN001
    from mixaq.models.detection._rcnn_train import release_drop_path_rate, set_drop_path

    rate = cfg.drop_path_rate if cfg.drop_path_rate is not None else (
        release_drop_path_rate(config.swin_arch) if rcnn else None)
    if rate is not None:
        set_drop_path(model, rate)


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

    if QAT_KEY in extra:
        stored = extra[QAT_KEY].get("quant", {})
        was = "ofq" if stored.get("weight_observer") == "statsq" else "lsq"
        now = "ofq" if quant.weight_observer == "statsq" else "lsq"
        if was != now:
            raise MixaqError(f"{source}: a checkpoint trained with {was.upper()}; this run's method is {now} "
                             f"(train.method / --method {was})")
    convert_swin(model, quant)
    set_mix(model, None)
    if QAT_KEY in extra:
        restore_quantized(model, extra[QAT_KEY], quant, calibrate)
    else:
        calibrate(model)
    return model, config, categories, extra


def _sampler(run: FineTuneRun, num_pairs: int):  # noqa: ANN202 (MixSampler, distill weight)
    from mixaq.models.qat._sampling import MixSampler

    settings = dict(run.adapt)
    check_fields(settings, ADAPT_FIELDS, "adapt")
    distill = float(settings.pop("distill_weight", 0.0))
    if distill < 0:
        raise MixaqError(f"adapt.distill_weight must be >= 0, got {distill}")
    return MixSampler(num_pairs=num_pairs, seed=run.train.seed, **settings), distill


def fine_tune(source: str | Path, out: str | Path, run: FineTuneRun, *, kind: str, resume: bool = False,
              config_dir: Path | None = None, log_path: str | Path | None = None,
              progress: bool = True, device: str | None = "auto", dist: Any = None) -> dict[str, Any]:
    """Train the converted detector from checkpoint `source` for `run.quant`; write `out`.

    `kind="qat"` trains the uniform model (every window high-bit); `kind="saqa"` sets a fresh
    window mix every step from `run.adapt` (a `MixSampler`). `resume` continues an interrupted run
    from `out`'s resume file. torch's threads and random generators are set for the run only.

    `dist`: this process's `models._distributed.DistContext` in a distributed run (one process per
    device, `train.batch_size` images each); see `_ddp.py` and docs/qat.md "Many GPUs".
    """
    if kind not in KINDS:
        raise MixaqError(f"kind must be one of {KINDS}, got {kind!r}")
    run = apply_method(run)
    if kind == "qat" and run.quant.low_act_bits != run.quant.high_act_bits:
        # QAT trains the uniform model; its low branch is a copy of the high one (see _sync_low_to_high).
        run = replace(run, quant=replace(run.quant, low_act_bits=run.quant.high_act_bits))
    from mixaq.models._device import resolve_device

    dev = resolve_device(device)
    from mixaq.models._distributed import SINGLE

    with seeded(run.train.seed), torch_threads(run.train.threads):
        return _fine_tune(Path(source), Path(out), run, kind, resume, config_dir, log_path, progress, dev,
                          dist or SINGLE)


def _file_sha1(path: Path) -> str:
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha1").hexdigest()


def _fine_tune(source: Path, out: Path, run: FineTuneRun, kind: str, resume: bool, config_dir: Path | None,
               log_path: str | Path | None, progress: bool, dev: torch.device, dist: Any) -> dict[str, Any]:
    from mixaq.models._quant import global_batch
    from mixaq.models._two_branch import convert_swin, set_mix
    from mixaq.models.detection._checkpoint import load_checkpoint
    from mixaq.models.data._coco import collate
    from mixaq.models.detection._detector import DetectorConfig, build_detector
    from mixaq.models.evaluation._train import _dataset, training_batch_losses
    from mixaq.models.qat._distill import DistillTap
    from mixaq.models.qat._state import QAT_KEY, quant_from_dict, quant_to_dict, save_quantized_checkpoint
    from mixaq.models.qat._watch import WeightWatch

    cfg, quant = run.train, run.quant
    log_path = Path(log_path) if log_path else out.with_suffix(".log.jsonl")
    state_file = resume_path(out)

    start_step, resumed = 0, None
    # a resume must continue from the weights it started from, wherever that file lies now
    source_sha1 = _file_sha1(source) if source.is_file() else None
    if resume:
        if not state_file.is_file():
            raise FileNotFoundError(f"nothing to resume: {state_file} does not exist")
        from mixaq.models.detection._checkpoint import _read_weights

        resumed = _read_weights(state_file)  # garbage or a cut file: one line, not an unpickling traceback
        if not isinstance(resumed, dict) or resumed.get("format") != _RESUME_FORMAT or resumed.get("kind") != kind:
            raise MixaqError(f"{state_file}: not a resume file of a `{kind}` run")
        kinds = {"run": dict, "config": dict, "categories": list, "quant": dict, "state": dict,
                 "source_extra": dict, "step": int, "optimizer": dict}
        bad = next((k for k, t in kinds.items() if not isinstance(resumed.get(k), t)
                    or (t is dict and k == "run" and not isinstance(resumed[k].get("quant"), dict))), None)
        if bad is not None:
            raise MixaqError(f"{state_file}: resume file field {bad!r} is missing or not a {kinds[bad].__name__}; "
                             "the file is damaged (start again without --resume)")
        stored = dict(resumed["run"])
        current = _run_dict(run, exclude=("max_minutes", "threads", "loader_workers"))
        # QuantConfig compares as a dataclass, so fields added to it later take their defaults
        same_quant = quant_from_dict(stored.pop("quant")) == quant_from_dict(current.pop("quant"))
        if not same_quant or stored != current:
            raise MixaqError(f"{state_file}: the run settings differ from the interrupted run's (only max_minutes, "
                             "threads and loader_workers may change on resume)")
        stored_source = resumed.get("source_sha1")  # absent in resume files older than this check
        if None not in (stored_source, source_sha1) and stored_source != source_sha1:
            raise MixaqError(f"{state_file}: the interrupted run started from {resumed.get('source', 'another file')}, "
                             f"not from {source} (a different file); resume with the same --checkpoint, or start again "
                             "without --resume")
        if int(resumed.get("world_size", 1)) != dist.world:
            raise MixaqError(f"{state_file}: the interrupted run had {resumed.get('world_size', 1)} process(es), this one "
                             f"{dist.world}; resume with the same number (the global batch and the sampler position "
                             "depend on it)")
        categories = resumed["categories"]
        if resumed["config"].get("head") in RCNN_FAMILIES:
            from mixaq.models.detection._rcnn_config import RCNNConfig

            config = RCNNConfig.from_dict(resumed["config"], where=f"{state_file}: config")
            data = _rcnn_dataset(run.data, config, config_dir, cfg.seed)
        else:
            config = DetectorConfig.from_dict(resumed["config"], where=f"{state_file}: config")
            data = _dataset(run.data, config.image_hw, config_dir, "data")
        model = convert_swin(build_detector(config), quant_from_dict(resumed["quant"]))
        if cfg.dtype == "float64":  # before loading: a float32 model would round the saved float64 state
            model.double()
        try:
            model.load_state_dict(resumed["state"])
        except RuntimeError as exc:
            raise MixaqError(f"{state_file}: the saved weights do not fit the model ({first_line(exc)})") from None
        source_extra = resumed["source_extra"]
        start_step = int(resumed["step"])
    else:
        config = _source_config(source)
        if _is_rcnn(config):
            data = _rcnn_dataset(run.data, config, config_dir, cfg.seed)
        else:
            config = DetectorConfig.from_dict(load_checkpoint(source, trainable=True)["config"], where=f"{source}: config")
            data = _dataset(run.data, config.image_hw, config_dir, "data")
        model, config, categories, source_extra = _initial_model(source, quant, data, cfg)
        source_extra = {k: v for k, v in source_extra.items() if k != QAT_KEY}
    if data.num_classes != config.num_classes:
        raise MixaqError(f"training data has {data.num_classes} categories but the model predicts {config.num_classes}")

    rcnn = _is_rcnn(config)
    if rcnn:
        from mixaq.models.detection._rcnn_loss import rcnn_losses
        from mixaq.models.detection._rcnn_targets import keyed_choices
    if dist.distributed:  # before the optimizer: CPU SyncBatchNorm modules carry new parameters
        from mixaq.models._distributed import sync_batchnorm

        sync_batchnorm(model, dev)
    sampler, distill_weight = _sampler(run, config.swin_arch.num_pairs) if kind == "saqa" else (None, 0.0)
    trainable = _trainable(model, cfg.train_scope)
    for name, p in model.named_parameters():
        p.requires_grad_(name in trainable)
    _set_stochastic_depth(model, config, cfg, rcnn)
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    model.to(dev, dtype).train()
    opt = _optimizer(model, cfg, rcnn)
    if resumed is not None:
        try:
            opt.load_state_dict(resumed["optimizer"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise MixaqError(f"{state_file}: the saved optimizer state does not fit ({first_line(exc)})") from None
    history = {"source": str(source), "kind": kind, "run": _run_dict(run), "sampler": asdict(sampler) if sampler else None,
               "distill_weight": distill_weight}
    step_mix: dict[str, Any] = {"mix": None}  # the window mix of the step being taken (SAQA)
    cga_start = None
    if cfg.method == "ofq" and cfg.cga_fraction > 0:
        cga_start = cfg.steps - int(round(cfg.cga_fraction * cfg.steps))
    watch = WeightWatch(model, cga_start, cfg.cga_boundary_range)

    factors: dict[str, float] = {}  # each loss term's normaliser on this rank (distributed weighting)

    def local_losses(state: LoopState, batch: Any) -> dict[str, torch.Tensor]:
        # `tap` (the distillation tap, or None) is bound below, where the loop runs inside it.
        step_mix["mix"] = sampler.mix(state.step) if sampler is not None else None
        set_mix(model, step_mix["mix"])
        factors.clear()
        if dtype != torch.float32:
            batch = cast_floats(batch, dtype)
        with contextlib.ExitStack() as scope:
            # stochastic depth drawn for the global batch from a generator keyed on the step (the same on
            # every rank, and on resume), this rank's images kept; LSQ's gradient scale counts the global batch
            step_rng = torch.Generator().manual_seed(cfg.seed * 1_000_003 + state.step)
            scope.enter_context(global_batch(dist.rank * cfg.batch_size, cfg.batch_size * dist.world,
                                             len(batch.targets) if rcnn else len(batch[1]), step_rng))
            if rcnn:  # samplers' draws keyed per image on its global slot: independent of the split over ranks
                choose = keyed_choices(cfg.seed, state.step, dist.rank * cfg.batch_size, len(batch.targets))
                out = rcnn_losses(model, batch, choose=choose, factors=factors)
            else:
                if dist.distributed:
                    scope.enter_context(fcos_counts(model, factors))
                out = training_batch_losses(model, batch)
        if tap is not None:
            out["distill"] = distill_weight * tap.pop_loss(dist, dev)
        return out

    losses, report = local_losses, None
    if dist.distributed:
        losses, report = distributed_losses(model, local_losses, factors, dist, dev,
                                            diverged=f"{kind} diverged", hint="lower train.lr / quant_lr")

    def mix_numbers(state: LoopState) -> dict[str, float]:
        dist.maybe_die(state.step)  # the kill test hook (MIXAQ_TEST_KILL_RANK_AT); nothing otherwise
        numbers = watch.after_step(state.step)  # restores CGA-frozen weights, counts oscillations
        mix = step_mix["mix"]
        if mix is None:
            return numbers
        return {**numbers, "low_ratio_mean": float(np.mean(mix.low_ratios)),
                "prune_ratio_mean": float(np.mean(mix.prune_ratios))}

    def finish(state: LoopState) -> dict[str, Any]:
        set_mix(model, None)
        model.eval()
        return {}

    def save(state: LoopState, final: bool) -> None:
        rank_rng = dist.gather(rng_states(dev))  # every rank's generators (collective: all ranks call save)
        if not dist.main:  # rank 0 writes; the replicas are identical
            return
        seconds = round(state.seconds, 1)
        extra = {**source_extra, QAT_KEY: {**history, "oscillation": watch.summary(), "steps_done": state.step,
                                           "finished": final and not state.stopped_early, "seconds": seconds}}
        if final and sampler is None and quant.low_act_bits == quant.high_act_bits:
            _sync_low_to_high(model)
        save_quantized_checkpoint(out, model, config, categories, quant, extra)
        if final and not state.stopped_early:
            state_file.unlink(missing_ok=True)
            return
        payload = {"format": _RESUME_FORMAT, "kind": kind, "step": state.step, "seconds": seconds,
                   "run": _run_dict(run, exclude=("max_minutes", "threads", "loader_workers")),
                   "config": config.to_dict(), "categories": categories, "quant": quant_to_dict(quant),
                   "state": model.state_dict(), "optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state(),
                   "source_extra": source_extra, "source": str(source), "source_sha1": source_sha1,
                   "world_size": dist.world,
                   "sampler_position": state.step * cfg.batch_size * dist.world, "rank_rng": rank_rng}
        tmp = state_file.with_name(state_file.name + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(state_file)

    hooks = LoopHooks(losses=losses, after_step=mix_numbers, checkpoint=save, finish=finish,
                      before_optimizer=lambda state: watch.before_step(state.step), report=report)
    rng = None
    if resumed is not None:
        rng = restore_rng(resumed, dist.rank, dev)  # CUDA now; the CPU state after the loader's seed draw

    if rcnn:
        from functools import partial

        from mixaq.models.detection._rcnn_data import collate_rcnn

        collate = partial(collate_rcnn, mean=config.test.mean, std=config.test.std, divisor=config.test.pad_divisor)
    with contextlib.ExitStack() as stack:
        tap = stack.enter_context(DistillTap(model)) if distill_weight > 0 else None
        state = run_loop(model, opt, data, collate, cfg, hooks, log_path=log_path, desc=kind,
                         diverged=f"{kind} diverged", hint="lower train.lr / quant_lr", start_step=start_step,
                         seconds_before=float(resumed["seconds"]) if resumed is not None else 0.0,
                         rng_state=rng, progress=progress, dist=dist)
    return {"steps_done": state.step, "stopped_early": state.stopped_early, "seconds": round(state.seconds, 1),
            "checkpoint": str(out), "log": str(log_path), "resume_file": str(state_file) if state.stopped_early else None}


def _source_config(source: Path):  # noqa: ANN202
    """The config of `source`: a mixaq checkpoint's, or the one inferred from an official / mmdet file."""
    return _read_source(source)[1]


def checkpoint_family(source: str | Path, family: str | None = None) -> str:
    """The detector family of a checkpoint file (a mixaq checkpoint's config head, or what an official /
    mmdet file is; with `family`, a foreign file that does not fit it is refused in one line)."""
    head, _ = _read_source(Path(source), family)
    if head is None:
        raise MixaqError(f"{source}: not a detector checkpoint (neither mixaq's format nor an official / mmdet file)")
    return head


def _read_source(source: Path, family: str | None = None) -> tuple[str | None, Any]:
    """(detector family, R-CNN config or None) of a checkpoint file; (None, None) when it is neither
    mixaq's format nor an official / mmdet file (the loader then says what is wrong with it)."""
    from mixaq.models.detection._checkpoint import _read_weights
    from mixaq.models.detection._import import is_foreign, read_foreign
    from mixaq.models.detection._rcnn_config import RCNNConfig
    from mixaq.models.detection._registry import FCOS

    payload = _read_weights(source)
    if isinstance(payload, dict) and isinstance(payload.get("config"), dict) and "format" in payload:
        head = str(payload["config"].get("head", FCOS))
        config = RCNNConfig.from_dict(payload["config"], where=f"{source}: config") if head in RCNN_FAMILIES else None
        return head, config
    if is_foreign(payload):
        config = read_foreign(payload, str(source), family).config
        return config.head, config
    return None, None


def _run_dict(run: FineTuneRun, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    from mixaq.models.qat._state import quant_to_dict

    train = {k: v for k, v in asdict(run.train).items() if k not in exclude}
    return {"data": json_ready(run.data), "quant": quant_to_dict(run.quant), "train": train,
            "adapt": json_ready(run.adapt)}

