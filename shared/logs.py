"""Structured logging for every jitnode process: one JSON object per line on stdout.

Call :func:`configure_logging` once at startup, then log through :func:`get_logger`. Records
from the standard library (aiohttp, botocore, kubernetes_asyncio) go through the same
pipeline, so a log collector sees one format. ``LOG_FORMAT=console`` (or ``fmt="console"``)
switches to structlog's human-readable renderer for local work; ``LOG_LEVEL`` sets the level.

Keys (stable; dashboards and alerts depend on them):

=============== ===============================================================================
key             meaning
=============== ===============================================================================
``ts``          time of the record, RFC 3339 UTC with milliseconds: ``2024-05-01T10:00:00.123Z``
``level``       ``debug``, ``info``, ``warning``, ``error`` or ``critical``
``component``   the process: ``extender``, ``launcher``, ``localcluster``...
``event``       what happened, a short constant phrase (``"nodeclaim launched"``)
``logger``      the logger's name (module), when it has one
``exception``   formatted traceback, when the record carries an exception
``pod``         ``namespace/name`` of the pod concerned
``node``        node name
``nodepool``    NodePool name
``nodeclaim``   NodeClaim name
``instance_id`` EC2 instance id
=============== ===============================================================================

Any other keyword passed to a log call or bound with ``bind``/``bind_contextvars`` is added
as is. Records are written synchronously: a line to a pipe is far cheaper than a context switch,
and losing the last lines before a crash is worse than the microseconds.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LEVELS: Final = ("debug", "info", "warning", "error", "critical")
FORMATS: Final = ("json", "console")
# Keys written first, in this order; the rest follow sorted for stable diffs.
_LEADING_KEYS: Final = ("ts", "level", "component", "event")
# Libraries that log every request at INFO; kept at WARNING unless LOG_LEVEL=debug.
_NOISY_LOGGERS: Final = (
    "aiohttp.access",
    "botocore",
    "aiobotocore",
    "urllib3",
    "werkzeug",
    "kubernetes_asyncio",
)

_configured: tuple[str, str, str] | None = None


def _timestamp(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    now = datetime.now(UTC)
    event["ts"] = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return event


def _component(component: str) -> Processor:
    def add(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event.setdefault("component", component)
        return event

    return add


def _name_level(_: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """``level`` as a lower-case name; ``warn`` and ``exception`` calls map to their levels."""
    level = event.pop("level", None) or method
    event["level"] = {"warn": "warning", "exception": "error", "fatal": "critical"}.get(level, level)
    return event


def _drop_internal(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    event.pop("_record", None)
    event.pop("_from_structlog", None)
    return event


def _render_json(_: WrappedLogger, __: str, event: EventDict) -> str:
    ordered = {key: event.pop(key) for key in _LEADING_KEYS if key in event}
    ordered.update(sorted(event.items()))
    return orjson.dumps(ordered, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stdout`` is at the time (so test capture and redirection work)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def configure_logging(
    component: str, *, level: str | None = None, fmt: str | None = None, force: bool = False
) -> None:
    """Configure structlog and the standard library once per process (later calls do nothing).

    ``level`` and ``fmt`` default to ``LOG_LEVEL`` (``info``) and ``LOG_FORMAT`` (``json``).
    ``force=True`` reconfigures, for tests and for tools that change format at runtime.
    """
    global _configured
    level_name = (level or os.environ.get("LOG_LEVEL") or "info").lower()
    fmt_name = (fmt or os.environ.get("LOG_FORMAT") or "json").lower()
    if level_name == "warn":
        level_name = "warning"
    if level_name not in LEVELS:
        raise ValueError(f"log level {level_name!r} is not one of {', '.join(LEVELS)}")
    if fmt_name not in FORMATS:
        raise ValueError(f"log format {fmt_name!r} is not one of {', '.join(FORMATS)}")
    if _configured is not None and not force:
        return
    _configured = (component, level_name, fmt_name)

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        _name_level,
        _component(component),
        _timestamp,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.UnicodeDecoder(),
    ]
    renderer: Processor = (
        _render_json
        if fmt_name == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty(), timestamp_key="ts")
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[_drop_internal, renderer],
    )
    handler = _StdoutHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = logging.getLevelNamesMapping()[level_name.upper()]
    root.setLevel(numeric)
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(
            numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
        )
    logging.captureWarnings(True)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        context_class=dict,
        cache_logger_on_first_use=not force,
    )


def get_logger(name: str | None = None, **initial: Any) -> structlog.stdlib.BoundLogger:
    """A logger named ``name`` (use ``__name__``) with ``initial`` context bound.

    Safe at import time: the logger resolves its configuration on first use.
    """
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name, **initial)
    return logger
