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


# -- driver errors (raised by hypervisor drivers, mapped per node by the driver base) -----


class DriverError(NodemgrError):
    """Base of driver errors; ``str(exc)`` is the one-line message printed after ``Error:``.

    The driver base (:meth:`nodemgr.plugins.base.HypervisorDriver.each_node`) turns one
    into that node's failed result, ``data["error"]`` = the class name, for every family.
    """


class Unreachable(DriverError):
    """The endpoint cannot be contacted (connection refused, timeout, DNS): every node of
    the endpoint not yet reported fails with the same line."""


class NotFound(DriverError):
    """The VM (or host, template, volume) does not exist on the endpoint."""


class InvalidState(DriverError):
    """The VM is in a state that forbids the operation (running, locked, ...)."""


class Transient(DriverError):
    """The endpoint is busy (a locked VM, an engine task in progress): retrying after a
    pause may succeed. :func:`nodemgr.plugins.base.retry` retries these, and only these."""


class PermanentError(DriverError):
    """Retrying will not help: bad settings, authentication, unsupported operation."""


class Unsupported(PermanentError):
    """The family cannot do this (``rcons`` of an engine-managed VM, ``rvitals disk`` on a
    family without disk counters); the message says which family and why."""
