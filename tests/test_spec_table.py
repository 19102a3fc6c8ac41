"""The spec's field table (simulator/_spec.py `_SCHEMA`) and the dataclass agree: one field each,
the same defaults and types, and every numeric field has one sign rule."""
from __future__ import annotations

import dataclasses
import typing

from mixaq.simulator import _spec
from mixaq.simulator._spec import AcceleratorSpec


def _fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(AcceleratorSpec) if f.name != "source"}


def test_every_field_is_in_the_schema_once():
    flats = [flat for flat, _, _ in _spec._SCHEMA.values()]
    assert sorted(flats) == sorted(_fields())


def test_schema_defaults_are_the_dataclass_defaults():
    fields = _fields()
    for path, (flat, _, default) in _spec._SCHEMA.items():
        f = fields[flat]
        if default is _spec._REQUIRED:
            assert f.default is dataclasses.MISSING, path
        else:
            assert f.default == default and type(f.default) is type(default), path


def test_schema_types_are_the_annotations():
    hints = typing.get_type_hints(AcceleratorSpec)
    for path, (flat, kind, _) in _spec._SCHEMA.items():
        assert kind in typing.get_args(hints[flat]) or hints[flat] is kind, (path, hints[flat], kind)


def test_every_numeric_field_has_one_sign_rule():
    numeric = set(_spec._NUMERIC)
    positive, non_negative = set(_spec._POSITIVE), set(_spec._NON_NEGATIVE)
    assert not positive & non_negative
    assert numeric == positive | non_negative
