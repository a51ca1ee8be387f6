"""The errors a user can fix, and how an exception becomes the one line they read."""

from __future__ import annotations


class ConfigError(Exception):
    """A problem the user can fix (bad flag, missing model or package, busy port): shown as one line."""


def first_line(error: BaseException) -> str:
    """An exception as one line: the first line of its message (a hub's run to many), else its type's name."""
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def cannot_load(what: str, name: str, error: BaseException, how: str = "") -> ConfigError:
    """'cannot load <what> '<name>'[ <how>]: <the error's first line>', to raise from the loading error."""
    return ConfigError(f"cannot load {what} '{name}'{' ' + how if how else ''}: {first_line(error)}")
