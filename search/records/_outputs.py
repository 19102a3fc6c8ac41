"""Write a study's tables (CSV) and plots (PNG + SVG) into a directory.

Outputs are staged: every file is written into a hidden directory inside the output directory and
moved into place (one `os.replace` per file) only once all of them were written, so a full disk or
a crash mid-write leaves the earlier run's files as they were, never a truncated plot next to
fresh tables. A stamp (`.mixaq-outputs.json`) names the study the files belong to; writing another
study's outputs into the same directory is refused before any work.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from mixaq.search.records._plots import render_plots
from mixaq.search.records._record import StudyRecord, build_record
from mixaq.search.records._recost import ARCH_FILE, arch_label, write_arch

from mixaq.core._errors import MixaqError
from mixaq.core._paths import check_out_dir, path_inside

__all__ = ["write_outputs", "write_record", "write_tables", "check_out_dir", "check_out_owner", "output_owner",
           "staged_outputs", "OWNER_FILE"]

OWNER_FILE = ".mixaq-outputs.json"
_STAGE_PREFIX = ".mixaq-staging-"


def output_owner(storage_url: str, study_name: str) -> dict[str, Any]:
    """Who a directory's outputs belong to: the study name and its storage (path resolved, secrets
    redacted), the same whichever way the storage was spelled."""
    from mixaq.search.study._storage import redact_url

    url = str(storage_url)
    for prefix in ("sqlite:///", "journal:"):
        if url.startswith(prefix) and ":memory:" not in url:
            rest = url[len(prefix):]
            rest = rest[2:] if prefix == "journal:" and rest.startswith("//") else rest
            url = prefix + str(Path(rest).resolve())
    return {"study": str(study_name), "storage": redact_url(url)}


def _describe(owner: dict[str, Any]) -> str:
    if "compare" in owner:
        return "a --compare of " + ", ".join(map(str, owner["compare"]))[:200]
    return f"study {str(owner.get('study'))[:80]!r} in {str(owner.get('storage'))[:200]!r}"


def check_out_owner(out_dir: str | Path, owner: dict[str, Any], flag: str = "--out") -> None:
    """One-line `MixaqError` when `out_dir` holds the outputs of another study (or comparison)."""
    stamp = Path(out_dir) / OWNER_FILE
    if not stamp.is_file():
        return
    try:
        theirs = json.loads(stamp.read_text())
    except (OSError, ValueError):
        theirs = None
    if not isinstance(theirs, dict):
        raise MixaqError(f"{flag} {str(out_dir)!r}: {OWNER_FILE} is unreadable; remove it if the files there "
                         "may be replaced")
    if theirs != owner:
        raise MixaqError(f"{flag} {str(out_dir)!r} holds the outputs of {_describe(theirs)}, not of "
                         f"{_describe(owner)}; choose another {flag}")


def staged_outputs(out_dir: str | Path, owner: dict[str, Any] | None,
                   write: Callable[[Path], list[Path]]) -> list[Path]:
    """Run `write(stage)` into a fresh hidden directory inside `out_dir`; when it returns, move every
    file it wrote into `out_dir` (a folder, such as specs/, replaces the old one whole) and stamp the
    directory with `owner`. If `write` fails nothing in `out_dir` changed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        check_out_owner(out, owner)
    for old in out.glob(_STAGE_PREFIX + "*"):  # left by a run killed while staging
        shutil.rmtree(old, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=_STAGE_PREFIX, dir=out))
    try:
        staged = write(stage)
        if owner is not None:
            (stage / OWNER_FILE).write_text(json.dumps(owner, sort_keys=True) + "\n")
        for entry in stage.iterdir():
            entry.chmod(0o755 if entry.is_dir() else 0o644)
        final: list[Path] = []
        for path in staged:
            rel = path.relative_to(stage)
            final.append(out / rel)
        tops = [e for e in stage.iterdir() if e.name != OWNER_FILE]
        for entry in tops:
            target = out / entry.name
            if entry.is_dir():
                if target.is_dir():
                    trash = stage / f".old-{entry.name}"
                    os.replace(target, trash)
                os.replace(entry, target)
            else:
                os.replace(entry, target)
        if owner is not None:
            os.replace(stage / OWNER_FILE, out / OWNER_FILE)  # last: the stamp names what is there now
        return final
    finally:
        shutil.rmtree(stage, ignore_errors=True)



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
    if arch_label(record.context) == ARCH_FILE:  # pareto.csv's cost_command reads it
        paths.append(write_arch(record.context, out))
    return paths


def write_front_specs(record: StudyRecord, out_dir: Path) -> list[Path]:
    """specs/<name>.yaml of every hardware point on the front: `mixaq cost --spec` reruns it exactly."""
    import yaml

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for hw_index in dict.fromkeys(int(i) for i in record.front["hw_index"]):
        spec = record.hw_space.spec(hw_index)
        path = path_inside(out_dir, f"{spec.name}.yaml")  # the name comes from the user's space file
        path.write_text(f"# hardware space {record.hw_space.name}, point {hw_index}, content hash "
                        f"{spec.content_hash()}\n" + yaml.safe_dump(spec.to_mapping(), sort_keys=False))
        paths.append(path)
    return paths


def write_record(record: StudyRecord, out_dir: str | Path, owner: dict[str, Any] | None = None,
                 progress: bool = False) -> list[Path]:
    """The tables and plots of a built record, staged (`staged_outputs`): all of them or none."""
    return staged_outputs(out_dir, owner, lambda stage: write_tables(record, stage)
                          + render_plots(record, stage, progress=progress))


def write_outputs(study: Any, out_dir: str | Path, pick_trial: int | None = None,
                  owner: dict[str, Any] | None = None, hv_ref: dict[str, Any] | None = None,
                  progress: bool = False) -> list[Path]:
    """trials.csv, pareto.csv, baselines.csv, breakdown.csv, hypervolume.csv and the plots of `search.records._plots`."""
    return write_record(build_record(study, pick_trial=pick_trial, hv_ref=hv_ref), out_dir, owner, progress=progress)
