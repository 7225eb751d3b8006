"""How the process logs: CXT_LOG_FORMAT `text` or `json` (one object a line), CXT_LOG_LEVEL, request fields, and no
secret in any line.

A request's id, method and route ride along in a context variable that the HTTP middleware sets
(`api/observability.py`); every line logged while the request is handled carries them. Whatever a line says, it
passes `redact` last: an API key, a bearer token, a Stripe secret or a cookie value that reached a message (or an
exception's text) is blanked before it is written.
"""

import json
import logging
import re
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

PLAIN = 'cxt_plain'  # `extra={PLAIN: True}`: a start-up line shown as it is in the text format (no time, no level)
REQUEST_FIELDS = ('request_id', 'method', 'route', 'status', 'duration_ms')
TEXT_FORMAT = '%(asctime)s %(levelname)s %(name)s: %(message)s'
# Libraries whose INFO lines say nothing an operator needs at every start (Alembic's "Context impl SQLiteImpl.",
# "Will assume transactional DDL."); their warnings still show.
QUIET_LIBRARIES = ('alembic', 'httpx', 'stripe', 'multipart', 'watchfiles', 'apscheduler')

_SECRETS = (
    (re.compile(r'cxt_[0-9A-Za-z]{16,}'), 'cxt_[redacted]'),  # an API key (services/keys/api_keys.py's format)
    (re.compile(r'(?i)\b(bearer|basic)\s+[^\s,;"\']+'), r'\1 [redacted]'),
    (re.compile(r'\b(whsec|sk_live|sk_test|rk_live|rk_test)_[0-9A-Za-z]+'), r'\1_[redacted]'),
    (re.compile(r'(?i)\b((?:set-)?cookie["\']?\s*[:=]\s*)[^\n]+'), r'\1[redacted]'),
    (re.compile(r'(?i)\b(password|passwd|secret|token)(["\']?\s*[:=]\s*["\']?)[^\s,;&"\']+'), r'\1\2[redacted]'),
    (re.compile(r'(?i)\b(otpauth://\S+)'), 'otpauth://[redacted]'),
)


def redact(text: str) -> str:
    """The line with every value that looks like a secret blanked (a last guard; no code logs one on purpose)."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


@dataclass(slots=True)
class RequestContext:
    """The request being handled: set by the HTTP middleware, read by every line logged meanwhile."""

    request_id: str
    method: str
    scope: MutableMapping[str, Any] = field(repr=False)

    @property
    def route(self) -> str | None:
        route = self.scope.get('route')
        return getattr(route, 'path_format', None) or getattr(route, 'path', None)


current_request: ContextVar[RequestContext | None] = ContextVar('cxt_request', default=None)


class _RequestFields(logging.Filter):
    """Copies the current request's id, method and route onto each record (unless the record has its own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current_request.get()
        if context is not None:
            if not hasattr(record, 'request_id'):
                record.request_id = context.request_id
            if not hasattr(record, 'method'):
                record.method = context.method
            if not hasattr(record, 'route'):
                record.route = context.route
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, PLAIN, False):
            return redact(record.getMessage())
        line = super().format(record)
        values = ((name, getattr(record, name, None)) for name in REQUEST_FIELDS)
        fields = [f'{name}={value}' for name, value in values if value is not None]
        if fields:
            first, newline, rest = line.partition('\n')
            line = f'{first} [{" ".join(fields)}]{newline}{rest}'
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the request's fields, and an exception's text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            'time': datetime.fromtimestamp(record.created, UTC).isoformat(timespec='milliseconds'),
            'level': record.levelname.lower(),
            'logger': record.name,
            'message': record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry['exception'] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry['exception'] = record.exc_text
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


def make_handler(*, log_format: str, stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == 'json' else TextFormatter())
    handler.addFilter(_RequestFields())
    return handler


def configure_logging(*, log_format: str, level: str, stream: TextIO | None = None) -> None:
    """The root logger writes `log_format` lines at `level` to stderr (or `stream`); noisy libraries say warnings only.

    Under NiceGUI's `user` test fixture the root logger already has pytest's handlers: they are kept (the fixture fails
    a test on an ERROR line), and only the levels are set.
    """
    root = logging.getLogger()
    numeric = logging.getLevelName(level.upper())
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    if any(type(handler).__module__.startswith('_pytest') for handler in root.handlers):
        return
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(make_handler(log_format=log_format, stream=stream))
    root.setLevel(numeric)


def say(message: str, *args: object, always: bool = False) -> None:
    """A start-up line for the person who started the server: in the text format just the words, as printed. At
    info; `always` (the setup code, without which nobody can set the instance up) at warning, so any level shows it."""
    level = logging.WARNING if always else logging.INFO
    logging.getLogger('cxt').log(level, message, *args, extra={PLAIN: True})
