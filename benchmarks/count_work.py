"""Work done on the main path of `mixaq sweep`, counted: reads of the spec and hardware-space files per
command (before the first trial and in all), and per trial the study reads (`get_trials`), cost
evaluations, settings parses and front tables. The accuracy side is the analytic stand-in
(`SyntheticAccuracy`), so the counts are the search machinery's own; everything else is the real CLI.

    python -m benchmarks.count_work [--n-trials 30] [--hw-space]
"""
from __future__ import annotations

import argparse
import cProfile
import collections
import pstats
import tempfile
from pathlib import Path

__all__ = ["count", "main"]

# (module file suffix, function name) -> the label printed.
_FUNCTIONS = {
    ("optuna/study/study.py", "get_trials"): "get_trials",
    ("search/study/_study.py", "key_and_costs"): "key_and_costs",
    ("search/space/_cost.py", "score_assignments"): "CostModel.score_assignments",
    ("search/space/_settings.py", "from_dict"): "SweepSettings.from_dict",
    ("search/space/_trials.py", "completed_frame"): "completed_frame",
    ("search/records/_record.py", "_trial_rows"): "_trial_rows",
}


def count(n_trials: int = 30, hw_space: bool = False) -> dict[str, float]:
    """Counts of one `mixaq sweep` of `n_trials` demo-like trials (SQLite storage in a temp dir)."""
    from mixaq.search import SyntheticAccuracy
    from mixaq.search.cli import main as cli_main
    from mixaq.search.space import _accuracy
    from mixaq.search.study._study import StudyHandle

    reads: collections.Counter[str] = collections.Counter()
    before_first_trial: dict[str, int] = {}
    original_read_bytes = Path.read_bytes
    original_objective = StudyHandle.objective

    def read_bytes(self: Path) -> bytes:
        reads[self.name] += 1
        return original_read_bytes(self)

    def objective(self: StudyHandle, trial) -> tuple[float, ...]:  # noqa: ANN001
        if not before_first_trial:
            before_first_trial.update(reads)
        return original_objective(self, trial)

    class _Factory:
        """`EvaluatorFactory`'s signature, building the analytic stand-in."""

        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            pass

        def __call__(self):  # noqa: ANN204 (an AccuracyFn)
            return SyntheticAccuracy()()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        argv = ["sweep", "--out", str(Path(tmp) / "run"), "--data", str(data), "--n-trials", str(n_trials),
                "--max-map-drop", "0.05", "--no-progress", "--search", "low,prune"]
        if hw_space:
            argv += ["--hw-space", "coexplore"]
        saved = _accuracy.EvaluatorFactory
        Path.read_bytes, StudyHandle.objective, _accuracy.EvaluatorFactory = read_bytes, objective, _Factory
        profile = cProfile.Profile()
        try:
            profile.enable()
            rc = cli_main(argv)
            profile.disable()
        finally:
            Path.read_bytes, StudyHandle.objective, _accuracy.EvaluatorFactory = original_read_bytes, original_objective, saved
        assert rc == 0, rc
        import optuna

        study = optuna.load_study(study_name="mixaq", storage=f"sqlite:///{Path(tmp) / 'run' / 'study.db'}")
        trials = len(study.get_trials(deepcopy=False))
    calls = collections.Counter()
    for (filename, _, name), row in pstats.Stats(profile).stats.items():
        for (suffix, function), label in _FUNCTIONS.items():
            if filename.endswith(suffix) and name == function:
                calls[label] += row[1]  # primitive + recursive calls
    spec_files = [n for n in reads if n.endswith(".yaml")]
    out: dict[str, float] = {"trials (every state)": trials}
    for name in sorted(spec_files):
        out[f"reads of {name} before the first trial"] = before_first_trial.get(name, 0)
        out[f"reads of {name} in all"] = reads[name]
    for label in _FUNCTIONS.values():
        out[f"{label} calls"] = calls[label]
        out[f"{label} per trial"] = round(calls[label] / max(trials, 1), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--hw-space", action="store_true", help="co-explore the shipped `coexplore` space")
    args = parser.parse_args(argv)
    for key, value in count(args.n_trials, args.hw_space).items():
        print(f"{key:<52} {value:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
