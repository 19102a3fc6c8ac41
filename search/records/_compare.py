"""Several studies' fronts side by side (`mixaq plot --compare A B ...`), as plain tables first."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from mixaq.core._errors import MixaqError

from mixaq.search.records._record import StudyRecord, build_record

__all__ = ["CompareRecord", "build_compare", "resolve_study_ref"]


@dataclass(frozen=True)
class CompareRecord:
    labels: tuple[str, ...]
    records: tuple[StudyRecord, ...] = field(repr=False)

    @property
    def fronts(self) -> pd.DataFrame:
        """Every study's front, one table, with a `study` column."""
        parts = [r.front.assign(study=label) for label, r in zip(self.labels, self.records)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    @property
    def hypervolumes(self) -> pd.DataFrame:
        parts = [r.hypervolume.assign(study=label) for label, r in zip(self.labels, self.records)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    @property
    def same_reference(self) -> bool:
        return len({r.hv_reference for r in self.records}) == 1


def resolve_study_ref(ref: str) -> tuple[str, str | None]:
    """`RUN_DIR`, `STORAGE_URL` or either with `#STUDY` -> (storage URL, study name or None)."""
    from mixaq.search.study._storage import default_storage_url

    base, _, study = ref.partition("#")
    if "://" in base or base.startswith("journal:"):
        return base, study or None
    path = Path(base)
    if not (path / "study.db").is_file():
        raise MixaqError(f"--compare {ref!r}: not a storage URL and no study.db in that directory")
    return default_storage_url(path), study or None


def build_compare(refs: Sequence[str], labels: Sequence[str] | None = None) -> CompareRecord:
    """Load each study (`resolve_study_ref`) and build its record; their objectives must agree."""
    import optuna

    from mixaq.search.study._storage import get_storage, redact_url

    if len(refs) < 2:
        raise MixaqError(f"--compare needs at least two studies, got {len(refs)}")
    if labels is not None and len(labels) != len(refs):
        raise MixaqError(f"--labels gives {len(labels)} names for {len(refs)} studies")
    records: list[StudyRecord] = []
    names: list[str] = []
    for ref in refs:
        url, name = resolve_study_ref(ref)
        storage = get_storage(url, create=False)
        studies = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        if name is None:
            if len(studies) != 1:
                raise MixaqError(f"--compare {ref!r}: {len(studies)} studies in {redact_url(url)!r} "
                                 f"({', '.join(studies) or 'none'}); name one as {ref}#STUDY")
            name = studies[0]
        elif name not in studies:
            raise MixaqError(f"--compare {ref!r}: no study {name!r} (studies: {', '.join(studies) or 'none'})")
        records.append(build_record(optuna.load_study(study_name=name, storage=storage)))
        names.append(_default_label(ref, name, records[-1]))
    first = records[0].settings.objectives
    for ref, rec in zip(refs, records):
        if rec.settings.objectives != first:
            raise MixaqError(f"--compare: {ref!r} optimizes {', '.join(rec.settings.objectives)}, "
                             f"the first study {', '.join(first)}; compare studies with the same --objectives")
    return CompareRecord(tuple(labels) if labels is not None else tuple(names), tuple(records))


def _default_label(ref: str, name: str, rec: StudyRecord) -> str:
    where = ref.partition("#")[0].rstrip("/").rsplit("/", 1)[-1]
    space = rec.settings.to_dict().get("hw_space")
    hardware = f"space {space['name']}" if space else rec.settings.spec
    return f"{where}:{name} ({hardware})" if where != name else f"{name} ({hardware})"


def compare_tables(record: CompareRecord) -> dict[str, Any]:
    return {"compare_fronts.csv": record.fronts, "compare_hypervolume.csv": record.hypervolumes}
