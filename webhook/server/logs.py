"""JSON logs, one object per line, carrying the admission request's uid.

What may be logged: rule ids, object references, decisions, durations, error types. Never an
object, an env value or a finding message (messages quote values). Exceptions are logged as
their type and stack frames, without their text (it may quote a value). Strings from requests
(names, kinds, uids) are cut to FIELD_LENGTH characters, so no request makes a long line.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
import traceback
from typing import Any, TextIO

request_uid: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_uid", default=None)

LOGGER = logging.getLogger("vllm_env_guard.server")
LEVELS = ("debug", "info", "warning", "error")
FIELD_LENGTH = 256
ITEMS_SHOWN = 32


def bounded(value: Any) -> Any:
    """`value` with every string cut to FIELD_LENGTH characters and lists to ITEMS_SHOWN items."""
    if isinstance(value, str):
        return value if len(value) <= FIELD_LENGTH else value[:FIELD_LENGTH] + "…"
    if isinstance(value, list | tuple):
        return [bounded(v) for v in value[:ITEMS_SHOWN]] + (["…"] if len(value) > ITEMS_SHOWN else [])
    return value


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "msg", "uid"?, ...fields}`; fields come from `extra={"fields": {...}}`."""

    _encoder = json.JSONEncoder(default=str)
    _second: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def _time(self, created: float) -> str:
        second, cached = int(created), self._second  # one read: worker threads log too
        if cached[0] != second:
            cached = self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{cached[1]}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": bounded(record.getMessage()),
        }
        uid = request_uid.get()
        if uid:
            entry["uid"] = bounded(uid)
        entry.update((key, bounded(value)) for key, value in getattr(record, "fields", {}).items())
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__
            entry["stack"] = [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(record.exc_info[2])]
        return self._encoder.encode(entry)


def configure(level: str = "info", stream: TextIO = sys.stderr) -> None:
    """Send every logger (uvicorn's included) through one JSON handler, at `level` (one of LEVELS)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(level.upper())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # No line shows the thread, process or source: skip gathering them for every record.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def log(level: int, msg: str, **fields: Any) -> None:
    if LOGGER.isEnabledFor(level):  # made by hand: Logger.log would walk the stack for a caller no line shows
        LOGGER.handle(LOGGER.makeRecord(LOGGER.name, level, "", 0, msg, (), None, extra={"fields": fields}))


def log_exception(msg: str, **fields: Any) -> None:
    """Log the exception being handled: its type and frames, never its message."""
    LOGGER.error(msg, exc_info=True, extra={"fields": fields})
