"""Every setting checked against its annotation once, at start-up, so a bad value is one line instead of a
server that starts and cannot serve. HfArgumentParser.parse_dict (a JSON config) does no type check at all,
and neither source checks ranges.

Bounds are declared in the field's annotation, `recv_port: Port = field(...)` with
`Port = Annotated[int, Range(1, 65535)]`, not in its metadata: HfArgumentParser hands every metadata key to
argparse.add_argument (which rejects unknown ones), while it reads annotations without their extras.
"""
from __future__ import annotations

import json
import math
import types
from dataclasses import dataclass, fields, replace
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from utils.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric setting: `min` and `max` inclusive, `above` exclusive (durations, rates)."""

    min: float | None = None
    max: float | None = None
    above: float | None = None

    def problem(self, value) -> str | None:
        if self.above is not None and not value > self.above:
            return f"must be greater than {self.above}"
        if self.min is not None and self.max is not None and not self.min <= value <= self.max:
            return f"must be between {self.min} and {self.max}"
        if self.min is not None and value < self.min:
            return f"must be at least {self.min}"
        if self.max is not None and value > self.max:
            return f"must be at most {self.max}"
        return None


@dataclass(frozen=True)
class Only:
    """The one value a setting accepts (the flag exists for the reference project's configs), and why."""

    value: Any
    why: str

    def problem(self, value) -> str | None:
        return None if value == self.value else f"must be {self.value} ({self.why})"


Port = Annotated[int, Range(1, 65535)]
PositiveInt = Annotated[int, Range(min=1)]
NonNegativeInt = Annotated[int, Range(min=0)]
PositiveFloat = Annotated[float, Range(above=0)]
NonNegativeFloat = Annotated[float, Range(min=0)]
Fraction = Annotated[float, Range(0, 1)]

_EXPECTED = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def checked(obj, source: str | None = None):
    """`obj` if every field fits its annotation, with JSON integers in float fields made floats (a copy: parsed
    objects are not mutated). `source` names a config file; without it the settings came from flags."""
    hints = get_type_hints(type(obj), include_extras=True)
    floats = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        kind, optional, bounds = describe(hints[f.name])
        name = f'{source}: "{f.name}"' if source else f"--{f.name}"
        if kind not in _EXPECTED or (value is None and optional):
            continue
        given = _show(value)
        if kind is float and type(value) is int:
            value = floats[f.name] = float(value)
        if not _fits(value, kind):
            raise ConfigError(f"{name} must be {_EXPECTED[kind]}{' or null' if optional else ''}, got {given}")
        problem = next(filter(None, (b.problem(value) for b in bounds)), None)
        if problem:
            raise ConfigError(f"{name} {problem}, got {given}")
    return replace(obj, **floats) if floats else obj


def describe(hint) -> tuple[Any, bool, list[Range | Only]]:
    """(base type, whether None is allowed, declared bounds) of an annotation such as Optional[PositiveInt]."""
    optional, bounds = False, []
    while True:
        if get_origin(hint) is Annotated:
            bounds += [m for m in hint.__metadata__ if isinstance(m, (Range, Only))]
            hint = hint.__origin__
        elif get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint):
            optional = True
            rest = [a for a in get_args(hint) if a is not type(None)]
            if len(rest) != 1:
                return hint, optional, bounds
            hint = rest[0]
        else:
            return hint, optional, bounds


def _fits(value, kind) -> bool:
    if kind is float:
        return isinstance(value, float) and not math.isnan(value)
    # bool is a subclass of int in Python, but `true` is not a count of anything
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _show(value) -> str:
    """The value as it was written in JSON (strings quoted), or as typed on the command line."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
