"""The one exception type that user-facing code turns into ``error: ...`` and exit code 2."""


class ConfigError(ValueError):
    """A value a user supplied is not allowed; the message names the value and what is allowed."""
