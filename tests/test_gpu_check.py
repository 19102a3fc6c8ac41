"""benchmarks/gpu_check.py, the GPU check for a bare machine, runs end to end on the CPU in its tiny
mode (every part: eval speed of the three configurations, device-vs-CPU agreement, a QAT step, the
2-process DDP step with gloo). The wheel-install path (`make gpu-wheels`, a fresh venv without the
project's packages, `pip install --no-index`) is `benchmarks/bench_gpu_wheels.py` (slow test below)."""
from __future__ import annotations

import json

import pytest


def test_tiny_gpu_check_on_cpu(tmp_path, capsys):
    from benchmarks.gpu_check import main

    out = tmp_path / "check.json"
    assert main(["--device", "cpu", "--tiny", "--images", "1", "--no-ddp", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    printed = capsys.readouterr().out
    for line in ("eval images/s: float", "cpu vs cpu:", "QAT W4A4 step at 2 images", "DDP 2 processes: skipped"):
        assert line in printed
    assert set(result["eval"]["images_per_s"]) == {"float", "uniform W4A8", "MixA-Q W4 A8/A4 50%"}
    a = result["agreement"]
    assert a["detections_cpu"] > 0 and a["matched"] == a["detections_cpu"] == a["detections_device"]
    step = result["qat_step"]
    assert step["images_per_gpu"] == 2 and step["seconds_per_step"] > 0 and len(step["losses"]) == 2


def test_ddp_step_on_two_cpu_processes():
    """The check's 2-process step (DDP over the loss forward, SyncBatchNorm where there is BN) with gloo."""
    from benchmarks.gpu_check import ddp_step

    result = ddp_step(tiny=True, backend="gloo")
    assert result["processes"] == 2 and result["weights_equal_across_ranks"] is True


@pytest.mark.slow
def test_wheel_folder_installs_and_runs_the_check(tmp_path):
    from benchmarks.bench_gpu_wheels import check_wheel_install

    summary = check_wheel_install(tmp_path)
    assert summary["returncode"] == 0, summary
    assert "gpu_check: done" in summary["output"]
    assert "DDP 2 processes: gloo" in summary["output"] and "weights equal across ranks: True" in summary["output"]
    assert "mixaq qat --nproc 2 --device cpu (2 steps of 2 images per process): exit 0" in summary["output"]


def test_memory_and_flop_estimate_runs_on_the_tiny_model(tmp_path):
    """benchmarks/estimate_rcnn_train.py (the README's memory / epoch-time estimates) on the tiny model:
    fake quantization keeps more activations than float, FLOPs are counted, the epoch formula holds."""
    from benchmarks.estimate_rcnn_train import ASSUMED_GPU, COCO_TRAIN_IMAGES, main

    out = tmp_path / "estimate.json"
    assert main(["--tiny", "--threads", "1", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    f, q = r["float"], r["qat_w4a4"]
    assert q["saved_activation_bytes"] > f["saved_activation_bytes"] > 0
    assert f["forward_flops"] > 0 and q["trainable_params"] >= f["trainable_params"]
    assert q["estimate_2_images_gib"] == pytest.approx(q["activations_2_images_gib"] + q["model_state_gib"], abs=2e-3)
    rate = ASSUMED_GPU["fp32_tflops"] * ASSUMED_GPU["sustained_share"] * 1e12
    seconds = COCO_TRAIN_IMAGES * 3 * q["forward_flops"] / r["images_measured"] / rate
    assert r["epoch_seconds"]["1"] == pytest.approx(seconds, abs=0.1) and seconds > 1
    assert r["epoch_seconds"]["8"] == pytest.approx(seconds / 8, abs=0.1)
