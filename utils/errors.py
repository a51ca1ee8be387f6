class ConfigError(Exception):
    """A problem the user can fix (bad flag, missing model or package, busy port): shown as one line."""
