"""Detection evaluation throughput: images/s of the default detector, fake-quantized vs float.

Ratios come from one run on one machine. Inference only (batched forward + postprocess) and the full
`Evaluator.evaluate` (inference + COCOeval) are timed separately; calibration is excluded (cached).
"""
from __future__ import annotations

import time

import torch


def _best_of(fn, repeats: int) -> float:  # noqa: ANN001
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(n_images: int = 64, threads: int = 2, repeats: int = 2) -> None:
    from mixaq.models import MixConfig, QuantConfig, set_mix
    from mixaq.models.evaluation._cocoeval import predict
    from mixaq.models.evaluation._evaluate import Evaluator

    torch.set_num_threads(threads)
    ev = Evaluator(max_images=n_images, batch_size=16)
    cases = {
        "float (unconverted)": (None, None),
        "two-branch, float branches": (QuantConfig.float(), None),
        "uniform W4A8": (QuantConfig(8, 8, 4, observer="percentile"), None),
        "MixA-Q W4A8/A4, 50% low": (QuantConfig(8, 4, 4, observer="percentile"), MixConfig(low_ratios=0.5)),
    }
    print(f"default detector, {len(ev.eval_ids)} images of {ev.image_hw[0]}x{ev.image_hw[1]}, "
          f"batch 16, {threads} torch threads, best of {repeats}")
    print(f"{'configuration':<30} {'infer img/s':>12} {'evaluate img/s':>15} {'vs float':>9}")
    base = None
    for name, (quant, mix) in cases.items():
        model = ev.model if quant is None else ev._quantized(quant, mix)  # calibrates once, outside the timing
        if quant is not None:
            set_mix(model, mix)

        def infer() -> None:
            predict(model, ev.dataset, ev.eval_ids, batch_size=16, images=ev._images)

        t_infer = _best_of(infer, repeats)
        t_eval = _best_of(lambda: ev.evaluate(quant, mix), repeats)
        ips = len(ev.eval_ids) / t_infer
        base = base or ips
        print(f"{name:<30} {ips:>12.1f} {len(ev.eval_ids) / t_eval:>15.1f} {ips / base:>8.2f}x")


if __name__ == "__main__":
    main()
