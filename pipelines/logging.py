"""structlog JSON logging with the request or flow-run id bound into every line.

Entry points (the CLI, flows, the API app) call `configure_logging` once; everything else does
`log = structlog.get_logger()` and logs dotted past-tense events with keyword context.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
]


def configure_logging(*, level: str = "INFO", stream: Any = None) -> None:
    """Render structlog and stdlib records as JSON lines on `stream` (default stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED_PROCESSORS,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
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

    sentry_sdk.init(dsn=dsn, server_name=component)
    return True
