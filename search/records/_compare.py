"""Several studies' fronts side by side (`mixaq plot --compare A B ...`), as plain tables first."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from mixaq.core._errors import MixaqError

from mixaq.search.records._record import StudyRecord, build_record

__all__ = ["CompareRecord", "build_compare", "identity", "mixed_identities", "resolve_study_ref"]


@dataclass(frozen=True)
class CompareRecord:
    labels: tuple[str, ...]
    records: tuple[StudyRecord, ...] = field(repr=False)
    mixed: tuple[str, ...] = ()  # what differs between the studies (allowed with --allow-mixed), in words

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
        raise MixaqError(f"--compare {base!r}: not a storage URL and no study.db in that directory")
    return default_storage_url(path), study or None


def identity(rec: StudyRecord) -> dict[str, str]:
    """What a study's numbers are about, by content: model, image set (and count), calibration, hardware."""
    fp = rec.context.get("fingerprint") or {}
    space = rec.settings.to_dict().get("hw_space")
    return {
        "model": str(fp.get("checkpoint_sha1") or fp.get("synthetic") or "?"),
        "image set": f"{fp.get('data_sha1') or fp.get('seed', '?')}" + (f" ({fp['eval_images']} images)"
                                                                         if fp.get("eval_images") else ""),
        "calibration": f"{fp.get('observer', 'minmax')}" + (f", {fp['calib_images']} images" if fp.get("calib_images")
                                                           else ""),
        "spec": f"space {space['name']}" if space else str(rec.settings.spec),
    }


def mixed_identities(records: Sequence[StudyRecord], labels: Sequence[str]) -> list[str]:
    """One phrase per identity entry that differs: 'image set: a=1a2b (16 images), b=3c4d (32 images)'."""
    ids = [identity(r) for r in records]
    out = []
    for key in ids[0]:
        values = [i[key] for i in ids]
        if len(set(values)) > 1:
            out.append(f"{key}: " + ", ".join(f"{label}={v}" for label, v in zip(labels, values)))
    return out


def build_compare(refs: Sequence[str], labels: Sequence[str] | None = None,
                  allow_mixed: bool = False, hv_ref: dict | None = None) -> CompareRecord:
    """Load each study (`resolve_study_ref`) and build its record; their objectives must agree, and
    their model, image set, calibration and spec too unless `allow_mixed` (then the record says what differs)."""
    import optuna

    from mixaq.search.study._storage import get_storage, redact_url

    refs = [str(r) for r in refs]
    if len(refs) < 2:
        raise MixaqError(f"--compare needs at least two studies, got {len(refs)}")
    if labels is not None and len(labels) != len(refs):
        raise MixaqError(f"--labels gives {len(labels)} names for {len(refs)} studies")
    records: list[StudyRecord] = []
    names: list[str] = []
    for ref in refs:
        url, name = resolve_study_ref(ref)
        shown = redact_url(ref)
        storage = get_storage(url, create=False)
        studies = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        if name is None:
            if len(studies) != 1:
                raise MixaqError(f"--compare {shown!r}: {len(studies)} studies in {redact_url(url)!r} "
                                 f"({', '.join(studies) or 'none'}); name one as {shown}#STUDY")
            name = studies[0]
        elif name not in studies:
            raise MixaqError(f"--compare {shown!r}: no study {name!r} (studies: {', '.join(studies) or 'none'})")
        records.append(build_record(optuna.load_study(study_name=name, storage=storage), hv_ref=hv_ref))
        names.append(_default_label(ref, name, records[-1]))
    first = records[0].settings.objectives
    for ref, rec in zip(refs, records):
        if rec.settings.objectives != first:
            raise MixaqError(f"--compare: {redact_url(ref)!r} optimizes {', '.join(rec.settings.objectives)}, "
                             f"the first study {', '.join(first)}; compare studies with the same --objectives")
    shown = tuple(labels) if labels is not None else tuple(names)
    mixed = mixed_identities(records, shown)
    if mixed and not allow_mixed:
        raise MixaqError(f"--compare: the studies were not measured alike ({'; '.join(mixed)}), so their gap is "
                         "not the method's; compare studies of one model, image set and spec, or pass --allow-mixed")
    return CompareRecord(shown, tuple(records), tuple(mixed))


def _default_label(ref: str, name: str, rec: StudyRecord) -> str:
    """`<last path part or database>:<study> (<hardware>)`, never a URL's user-info (a URL without a
    database name would otherwise end in `user:password@host:port`)."""
    from mixaq.search.study._storage import redact_url

    base = ref.partition("#")[0].rstrip("/")
    scheme, sep, rest = base.partition("://")
    if sep and scheme.lower() != "sqlite":
        rest = rest.rsplit("@", 1)[-1].partition("?")[0]  # host[:port][/db]: user-info dropped
        where = rest.rsplit("/", 1)[-1] if "/" in rest else rest
    else:
        where = base.rsplit("/", 1)[-1]
    where = redact_url(where)
    space = rec.settings.to_dict().get("hw_space")
    hardware = f"space {space['name']}" if space else rec.settings.spec
    return f"{where}:{name} ({hardware})" if where != name else f"{name} ({hardware})"


def compare_tables(record: CompareRecord) -> dict[str, Any]:
    return {"compare_fronts.csv": record.fronts, "compare_hypervolume.csv": record.hypervolumes}
