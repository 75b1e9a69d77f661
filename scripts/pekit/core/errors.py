"""Exceptions the CLI turns into one line and an exit code."""


class PekitError(Exception):
    """A refusal the user can act on (exit code 1)."""

    exit_code = 1


class UsageError(PekitError):
    """Bad command-line usage (exit code 2)."""

    exit_code = 2
