"""Domain errors shared by services. The API maps them to problem+json, the CLI to one line.

An error says what is wrong and how to fix it in the words of the domain, and names the input
`field` it concerns (`batch_size`, `organization`, ...). Each edge maps the field to what its
users typed: the CLI to `--batch-size`, the API to a JSON pointer. Services never speak of
command-line flags or HTTP.
"""

from __future__ import annotations


class StreamflowError(Exception):
    """Base of every error a user can act on."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        """The input the error is about, snake_case, when there is one."""


class NotFound(StreamflowError):
    """The object does not exist, or the caller's organisation may not see it."""


class Conflict(StreamflowError):
    """The request contradicts what is stored."""


class InvalidInput(StreamflowError, ValueError):
    """Bad input; the message names the fix and `field` the input."""
