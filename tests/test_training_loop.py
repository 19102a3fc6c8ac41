"""The one training loop (`models._training.run_loop`) and the scoping of process state: hooks run
on their cadence, time limits and resume work, files and temp dirs are closed / removed on error,
and library calls leave torch's threads and generators and Optuna's logging as they found them."""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from mixaq.models._training import LoopHooks, make_optimizer, run_loop
from mixaq.simulator import MixaqError

DET_TINY = Path(__file__).resolve().parents[1] / "models" / "detection" / "configs" / "tiny.yaml"


@dataclass(frozen=True)
class ToyConfig:
    seed: int = 0
    steps: int = 6
    batch_size: int = 2
    lr: float = 0.1
    warmup_steps: int = 1
    grad_clip: float = 1.0
    checkpoint_every: int = 2
    log_every: int = 3
    max_minutes: float | None = None
    loader_workers: int = 0


class Pairs(torch.utils.data.Dataset):
    """y = 3x: a regression a linear layer learns in a few steps."""

    def __init__(self, n: int = 10) -> None:
        self.x = torch.linspace(-1, 1, n).unsqueeze(1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], 3 * self.x[i]


def _collate(items):
    xs, ys = zip(*items)
    return torch.stack(xs), torch.stack(ys)


def _toy_run(tmp_path, cfg=ToyConfig(), start_step=0, scale=1.0):
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    opt = make_optimizer(model, cfg.lr, weight_decay=0.0)
    calls = {"checkpoint": [], "finish": 0, "seen": []}

    def losses(state, batch):
        x, y = batch
        calls["seen"].append(x.flatten().tolist())
        return {"mse": scale * ((model(x) - y) ** 2).mean()}

    hooks = LoopHooks(losses=losses, after_step=lambda s: {"weight": float(model.weight.detach())},
                      log=lambda s: {"tag": s.step},
                      checkpoint=lambda s, final: calls["checkpoint"].append((s.step, final)),
                      finish=lambda s: calls.__setitem__("finish", calls["finish"] + 1) or {"done": True})
    state = run_loop(model, opt, Pairs(), _collate, cfg, hooks, log_path=tmp_path / "log.jsonl", desc="toy",
                     diverged="toy diverged", hint="lower lr", start_step=start_step, progress=False)
    return state, calls, [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]


def test_hooks_run_on_their_cadence_and_the_model_learns(tmp_path):
    state, calls, log = _toy_run(tmp_path)
    assert state.step == 6 and not state.stopped_early
    assert calls["checkpoint"] == [(2, False), (4, False), (6, True)]  # cadence, then once at the end
    assert calls["finish"] == 1
    assert [r["step"] for r in log] == [3, 6, 6] and log[-1]["final"] and log[-1]["done"]
    assert all(r["tag"] == r["step"] and "weight" in r and "mse" in r and "loss" in r for r in log[:2])
    assert abs(log[1]["weight"] - 3) < abs(log[0]["weight"] - 3) - 0.1  # it learns y = 3x


def test_time_limit_and_resume_continue_the_same_batches(tmp_path):
    _, whole, _ = _toy_run(tmp_path / "whole")
    state, first, _ = _toy_run(tmp_path / "cut", replace(ToyConfig(), max_minutes=0.0))
    assert state.stopped_early and state.step == 1 and first["checkpoint"] == [(1, True)]
    state, rest, log = _toy_run(tmp_path / "cut", start_step=1)
    assert state.step == 6 and first["seen"] + rest["seen"] == whole["seen"]
    assert [r["step"] for r in log] == [1, 3, 6, 6]  # the resumed run appends to the log


def test_non_finite_loss_is_one_line(tmp_path):
    with pytest.raises(MixaqError, match=r"^toy diverged at step 0 \(loss nan\); lower lr$"):
        _toy_run(tmp_path, scale=float("nan"))


def test_train_restores_threads_and_generators_and_cleans_up_on_error(tmp_path, monkeypatch):
    import tempfile

    from mixaq.models.evaluation import _train

    run = _train.load_run_config(DET_TINY)
    run = replace(run, train=replace(run.train, steps=2, threads=1),
                  val={"synthetic": {"seed": 3, "num_images": 2}})  # a val split in a temp dir
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    _train.train(run, tmp_path / "ok.pt", progress=False)
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()

    def boom(model, batch):
        raise RuntimeError("boom")

    monkeypatch.setattr(_train, "training_batch_losses", boom)
    with pytest.raises(RuntimeError, match="boom"):
        _train.train(run, tmp_path / "bad.pt", progress=False)
    assert list((tmp_path / "tmp").iterdir()) == []  # the val split's temp dir is gone
    log = str((tmp_path / "bad.log.jsonl").resolve())
    assert all(os.path.realpath(f"/proc/self/fd/{fd}") != log for fd in os.listdir("/proc/self/fd"))  # closed
    assert torch.get_num_threads() == threads and torch.equal(torch.get_rng_state(), rng)


def test_evaluator_and_sweep_leave_process_state_alone(tmp_path):
    import optuna

    from mixaq.models.detection import Evaluator
    from mixaq.models.data._synth import write_synthetic
    from mixaq.models.evaluation._train import load_run_config, train
    from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, run_sweep

    train(load_run_config(DET_TINY), tmp_path / "m.pt", progress=False)
    data = write_synthetic(tmp_path / "d", 3, seed=4, image_hw=(64, 64), progress=False)
    threads = torch.get_num_threads()
    ev = Evaluator(tmp_path / "m.pt", data, calib_images=1, threads=threads + 1)
    assert torch.get_num_threads() == threads
    ev.evaluate(None)
    assert torch.get_num_threads() == threads

    optuna.logging.set_verbosity(optuna.logging.INFO)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        filters = list(warnings.filters)
        settings = SweepSettings(space=SearchSpace(num_pairs=2), spec="bitfusion", population_size=4)
        run_sweep(settings, SyntheticAccuracy(), f"sqlite:///{tmp_path / 's.db'}", "q", 2, progress=False)
        assert warnings.filters == filters
    assert optuna.logging.get_verbosity() == optuna.logging.INFO
