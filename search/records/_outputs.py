"""Write a study's tables (CSV) and plots (PNG + SVG) into a directory."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from mixaq.search.records._plots import render_plots
from mixaq.search.records._record import StudyRecord, build_record

from mixaq.core._paths import check_out_dir

__all__ = ["write_outputs", "write_record", "write_tables", "check_out_dir"]


def write_tables(record: StudyRecord, out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {"trials.csv": record.trials, "pareto.csv": record.front, "baselines.csv": record.baselines,
              "breakdown.csv": record.breakdown, "hypervolume.csv": record.hypervolume}
    if record.hw_space is not None:
        tables["hw_points.csv"] = record.points
    paths = []
    for name, df in tables.items():
        path = out / name
        df.to_csv(path, index=False)
        paths.append(path)
    if record.hw_space is not None:
        paths += write_front_specs(record, out / "specs")
    return paths


def write_front_specs(record: StudyRecord, out_dir: Path) -> list[Path]:
    """specs/<name>.yaml of every hardware point on the front: `mixaq cost --spec` reruns it exactly."""
    import yaml

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for hw_index in dict.fromkeys(int(i) for i in record.front["hw_index"]):
        spec = record.hw_space.spec(hw_index)
        path = out_dir / f"{spec.name}.yaml"
        path.write_text(f"# hardware space {record.hw_space.name}, point {hw_index}, content hash "
                        f"{spec.content_hash()}\n" + yaml.safe_dump(spec.to_mapping(), sort_keys=False))
        paths.append(path)
    return paths


def write_record(record: StudyRecord, out_dir: str | Path) -> list[Path]:
    """The tables and plots of a built record."""
    return write_tables(record, out_dir) + render_plots(record, out_dir)


def write_outputs(study: Any, out_dir: str | Path, pick_trial: int | None = None) -> list[Path]:
    """trials.csv, pareto.csv, baselines.csv, breakdown.csv, hypervolume.csv and the plots of `search.records._plots`."""
    return write_record(build_record(study, pick_trial=pick_trial), out_dir)
