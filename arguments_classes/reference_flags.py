"""The reference project's setting names (reference_names.py), accepted and turned into ours.

They are parsed as flags of one hidden dataclass (absent from --help, which shows our names), each of our type
and bounds so validation.py checks them as it checks ours; then `translate` moves each given value onto our
setting. Precedence, strongest first: our own flag, a per-backend reference name, a stage-wide one.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import field, make_dataclass
from typing import Any, Callable, Optional, get_type_hints

from arguments_classes.reference_names import REFERENCE_NAMES


def reference_arguments(our_classes: list[type]) -> type:
    """The dataclass HfArgumentParser reads the reference names with: every field None unless given."""
    hints = {name: hint for cls in our_classes for name, hint in get_type_hints(cls, include_extras=True).items()}
    return make_dataclass("ReferenceArguments", [
        (name, Optional[hints[ref.ours] if ref.ours else ref.kind], field(default=None, metadata={"help": argparse.SUPPRESS}))
        for name, ref in REFERENCE_NAMES.items()
    ])


def show_value(value) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def translate(settings: dict[str, Any], given: set[str], chosen: dict[str, str], stage_of: dict[str, str],
              show: Callable[[str], str]):
    """(values of our settings to change, warnings, (name, why) of each given name that has no effect) for the
    reference names in `given`.

    `settings`: every setting by name as parsed; `chosen`: the chosen backend's name per stage; `stage_of`: every
    backend's stage by its name; `show`: a name as the user wrote it (`--name` or `"name"`)."""
    applicable, no_effect = [], []
    for name in (n for n in REFERENCE_NAMES if n in given):
        ref = REFERENCE_NAMES[name]
        stage = stage_of.get(ref.backend) if ref.backend is not None else None
        if stage is not None and chosen[stage] != ref.backend:
            no_effect.append((show(name), f"for --{stage} {ref.backend}; chosen: {chosen[stage]}"))
        else:
            applicable.append(name)
    updates, warnings = move_values([n for n in applicable if REFERENCE_NAMES[n].ours], settings, given, show)
    current = {**settings, **updates}
    for name in (n for n in applicable if not REFERENCE_NAMES[n].ours):
        ref = REFERENCE_NAMES[name]
        if not (ref.agrees and ref.agrees(settings[name], current.__getitem__)):
            no_effect.append((f"{show(name)} {show_value(settings[name])}", ref.why))
    return updates, warnings, no_effect


def move_values(names: list[str], settings: dict[str, Any], given: set[str], show: Callable[[str], str]):
    """(our settings' new values, a warning per conflict) from the reference names that set one of ours."""
    updates: dict[str, Any] = {}
    set_by: dict[str, str] = {}
    warnings = []
    # stage-wide names first, so that a per-backend name given beside one overrides it
    for name in sorted(names, key=lambda n: REFERENCE_NAMES[n].backend is not None):
        value, ours = settings[name], REFERENCE_NAMES[name].ours
        assert ours is not None  # `names` set one of ours
        if ours in given:
            if settings[ours] != value:
                warnings.append(f"{show(ours)} {show_value(settings[ours])} and {show(name)} {show_value(value)} both given: "
                                f"using {show(ours)}")
            continue
        if ours in updates and updates[ours] != value:
            warnings.append(f"{show(name)} {show_value(value)} and {show(set_by[ours])} {show_value(updates[ours])} both given: "
                            f"using {show(name)}, the {REFERENCE_NAMES[name].backend} one")
        updates[ours], set_by[ours] = value, name
    return updates, warnings
