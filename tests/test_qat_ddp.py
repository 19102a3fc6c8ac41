"""`mixaq qat|adapt` on several processes (DDP, gloo on CPU, 2 processes through torch's launcher):
the weights equal one process's on the same global batch, a killed rank stops the job with one
readable line, `--resume` continues to the uninterrupted run's weights; bad `--nproc` is one line.

The runs train in float64 (`train.dtype`): in float32, Adam's first steps turn rounding noise in
near-zero gradients (e.g. conv biases followed by GroupNorm, whose exact gradient is 0) into
updates of +-lr, so float32 replicas differ from one process by ~1e-4 after 3 steps (docs/qat.md).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from mixaq.simulator import MixaqError

pytestmark = pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                                reason="torch without gloo")

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 240  # per launched job; a hang fails the test instead of blocking the suite


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every floating tensor of a QAT checkpoint: the detector's state and the trained quantizers."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    out: dict[str, torch.Tensor] = {}

    def walk(obj, prefix: str) -> None:  # noqa: ANN001
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{prefix}{k}.")
        elif isinstance(obj, torch.Tensor) and obj.is_floating_point():
            out[prefix] = obj.double()

    walk({"state": payload["state_dict"], "qat": payload["extra"]["qat"]}, "")
    return out


def _max_diff(a: Path, b: Path) -> float:
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys()
    return max(float((ta[k] - tb[k]).abs().max()) for k in ta)


def _moved(trained: Path, start: Path) -> float:
    """Largest change of a float detector weight between two checkpoints (mixaq format)."""
    a = torch.load(trained, map_location="cpu", weights_only=False)["state_dict"]
    b = torch.load(start, map_location="cpu", weights_only=False)["state_dict"]
    return max(float((a[k].double() - v.double()).abs().max()) for k, v in b.items() if v.is_floating_point())


def _losses(log: Path) -> list[float]:
    return [r["loss"] for r in map(json.loads, log.read_text().splitlines()) if "loss" in r]


def _write_config(base: dict, path: Path, **train) -> Path:
    path.write_text(yaml.safe_dump({**base, "train": {**base["train"], **train}}))
    return path


@pytest.fixture(scope="module")
def fcos(tmp_path_factory):
    """A random tiny FCOS detector (the default family) and float64 QAT configs of 4 steps."""
    from mixaq.models.detection._checkpoint import save_checkpoint
    from mixaq.models.detection._detector import DetectorConfig, build_detector

    root = tmp_path_factory.mktemp("ddp_fcos")
    config = DetectorConfig(**yaml.safe_load((ROOT / "models/detection/configs/tiny.yaml").read_text())["model"])
    torch.manual_seed(0)
    save_checkpoint(root / "float.pt", build_detector(config), config,
                    [{"id": i + 1, "name": f"c{i}"} for i in range(config.num_classes)])
    base = yaml.safe_load((ROOT / "models/qat/configs/tiny.yaml").read_text())
    base["train"].update(steps=4, checkpoint_every=2, dtype="float64")
    return root, base


def test_stream_sampler_splits_the_global_order():
    """Each rank gets a disjoint slice of every global batch; together they are the single order."""
    from mixaq.models._training import StreamSampler

    single = list(StreamSampler(10, 24, seed=3))
    ranks = [list(StreamSampler(10, 24, seed=3, rank=r, world=3, chunk=2)) for r in range(3)]
    assert [len(StreamSampler(10, 24, seed=3, rank=r, world=3, chunk=2)) for r in range(3)] == [8, 8, 8]
    rebuilt = [i for step in range(4) for r in range(3) for i in ranks[r][2 * step:2 * step + 2]]
    assert rebuilt == single
    resumed = [list(StreamSampler(10, 24, seed=3, start=12, rank=r, world=3, chunk=2)) for r in range(3)]
    assert [r[4:] for r in ranks] == resumed


def test_bad_nproc_is_one_line(tmp_path, capsys):
    from mixaq.search.cli import main

    out = str(tmp_path / "q.pt")
    cases = [(["--nproc", "0"], "--nproc must be >= 1"),
             (["--nproc", "100000", "--device", "cpu"], "core(s) available"),
             (["--nproc", "2", "--device", "cuda:1"], "one GPU per process"),
             (["--nproc", "2", "--dist-timeout", "0"], "--dist-timeout must be > 0")]
    if not torch.cuda.is_available():
        cases.append((["--nproc", "2", "--device", "cuda"], "no CUDA GPU"))
    for flags, message in cases:
        assert main(["qat", "--out", out, "--no-progress", *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert not Path(out).exists()


def test_killed_rank_stops_the_job_and_resume_continues(fcos, tmp_path):
    """`--nproc 2` (torch's elastic launcher): rank 1 SIGKILLs itself after step 3 (checkpoint at 2);
    the job ends with one line naming it; `--resume` finishes with the weights of one process that
    trained the same global batch (4 images) for 4 steps uninterrupted."""
    from mixaq.models.qat import fine_tune, load_finetune_config

    root, base = fcos
    single = tmp_path / "single.pt"
    fine_tune(root / "float.pt", single, load_finetune_config(_write_config(base, tmp_path / "b4.yaml", batch_size=4)),
              kind="qat", progress=False, device="cpu")
    config = _write_config(base, tmp_path / "b2.yaml", batch_size=2)
    out = tmp_path / "ddp.pt"
    cmd = [sys.executable, "-m", "mixaq.search.cli", "qat", "--checkpoint", str(root / "float.pt"), "--config",
           str(config), "--out", str(out), "--device", "cpu", "--no-progress", "--nproc", "2", "--dist-timeout", "60"]
    killed = _run(cmd, env={"MIXAQ_TEST_KILL_RANK_AT": "1:3"})
    assert killed.returncode == 2, killed.stderr
    last = killed.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"mixaq qat: error: rank 1 \(pid \d+\) was killed by SIGKILL; the job stopped \(all 2 "
                        r"processes\); .*ddp\.pt\.resume holds the last checkpoint: rerun with --resume to continue",
                        last), killed.stderr
    assert "Traceback" not in killed.stderr and len(killed.stderr.strip().splitlines()) <= 2, killed.stderr
    resume_file = out.with_name(out.name + ".resume")
    state = torch.load(resume_file, map_location="cpu", weights_only=False)
    assert (state["step"], state["world_size"], state["sampler_position"], len(state["rank_rng"])) == (2, 2, 8, 2)

    # the resume file belongs to a 2-process run: one process may not continue it
    with pytest.raises(MixaqError, match="had 2 process"):
        fine_tune(root / "float.pt", out, load_finetune_config(config), kind="qat", resume=True, progress=False,
                  device="cpu")

    resumed = _run(cmd[:-4] + ["--nproc", "2", "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["steps_done"] == 4 and not resume_file.exists()
    diff = _max_diff(out, single)
    print(f"max |dweight| killed+resumed 2 processes vs 1 process: {diff:.2e}")
    assert diff < 1e-5
    assert _moved(out, root / "float.pt") > 1e-4  # the run trained: equality is not two untouched models
    steps = [r.get("step") for r in map(json.loads, (tmp_path / "ddp.log.jsonl").read_text().splitlines())]
    assert steps == [1, 2, 3, 4, 4]  # the killed run's step 3 record is replaced, no step twice
    assert _losses(tmp_path / "ddp.log.jsonl") == pytest.approx(_losses(tmp_path / "single.log.jsonl"), abs=2e-4)


def test_mask_rcnn_two_processes_equal_one(tmp_path):
    """`torchrun --nproc_per_node 2 -m mixaq.search.cli qat` on a tiny Mask R-CNN: 3 steps equal one process on the global
    batch (RPN / R-CNN samplers keyed per image, loss normalisers summed over ranks, stochastic depth
    0.2 keyed on the step)."""
    from test_detection_rcnn_qat import tiny_checkpoint, write_coco

    from mixaq.models.qat import fine_tune, load_finetune_config

    # one image size, one scale, no crop: every image of a batch has the same padded size, so the
    # global batch padded at once equals the ranks' halves padded apart
    images, ann = write_coco(tmp_path, n=6, size=(150, 200))
    ckpt = tiny_checkpoint(tmp_path / "float.pth")
    base = {"data": {"images": str(images), "ann": str(ann), "scales": [[160, 128]], "crop": False},
            "quant": {"high_act_bits": 4, "low_act_bits": 4, "weight_bits": 4, "observer": "minmax"},
            "train": {"seed": 0, "steps": 3, "lr": 2e-4, "quant_lr": 1e-3, "warmup_steps": 1, "checkpoint_every": 2,
                      "log_every": 1, "calib_images": 2, "threads": 1, "dtype": "float64"}}
    single = tmp_path / "single.pt"
    fine_tune(ckpt, single, load_finetune_config(_write_config(base, tmp_path / "b4.yaml", batch_size=4)), kind="qat",
              progress=False, device="cpu")
    out = tmp_path / "ddp.pt"
    job = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "mixaq.search.cli", "qat", "--checkpoint", str(ckpt), "--config",
                str(_write_config(base, tmp_path / "b2.yaml", batch_size=2)), "--out", str(out), "--device", "cpu",
                "--no-progress", "--dist-timeout", "60"])
    assert job.returncode == 0, job.stderr
    assert json.loads(job.stdout)["steps_done"] == 3  # rank 0 alone prints the summary
    diff = _max_diff(out, single)
    print(f"max |dweight| 2 processes vs 1 process (Mask R-CNN, 3 steps): {diff:.2e}")
    assert diff < 1e-5
    assert _moved(out, ckpt) > 1e-4
    assert _losses(tmp_path / "ddp.log.jsonl") == pytest.approx(_losses(tmp_path / "single.log.jsonl"), abs=2e-4)


_SYNC_BN_SCRIPT = '''
import sys, torch, torch.distributed as dist
from mixaq.models._distributed import CpuSyncBatchNorm
dist.init_process_group("gloo", timeout=__import__("datetime").timedelta(seconds=60))
rank = dist.get_rank()
torch.manual_seed(0)
x = torch.randn(10, 6, 5, 5, dtype=torch.float64) * 3 + 1  # rank 0: rows 0..3, rank 1: rows 4..9
ref = torch.nn.BatchNorm2d(6).double()
with torch.no_grad():
    ref.weight.uniform_(0.5, 1.5); ref.bias.uniform_(-1, 1)
mine = CpuSyncBatchNorm(6).double()
mine.load_state_dict(ref.state_dict())
rows = slice(0, 4) if rank == 0 else slice(4, 10)
xr, xl = x.clone().requires_grad_(), x[rows].clone().requires_grad_()
g = torch.randn(10, 6, 5, 5, dtype=torch.float64)
yr, yl = ref(xr), mine(xl)
(yr * g).sum().backward(); (yl * g[rows]).sum().backward()
wgrad = torch.cat([mine.weight.grad, mine.bias.grad]); dist.all_reduce(wgrad)
err = max(float((yr[rows] - yl).abs().max()), float((xr.grad[rows] - xl.grad).abs().max()),
          float((torch.cat([ref.weight.grad, ref.bias.grad]) - wgrad).abs().max()),
          float((ref.running_mean - mine.running_mean).abs().max()), float((ref.running_var - mine.running_var).abs().max()))
print(f"rank {rank} max error {err:.3e}")
# the loop's collectives: a stop wanted by one rank is every rank's; sums are exact counts
from mixaq.models._distributed import DistContext
ctx = DistContext(rank, 2, rank, 60.0)
agreed = (ctx.any(rank == 1, torch.device("cpu")), ctx.any(False, torch.device("cpu")),
          ctx.sum_values([rank + 1, 0.5], torch.device("cpu")), ctx.gather(rank * 10))
err = err if agreed == (True, False, [3.0, 1.0], [0, 10]) else 1.0
dist.destroy_process_group()
sys.exit(0 if err < 1e-10 else 1)
'''


def test_cpu_sync_batchnorm_equals_batchnorm_on_the_global_batch(tmp_path):
    """Two gloo processes holding 4 and 6 rows: output, input and parameter gradients and running
    statistics equal one BatchNorm over all 10 rows; the loop's collectives agree (a stop one rank
    wants is every rank's)."""
    script = tmp_path / "sync_bn.py"
    script.write_text(_SYNC_BN_SCRIPT)
    job = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)])
    assert job.returncode == 0, job.stdout + job.stderr
    assert job.stdout.count("max error") == 2
