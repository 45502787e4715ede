"""20,000 seeded mutations of AdmissionReviews against the real HTTPS server: no 5xx, no dropped
connection, the uid echoed whenever the review is understood, and the canary credential in no
response, log line or metric. `scripts/fuzz-webhook N` runs the same cases at any length."""

from __future__ import annotations

import io
import logging

import pytest

from webhook.server.logs import JsonFormatter

from .conftest import RunningServer
from .fuzzing import CANARY, cases, send_all

SEED = 9
COUNT = 20_000


@pytest.mark.slow
def test_mutated_reviews_never_break_the_server(running: RunningServer) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        report = send_all("127.0.0.1", running.port, running.context(), cases(SEED, COUNT))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert report.problems[:10] == [], report.summary()
    assert report.sent == COUNT and report.dropped == 0
    assert report.statuses[200] > COUNT // 2 and report.statuses[400] > COUNT // 10  # both paths exercised
    logs = stream.getvalue()
    assert logs.count('"msg": "admission"') == report.statuses[200]
    assert CANARY not in logs
    with running.client() as client:
        scrape = client.get("/metrics")
    assert scrape.status_code == 200 and CANARY not in scrape.text
