"""The server under hostile or heavy input (issue 9): bounded work, never 5xx, closed metric
labels, slow clients, capped and clean wording, bounded logs."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from webhook.budget import Budget
from webhook.server import app as app_module
from webhook.server import main as main_module
from webhook.server.admission import DENIAL_BUDGET
from webhook.server.logs import FIELD_LENGTH, LOGGER, JsonFormatter
from webhook.server.tls import make_dev_certificates

from .conftest import OLD_IMAGE, RunningServer, free_port, review, service, start_server, wait_until, workload


def post(running: RunningServer, body: Any, path: str = "/validate?timeout=10s") -> httpx.Response:
    """`body` as ASCII JSON (strings may hold lone surrogates, as \\ud800 escapes)."""
    with running.client() as client:
        return raw_post(client, json.dumps(body).encode(), path)


def raw_post(client: httpx.Client, content: bytes, path: str = "/validate?timeout=10s") -> httpx.Response:
    return client.post(path, content=content, headers={"content-type": "application/json"})


def admission_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("admission-"))


@pytest.fixture
def stuck(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """`decide` replaced by one that waits until released, checking its budget like the engine."""
    release = threading.Event()
    budgets: list[Budget] = []

    def decide(request: Any, snapshot: Any, view: Any, budget: Budget | None = None) -> Any:
        assert budget is not None
        budgets.append(budget)
        while not release.wait(0.01):
            budget.check()
        raise AssertionError("released")

    monkeypatch.setattr(app_module, "decide", decide)
    yield release
    release.set()


@pytest.fixture
def small_pool(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path, "--workers", "1", "--queue-limit", "1", "--inline-limit", "0")
    try:
        yield server
    finally:
        server.stop()


# --- bounded work -----------------------------------------------------------------------------


@pytest.fixture
def pooled(tmp_path: Path) -> Iterator[RunningServer]:
    """A server that checks every review on its worker pool."""
    server = start_server(tmp_path, "--inline-limit", "0")
    try:
        yield server
    finally:
        server.stop()


def test_a_timed_out_review_is_cancelled_and_its_worker_freed(pooled: RunningServer,
                                                              stuck: threading.Event) -> None:
    running = pooled
    pool = running.server.parts.workers
    before = threading.active_count()
    for _ in range(4):  # more than the pool's size, one after the other
        response = post(running, review(service()), "/validate?timeout=1s")
        assert response.status_code == 200
        assert response.json()["response"]["warnings"] == [
            "vllm-env-guard: admitted unchecked (failureMode: allow): the check did not finish within 0.8s"]
        wait_until(lambda: pool.pending == 0, what="the abandoned check to stop")
    assert admission_threads() <= pool.size
    assert threading.active_count() <= before + pool.size


def test_small_reviews_are_checked_on_the_event_loop_and_large_ones_on_the_pool(
        running: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    where: list[str] = []
    decide = app_module.decide

    def recording(*args: Any, **kwargs: Any) -> Any:
        where.append(threading.current_thread().name)
        return decide(*args, **kwargs)

    monkeypatch.setattr(app_module, "decide", recording)
    large = service()
    large["metadata"]["annotations"] = {"note": "x" * running.server.parts.inline_limit}
    for obj in (service(), large):
        assert post(running, review(obj)).status_code == 200
    loop_thread = running.thread.name
    assert where[0] == loop_thread and where[1].startswith("admission-")


def test_past_the_queue_limit_a_review_gets_the_failure_mode_at_once(small_pool: RunningServer,
                                                                     stuck: threading.Event) -> None:
    pool = small_pool.server.parts.workers
    results: list[httpx.Response] = []
    senders = [threading.Thread(target=lambda: results.append(post(small_pool, review(service()))))
               for _ in range(2)]
    for sender in senders:  # one running, one queued
        sender.start()
    wait_until(lambda: pool.pending == 2)
    busy = post(small_pool, review(service()))
    assert busy.status_code == 200
    assert busy.json()["response"]["allowed"] is True
    assert busy.json()["response"]["warnings"] == [
        "vllm-env-guard: admitted unchecked (failureMode: allow): server busy (2 reviews in progress or queued)"]
    small_pool.config.write_text("server: {failureMode: deny}\n")
    denied = wait_until(lambda: (r := post(small_pool, review(service())).json()["response"])["allowed"] is False
                        and r)
    assert denied["status"]["code"] == 429 and "server busy" in denied["status"]["message"]
    stuck.set()
    for sender in senders:
        sender.join(15)
    assert [r.status_code for r in results] == [200, 200]
    wait_until(lambda: pool.pending == 0)
    assert admission_threads() == 1


# --- never 5xx --------------------------------------------------------------------------------


def test_lone_surrogates_are_echoed_and_kept_out_of_wording(running: RunningServer) -> None:
    body = review(workload("Deployment", {"VLLM_USE_V1": "true\ud800"}, OLD_IMAGE, name="llm\udc80"),
                  uid="uid-\ud800")
    body["request"]["kind"]["kind"] = "Deployment\udc80"
    body["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["name"] = "vllm\ud800"
    content = json.dumps(body).encode()  # ASCII, with \ud800 escapes as a JSON encoder may write them
    with running.client() as client:
        response = raw_post(client, content)
        assert response.status_code == 200
        out = response.json()["response"]
        assert out["uid"] == "uid-\ud800"  # echoed exactly
        assert out["allowed"] is False
        message = out["status"]["message"]
        assert "\ud800" not in message and "\udc80" not in message
        message.encode("utf-8")
        assert client.get("/metrics").status_code == 200


def test_huge_integers_are_400_and_the_connection_stays_usable(running: RunningServer) -> None:
    body = json.dumps(review(service())).encode().replace(b'"dryRun": false', b'"dryRun": ' + b"7" * 5000)
    with running.client() as client:
        response = raw_post(client, body)
        assert response.status_code == 400
        assert response.json() == {"error": "body holds an integer of more than 4300 digits"}
        assert raw_post(client, json.dumps(review(service())).encode()).status_code == 200


def test_an_error_outside_the_check_is_still_an_admission_review(running: RunningServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("metrics backend down")

    monkeypatch.setattr(running.server.parts.metrics, "admission", broken)
    response = post(running, review(service(), uid="uid-broken"))
    assert response.status_code == 200
    assert response.json()["response"] == {
        "uid": "uid-broken", "allowed": True,
        "warnings": ["vllm-env-guard: admitted unchecked (failureMode: allow): internal error (RuntimeError)"]}


def test_an_escaped_exception_is_400_with_connection_close_never_500(running: RunningServer,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app_module, "review_response", broken)
    with running.client() as client:
        response = raw_post(client, json.dumps(review(service())).encode())
        assert response.status_code == 400 and response.headers["connection"] == "close"
        assert response.json() == {"error": "the request could not be handled"}
        monkeypatch.undo()
        assert raw_post(client, json.dumps(review(service())).encode()).status_code == 200


# --- metrics ----------------------------------------------------------------------------------


def test_metric_labels_come_from_a_closed_set(running: RunningServer) -> None:
    for index in range(20):
        body = review(None, "DELETE", old=service())
        body["request"]["kind"]["kind"] = f"Kind{index}" if index else "\udc80"
        assert post(running, body).status_code == 200
    with running.client() as client:
        scrape = client.get("/metrics")
    assert scrape.status_code == 200
    series = [line for line in scrape.text.splitlines() if line.startswith("vllm_env_guard_admission_requests_total{")]
    assert series == ['vllm_env_guard_admission_requests_total{allowed="true",dry_run="false",kind="other",'
                      'operation="DELETE"} 20.0']


def test_a_failing_collector_leaves_the_rest_of_the_scrape(running: RunningServer) -> None:
    def stats() -> list[Any]:
        raise RuntimeError("cache gone")

    running.server.parts.metrics.watch_cache(stats)
    with running.client() as client:
        first = client.get("/metrics")
        assert first.status_code == 200 and "vllm_env_guard_build_info" in first.text
        assert "vllm_env_guard_scrape_errors_total 1.0" in client.get("/metrics").text


# --- slow clients -----------------------------------------------------------------------------


def _tls_socket(running: RunningServer) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", running.port), timeout=10)
    return running.context().wrap_socket(raw, server_hostname="127.0.0.1")


def _closed_by_server(sock: ssl.SSLSocket) -> bool:
    try:
        return sock.recv(1024) == b""
    except (ConnectionError, ssl.SSLError):
        return True


def test_slow_headers_and_bodies_are_cut_and_healthz_stays_up(running: RunningServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main_module, "HEADER_TIMEOUT", 1.0)
    held = [_tls_socket(running) for _ in range(8)]
    try:
        for index, sock in enumerate(held):
            sock.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\n" if index % 2 else b"")
        with running.client() as client:
            for _ in range(5):
                assert client.get("/healthz").status_code == 200
        for sock in held:  # each gets a timeout set by recv's socket timeout (10 s) at most
            assert _closed_by_server(sock)
        with _tls_socket(running) as sock:  # headers in time, body never completes
            sock.sendall(b"POST /validate?timeout=1s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{")
            answer = b"".join(iter(lambda: sock.recv(4096), b"")).decode()  # until the server closes
        assert answer.startswith("HTTP/1.1 408 ")
        assert '{"error":"body not received within 0.8s"}' in answer and "connection: close" in answer
    finally:
        for sock in held:
            sock.close()


def test_past_the_connection_limit_requests_get_503_and_the_probe_port_still_answers(tmp_path: Path) -> None:
    health = free_port()
    running = start_server(tmp_path, "--max-connections", "3", "--health-port", str(health))
    held = [_tls_socket(running) for _ in range(2)]
    try:
        with running.client() as client:
            wait_until(lambda: client.get("/healthz").status_code == 503, what="the limit reached")
            with httpx.Client(base_url=f"http://127.0.0.1:{health}", timeout=10) as probe:
                assert probe.get("/healthz").status_code == 200
            for sock in held:
                sock.close()
            wait_until(lambda: client.get("/healthz").status_code == 200, what="connections freed")
    finally:
        for sock in held:
            sock.close()
        running.stop()


# --- wording and logs -------------------------------------------------------------------------


def test_denials_are_capped_and_bidi_controls_removed(running: RunningServer) -> None:
    env = {"VLLM_PORT": "9" * 200_000 + "x", **{f"VLLM_USE_V{i}": "true\u202e" for i in range(1, 3)},
           "VLLM_LOGGING_LEVL": "\u202eDEBUG"}
    out = post(running, review(workload("Deployment", env, OLD_IMAGE))).json()["response"]
    message = out["status"]["message"]
    assert out["allowed"] is False and len(message) <= DENIAL_BUDGET
    assert message.splitlines()[-1].startswith("To accept this risk for this object, annotate it")
    assert "\u202e" not in message and all("\u202e" not in w for w in out["warnings"])
    assert any("VLLM_LOGGING_LEVL" in w for w in out["warnings"])


def test_log_fields_are_cut(running: RunningServer, server_logs: io.StringIO) -> None:
    stream = server_logs
    post(running, review(service(name="s" * 200_000, namespace="n" * 200_000), uid="u" * 200_000))
    line = next(json.loads(x) for x in stream.getvalue().splitlines() if '"msg": "admission"' in x)
    for field in ("uid", "name", "namespace"):
        assert len(line[field]) == FIELD_LENGTH + 1 and line[field].endswith("…")
    assert len(stream.getvalue()) < 4 * FIELD_LENGTH + 1000


def test_log_level_is_an_option(tmp_path: Path) -> None:
    from webhook.cli import build_parser
    from webhook.server.logs import configure

    args = build_parser().parse_args(["serve", "--dev", "--log-level", "warning"])
    stream = io.StringIO()
    configure(args.log_level, stream)
    try:
        LOGGER.info("hidden")
        LOGGER.warning("shown")
    finally:
        configure("info")
    assert [json.loads(x)["msg"] for x in stream.getvalue().splitlines()] == ["shown"]


# --- shutdown ---------------------------------------------------------------------------------

HARNESS = """
import sys, threading
from webhook.server import admission, main
from webhook.cli import main as cli

main.GRACE = 5  # so the test takes seconds: the drain cuts reviews at GRACE - DRAIN_MARGIN
real = admission.analyze

def analyze(items, *args, **kwargs):
    if any((item.obj.get("metadata") or {}).get("name") == "stuck" for item in items):
        threading.Event().wait()  # an engine that never checks its budget
    return real(items, *args, **kwargs)

admission.analyze = analyze
sys.exit(cli(sys.argv[1:]))
"""


def test_sigterm_under_load_answers_every_request_then_exits(tmp_path: Path) -> None:
    port, health = free_port(), free_port()
    ca = make_dev_certificates(tmp_path).ca  # the server reuses this CA
    context = ssl.create_default_context(cafile=str(ca))
    proc = subprocess.Popen([sys.executable, "-c", HARNESS, "serve", "--dev", "--dev-dir", str(tmp_path),
                             "--host", "127.0.0.1", "--port", str(port), "--health-port", str(health),
                             "--no-cluster", "--workers", "8", "--inline-limit", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"https://127.0.0.1:{port}"
    statuses: list[int] = []
    refused: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:  # a new connection per request, until the server stops accepting
        while not stop.is_set():
            try:
                with httpx.Client(base_url=url, verify=context, timeout=30) as client:
                    statuses.append(client.post("/validate", json=review(service())).status_code)
            except httpx.ConnectError as exc:
                refused.append(repr(exc))
                return
            except httpx.HTTPError as exc:
                failures.append(repr(exc))

    stuck: list[httpx.Response] = []

    def long_review() -> None:
        with httpx.Client(base_url=url, verify=context, timeout=60) as client:
            body = review(workload("Deployment", {"VLLM_USE_V1": "1"}, name="stuck"))
            stuck.append(client.post("/validate?timeout=30s", json=body))

    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{health}", timeout=5) as probe:
            wait_until(lambda: _get(probe, "/readyz") == 200, timeout=60, what="the server ready")
            threads = [threading.Thread(target=load) for _ in range(2)]
            threads += [threading.Thread(target=long_review) for _ in range(6)]
            for thread in threads:
                thread.start()
            wait_until(lambda: len(statuses) >= 20, timeout=60, what="traffic")
            wait_until(lambda: _in_progress(probe) >= 6, timeout=30, what="six long reviews in flight")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        stop.set()
        for thread in threads:
            thread.join(30)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
        stderr = proc.communicate()[1]
    assert failures == [] and set(statuses) == {200}, stderr[-2000:]
    assert len(stuck) == 6
    for response in stuck:
        assert response.status_code == 200
        assert response.json()["response"]["warnings"] == [
            "vllm-env-guard: admitted unchecked (failureMode: allow): the server is shutting down"]


def _in_progress(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    return next(float(line.split(" ")[1]) for line in text.splitlines()
                if line.startswith("vllm_env_guard_reviews_in_progress "))


def _get(client: httpx.Client, path: str) -> int:
    try:
        return client.get(path).status_code
    except httpx.TransportError:
        return 0


def test_a_credential_expanded_into_a_vllm_variable_is_never_shown(running: RunningServer) -> None:
    env = {"HF_TOKEN": "hf_c4n4ry", "VLLM_PORT": "$(HF_TOKEN)", "AWS_SECRET_ACCESS_KEY": "aws_c4n4ry",
           "VLLM_USE_V1": "$(AWS_SECRET_ACCESS_KEY)"}
    out = post(running, review(workload("Deployment", env))).json()["response"]
    assert out["allowed"] is False
    shown = json.dumps(out)
    assert "c4n4ry" not in shown


def test_log_time_is_the_records_own_utc_time() -> None:
    formatter = JsonFormatter()
    for created in (1_700_000_000.25, 1_700_000_000.999, 1_700_000_001.0, 1_600_000_000.5):
        record = logging.LogRecord("x", logging.INFO, "", 0, "m", (), None)
        record.created = created
        assert json.loads(formatter.format(record))["time"] == (
            dt.datetime.fromtimestamp(created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
