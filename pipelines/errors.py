"""Domain errors shared by services. The API maps them to problem+json, the CLI to one line."""

from __future__ import annotations


class StreamflowError(Exception):
    """Base of every error a user can act on."""


class NotFound(StreamflowError):
    """The object does not exist, or the caller's organisation may not see it."""


class Conflict(StreamflowError):
    """The request contradicts what is stored."""


class InvalidInput(StreamflowError, ValueError):
    """Bad input; the message names the field and the fix."""
