"""`mixaq plot`: redraw a study's tables and plots from any storage."""
from __future__ import annotations

import argparse
from pathlib import Path

from mixaq.simulator._errors import MixaqError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", required=True, help="Optuna storage URL the sweep used")
    parser.add_argument("--study", default="mixaq", help="study name (default mixaq)")
    parser.add_argument("--out", required=True, help="directory for the CSV tables and PNG/SVG plots")
    parser.add_argument("--pick", type=int, default=None, help="trial whose per-layer breakdown is drawn")


def run(args: argparse.Namespace) -> int:
    import optuna
    from optuna.trial import TrialState

    from mixaq.search._outputs import check_out_dir, write_outputs
    from mixaq.search._storage import get_storage, redact_url
    from mixaq.search._sweep import quiet_optuna

    if args.pick is not None and args.pick < 0:
        raise MixaqError(f"--pick must be a trial number (>= 0), got {args.pick}")
    check_out_dir(args.out)
    with quiet_optuna():
        storage = get_storage(args.storage, create=False)
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        if args.study not in names:
            raise MixaqError(f"study {args.study!r} not found in {redact_url(args.storage)!r} "
                             f"(studies: {', '.join(names) or 'none'})")
        study = optuna.load_study(study_name=args.study, storage=storage)
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            raise MixaqError(f"study {args.study!r} has no completed trials yet: nothing to plot")
        paths = write_outputs(study, args.out, pick_trial=args.pick)
    print(f"wrote {len(paths)} files to {Path(args.out).resolve()}:")
    for p in paths:
        print(f"  {p.name}")
    return 0
