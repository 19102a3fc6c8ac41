"""`Evaluator`: measured box mAP of a fake-quantized, window-mixed detector, thousands of times over.

The model and the data are loaded once: images are decoded up front, the float model is converted
to the two-branch form once per quantizer setting and calibrated on a calibration subset that is
disjoint from the evaluation images (per mix with routed calibration), and that copy is cached. An `evaluate` call then
only sets the window mix, runs batched inference and COCOeval.
"""
from __future__ import annotations

import copy
import hashlib
import math
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from mixaq.models._runtime import torch_threads
from mixaq.simulator import SwinArch, WindowAssignment
from mixaq.core._errors import MixaqError
from mixaq.models.data._coco import CocoDetection, resolve_data
from mixaq.models.evaluation._cocoeval import STAT_NAMES, coco_stats, image_loader, predict

__all__ = ["Evaluator", "EvalResult", "DEFAULT_CHECKPOINT", "DEFAULT_VAL", "SEGM_NAMES", "default_val_dir",
           "default_coco_val", "ensure_default_val", "val_generator", "coco_results"]

_PACKAGE_DIR = Path(__file__).resolve().parents[1] / "detection"  # the default model ships with the families
DEFAULT_CHECKPOINT = _PACKAGE_DIR / "default" / "model.pt"
# The default model's val split: the last `calib` images calibrate, the rest are evaluated. Its
# generator is the one the checkpoint was trained on (`val_generator`); this one when none is recorded.
DEFAULT_VAL = {"seed": 2, "num_images": 532, "calib_images": 32, "generator": "scenes"}
# Keep at most this many calibrated copies (one per quantizer setting, and per mix when routed).
_CACHE_SIZE = 8
# Decode every image once only while the decoded set stays below this size.
_PRELOAD_LIMIT_BYTES = 2 * 2**30


SEGM_NAMES = tuple(f"{name}_segm" for name in STAT_NAMES)


@dataclass(frozen=True)
class EvalResult:
    """COCOeval box stats (0-1; -1 where a size range has no ground truth) and what ran; mask stats
    (`ap_segm`, ...) for families with masks on data with segmentations, NaN otherwise."""

    ap: float
    ap50: float
    ap75: float
    ap_small: float
    ap_medium: float
    ap_large: float
    assignment: WindowAssignment  # per-block window fractions the model recorded, with the bits
    n_images: int
    seconds: float
    ap_segm: float = math.nan
    ap50_segm: float = math.nan
    ap75_segm: float = math.nan
    ap_small_segm: float = math.nan
    ap_medium_segm: float = math.nan
    ap_large_segm: float = math.nan
    # COCO results-format detections (bbox xywh, category ids of the annotation file, score, RLE
    # segmentation), kept only when `evaluate(..., keep_detections=True)`.
    detections: tuple | None = field(default=None, compare=False, repr=False)
    # 95 % bootstrap interval of `ap` over the evaluated images (evaluate(..., bootstrap=B)); NaN otherwise.
    ap_ci_low: float = float("nan")
    ap_ci_high: float = float("nan")
    ap_boot: tuple[float, ...] = ()  # AP on each bootstrap resample (paired across equal-sized evaluations)

    def stats(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in STAT_NAMES}

    def segm_stats(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SEGM_NAMES}

    @property
    def has_segm(self) -> bool:
        return not math.isnan(self.ap_segm)


def val_generator(extra: dict | None) -> str:
    """The synthetic generator a checkpoint was trained on (its recorded `data:` section), else the default."""
    data = (extra or {}).get("data")
    synthetic = data.get("synthetic") if isinstance(data, dict) else None
    if isinstance(synthetic, dict):
        return str(synthetic.get("generator", "shapes"))
    return DEFAULT_VAL["generator"]


def default_val_dir(generator: str | None = None) -> Path:
    """Where a default synthetic val split lives ($MIXAQ_CACHE or ~/.cache/mixaq)."""
    generator = generator or DEFAULT_VAL["generator"]
    root = Path(os.environ.get("MIXAQ_CACHE", Path.home() / ".cache" / "mixaq"))
    prefix = "synth" if generator == "shapes" else generator  # `synth_…`: the name from before `scenes` existed
    return root / f"{prefix}_val_seed{DEFAULT_VAL['seed']}_n{DEFAULT_VAL['num_images']}_256"


def default_coco_val() -> tuple[Path, Path]:
    """(images, instances json) of COCO val2017 under $MIXAQ_COCO (`val2017/`,
    `annotations/instances_val2017.json`): the default data of the COCO-trained families."""
    root = os.environ.get("MIXAQ_COCO")
    if not root:
        raise MixaqError("this detector was trained on COCO: give --coco-root IMAGES --ann INSTANCES.json "
                         "(or set MIXAQ_COCO to a directory holding val2017/ and annotations/instances_val2017.json)")
    return Path(root) / "val2017", Path(root) / "annotations" / "instances_val2017.json"


def ensure_default_val(progress: bool = True, generator: str | None = None) -> Path:
    """The default val split of `generator` (default: the default model's), generated on first use
    (deterministic: same pixels every time)."""
    from mixaq.models.data._synth import _ANN_NAME, write_synthetic

    generator = generator or DEFAULT_VAL["generator"]
    out = default_val_dir(generator)
    if not (out / _ANN_NAME).is_file():
        write_synthetic(out, DEFAULT_VAL["num_images"], DEFAULT_VAL["seed"], (256, 256), generator=generator,
                        progress=progress)
    return out


class Evaluator:
    """Loads a detector and its val data once; `evaluate(quant, mix)` gives measured mAP.

    `checkpoint=None` is the embedded default model, `data=None` the synthetic val split of the
    generator the checkpoint was trained on (made on first use). `data` is a dataset dir (`DIR/images`, `DIR/annotations.json`), or with `ann=` an
    images dir plus an instances json (real COCO). The last `calib_images` images (by image id)
    calibrate the quantizers; the first `max_images` of the others are evaluated.

    `checkpoint` may also be an official-release or mmdet-zoo Swin (Cascade) Mask R-CNN file
    (`detector` forces the family); its class i is the i-th category id of the annotation file in
    sorted order (mmdet's rule), checked against the class names the file carries. `device`:
    cpu | cuda | cuda:N | auto; `workers` decode (and resize) images in parallel processes.
    """

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        data: str | Path | CocoDetection | None = None,
        *,
        ann: str | Path | None = None,
        max_images: int | None = None,
        calib_images: int = DEFAULT_VAL["calib_images"],
        batch_size: int = 16,
        threads: int | None = None,
        progress: bool = False,
        detector: str | None = None,
        device: str | None = "auto",
        workers: int = 0,
        test_scale: tuple[int, int] | None = None,
    ) -> None:
        from mixaq.models._device import check_device_name, resolve_device
        from mixaq.models.detection._checkpoint import load_detector
        from mixaq.models.detection._registry import RCNN_FAMILIES, get_family

        check_device_name(device)
        self.threads = None if threads is None else max(1, int(threads))  # torch threads while evaluating
        if workers < 0:
            raise MixaqError(f"workers must be >= 0, got {workers}")
        if checkpoint is None and not DEFAULT_CHECKPOINT.is_file():
            raise MixaqError(f"the embedded default model is missing ({DEFAULT_CHECKPOINT}); pass --checkpoint")
        self.checkpoint = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        self.device = resolve_device(device)
        self.workers = int(workers)
        self.model, self.config, self.categories, self.extra = load_detector(self.checkpoint, detector)
        self.family = get_family(self.config.head)
        if test_scale is not None:  # mmdet families: another keep-ratio test scale (long, short edge)
            if self.family.inputs != "mmdet":
                raise MixaqError(f"test_scale applies to {', '.join(RCNN_FAMILIES)}, not {self.family.name}")
            from dataclasses import replace

            self.config = replace(self.config, test=replace(self.config.test, scale=tuple(int(v) for v in test_scale)))
            self.model.config = self.config
        self.model.to(self.device)
        if isinstance(data, CocoDetection):
            self.dataset = data
        elif ann is not None:
            self.dataset = resolve_data(images=data, ann=ann)
        elif data is None and self.family.inputs == "mmdet":  # a COCO model: COCO val2017 by default
            self.dataset = resolve_data(images=default_coco_val()[0], ann=default_coco_val()[1])
        else:
            self.dataset = resolve_data(data if data is not None
                                        else ensure_default_val(progress, val_generator(self.extra)))
        if self.dataset.num_classes != self.config.num_classes:
            raise MixaqError(f"dataset has {self.dataset.num_classes} categories but the model predicts "
                             f"{self.config.num_classes} ({self.checkpoint})")
        if "source_format" in self.extra:
            self._check_class_names()
        if batch_size < 1 or calib_images < 0 or (max_images is not None and max_images < 1):
            raise MixaqError("batch_size and max_images must be >= 1, calib_images >= 0")
        ids = list(self.dataset.image_ids)
        if calib_images >= len(ids):
            raise MixaqError(f"calib_images={calib_images} leaves no evaluation image "
                             f"(the dataset has {len(ids)} images)")
        self.calib_ids = ids[len(ids) - calib_images:] if calib_images else []
        self.eval_ids = ids[: len(ids) - calib_images][: max_images]
        self.batch_size = int(batch_size)
        self.progress = progress
        self._images = self._preload(self.eval_ids + self.calib_ids)
        self._cache: OrderedDict[object, nn.Module] = OrderedDict()
        # Seconds each calibration took (conversion + observer forwards + freezing), by cache key.
        self.calibration_seconds: dict[object, float] = {}

    def _check_class_names(self) -> None:
        """A foreign checkpoint's class i is the annotation file's i-th category (sorted ids): the
        names it carries must agree."""
        names = [c.get("name") for c in self.categories]
        if not names:
            return
        for i, (mine, theirs, cid) in enumerate(zip(names, self.dataset.category_names, self.dataset.category_ids)):
            if str(mine).strip().lower() != str(theirs).strip().lower():
                raise MixaqError(f"{self.checkpoint}: class {i} is {mine!r} but the annotation file's category "
                                 f"{cid} (class {i} in sorted id order) is {theirs!r}")

    def fingerprint(self) -> dict[str, object]:
        """What identifies model and data by content, not by path: the checkpoint file's sha1, and the
        annotation file, evaluated and calibration image ids and image file sizes (`CocoDetection.fingerprint`).
        A sweep stores it with its study; a process joining with anything else is refused."""
        with self.checkpoint.open("rb") as f:
            checkpoint_sha1 = hashlib.file_digest(f, "sha1").hexdigest()[:16]
        return {"checkpoint_sha1": checkpoint_sha1, "data_sha1": self.dataset.fingerprint(self.eval_ids, self.calib_ids),
                "eval_images": len(self.eval_ids), "calib_images": len(self.calib_ids)}

    @property
    def arch(self) -> SwinArch:
        return self.config.swin_arch

    @property
    def image_hw(self) -> tuple[int, int]:
        """The network input size the cost is computed at (images are resized to it)."""
        return self.config.image_hw

    @property
    def _scale(self) -> tuple[int, int] | None:
        return getattr(getattr(self.config, "test", None), "scale", None)

    def _preload(self, ids: list[int]) -> dict[int, object] | None:
        imgs = self.dataset.coco.imgs
        if self.family.inputs == "mmdet":  # resized uint8 images
            est = len(ids) * max(self._scale) * min(self._scale) * 3
        else:  # float tensors at the original size
            est = sum(int(imgs[i].get("height", 0)) * int(imgs[i].get("width", 0)) * 12 for i in ids)
        if est > _PRELOAD_LIMIT_BYTES or self.workers:
            return None  # decode per batch (in worker processes) instead of holding gigabytes
        load = image_loader(self.dataset, self.family.inputs, self._scale)
        return {i: load(i) for i in ids}

    def _quantized(self, quant, mix=None) -> nn.Module:  # noqa: ANN001 (models.QuantConfig / MixConfig)
        """The converted, calibrated model for `quant` (cached, least recently used evicted).

        Routed calibration depends on the mix it ran under, so the mix is part of the cache key.
        """
        from mixaq.models import calibrating, convert_swin, set_mix

        key = (quant, mix if quant.calibration == "routed" else None)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        start = time.perf_counter()
        model = convert_swin(copy.deepcopy(self.model), quant).eval()
        set_mix(model, key[1])

        def calibrate(m: nn.Module) -> None:
            if not self.calib_ids:
                raise MixaqError("quantized activations need calibration images (calib_images > 0)")
            with torch.no_grad(), calibrating(m):
                for start in range(0, len(self.calib_ids), self.batch_size):
                    chunk = self.calib_ids[start:start + self.batch_size]
                    m([self._image(i) for i in chunk])

        if "qat" in self.extra and quant.repq:
            raise MixaqError(f"{self.checkpoint.name} is a QAT/SAQA checkpoint with trained quantizers; "
                             f"observer {quant.observer!r} is post-training quantization of a float checkpoint")
        if "qat" in self.extra:  # a `mixaq qat|adapt` checkpoint: its trained quantizers and LN copies
            from mixaq.models.qat import restore_quantized

            restore_quantized(model, self.extra["qat"], quant, calibrate)
        elif any(b is not None for b in (quant.high_act_bits, quant.low_act_bits)):
            calibrate(model)
        self.calibration_seconds[key] = time.perf_counter() - start
        self._cache[key] = model
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return model

    def _image(self, image_id: int):  # noqa: ANN202 (tensor or PreparedImage, on the model's device)
        if self._images is not None:
            image = self._images[image_id]
        else:
            image = image_loader(self.dataset, self.family.inputs, self._scale)(image_id)
        return image.to(self.device) if isinstance(image, torch.Tensor) else image

    def evaluate(self, quant=None, mix=None, *, n_images: int | None = None, bootstrap: int = 0,  # noqa: ANN001
                 keep_detections: bool = False) -> EvalResult:
        """Box (and mask) mAP of the model under `quant` (None = float, unconverted) with windows
        routed by `mix` (models.QuantConfig / MixConfig).

        `n_images` evaluates only the first N evaluation images (a low-fidelity estimate; the same
        images every time); `bootstrap` > 0 adds a 95 % interval of box AP over resamples of them.
        The assignment is what the model recorded while evaluating (image means per block).
        `keep_detections` keeps the COCO results-format detections on the result.
        """
        from mixaq.models._device import strict_fp32

        if n_images is not None and not 1 <= n_images <= len(self.eval_ids):
            raise MixaqError(f"n_images={n_images} is outside 1..{len(self.eval_ids)} (the evaluated images)")
        if bootstrap < 0:
            raise MixaqError(f"bootstrap must be >= 0, got {bootstrap}")
        ids = self.eval_ids if n_images is None else self.eval_ids[:n_images]
        with torch_threads(self.threads), strict_fp32(self.device):
            return self._evaluate(quant, mix, ids, bootstrap, keep_detections)

    def _evaluate(self, quant, mix, ids, bootstrap: int, keep_detections: bool) -> EvalResult:  # noqa: ANN001
        from mixaq.models import MixConfig, QuantConfig, assignment_from_record, get_record, reset_record, set_mix

        start = time.perf_counter()
        if quant is None:
            if mix is not None:
                raise MixaqError("a window mix needs a QuantConfig (use QuantConfig.float() for float branches)")
            model = self.model
        else:
            if not isinstance(quant, QuantConfig):
                raise MixaqError(f"evaluate: quant must be a QuantConfig, got {type(quant).__name__}")
            if mix is not None and not isinstance(mix, MixConfig):
                raise MixaqError(f"evaluate: mix must be a MixConfig, got {type(mix).__name__}")
            model = self._quantized(quant, mix)
            set_mix(model, mix)
            reset_record(model)
        masks = self.family.masks
        out = predict(model, self.dataset, ids, batch_size=self.batch_size, images=self._images,
                      progress=self.progress, inputs=self.family.inputs, scale=self._scale, workers=self.workers,
                      with_masks=masks, device=self.device)
        dets, segms = out if masks else (out, None)
        stats = coco_stats(self.dataset, dets, ids, bootstrap=bootstrap)
        if masks and self.dataset.has_segmentation:
            segm = coco_stats(self.dataset, dets, ids, "segm", segms)
            stats.update({f"{k}_segm": v for k, v in segm.items()})
        if quant is None:
            assignment = WindowAssignment.uniform(self.arch, act_bits=None, weight_bits=None)
        else:
            assignment = assignment_from_record(get_record(model), quant)
            reset_record(model)
        return EvalResult(**stats, assignment=assignment, n_images=len(ids),
                          seconds=time.perf_counter() - start,
                          detections=tuple(coco_results(dets, segms)) if keep_detections else None)


def coco_results(dets, segms: list[dict] | None = None) -> list[dict]:  # noqa: ANN001 (np.ndarray (N, 7))
    """COCO results format: image_id, category_id (the annotation file's), bbox xywh, score[, RLE]."""
    out = []
    for i, r in enumerate(dets):
        item = {"image_id": int(r[0]), "category_id": int(r[6]), "bbox": [round(float(v), 3) for v in r[1:5]],
                "score": round(float(r[5]), 5)}
        if segms is not None:
            item["segmentation"] = segms[i]
        out.append(item)
    return out
