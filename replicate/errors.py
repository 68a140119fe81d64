"""The application's expected failures, raised by library code and turned into exit statuses by
`replicate.cli_errors.run_cli`: bad input is a `ValueError` (a `DataError` for datasets)."""


class DataError(ValueError):
    """A dataset is missing, empty, or holds an unreadable image."""


class DivergedError(RuntimeError):
    """The loss stopped being finite."""


class Unavailable(ValueError):
    """Asked for what this machine lacks: a library, or a GPU that can run it."""


class NoSpaceError(ValueError):
    """The disk of a run folder is full: a one-line error, the last good checkpoint kept."""
