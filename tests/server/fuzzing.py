"""Seeded mutations of AdmissionReviews, and the checks every answer must pass.

Shared by the fuzz test (tests/server/test_fuzz.py) and `scripts/fuzz-webhook` (long runs).
A case is the bytes sent plus what they parse to (None when they are not JSON). The checks:
no 5xx; a 200 is an AdmissionReview echoing the request's uid; the canary (a credential
value, only ever under credential-named variables) appears in no response. The canary check
is skipped for a case whose mutation moved the canary under a name that is not a credential
(then showing it is allowed).
"""

from __future__ import annotations

import http.client
import json
import random
import ssl
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from webhook.detect import is_credential

CANARY = "hf_CanAry7r4Ce0Fs3cr3tV4lue"
IMAGES = ("vllm/vllm-openai:v0.9.2", "vllm/vllm-openai:v0.6.4", "vllm/vllm-openai:latest", "nginx:1")
STRANGE = ("\ud800", "\udc80x", "a\u202eb", "\x00\x1b[31m", "\u200b", "é" * 3, "", " ", "$(", "$(VLLM_PORT)",
           "$$(X)", "tcp://10.96.0.12:8000", "true", "1", "0", "-1", "1e309", "NaN", "\n" * 3, "𝕍𝕃𝕃𝕄")


def _container(rng: random.Random, index: int) -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": "HF_TOKEN", "value": CANARY},
        {"name": "AWS_SECRET_ACCESS_KEY", "value": CANARY},
        {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "VLLM_PORT", "value": rng.choice(["8000", "tcp://10.96.0.12:8000", "$(VLLM_HOST_IP)"])},
        {"name": "VLLM_USE_V1", "value": rng.choice(["1", "true", "0"])},
        {"name": "VLLM_LOGGING_LEVL", "value": "DEBUG"},
        {"name": "VLLM_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "B", "value": "$(VLLM_USE_V1)$(VLLM_PORT)"},
    ]
    rng.shuffle(env)
    return {"name": f"vllm-{index}", "image": rng.choice(IMAGES), "env": env[:rng.randint(3, len(env))],
            "envFrom": [{"configMapRef": {"name": "cm", "optional": True}}],
            "args": ["vllm", "serve", "m", "--port", "8000"]}


def _object(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(("Pod", "Deployment", "StatefulSet", "Job", "CronJob", "Service"))
    meta = {"name": rng.choice(("vllm", "llm", "api")), "namespace": "llm"}
    if kind == "Service":
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
                "spec": {"clusterIP": "10.96.0.12", "ports": [{"name": "http", "port": 8000}]}}
    pod = {"containers": [_container(rng, i) for i in range(1 if rng.random() < 0.7 else 2)], "enableServiceLinks": True}
    template = {"metadata": {"labels": {"app": "llm"}}, "spec": pod}
    specs = {"Pod": ("v1", pod), "Deployment": ("apps/v1", {"template": template}),
             "StatefulSet": ("apps/v1", {"template": template, "serviceName": "x"}),
             "Job": ("batch/v1", {"template": template}),
             "CronJob": ("batch/v1", {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}})}
    api_version, spec = specs[kind]
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": spec}


def seed(rng: random.Random, number: int) -> dict[str, Any]:
    """A well-formed review."""
    obj = _object(rng)
    operation = rng.choice(("CREATE", "CREATE", "UPDATE", "DELETE"))
    group, _, version = obj["apiVersion"].rpartition("/")
    request: dict[str, Any] = {
        "uid": f"fuzz-{number}", "kind": {"group": group, "version": version, "kind": obj["kind"]},
        "resource": {"group": group, "version": version, "resource": obj["kind"].lower() + "s"},
        "name": obj["metadata"]["name"], "namespace": "llm", "operation": operation,
        "userInfo": {"username": "fuzz"}, "dryRun": rng.random() < 0.1,
        "object": None if operation == "DELETE" else obj,
        "oldObject": _object(rng) if operation != "CREATE" else None,
    }
    return {"apiVersion": rng.choice(("admission.k8s.io/v1", "admission.k8s.io/v1beta1")),
            "kind": "AdmissionReview", "request": request}


def _strange_value(rng: random.Random) -> Any:
    choice = rng.randrange(12)
    if choice == 0:
        return rng.choice(STRANGE) * rng.choice((1, 2, 1000))
    if choice == 1:
        return rng.choice((0, -1, 2**63, 10**40, 1.5, -0.0, True, False, None))
    if choice == 2:
        return [rng.choice(STRANGE)] * rng.choice((0, 1, 500))
    if choice == 3:
        return {rng.choice(STRANGE): rng.choice(STRANGE)}
    if choice == 4:
        return "x" * (70_000 if rng.random() < 0.05 else 300)
    if choice == 5:
        deep: Any = "x"
        for _ in range(rng.choice((10, 400))):
            deep = [deep]
        return deep
    if choice == 6:
        return f"$(VLLM_PORT){rng.choice(STRANGE)}$(B)"
    return rng.choice(STRANGE)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return root


def _structural(rng: random.Random, tree: Any) -> Any:
    """1-3 edits of the tree (in place): a node replaced, deleted, duplicated, or given a strange key."""
    for _ in range(rng.randint(1, 3)):
        paths = list(_paths(tree))
        path = rng.choice(paths)
        action = rng.randrange(5)
        parent = tree
        for key in path[:-1]:
            parent = parent[key]
        if action == 0 or not path:
            tree = _set(tree, path, _strange_value(rng))
        elif action == 1:
            del parent[path[-1]]
        elif action == 2 and isinstance(parent, list):
            parent.extend([parent[path[-1]]] * rng.choice((2, 50)))
        elif action == 3 and isinstance(parent, dict):
            parent[rng.choice(STRANGE)] = _strange_value(rng)
        else:
            tree = _set(tree, path, _strange_value(rng))
    return tree


def _bytes(rng: random.Random, body: bytes) -> bytes:
    """A byte-level edit: truncation, a flipped byte, an inserted run, a huge integer."""
    action = rng.randrange(5)
    at = rng.randrange(len(body) + 1)
    if action == 0:
        return body[:at]
    if action == 1 and at < len(body):
        return body[:at] + bytes([body[at] ^ (1 << rng.randrange(8))]) + body[at + 1:]
    if action == 2:
        return body[:at] + rng.choice((b"\xff\xfe", b"\\ud800", b"\x00", b"[" * 3000, b'"', b",")) + body[at:]
    if action == 3:
        return body.replace(b'"dryRun": false', b'"dryRun": ' + b"9" * rng.choice((10, 5000)), 1)
    return b"[" * 5000 + b"]" * 5000


@dataclass(frozen=True)
class Case:
    body: bytes
    parsed: Any  # None when the body is not JSON


def cases(seed_value: int, count: int) -> Iterator[Case]:
    """`count` cases, the same for the same seed: a fifth unmutated, the rest mutated."""
    rng = random.Random(seed_value)
    for number in range(count):
        review = seed(rng, number)
        roll = rng.random()
        if roll < 0.85:
            tree = review if roll < 0.2 else _structural(rng, review)
            yield Case(json.dumps(tree).encode(), tree)
            continue
        body = _bytes(rng, json.dumps(review).encode())
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            parsed = None
        yield Case(body, parsed)


def _canary_names(node: Any) -> Iterator[Any]:
    """Names of env entries whose value holds the canary, and True for a canary anywhere else."""
    if isinstance(node, dict):
        value = node.get("value")
        if isinstance(value, str) and CANARY in value:
            yield node.get("name")
        for key, child in node.items():
            if key != "value" or not isinstance(child, str):
                yield from _canary_names(child)
            if isinstance(key, str) and CANARY in key:
                yield True
    elif isinstance(node, list):
        for child in node:
            yield from _canary_names(child)
    elif isinstance(node, str) and CANARY in node:
        yield True


def canary_must_stay_hidden(case: Case) -> bool:
    """Whether every copy of the canary sits under a credential-named variable."""
    return all(isinstance(name, str) and is_credential(name) for name in _canary_names(case.parsed))


def problems(case: Case, status: int, body: bytes) -> list[str]:
    """What is wrong with the answer `status`, `body` to `case` (empty: nothing)."""
    found = []
    if status >= 500:
        found.append(f"HTTP {status}")
    if CANARY.encode() in body and canary_must_stay_hidden(case):
        found.append("the canary is in the response")
    if status == 200:
        try:
            answer = json.loads(body)
            uid = answer["response"]["uid"]
        except (ValueError, KeyError, TypeError):
            return [*found, "a 200 that is not an AdmissionReview"]
        request = case.parsed.get("request") if isinstance(case.parsed, dict) else None
        sent = request.get("uid") if isinstance(request, dict) else None
        if uid != sent:
            found.append(f"uid {uid!r} echoed for {sent!r}")
    return found


@dataclass
class Report:
    statuses: Counter[int] = field(default_factory=Counter)
    dropped: int = 0  # connections closed or reset without an answer
    problems: list[str] = field(default_factory=list)
    sent: int = 0

    def summary(self) -> str:
        counts = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        return (f"{self.sent} requests; by status {{{counts}}}; dropped connections: {self.dropped}; "
                f"problems: {len(self.problems)}")


def send_all(host: str, port: int, context: ssl.SSLContext, stream: Iterable[Case], concurrency: int = 6,
             path: str = "/validate?timeout=10s") -> Report:
    """Post every case (keep-alive, `concurrency` connections) and check each answer."""
    report = Report()
    lock = threading.Lock()
    source = iter(stream)

    def worker() -> None:
        connection: http.client.HTTPSConnection | None = None
        while True:
            with lock:
                case = next(source, None)
            if case is None:
                break
            if connection is None:
                connection = http.client.HTTPSConnection(host, port, context=context, timeout=60)
            try:
                connection.request("POST", path, body=case.body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                status, body = response.status, response.read()
                closing = response.getheader("connection", "").lower() == "close"
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                connection = None
                with lock:
                    report.sent += 1
                    report.dropped += 1
                    report.problems.append(f"dropped: {exc!r} for {case.body[:200]!r}")
                continue
            found = problems(case, status, body)
            with lock:
                report.sent += 1
                report.statuses[status] += 1
                report.problems.extend(f"{p}: sent {case.body[:300]!r}" for p in found)
            if closing:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=worker, name=f"fuzz-{i}") for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return report
