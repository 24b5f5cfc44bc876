"""JSON log lines for every shelfedge process, with secrets redacted.

`configure_logging` (called once by each sub-command of the CLI) puts `JsonFormatter` on the
root logger's stderr handler. One JSON object per line: ``ts`` (RFC 3339 UTC), ``level``,
``logger``, ``message``, any structured fields the call passed in ``extra=`` (``event``,
``event_id``, ``topic``, ``partition``, ``offset``, ``bundle_key``, ``purger``, ``reason`` ...)
and, inside a sampled OpenTelemetry span, ``trace_id`` and ``span_id``; ``exc`` holds a
traceback.

Redaction (`redact`) runs on the message and every string field: URL passwords
(``redis://user:***@host``), and the values of anything named like a secret (``password``,
``token``, ``secret``, ``api_key``, ``authorization``, and longer names containing them) in
``name=value``, ``name: value``, a repr's ``name='value'`` or ``name={...}`` (the whole mapping,
list or tuple). Fields whose own name looks secret are replaced whole. It is a last
line of defence: secrets should not be logged in the first place.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

REDACTED = "***"
_SECRET_NAME = (
    r"[A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|authorization)[A-Za-z_]*"
)
_SECRET_COLLECTION = re.compile(
    r"(?i)(" + _SECRET_NAME + r"""['"]?\s*[=:]\s*)(\{[^}]*\}|\[[^\]]*\]|\([^)]*\))"""
)
_SECRET_PAIR = re.compile(
    r"(?i)(" + _SECRET_NAME + r"""['"]?\s*[=:]\s*)(['"]?)((?:Bearer\s+)?(?![{\[(*])[^'"\s,)}&]+)"""
)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)(@)")
_SECRET_FIELD = re.compile(r"(?i)^" + _SECRET_NAME + "$")
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


def redact(text: str) -> str:
    """`text` with URL passwords and secret-named values replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    text = _SECRET_COLLECTION.sub(
        lambda m: m.group(1) + m.group(2)[0] + REDACTED + m.group(2)[-1], text
    )
    return _SECRET_PAIR.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)


def _clean(name: str, value: Any) -> Any:
    if _SECRET_FIELD.match(name):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_clean("", v) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One redacted JSON object per record (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRIBUTES and not name.startswith("_"):
                doc[name] = _clean(name, value)
        span = trace.get_current_span().get_span_context()
        if span.is_valid and "trace_id" not in doc:
            doc["trace_id"] = format(span.trace_id, "032x")
            doc["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            doc["exc"] = redact("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(doc, ensure_ascii=False, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for the whole process (replaces any handler already there)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
