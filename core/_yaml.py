"""YAML files users hand us (specs, arch files): one-line errors naming the file, YAML 1.2 numbers.

PyYAML implements YAML 1.1, where `5e2` (no dot) is a string; YAML 1.2, JSON and every user expect
a number, so the loader here resolves it as one. A directory, a non-UTF-8 file or a syntax error is
a `MixaqError` naming the file (and the line).

Three things YAML allows are refused, because in a spec, space, arch or config file they are only
ever a mistake or an attack: aliases (`*name`; a kilobyte of nested aliases expands to gigabytes,
the "billion laughs"), a key given twice in one mapping (YAML keeps the last one silently: a second
`rows:` would change the array), and nesting deeper than 32 levels (Python recursion).
"""
from __future__ import annotations

import copy
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
_PARSED: dict[tuple[str, int, int], Any] = {}
_MAX_DEPTH = 32
_MAX_BYTES = 4 << 20  # a spec is a few hundred bytes; 4 MiB is no config file


class _Refused(Exception):
    """A construct the loader refuses; `read_yaml` turns it into a MixaqError naming the line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _loader() -> Any:
    global _LOADER
    if _LOADER is None:
        import yaml

        class Loader(yaml.SafeLoader):
            _depth = 0

            def compose_node(self, parent: Any, index: Any) -> Any:
                if self.check_event(yaml.AliasEvent):
                    event = self.peek_event()
                    raise _Refused(event.start_mark.line + 1, f"alias *{str(event.anchor)[:40]} "
                                   "(YAML aliases and anchors are not accepted: write the value out)")
                self._depth += 1
                try:
                    if self._depth > _MAX_DEPTH:
                        raise _Refused(self.peek_event().start_mark.line + 1,
                                       f"nested more than {_MAX_DEPTH} levels deep")
                    return super().compose_node(parent, index)
                finally:
                    self._depth -= 1

            def construct_mapping(self, node: Any, deep: bool = False) -> Any:
                seen: set[Any] = set()
                for key_node, _ in node.value:
                    key = self.construct_object(key_node, deep=True)
                    try:
                        duplicate = key in seen
                        seen.add(key)
                    except TypeError:  # an unhashable key: SafeLoader reports it itself
                        continue
                    if duplicate:
                        raise _Refused(key_node.start_mark.line + 1, f"key {str(key)[:40]!r} appears twice "
                                       "in one mapping")
                return super().construct_mapping(node, deep=deep)

        # Copy before adding: SafeLoader's own table stays untouched for everyone else.
        Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
        Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
        _LOADER = Loader
    return _LOADER


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed YAML of `path`; `what` names the kind of file in messages ("spec", "arch file")."""
    path = Path(path)
    if path.is_dir():
        raise MixaqError(f"{what} {path} is a directory, not a YAML file")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    # One read and parse per file and content version per process: a command that checks its
    # arguments, builds its settings and then runs reads each spec and space file once.
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _PARSED:
        _PARSED[key] = _parse(path, what)
    return copy.deepcopy(_PARSED[key])  # callers may edit what they get


def _parse(path: Path, what: str) -> Any:
    import yaml

    try:
        if path.stat().st_size > _MAX_BYTES:
            raise MixaqError(f"{what} {path}: {path.stat().st_size:,} bytes; a {what} is at most {_MAX_BYTES:,}")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MixaqError(f"{what} {path}: not UTF-8 text (undecodable byte at offset {exc.start})") from None
    except OSError as exc:
        raise MixaqError(f"{what} {path}: cannot be read ({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 (a SafeLoader subclass)
    except _Refused as exc:
        raise MixaqError(f"{what} {path}: line {exc.line}: {exc}") from None
    except RecursionError:
        raise MixaqError(f"{what} {path}: nested too deep") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise MixaqError(f"{what} {path}:{where} not valid YAML ({problem})") from None
