"""JSON logs, one object per line, with the request id. Never personal data, tokens or
secrets: only the fields listed in ``_SAFE_EXTRAS`` are copied from a record's extras."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_SAFE_EXTRAS = (
    "request_id", "method", "path", "endpoint", "status", "duration_ms", "client_id",
    "login_failure", "grant_type", "error", "remote_addr", "result", "adapter",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _SAFE_EXTRAS:
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if any(getattr(h, "_yiwang", False) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._yiwang = True  # type: ignore[attr-defined]
    root.handlers = [h for h in root.handlers if not isinstance(h, logging.StreamHandler)] + [handler]
    root.setLevel(level)
    # werkzeug's access log prints full URLs (codes, state, hints): ours replaces it.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
