"""Exceptions the CLI turns into one line and an exit code."""


class PekitError(Exception):
    """A refusal the user can act on (exit code 1)."""

    exit_code = 1


class UsageError(PekitError):
    """Bad command-line usage (exit code 2)."""

    exit_code = 2


class OwnershipError(PekitError):
    """Something is where the kit would delete or replace, and the kit cannot prove it wrote
    it: refused, left as it is (pekit.core.ownership)."""
