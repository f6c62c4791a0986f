"""The exceptions the explorer raises for things a user can fix."""

__all__ = ["ExplorerError", "SpecError", "SpecErrors", "DeviceError"]


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


class SpecErrors(SpecError):
    """Several independent problems, all reported at once; ``path`` and ``reason`` are the
    first's, so a panel can show it under the block it names, and ``problems`` holds each.

    Example: ``2 problems: children[0].out_features: …; children[2].type: unknown block type …``
    """

    def __init__(self, problems: list[SpecError]):
        self.problems = list(problems)
        first = self.problems[0]
        listed = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{len(self.problems)} problems: {listed}")
        self.path = first.path
        self.reason = f"{first.reason} (and {len(self.problems) - 1} more: see above)"


class DeviceError(ExplorerError, RuntimeError):
    """A device is unavailable, or ran out of memory; the model was left where it was."""
