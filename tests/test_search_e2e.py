"""A small study end to end through `mixaq sweep` on a real (tiny) detector and generated data;
its numbers are cross-checked against direct Evaluator and simulator calls."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from mixaq.models import MixConfig, QuantConfig
from mixaq.models.detection import Evaluator, load_run_config, train, write_synthetic
from mixaq.search import DesignPoint, get_storage
from mixaq.search.study._study import trial_info
from mixaq.search.cli import main
from mixaq.simulator import WindowAssignment, estimate

CONFIGS = Path(__file__).resolve().parent.parent / "models" / "detection" / "configs"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    cfg = load_run_config(CONFIGS / "tiny.yaml")
    cfg = replace(cfg, train=replace(cfg.train, steps=4, threads=1))
    train(cfg, root / "model.pt", config_dir=CONFIGS, progress=False)
    write_synthetic(root / "val", 8, 3, (64, 64), progress=False)
    return root / "model.pt", root / "val"


def test_sweep_end_to_end_on_a_tiny_detector(tiny, tmp_path, capsys):
    ckpt, val = tiny
    out = tmp_path / "run"
    argv = ["sweep", "--checkpoint", str(ckpt), "--data", str(val), "--max-images", "4", "--calib-images", "2",
            "--n-trials", "4", "--search", "low,prune", "--population", "2", "--spec", "bitfusion",
            "--cost", "cycles", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "4 completed" in printed and str(out.resolve()) in printed
    for name in ("trials.csv", "pareto.csv", "baselines.csv", "breakdown.csv", "pareto.png", "pareto.svg",
                 "breakdown.png", "speedup_bops_vs_cycles.svg"):
        assert (out / name).stat().st_size > 0, name

    study = optuna.load_study(study_name="mixaq", storage=get_storage(f"sqlite:///{out / 'study.db'}"))
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 4
    ev = Evaluator(ckpt, val, max_images=4, calib_images=2)
    for t in done[:2]:
        info = trial_info(t)
        point = DesignPoint.from_dict(info["point"])
        assert info["assignment_matches"]  # model's recorded windows == simulator's count rule
        # mAP: the same configuration evaluated directly gives the stored value.
        direct = ev.evaluate(QuantConfig(high_act_bits=8, low_act_bits=4, weight_bits=4),
                             MixConfig(low_ratios=point.low_ratios, prune_ratios=point.prune_ratios))
        assert t.values[0] == pytest.approx(direct.ap, abs=1e-12)
        assert 0.0 <= t.values[0] <= 1.0
        # Speedup: the simulator's own estimate of this assignment against uniform A8/W4.
        mine = estimate("bitfusion", ev.arch, ev.image_hw, direct.assignment)
        ref = estimate("bitfusion", ev.arch, ev.image_hw, WindowAssignment.uniform(ev.arch, 8, 4))
        assert t.values[1] == pytest.approx(mine.speedup_over(ref)["cycles"], rel=1e-9)

    baselines = pd.read_csv(out / "baselines.csv").set_index("name")
    assert {"float", "uniform_high", "uniform_low"} <= set(baselines.index)
    direct_float = ev.evaluate(None, None)
    assert baselines.loc["float", "ap"] == pytest.approx(direct_float.ap, abs=1e-12)
    assert baselines.loc["uniform_high", "speedup"] == pytest.approx(1.0)

    # Same command again: the study is full, nothing runs, outputs are rewritten identically.
    before = pd.read_csv(out / "trials.csv")
    assert main(argv) == 0
    assert "this run completed 0" in capsys.readouterr().out
    pd.testing.assert_frame_equal(before, pd.read_csv(out / "trials.csv"))


def test_demo_command_writes_plots_and_the_readme_image(tiny, tmp_path, capsys):
    ckpt, val = tiny
    image = tmp_path / "docs" / "img" / "pareto_demo.png"
    argv = ["demo", "--checkpoint", str(ckpt), "--data", str(val), "--max-images", "3", "--calib-images", "2",
            "--n-trials", "2", "--population", "2", "--out", str(tmp_path / "demo"), "--readme-image", str(image),
            "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 completed" in out and str((tmp_path / "demo" / "pareto.png").resolve()) in out
    assert image.read_bytes() == (tmp_path / "demo" / "pareto.png").read_bytes()
    study = optuna.load_study(study_name="demo", storage=get_storage(f"sqlite:///{tmp_path / 'demo' / 'study.db'}"))
    params = study.get_trials(states=(TrialState.COMPLETE,))[0].params
    assert {k.split("_p")[0] for k in params} == {"low_ratio"}  # the demo searches the paper's knob


def test_threshold_mode_costs_the_windows_the_model_recorded(tiny, tmp_path):
    """In threshold mode the windows are known only after running the model; the speedup must be the
    simulator's estimate of exactly that recorded assignment."""
    ckpt, val = tiny
    out = tmp_path / "thr"
    argv = ["sweep", "--checkpoint", str(ckpt), "--data", str(val), "--max-images", "3", "--calib-images", "2",
            "--n-trials", "2", "--mode", "threshold", "--search", "low", "--population", "2", "--baseline-points", "0",
            "--cost", "energy", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    study = optuna.load_study(study_name="mixaq", storage=get_storage(f"sqlite:///{out / 'study.db'}"))
    ev = Evaluator(ckpt, val, max_images=3, calib_images=2)
    ref = estimate("bitfusion", ev.arch, ev.image_hw, WindowAssignment.uniform(ev.arch, 8, 4))
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        point = DesignPoint.from_dict(trial_info(t)["point"])
        assert point.mode == "threshold" and set(t.params) == {"low_threshold_p0", "low_threshold_p1"}
        direct = ev.evaluate(QuantConfig(high_act_bits=8, low_act_bits=4, weight_bits=4),
                             MixConfig(mode="threshold", low_thresholds=point.low_thresholds,
                                       prune_thresholds=point.prune_thresholds))
        assert t.values[0] == pytest.approx(direct.ap, abs=1e-12)
        mine = estimate("bitfusion", ev.arch, ev.image_hw, direct.assignment)
        assert t.values[1] == pytest.approx(mine.speedup_over(ref)["energy"], rel=1e-9)


def test_sweep_observer_reaches_every_evaluation(tiny, tmp_path, capsys):
    """`--observer repq` calibrates every trial with RepQ-ViT PTQ (and is part of the fingerprint)."""
    ckpt, val = tiny
    out = tmp_path / "run"
    argv = ["sweep", "--checkpoint", str(ckpt), "--data", str(val), "--max-images", "4", "--calib-images", "2",
            "--n-trials", "2", "--population", "2", "--observer", "repq", "--baseline-points", "0",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    study = optuna.load_study(study_name="mixaq", storage=get_storage(f"sqlite:///{out / 'study.db'}"))
    ev = Evaluator(ckpt, val, max_images=4, calib_images=2)
    trial = study.get_trials(states=(TrialState.COMPLETE,))[0]
    point = DesignPoint.from_dict(trial_info(trial)["point"])
    mix = MixConfig(low_ratios=point.low_ratios, prune_ratios=point.prune_ratios)
    direct = ev.evaluate(QuantConfig(8, 4, 4, observer="repq"), mix)
    assert trial.values[0] == pytest.approx(direct.ap, abs=1e-12)
    assert study.user_attrs["mixaq.context"]["fingerprint"]["observer"] == "repq"
