"""The command line's one domain error."""

PROG = "tapebench"


class UsageError(Exception):
    """Bad input from the command line; reported as one line with exit code 2."""
