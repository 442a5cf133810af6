"""structlog JSON logging with the request or flow-run id bound into every line.

Entry points (the CLI, flows, the API app) call `configure_logging` once; everything else does
`log = structlog.get_logger()` and logs dotted past-tense events with keyword context.
Tracebacks are rendered without the values a database error quotes (statement parameters,
PostgreSQL's `DETAIL` lines): they hold tenants' texts and key hashes.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from typing import Any

import structlog
from structlog.typing import ExcInfo

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


_SERVER_DETAIL = re.compile(r"^(DETAIL|CONTEXT|WHERE):.*$", re.MULTILINE)
"""Lines PostgreSQL adds to an error that quote stored values (`Key (key_hash)=(…)`, `Failing
row contains (…)`)."""
_PARAMETERS = re.compile(r"^\[parameters: .*?\]$", re.MULTILINE | re.DOTALL)
"""The parameters SQLAlchemy prints under a failed statement (engines not made with
`hide_parameters`, e.g. a library's own)."""


def scrub(text: str) -> str:
    """`text` without the values a database error quotes from the statement or the row."""
    text = _SERVER_DETAIL.sub(r"\1: (hidden: it quotes stored values)", text)
    return _PARAMETERS.sub("[parameters hidden]", text)


def format_exception(exc_info: ExcInfo) -> str:
    """A traceback as structlog renders it, scrubbed of database values (see `scrub`)."""
    return scrub("".join(traceback.format_exception(*exc_info)))


def configure_logging(*, level: str = "INFO", stream: Any = None) -> None:
    """Render structlog and stdlib records as JSON lines on `stream` (default stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED_PROCESSORS,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.ExceptionRenderer(format_exception),
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    structlog.configure(
        processors=[
            *_SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=False,
    )


def init_error_reporting(dsn: str | None, *, component: str) -> bool:
    """Send unexpected errors to Sentry when a DSN is given (`STREAMFLOW_SENTRY_DSN`);
    nothing happens without one. Whether reporting is on."""
    if not dsn:
        return False
    import sentry_sdk

    # Reports carry what logs carry: no frame's local variables (prediction texts, keys) and no
    # value a database error quotes (see `scrub`).
    sentry_sdk.init(
        dsn=dsn,
        server_name=component,
        include_local_variables=False,
        before_send=scrub_report,
    )
    return True


def scrub_report(event: Any, _hint: Any) -> Any:
    """A Sentry event with its exceptions' texts scrubbed (see `scrub`)."""
    for exception in (event.get("exception") or {}).get("values") or []:
        if isinstance(exception.get("value"), str):
            exception["value"] = scrub(exception["value"])
    return event
