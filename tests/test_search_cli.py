"""`mixaq sweep|plot` input errors are one line; `mixaq plot` redraws a study from its storage."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, run_sweep
from mixaq.search.cli import main

REPO = Path(__file__).resolve().parent.parent


def _one_line_error(capsys, argv: list[str], *needles: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("url, needle", [
    ("foo://bar", "unsupported URL scheme 'foo'"),
    ("not-a-url", "is not a storage URL"),
    ("sqlite:////no/such/dir/study.db", "directory '/no/such/dir'"),
    ("journal:/no/such/dir/study.log", "directory '/no/such/dir'"),
    ("postgresql://user:secret@127.0.0.1:1/db", "cannot open 'postgresql://user:***@127.0.0.1:1/db'"),
])
def test_bad_storage_url_is_one_line(capsys, tmp_path, url, needle):
    err = _one_line_error(capsys, ["plot", "--storage", url, "--study", "s", "--out", str(tmp_path)],
                          "mixaq plot: error: storage:", needle)
    assert "secret" not in err
    _one_line_error(capsys, ["sweep", "--storage", url, "--out", str(tmp_path / "o")], "mixaq sweep: error: storage:")


def test_plot_does_not_create_a_missing_database(capsys, tmp_path):
    _one_line_error(capsys, ["plot", "--storage", f"sqlite:///{tmp_path / 'typo.db'}", "--out", str(tmp_path)],
                    "database file", "does not exist")
    assert not (tmp_path / "typo.db").exists()


def test_bad_spec_name_is_one_line(capsys, tmp_path):
    _one_line_error(capsys, ["sweep", "--spec", "no_such_spec", "--out", str(tmp_path)], "mixaq sweep: error:",
                    "no_such_spec")


def test_plot_unknown_study_lists_the_ones_there(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    settings = SweepSettings(space=SearchSpace(num_pairs=2), spec="bitfusion", population_size=4)
    run_sweep(settings, SyntheticAccuracy(), url, "present", 2, progress=False)
    _one_line_error(capsys, ["plot", "--storage", url, "--study", "absent", "--out", str(tmp_path)],
                    "study 'absent' not found", "studies: present")


def test_plot_redraws_what_the_sweep_wrote(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    settings = SweepSettings(space=SearchSpace(num_pairs=2, search_prune=True), spec="bitfusion", cost="cycles",
                             population_size=4, max_map_drop=0.1)
    r = run_sweep(settings, SyntheticAccuracy(), url, "p", 8, out_dir=tmp_path / "sweep", progress=False)
    names = {p.name for p in r.outputs}
    assert {"trials.csv", "pareto.csv", "baselines.csv", "breakdown.csv", "pareto.png", "pareto.svg",
            "breakdown.png", "breakdown.svg", "speedup_bops_vs_cycles.png", "speedup_bops_vs_cycles.svg"} <= names
    assert main(["plot", "--storage", url, "--study", "p", "--out", str(tmp_path / "redraw")]) == 0
    for table in ("trials.csv", "pareto.csv", "baselines.csv", "breakdown.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "sweep" / table), pd.read_csv(tmp_path / "redraw" / table))
    trials = pd.read_csv(tmp_path / "redraw" / "trials.csv")
    assert (trials["state"] == "COMPLETE").sum() == 8
    front = pd.read_csv(tmp_path / "redraw" / "pareto.csv")
    assert len(front) >= 1 and front["feasible"].all()
    # The objective column is the cycles speedup the study was created with.
    assert (front["speedup"] == front["speedup_cycles"]).all()
    # The breakdown sums to the chosen point's totals: reference / chosen = its cycles speedup.
    bd = pd.read_csv(tmp_path / "redraw" / "breakdown.csv")
    # With --max-map-drop the chosen point is the fastest (feasible) front point.
    chosen = trials.loc[trials["number"] == int(front.iloc[-1]["number"])]
    assert bd["reference"].sum() / bd["chosen"].sum() == pytest.approx(float(chosen["speedup_cycles"].iloc[0]))
    baselines = pd.read_csv(tmp_path / "redraw" / "baselines.csv")
    assert {"float", "uniform_high", "uniform_low"} <= set(baselines["name"])
    assert baselines.loc[baselines["name"] == "uniform_high", "speedup"].iloc[0] == pytest.approx(1.0)


def test_importing_the_cli_stays_light():
    code = ("import sys, search, search.cli; heavy = [m for m in ('torch', 'optuna', 'matplotlib') "
            "if m in sys.modules]; print(heavy); assert not heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
