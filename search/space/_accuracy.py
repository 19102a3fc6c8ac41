"""The accuracy objective as a small protocol, and its real implementation on `models.detection`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

from mixaq.models.evaluation._result import (BOX_METRICS, METRICS, SEGM_METRICS, EvalResult, assignment_from_dict,
                                              assignment_to_dict)
from mixaq.simulator import SwinArch

from mixaq.search.space._space import DesignPoint
from mixaq.models._config import MINMAX

__all__ = ["AccuracyFn", "AccuracyResult", "AccuracyFactory", "EvaluatorFactory", "assignment_to_dict",
           "assignment_from_dict", "BOX_METRICS", "SEGM_METRICS", "METRICS"]

# One result type for an evaluation: the evaluator's (search has always called it AccuracyResult).
AccuracyResult = EvalResult


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
        subset = {"n_images": n_images, "bootstrap": bootstrap}
        if point.is_float and not any(point.low_ratios) and not any(point.prune_ratios):
            # The float baseline is the unconverted model (timm's function), as the detector was trained.
            return self._evaluator.evaluate(None, None, **subset)
        quant, mix = point.to_configs(self._factory.observer)
        return self._evaluator.evaluate(quant, mix, **subset)


@dataclass(frozen=True)
class EvaluatorFactory:
    """Builds the detection evaluator in the process that uses it (None = embedded default)."""

    checkpoint: str | None = None
    data: str | None = None
    max_images: int | None = None
    calib_images: int | None = None
    torch_threads: int | None = None
    ann: str | None = None  # with `data` an images dir: a COCO instances json (real COCO)
    observer: str = MINMAX  # PTQ calibration (`QuantConfig.observer`); part of the fingerprint
    detector: str | None = None  # force the detector family of the checkpoint
    device: str = "auto"  # cpu | cuda | cuda:N | auto
    loader_workers: int = 0  # image-decoding processes per evaluator
    worker_index: int | None = None  # set per sweep worker: `auto` then means GPU worker_index % n_gpus

    def worker_device(self) -> str:
        """The device this evaluator runs on: with `auto` and GPUs, sweep worker i takes GPU i mod n."""
        from mixaq.models._device import worker_device_name

        return worker_device_name(self.device, self.worker_index)

    def for_worker(self, index: int) -> "EvaluatorFactory":
        from dataclasses import replace

        return replace(self, worker_index=index)

    def __call__(self) -> AccuracyFn:
        return _EvaluatorAccuracy(self)
