"""The accuracy objective as a small protocol, and its real implementation on `models.detection`."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from mixaq.simulator import SwinArch, WindowAssignment

from mixaq.search.space._space import DesignPoint

__all__ = ["AccuracyFn", "AccuracyResult", "AccuracyFactory", "EvaluatorFactory", "assignment_to_dict",
           "assignment_from_dict"]

BOX_METRICS: tuple[str, ...] = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")
# Mask AP (COCOeval segm) of the families with masks; NaN where there is none.
SEGM_METRICS: tuple[str, ...] = tuple(f"{m}_segm" for m in BOX_METRICS)
METRICS: tuple[str, ...] = BOX_METRICS + SEGM_METRICS


def assignment_to_dict(a: WindowAssignment) -> dict[str, Any]:
    return {"low_fraction": list(a.low_fraction), "pruned_fraction": list(a.pruned_fraction),
            "high_act_bits": a.high_act_bits, "low_act_bits": a.low_act_bits, "weight_bits": a.weight_bits}


def assignment_from_dict(d: Mapping[str, Any]) -> WindowAssignment:
    return WindowAssignment(tuple(d["low_fraction"]), tuple(d["pruned_fraction"]), d["high_act_bits"],
                            d["low_act_bits"], d["weight_bits"], source="recorded")


@dataclass(frozen=True)
class AccuracyResult:
    """Measured accuracy of one design point (COCOeval 0-1 scale) and the windows it really used."""

    ap: float
    ap50: float = float("nan")
    ap75: float = float("nan")
    ap_small: float = float("nan")
    ap_medium: float = float("nan")
    ap_large: float = float("nan")
    ap_segm: float = float("nan")
    ap50_segm: float = float("nan")
    ap75_segm: float = float("nan")
    ap_small_segm: float = float("nan")
    ap_medium_segm: float = float("nan")
    ap_large_segm: float = float("nan")
    assignment: WindowAssignment | None = None
    n_images: int = 0
    seconds: float = 0.0
    ap_ci_low: float = float("nan")  # 95 % bootstrap interval over the images (subset evaluations)
    ap_ci_high: float = float("nan")
    # AP on each bootstrap resample of the images; equal-sized evaluations share their resamples, so
    # differences between configurations are paired.
    ap_boot: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "assignment"}
        d["assignment"] = None if self.assignment is None else assignment_to_dict(self.assignment)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AccuracyResult":
        kw = dict(d)
        kw["assignment"] = None if kw.get("assignment") is None else assignment_from_dict(kw["assignment"])
        kw["ap_boot"] = tuple(float("nan") if v is None else float(v) for v in kw.get("ap_boot") or ())
        return cls(**kw)


@runtime_checkable
class AccuracyFn(Protocol):
    """What a sweep needs from the accuracy side: the model's geometry and `point -> metrics`."""

    arch: SwinArch
    image_hw: tuple[int, int]

    def __call__(self, point: DesignPoint, n_images: int | None = None, bootstrap: int = 0) -> AccuracyResult:
        """Metrics of `point` on every evaluation image, or (--fidelity) on the first `n_images` of
        them with a `bootstrap`-resample interval of AP."""
        ...

    def fingerprint(self) -> dict[str, Any]:
        """What identifies model + data, stored with the study so a joining worker must match."""
        ...


# Picklable zero-argument callables that build an AccuracyFn inside each worker process.
AccuracyFactory = Callable[[], AccuracyFn]


class _EvaluatorAccuracy:
    """`models.detection.Evaluator` behind the AccuracyFn protocol (fake-quant box mAP)."""

    def __init__(self, factory: "EvaluatorFactory") -> None:
        from mixaq.models.detection import Evaluator

        self._factory = factory
        optional = {} if factory.calib_images is None else {"calib_images": factory.calib_images}
        self._evaluator = Evaluator(factory.checkpoint, factory.data, ann=factory.ann, max_images=factory.max_images,
                                    threads=factory.torch_threads, detector=factory.detector,
                                    device=factory.worker_device(), workers=factory.loader_workers, **optional)
        self.arch = self._evaluator.arch
        self.image_hw = tuple(int(v) for v in self._evaluator.image_hw)

    def fingerprint(self) -> dict[str, Any]:
        # Content, not paths: workers on other machines keep files elsewhere but must run the same
        # model on the same images for the shared mAP cache to be valid.
        return {**self._evaluator.fingerprint(), "observer": self._factory.observer}

    def __call__(self, point: DesignPoint, n_images: int | None = None, bootstrap: int = 0) -> AccuracyResult:
        from mixaq.models import MixConfig, QuantConfig

        subset = {"n_images": n_images, "bootstrap": bootstrap}
        if point.is_float and not any(point.low_ratios) and not any(point.prune_ratios):
            # The float baseline is the unconverted model (timm's function), as the detector was trained.
            r = self._evaluator.evaluate(None, None, **subset)
            return self._result(r)
        quant = QuantConfig(high_act_bits=point.high_act_bits, low_act_bits=point.low_act_bits,
                            weight_bits=point.weight_bits, observer=self._factory.observer)
        if point.mode == "ratio":
            mix = MixConfig(mode="ratio", low_ratios=point.low_ratios, prune_ratios=point.prune_ratios,
                            strategy=point.strategy, seed=point.seed)
        else:
            mix = MixConfig(mode="threshold", low_thresholds=point.low_thresholds,
                            prune_thresholds=point.prune_thresholds, strategy=point.strategy, seed=point.seed)
        return self._result(self._evaluator.evaluate(quant, mix, **subset))

    @staticmethod
    def _result(r: Any) -> AccuracyResult:
        return AccuracyResult(**{m: float(getattr(r, m)) for m in METRICS}, assignment=r.assignment,
                              n_images=int(r.n_images), seconds=float(r.seconds), ap_ci_low=float(r.ap_ci_low),
                              ap_ci_high=float(r.ap_ci_high), ap_boot=tuple(r.ap_boot))


@dataclass(frozen=True)
class EvaluatorFactory:
    """Builds the detection evaluator in the process that uses it (None = embedded default)."""

    checkpoint: str | None = None
    data: str | None = None
    max_images: int | None = None
    calib_images: int | None = None
    torch_threads: int | None = None
    ann: str | None = None  # with `data` an images dir: a COCO instances json (real COCO)
    observer: str = "minmax"  # PTQ calibration (`QuantConfig.observer`); part of the fingerprint
    detector: str | None = None  # force the detector family of the checkpoint
    device: str = "auto"  # cpu | cuda | cuda:N | auto
    loader_workers: int = 0  # image-decoding processes per evaluator
    worker_index: int | None = None  # set per sweep worker: `auto` then means GPU worker_index % n_gpus

    def worker_device(self) -> str:
        """The device this evaluator runs on: with `auto` and GPUs, sweep worker i takes GPU i mod n."""
        if self.device != "auto" or self.worker_index is None:
            return self.device
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return f"cuda:{self.worker_index % n}" if n else "cpu"

    def for_worker(self, index: int) -> "EvaluatorFactory":
        from dataclasses import replace

        return replace(self, worker_index=index)

    def __call__(self) -> AccuracyFn:
        return _EvaluatorAccuracy(self)
