"""Errors shared by every layer.

`UserError` is a mistake in what a person typed: the CLI prints its message and exits with code 2,
never a traceback. Everything else that goes wrong is an `OperationalError` (exit code 1).
"""


class RunaiLiteError(Exception):
    """Base of every error runai-lite raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class UserError(RunaiLiteError):
    """Bad input: what was wrong and what would be right. Nothing was changed."""

    exit_code = 2


class NotFoundError(UserError):
    """A job, project or node the user named does not exist."""


class OperationalError(RunaiLiteError):
    """The system could not do what was asked (daemon down, driver failure, cluster unreachable)."""
