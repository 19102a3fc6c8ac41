"""Estimated GPU memory and epoch time of Swin-T Mask R-CNN QAT at 1333x800, 2 images per GPU, from
the model itself on the CPU (no GPU needed; `benchmarks/gpu_check.py` measures both on a GPU).

    python -m benchmarks.estimate_rcnn_train [--images 1] [--threads 2] [--out runs/estimate.json]

Method:
- **Activations**: one training forward (`rcnn_losses`: backbone, FPN, RPN + R-CNN + mask losses) of a
  random Swin-T Mask R-CNN on `--images` synthetic 800x1333 images, with a `saved_tensors_hooks`
  pack hook that records every tensor autograd keeps for the backward pass; the bytes of the distinct
  storages are the activation memory the backward needs. Per image, scaled to 2 images (the backbone,
  FPN and the 512 RoIs per image all scale with the batch). Done for the float model and for uniform
  W4A4 QAT (LSQ fake-quant on every Swin activation target and weight, two-branch blocks).
- **Model state**: trainable parameters x 16 bytes (FP32 weight, gradient, AdamW's two moments).
- **Estimate** = activations (2 images) + model state; transient buffers of the backward (a few
  large gradient tensors at a time) are not counted. The float model under the same method is set
  against mmdetection's published training memory for the same model (7.6 GB, `Training Memory (GB)`
  of mask-rcnn_swin-t-p4-w7_fpn_1x_coco in mmdet 3.3's metafile: 1333x800, 2 images per GPU, FP32),
  and the QAT estimate is also given scaled by that ratio.
- **FLOPs**: torch's `FlopCounterMode` over the same forward (matmuls and convolutions; the
  fake-quant element-wise work is not counted); a training step is taken as 3x the forward.
- **Epoch time** = 117,266 train2017 images x step FLOPs per image / (GPUs x sustained FLOP/s), for
  an assumed GPU: H100 SXM, FP32 (mixaq trains in FP32; TF32 off in matmuls) 67 TFLOP/s peak at an
  assumed 25 % sustained. An assumption, not a measurement: R-CNN heads, NMS, fake-quant and data
  loading make the real rate lower; the GPU check prints the measured step time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

COCO_TRAIN_IMAGES = 117_266
ASSUMED_GPU = {"name": "H100 SXM", "fp32_tflops": 67.0, "sustained_share": 0.25}
MMDET_FLOAT_GB = 7.6  # mmdet 3.3 metafile, mask-rcnn_swin-t-p4-w7_fpn_1x_coco, Training Memory (GB)


def measure(model, batch) -> dict:  # noqa: ANN001
    """Saved-for-backward bytes (distinct storages) and forward FLOPs of one training forward."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mixaq.models.detection._rcnn_loss import rcnn_losses

    storages: dict[int, int] = {}
    keep = []

    def pack(t: torch.Tensor):  # noqa: ANN202
        s = t.untyped_storage()
        storages[s.data_ptr()] = max(storages.get(s.data_ptr(), 0), s.nbytes())
        keep.append(t)  # alive until the end, so no address is reused by another storage
        return t

    began = time.perf_counter()
    counter = FlopCounterMode(display=False)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), counter:
        losses = rcnn_losses(model, batch)
    seconds = time.perf_counter() - began
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    act = sum(v for k, v in storages.items() if k not in params)  # weights are counted as model state
    out = {"saved_activation_bytes": act, "forward_flops": counter.get_total_flops(), "forward_seconds": round(seconds, 1),
           "loss": round(float(sum(losses.values()).detach()), 4)}
    keep.clear()  # release the saved tensors
    del losses
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.estimate_rcnn_train", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1, help="images in the measured forward (memory scales to 2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="the tiny model at a small size (test of the script)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    import torch

    from benchmarks.gpu_check import FULL_HW, TINY_HW, random_model, synthetic, train_batch
    from mixaq.models import QuantConfig, calibrating, convert_swin, set_mix
    from mixaq.models.detection._rcnn_train import set_drop_path

    torch.set_num_threads(args.threads)
    hw = TINY_HW if args.tiny else FULL_HW
    samples = synthetic(args.images, hw)
    model = random_model(args.tiny)
    batch = train_batch(samples, model.config)
    result: dict = {"image_hw": list(hw), "padded_hw": list(batch.images.shape[2:]), "images_measured": args.images}
    n_params = sum(p.numel() for p in model.parameters())
    for name in ("float", "qat_w4a4"):
        m = model
        if name == "qat_w4a4":
            m = convert_swin(model, QuantConfig(4, 4, 4, learnable=True)).eval()
            with torch.no_grad(), calibrating(m):
                m([samples[0][0]])
            set_mix(m, None)
        set_drop_path(m, 0.2)
        m.train()
        r = measure(m, batch)
        trainable = sum(p.numel() for p in m.parameters() if p.requires_grad)
        per_image = r["saved_activation_bytes"] / args.images
        state = 16 * trainable
        r.update(trainable_params=trainable, model_state_gib=round(state / 2**30, 3),
                 activations_2_images_gib=round(2 * per_image / 2**30, 3),
                 estimate_2_images_gib=round((2 * per_image + state) / 2**30, 3),
                 train_step_tflops_per_image=round(3 * r["forward_flops"] / args.images / 1e12, 3))
        result[name] = r
        print(f"{name}: activations {r['activations_2_images_gib']} GiB for 2 images + state {r['model_state_gib']} GiB "
              f"= {r['estimate_2_images_gib']} GiB; forward {r['forward_flops'] / args.images / 1e9:.0f} GFLOP/image "
              f"({r['forward_seconds']} s on the CPU)", flush=True)
    ratio = MMDET_FLOAT_GB * 1e9 / 2**30 / result["float"]["estimate_2_images_gib"]
    result["mmdet_float_gib"] = round(MMDET_FLOAT_GB * 1e9 / 2**30, 3)
    result["mmdet_over_estimate_float"] = round(ratio, 3)
    result["qat_w4a4_scaled_by_mmdet_ratio_gib"] = round(result["qat_w4a4"]["estimate_2_images_gib"] * ratio, 2)
    rate = ASSUMED_GPU["fp32_tflops"] * ASSUMED_GPU["sustained_share"] * 1e12
    step = 3 * result["qat_w4a4"]["forward_flops"] / args.images  # FLOPs per image per training step
    result["assumed_gpu"] = ASSUMED_GPU
    result["epoch_seconds"] = {str(n): round(COCO_TRAIN_IMAGES * step / (n * rate), 1) for n in (1, 8)}
    result["epoch_hours"] = {n: round(v / 3600, 2) for n, v in result["epoch_seconds"].items()}
    result["params"] = n_params
    print(f"float estimate x {ratio:.2f} = mmdet's published {MMDET_FLOAT_GB} GB; QAT W4A4 scaled the same way: "
          f"{result['qat_w4a4_scaled_by_mmdet_ratio_gib']} GiB per GPU", flush=True)
    print(f"epoch (estimate, {ASSUMED_GPU['name']} FP32 at {ASSUMED_GPU['sustained_share']:.0%} of "
          f"{ASSUMED_GPU['fp32_tflops']} TFLOP/s): {result['epoch_hours']['1']} h on 1 GPU, {result['epoch_hours']['8']} h on 8",
          flush=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
