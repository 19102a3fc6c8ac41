"""Write a study's tables (CSV) and plots (PNG + SVG) into a directory."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from mixaq.search._plots import render_plots
from mixaq.search._record import StudyRecord, build_record

from mixaq.simulator._paths import check_out_dir

__all__ = ["write_outputs", "write_tables", "check_out_dir"]


def write_tables(record: StudyRecord, out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {"trials.csv": record.trials, "pareto.csv": record.front, "baselines.csv": record.baselines,
              "breakdown.csv": record.breakdown}
    paths = []
    for name, df in tables.items():
        path = out / name
        df.to_csv(path, index=False)
        paths.append(path)
    return paths


def write_outputs(study: Any, out_dir: str | Path, pick_trial: int | None = None) -> list[Path]:
    """trials.csv, pareto.csv, baselines.csv, breakdown.csv and the plots of `search._plots`."""
    record = build_record(study, pick_trial=pick_trial)
    return write_tables(record, out_dir) + render_plots(record, out_dir)
