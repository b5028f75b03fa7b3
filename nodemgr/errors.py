"""Exception types shared by every layer.

Every error a user can cause carries a one-line message suitable for printing after
``Error: ``; none of them may carry a secret (password, token) in its text.
"""


class NodemgrError(Exception):
    """Base class: a failure with a one-line, user-facing message."""


class ConfigError(NodemgrError):
    """Configuration file or database URL is unusable."""


class TableError(NodemgrError):
    """Unknown table or column, malformed CSV, or a store failure."""


class NoderangeError(NodemgrError):
    """A noderange that cannot be parsed or names unknown nodes/groups."""


class PolicyDenied(NodemgrError):
    """The policy table denies the request."""

    def __init__(self, message: str = "Permission denied for request") -> None:
        super().__init__(message)


class UsageError(NodemgrError):
    """Bad command-line arguments."""
