"""Builders for AdmissionReviews and objects, and a real server on HTTPS in a thread."""

from __future__ import annotations

import io
import itertools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.support import wait_until  # noqa: F401 - shared with the server tests
from webhook.cli import build_parser
from webhook.server.logs import LOGGER, JsonFormatter
from webhook.server.main import build_server
from webhook.server.tls import DevCertificates

_uids = itertools.count(1)

OLD_IMAGE = "vllm/vllm-openai:v0.8.1"
NEW_IMAGE = "vllm/vllm-openai:v0.9.2"


def container(env: dict[str, str] | None = None, image: str = NEW_IMAGE, name: str = "vllm") -> dict[str, Any]:
    return {"name": name, "image": image, "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}


def pod_spec(env: dict[str, str] | None = None, image: str = NEW_IMAGE, **spec: Any) -> dict[str, Any]:
    return {"containers": [container(env, image)], **spec}


def service(name: str = "vllm", namespace: str = "llm", ip: str = "10.96.0.12") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}]}}


def pod(env: dict[str, str] | None = None, image: str = NEW_IMAGE, name: str = "p", namespace: str = "llm",
        **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": pod_spec(env, image, **spec)}


def template(env: dict[str, str] | None, image: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "llm"}}, "spec": pod_spec(env, image, **spec)}


def workload(kind: str, env: dict[str, str] | None = None, image: str = NEW_IMAGE, name: str = "llm",
             namespace: str = "llm", **spec: Any) -> dict[str, Any]:
    """Any kind with a pod spec, in its own shape."""
    tpl = template(env, image, spec)
    bodies: dict[str, tuple[str, dict[str, Any]]] = {
        "Pod": ("v1", pod_spec(env, image, **spec)),
        "PodTemplate": ("v1", {}),
        "ReplicationController": ("v1", {"template": tpl}),
        "Deployment": ("apps/v1", {"template": tpl}),
        "StatefulSet": ("apps/v1", {"template": tpl, "serviceName": "x"}),
        "DaemonSet": ("apps/v1", {"template": tpl}),
        "ReplicaSet": ("apps/v1", {"template": tpl}),
        "Job": ("batch/v1", {"template": tpl}),
        "CronJob": ("batch/v1", {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": tpl}}}),
    }
    api_version, body = bodies[kind]
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace}}
    if kind == "PodTemplate":
        obj["template"] = tpl
    else:
        obj["spec"] = body
    return obj


def review(obj: dict[str, Any] | None, operation: str = "CREATE", *, old: dict[str, Any] | None = None,
           api_version: str = "admission.k8s.io/v1", dry_run: bool = False, uid: str | None = None,
           **extra: Any) -> dict[str, Any]:
    """An AdmissionReview request as the API server sends it."""
    subject = obj or old or {}
    group, _, version = subject.get("apiVersion", "v1").rpartition("/")
    meta = subject.get("metadata", {})
    request = {
        "uid": uid or f"uid-{next(_uids)}",
        "kind": {"group": group, "version": version, "kind": subject.get("kind", "")},
        "resource": {"group": group, "version": version, "resource": subject.get("kind", "").lower() + "s"},
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "operation": operation,
        "userInfo": {"username": "tester"},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
        **extra,
    }
    return {"apiVersion": api_version, "kind": "AdmissionReview", "request": request}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """A real `serve` (same code path as the CLI) on 127.0.0.1 over HTTPS, in a thread."""

    url: str
    port: int
    certs: DevCertificates
    config: Path
    server: uvicorn.Server
    thread: threading.Thread

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certs.ca))

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.context(), timeout=10, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def start_server(tmp: Path, *args: str, config: str = "server: {}\n") -> RunningServer:
    """`serve --dev --no-cluster` on a free port; the config file is `tmp/config.yaml`."""
    config_path = tmp / "config.yaml"
    config_path.write_text(config)
    port = free_port()
    argv = ["serve", "--dev", "--dev-dir", str(tmp / "certs"), "--host", "127.0.0.1", "--port", str(port),
            "--config", str(config_path), "--no-cluster", *args]
    server = build_server(build_parser().parse_args(argv), reload_interval=0.05)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    certs = DevCertificates(tmp / "certs" / "ca.crt", tmp / "certs" / "tls.crt", tmp / "certs" / "tls.key")
    return RunningServer(f"https://127.0.0.1:{port}", port, certs, config_path, server, thread)


@pytest.fixture
def running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[RunningServer]:
    server = start_server(tmp_path)
    capsys.readouterr()  # the --dev banner
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server_logs() -> Iterator[io.StringIO]:
    """What the server logs at INFO and above while the test runs, as JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(logging.NOTSET)
