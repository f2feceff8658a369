"""The two kinds of error a pass can meet, after controller-runtime.

Everything the loop sees is one of these or a bug: a TerminalError is reported
and not retried (bad input, access denied, a missing cluster); a
TransientError is retried with backoff (throttling, timeouts, 5xx).

On the command line (`controller.cli`) every one of them is one line on
stderr: a NotFoundError exits 1 (an unknown name), any other 2 (usage and
setup: the command could not do its work).
"""


class ControllerError(Exception):
    """Base class of every error this package raises on purpose."""


class TerminalError(ControllerError):
    """Retrying cannot help (bad input, access denied): report it and move on."""


class TransientError(ControllerError):
    """Worth another try after a delay (throttling, a timeout, a 5xx)."""


class UsageError(ControllerError):
    """The command line or its configuration is wrong (exit status 2)."""


class NotFoundError(TerminalError):
    """A name given on the command line is unknown (exit status 1)."""
