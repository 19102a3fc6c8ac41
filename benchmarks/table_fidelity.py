"""Multi-fidelity accuracy on the embedded default model: the same sweep with and without
`--fidelity`, compared on full evaluations, images evaluated, and the front's hypervolume at equal
image budgets. Runs both sweeps (resuming if their studies exist), then prints a table and draws
hypervolume against images evaluated.

    python -m benchmarks.table_fidelity --out runs/fidelity            # 60 trials each, 16,64 images
    python -m benchmarks.table_fidelity --out runs/fidelity --n-trials 20 --fidelity 8,32
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["main"]


def _sweep(out: Path, study: str, n_trials: int, fidelity: tuple[int, ...] | None, extra: list[str]) -> None:
    from mixaq.search.cli import main as mixaq

    argv = ["sweep", "--out", str(out), "--study", study, "--n-trials", str(n_trials), "--max-images",
            str(max(fidelity) if fidelity else _TOP[0]), "--calib-images", "16", "--max-map-drop", "0.03",
            "--population", "8", "--baseline-points", "0", "--no-progress",
            "--hv-ref", "map=0", *extra]  # the reference its table and figure state
    if fidelity:
        argv += ["--fidelity", ",".join(map(str, fidelity))]
    code = mixaq(argv)
    if code:
        raise SystemExit(code)


_TOP: list[int] = [64]


def _images(trials: pd.DataFrame, top: int) -> pd.Series:
    """Images each trial evaluated (0 for cache hits and screened proposals), by trial number."""
    if "images_evaluated" in trials:
        return trials["images_evaluated"].fillna(0.0)
    return np.where(trials["outcome"] == "evaluated", float(top), 0.0)


def summarize(run: Path, top: int) -> tuple[dict, pd.DataFrame]:
    trials = pd.read_csv(run / "trials.csv").sort_values("number")
    hv = pd.read_csv(run / "hypervolume.csv")
    trials["images"] = _images(trials, top)
    trials["cum_images"] = trials["images"].cumsum()
    curve = hv.merge(trials[["number", "cum_images"]], on="number")
    evaluated = trials[trials["outcome"] == "evaluated"]
    full = int(evaluated["fidelity_top"].astype(bool).sum()) if "fidelity_top" in evaluated else len(evaluated)
    row = {"run": run.name, "completed": int((trials["state"] == "COMPLETE").sum()),
           "evaluated proposals": len(evaluated), "full evaluations": full,
           "images evaluated": int(trials["images"].sum()), "final hypervolume": float(hv["hypervolume"].iloc[-1]),
           "front": int(trials["on_front"].astype(bool).sum())}
    return row, curve


def hv_at(curve: pd.DataFrame, budget: float) -> float:
    """Hypervolume after the last completed trial whose cumulative images stay within `budget`."""
    within = curve[curve["cum_images"] <= budget + 1e-9]
    return float(within["hypervolume"].iloc[-1]) if len(within) else 0.0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/fidelity")
    p.add_argument("--n-trials", type=int, default=60)
    p.add_argument("--fidelity", default="16,64")
    p.add_argument("--only", choices=("off", "on"), default=None, help="run one of the two sweeps")
    args, extra = p.parse_known_args(argv)
    fidelity = tuple(int(v) for v in args.fidelity.split(","))
    _TOP[0] = fidelity[-1]
    out = Path(args.out)
    runs = {"off": (out / "full", None), "on": (out / "fidelity", fidelity)}
    for name, (path, fid) in runs.items():
        if args.only in (None, name):
            _sweep(path, f"fidelity-{name}", args.n_trials, fid, extra)
    if not all((path / "trials.csv").is_file() for path, _ in runs.values()):
        return
    (off, off_curve), (on, on_curve) = (summarize(path, fidelity[-1]) for path, _ in runs.values())
    budget = min(off["images evaluated"], on["images evaluated"])
    off["hypervolume at the smaller budget"] = hv_at(off_curve, budget)
    on["hypervolume at the smaller budget"] = hv_at(on_curve, budget)
    table = pd.DataFrame([off, on])
    print(f"images per full evaluation: {fidelity[-1]}; smaller image budget of the two runs: {budget:,}")
    print(table.to_markdown(index=False, floatfmt=".4f"))
    print(f"full evaluations saved: {off['full evaluations'] - on['full evaluations']} of {off['full evaluations']}; "
          f"images saved: {off['images evaluated'] - on['images evaluated']:,}")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    for label, curve in (("full set every time", off_curve), (f"--fidelity {args.fidelity}", on_curve)):
        ax.step(curve["cum_images"], curve["hypervolume"], where="post", label=label)
    ax.axvline(budget, color="gray", ls=":", lw=1)
    ax.set_xlabel("images evaluated by the sweep's trials")
    ax.set_ylabel("hypervolume of the feasible front (ref mAP 0, speedup 1)")
    ax.set_title(f"{args.n_trials} trials each, embedded default model", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(out / "hypervolume_vs_images.png", dpi=150, bbox_inches="tight")
    print(f"wrote {out / 'hypervolume_vs_images.png'}")


if __name__ == "__main__":
    main()
