"""Segue's error hierarchy. HTTP statuses are chosen only in connectors."""


class SegueError(Exception):
    """Base of every error Segue raises on purpose."""


class ConfigError(SegueError):
    """Configuration or dialog files are invalid."""


class StoreError(SegueError):
    """The context store failed."""


class StoreUnavailable(StoreError):
    """The store cannot be reached; the caller should ask for a redelivery."""


class LockTimeout(StoreError):
    """A customer's lock stayed held by someone else for too long."""


class LockLost(StoreError):
    """The lock expired before the turn was saved; nothing was written."""


class CustomerGone(StoreError):
    """The customer was erased or joined into another one meanwhile."""


class ConnectorError(SegueError):
    """A channel could not parse input or deliver output."""


class BadInput(ConnectorError):
    """Input a connector refuses, with a machine-readable `code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DialogError(SegueError):
    """The dialog runtime failed."""


class RateLimited(BadInput):
    """A per-client limit was hit; `retry_after` says when to try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__("rate_limited", message)
        self.retry_after = retry_after
