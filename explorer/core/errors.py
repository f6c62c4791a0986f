"""The exceptions the explorer raises for things a user can fix."""

__all__ = ["ExplorerError", "SpecError", "DeviceError"]


class ExplorerError(Exception):
    """Base of every error whose message is meant for the user, never a traceback."""


class SpecError(ExplorerError, ValueError):
    """A spec, rule or formula is invalid; the message names the place and the fix.

    Example: ``children[2].out_features: must be a whole number from 1 to 65536, got -3``.
    """

    def __init__(self, message: str, path: str = ""):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)
        self.reason = message


class DeviceError(ExplorerError, RuntimeError):
    """A device is unavailable, or ran out of memory; the model was left where it was."""
