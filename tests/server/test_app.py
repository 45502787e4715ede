"""The real server over real HTTPS: the AdmissionReview contract, bad bodies, reloads, operations."""

from __future__ import annotations

import io
import json
import os
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

from webhook.server import admission
from webhook.server.app import INLINE_BYTES

from .conftest import OLD_IMAGE, RunningServer, free_port, review, service, start_server, wait_until, workload

BAD = {"VLLM_USE_V1": "true"}
KINDS = ["Pod", "PodTemplate", "ReplicationController", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
         "Job", "CronJob"]


def post(running: RunningServer, body: Any, path: str = "/validate?timeout=10s") -> httpx.Response:
    with running.client() as client:
        return client.post(path, json=body)


def answer(running: RunningServer, body: dict[str, Any]) -> dict[str, Any]:
    response = post(running, body)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["apiVersion"] == body["apiVersion"] and out["kind"] == "AdmissionReview"
    assert out["response"]["uid"] == body["request"]["uid"]
    assert "patch" not in out["response"] and "patchType" not in out["response"]
    return out["response"]


def metric(running: RunningServer, line_start: str) -> float:
    with running.client() as client:
        text = client.get("/metrics").text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    return sum(values)


# --- operations endpoints ---------------------------------------------------------------------


def test_health_readiness_and_metrics(running: RunningServer) -> None:
    with running.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}  # --no-cluster: the certificate is enough
        answer(running, review(service()))
        text = client.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    body = text.text
    for name in ("vllm_env_guard_admission_requests_total{", "vllm_env_guard_admission_review_duration_seconds_bucket{",
                 'vllm_env_guard_findings_total{rule="service-link-collision",severity="error"}',
                 "vllm_env_guard_certificate_expiry_timestamp_seconds ", 'vllm_env_guard_build_info{version="'):
        assert name in body, name
    assert 'allowed="false",dry_run="false",kind="Service",operation="CREATE"} 1.0' in body


# --- the AdmissionReview contract -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_workload_kind(running: RunningServer, kind: str) -> None:
    denied = answer(running, review(workload(kind, BAD, OLD_IMAGE)))
    assert denied["allowed"] is False
    assert denied["status"]["code"] == 403 and denied["status"]["reason"] == "Forbidden"
    assert denied["status"]["message"].startswith(f"{kind} llm/llm would break vLLM (1 error):\n- [env-parse-error]")
    warned = answer(running, review(workload(kind, {"VLLM_LOGGING_LEVL": "DEBUG"}, OLD_IMAGE)))
    assert warned["allowed"] is True and "status" not in warned
    assert warned["warnings"][0].startswith("[env-unknown-variable] VLLM_LOGGING_LEVL is not a variable")
    clean = answer(running, review(workload(kind, {"VLLM_USE_V1": "1"}, OLD_IMAGE)))
    assert clean == {"uid": clean["uid"], "allowed": True}


def test_service_v1_and_v1beta1(running: RunningServer) -> None:
    for api_version in ("admission.k8s.io/v1", "admission.k8s.io/v1beta1"):
        response = answer(running, review(service(), api_version=api_version))
        assert response["allowed"] is False and "[service-link-collision]" in response["status"]["message"]
    assert answer(running, review(service("llm-api")))["allowed"] is True


def test_update_old_and_new_problems(running: RunningServer) -> None:
    old = workload("Deployment", BAD, OLD_IMAGE)
    kept = answer(running, review(workload("Deployment", {**BAD, "VLLM_LOGGING_LEVEL": "INFO"}, OLD_IMAGE),
                                  "UPDATE", old=old))
    assert kept["allowed"] is True
    assert kept["warnings"][0].startswith("[env-parse-error, error, pre-existing] VLLM_USE_V1")
    added = answer(running, review(workload("Deployment", {**BAD, "VLLM_PORT": "tcp://x:1"}, OLD_IMAGE),
                                   "UPDATE", old=old))
    assert added["allowed"] is False and "VLLM_PORT" in added["status"]["message"]
    fixed = answer(running, review(workload("Deployment", {"VLLM_USE_V1": "1"}, OLD_IMAGE), "UPDATE", old=old))
    assert fixed == {"uid": fixed["uid"], "allowed": True}


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_delete_and_connect_are_allowed_untouched(running: RunningServer, operation: str) -> None:
    obj = {"apiVersion": "v1", "kind": "PodExecOptions"} if operation == "CONNECT" else None
    response = answer(running, review(obj, operation, old=service() if operation == "DELETE" else None))
    assert response == {"uid": response["uid"], "allowed": True}


def test_dry_run_is_answered_and_counted_apart(running: RunningServer) -> None:
    response = answer(running, review(service(), dry_run=True))
    assert response["allowed"] is False
    assert metric(running, 'vllm_env_guard_admission_requests_total{allowed="false",dry_run="true"') == 1.0
    assert metric(running, 'vllm_env_guard_admission_requests_total{allowed="false",dry_run="false"') == 0.0


# --- bad bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "error"), [
    (b"not json", "body is not JSON"),
    (b"\xff\xfe", "body is not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "body is nested too deeply"),
    (b"[]", "the body must be a JSON object"),
    (b'{"apiVersion": "v1", "kind": "Pod"}', "kind must be AdmissionReview"),
    (b'{"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview", "request": {}}', "apiVersion must be"),
    (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "request is missing"),
    (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"operation": "CREATE"}}',
     "request.uid is missing"),
    (b"", "body is not JSON"),
])
def test_malformed_bodies_are_400_with_the_reason(running: RunningServer, content: bytes, error: str) -> None:
    with running.client() as client:
        response = client.post("/validate", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"].startswith(error)


def test_oversized_bodies_are_413_by_length_and_by_stream(running: RunningServer) -> None:
    limit = 3 * 1024 * 1024
    with running.client() as client:
        declared = client.post("/validate", content=b" " * (limit + 1))
        assert declared.status_code == 413
        assert declared.json() == {"error": f"body of {limit + 1} bytes is over the limit of {limit} bytes"}

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
            for _ in range(4):
                yield b" " * (1024 * 1024)

        streamed = client.post("/validate", content=chunks())
        assert streamed.status_code == 413
        assert streamed.json() == {"error": f"body is over the limit of {limit} bytes"}
        padded = review(service())
        padded["padding"] = " " * (limit - 1000)
        assert client.post("/validate", json=padded).status_code == 200  # just under the limit
    assert metric(running, 'vllm_env_guard_invalid_requests_total{reason="too_large"}') == 2.0


# --- failures of our own ----------------------------------------------------------------------


def test_an_engine_crash_is_answered_by_the_failure_mode(running: RunningServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: Any, **kwargs: Any) -> None:
        raise KeyError("secret-ish detail")

    monkeypatch.setattr(admission, "analyze", crash)
    response = answer(running, review(service()))
    assert response["allowed"] is True
    assert response["warnings"] == ["vllm-env-guard: admitted unchecked (failureMode: allow): internal error (KeyError)"]
    running.config.write_text("server: {failureMode: deny}\n")
    denied = wait_until(lambda: (r := answer(running, review(service())))["allowed"] is False and r)
    assert denied["status"]["code"] == 500 and denied["status"]["reason"] == "InternalError"
    assert metric(running, 'vllm_env_guard_admission_failures_total{allowed="true",reason="internal_error"}') >= 1
    assert metric(running, 'vllm_env_guard_admission_failures_total{allowed="false",reason="internal_error"}') >= 1


def test_a_stuck_engine_is_answered_before_the_api_server_times_out(running: RunningServer,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def stuck(*args: Any, **kwargs: Any) -> list[Any]:
        release.wait(30)
        return []

    monkeypatch.setattr(admission, "analyze", stuck)
    big = service()  # past INLINE_BYTES: checked on the worker pool, whose deadline this is about
    big["metadata"]["annotations"] = {"note": "x" * (INLINE_BYTES + 1)}
    try:
        with running.client() as client:  # the API server gives up after 3 s: 2.4 s is what the check gets
            raw = client.post("/validate?timeout=3s", json=review(big))
    finally:
        release.set()
    assert raw.status_code == 200
    body = raw.json()["response"]
    assert body["allowed"] is True
    note = "vllm-env-guard: admitted unchecked (failureMode: allow): the check did not finish within 2.4s"
    assert body["warnings"] == [note]


# --- config reload ----------------------------------------------------------------------------


def test_config_changes_apply_without_restart_and_a_bad_file_keeps_the_old_one(running: RunningServer) -> None:
    assert answer(running, review(service()))["allowed"] is False
    running.config.write_text("server:\n  mode: warn\n")
    wait_until(lambda: answer(running, review(service()))["allowed"])
    running.config.write_text("server:\n  mode: sometimes\n")
    wait_until(lambda: metric(running, 'vllm_env_guard_reloads_total{result="failure",what="config"}') == 1.0)
    assert answer(running, review(service()))["allowed"] is True  # still warn
    running.config.write_text("rules:\n  service-link-collision: off\n  service-link-prefix: off\n")
    wait_until(lambda: "warnings" not in answer(running, review(service())))


# --- logs -------------------------------------------------------------------------------------


def test_logs_are_json_with_the_uid_and_never_a_value(running: RunningServer, server_logs: io.StringIO) -> None:
    stream = server_logs
    env = {"HF_TOKEN": "hf_sup3rs3cret", "VLLM_USE_V1": "tru3ish"}
    answer(running, review(workload("Deployment", env, OLD_IMAGE), uid="uid-logged"))
    post(running, {"oops": "hf_sup3rs3cret"})
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    admitted = next(r for r in records if r["msg"] == "admission")
    assert admitted["uid"] == "uid-logged"
    assert admitted["allowed"] is False and admitted["kind"] == "Deployment" and admitted["name"] == "llm"
    assert admitted["rules"] == ["env-parse-error", "env-plaintext-secret"]
    assert "hf_sup3rs3cret" not in stream.getvalue() and "tru3ish" not in stream.getvalue()


# --- the CLI process: --dev banner, SIGTERM ---------------------------------------------------


def test_dev_mode_prints_the_ca_and_sigterm_finishes_the_request_in_flight(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "webhook", "serve", "--dev", "--dev-dir", str(tmp_path),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        banner = [proc.stdout.readline() for _ in range(4)]  # type: ignore[union-attr]
        ca = tmp_path / "ca.crt"
        assert f"CA:       {ca}" in banner[1]
        assert f"curl --cacert {ca} https://localhost:{port}/healthz" in banner[2]
        context = ssl.create_default_context(cafile=str(ca))
        with httpx.Client(base_url=f"https://localhost:{port}", verify=context, timeout=10) as client:
            wait_until(lambda: _ok(client))
            body = json.dumps(review(service())).encode()
            sent = threading.Event()

            signalled = threading.Event()

            def slow() -> Iterator[bytes]:
                yield body[:10]
                sent.set()
                signalled.wait(15)
                yield body[10:]

            result: dict[str, Any] = {}
            worker = threading.Thread(target=lambda: result.update(r=client.post("/validate", content=slow())))
            worker.start()
            sent.wait(5)
            # A round trip on a second connection: the event loop has read what the first one sent
            # (it was in the socket before the second request was made) and holds the request.
            assert client.get("/healthz").status_code == 200
            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: _refused(port), what="the server to stop accepting connections")
            signalled.set()
            worker.join(15)
        assert result["r"].status_code == 200
        assert result["r"].json()["response"]["allowed"] is False
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def _ok(client: httpx.Client) -> bool:
    try:
        return client.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False


def test_serve_refuses_to_start_without_a_certificate(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "webhook", "serve", "--no-cluster"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "give --tls-cert and --tls-key, or --dev" in result.stderr


def test_serve_refuses_a_bad_server_section(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("server:\n  mode: sometimes\n  failureMode: maybe\n  bogus: 1\n")
    result = subprocess.run([sys.executable, "-m", "webhook", "serve", "--dev", "--dev-dir", str(tmp_path),
                             "--config", str(config)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert f"{config}:4: server.bogus: unknown setting" in result.stderr
    assert f"{config}:2: server.mode: expected enforce or warn, found 'sometimes'" in result.stderr
    assert f"{config}:3: server.failureMode: expected allow or deny, found 'maybe'" in result.stderr


def test_a_second_server_in_the_same_process_has_its_own_metrics(tmp_path: Path, running: RunningServer) -> None:
    (tmp_path / "second").mkdir()
    other = start_server(tmp_path / "second")
    try:
        answer(other, review(service()))
        assert metric(other, "vllm_env_guard_admission_requests_total{") == 1.0
        assert metric(running, "vllm_env_guard_admission_requests_total{") == 0.0
    finally:
        other.stop()


def test_validate_skips_fastapi_yet_answers_as_its_route(running: RunningServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """POST /validate is served straight from ASGI (the hot path): FastAPI's stack is never
    entered, yet the answer is the one its route gives. Any other method gets FastAPI's 405."""
    import asyncio

    from fastapi import FastAPI
    from starlette.applications import Starlette

    app = running.server.config.app
    bodies = [review(workload("Pod", BAD)), review(workload("Pod", {"VLLM_PORT": "8000"})), {"kind": "nope"}]

    async def post_all(asgi: Any) -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(asgi), base_url="https://test") as client:
            return [await client.post("/validate?timeout=10s", json=body) for body in bodies]

    async def routed(scope: Any, receive: Any, send: Any) -> None:
        await FastAPI.__call__(app, scope, receive, send)

    expected = asyncio.run(post_all(routed))
    with monkeypatch.context() as patch:
        def entered(*_: Any) -> None:
            raise AssertionError("the fast path went through FastAPI's stack")

        patch.setattr(Starlette, "__call__", entered)
        fast = asyncio.run(post_all(app))
    assert [(r.status_code, r.json()) for r in fast] == [(r.status_code, r.json()) for r in expected]
    assert [r.json()["response"]["allowed"] if r.status_code == 200 else r.status_code for r in fast] == [
        False, True, 400]
    with running.client() as client:
        assert client.get("/validate").status_code == 405
