"""Torch-free helpers every package shares: lazy package exports, mapping -> dataclass with
unknown-field errors, JSON cleaning, and YAML config sections. They live here, at the lowest layer, so `models/` and
`search/` import one definition each (see docs/architecture.md, "One module per shared rule")."""
from __future__ import annotations

import importlib
import math
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TypeVar

from mixaq.core._errors import MixaqError

__all__ = ["check_fields", "dataclass_from_mapping", "json_ready", "lazy_exports", "read_config_sections"]

T = TypeVar("T")


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for a package whose public names load on first use.

    `exports` maps a public name to the module that defines it (absolute, or relative to `package`
    when it starts with "."). Importing the package then costs nothing: `mixaq <cmd> --help` and
    argument errors never pay for the deep-learning, Optuna or plotting imports.
    """
    where = {name: (package + module if module.startswith(".") else module) for name, module in exports.items()}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        package_module = importlib.import_module(package)
        value = getattr(importlib.import_module(where[name]), name)
        setattr(package_module, name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__


def check_fields(data: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    """One-line `MixaqError` naming the unknown keys of `data` (and the known ones)."""
    known = list(known)
    unknown = set(data) - set(known)
    if unknown:
        raise MixaqError(f"{where}: unknown field(s) {sorted(unknown)} (known: {sorted(known)})")


def dataclass_from_mapping(cls: type[T], data: Mapping[str, Any] | None, where: str) -> T:
    """`cls(**data)` for a dataclass: unknown keys and wrong arguments are one-line `MixaqError`s."""
    data = dict(data or {})
    check_fields(data, (f.name for f in fields(cls)), where)
    try:
        return cls(**data)
    except TypeError as exc:
        raise MixaqError(f"{where}: {exc}") from None
    except MixaqError as exc:  # a field's own check: say which file and section it came from
        raise MixaqError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from None


def json_ready(obj: Any) -> Any:
    """`obj` as plain JSON values: dataclasses and mappings -> dicts with str keys, tuples and arrays -> lists,
    numpy scalars -> Python numbers, NaN/inf -> None. `json.loads(json.dumps(x))` of the result is
    the result itself, so what is stored compares equal to what a storage gives back."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: json_ready(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if getattr(obj, "ndim", 0) and hasattr(obj, "tolist"):  # arrays (numpy and alike)
        return json_ready(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):  # numpy-style scalars
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def read_config_sections(path: str | Path, known: tuple[str, ...], required: tuple[str, ...] = ("data",)) -> dict[str, Any]:
    """A YAML config file as a mapping of sections, one-line errors naming the file (the
    `mixaq train|qat|adapt` configs)."""
    from mixaq.core._yaml import read_yaml

    path = Path(path)
    raw = read_yaml(path, "config")  # a directory, non-UTF-8 bytes or bad YAML: one line naming the file
    if not isinstance(raw, dict):
        raise MixaqError(f"{path}: a config must be a mapping with {'/'.join(known)} sections")
    unknown = set(raw) - set(known)
    if unknown:
        raise MixaqError(f"{path}: unknown section(s) {sorted(unknown)} (known: {', '.join(known)})")
    for section in required:
        if section not in raw:
            raise MixaqError(f"{path}: missing {section!r} section")
    return raw
