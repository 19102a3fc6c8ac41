"""YAML files users hand us (specs, arch files): one-line errors naming the file, YAML 1.2 numbers.

PyYAML implements YAML 1.1, where `5e2` (no dot) is a string; YAML 1.2, JSON and every user expect
a number, so the loader here resolves it as one. A directory, a non-UTF-8 file or a syntax error is
a `MixaqError` naming the file (and the line).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mixaq.core._errors import MixaqError

__all__ = ["read_yaml"]

# YAML 1.2 core-schema floats, including exponents without a dot (`5e2`, `-1E-3`).
_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)

_LOADER: Any = None


def _loader() -> Any:
    global _LOADER
    if _LOADER is None:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        # Copy before adding: SafeLoader's own table stays untouched for everyone else.
        Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
        Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
        _LOADER = Loader
    return _LOADER


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed YAML of `path`; `what` names the kind of file in messages ("spec", "arch file")."""
    import yaml

    path = Path(path)
    if path.is_dir():
        raise MixaqError(f"{what} {path} is a directory, not a YAML file")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MixaqError(f"{what} {path}: not UTF-8 text (undecodable byte at offset {exc.start})") from None
    except OSError as exc:
        raise MixaqError(f"{what} {path}: cannot be read ({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise MixaqError(f"{what} {path}:{where} not valid YAML ({problem})") from None
