#!/usr/bin/env python3
"""bench/hostile: the two reviews that used to be admitted unchecked, sent to a real `serve`.

  1. A 2.4 KB Pod with `VLLM_PORT=tcp://10.96.0.12:8000` (must be denied) and B0 = 1 KiB,
     B{i} = "$(B{i-1})$(B{i-1})" for i = 1..STEPS: each step doubles the expanded size.
  2. A bad `VLLM_PORT` plus 40,000 `VLLM_X{i}=1` entries (1.5 MB), alone and six at once.

For each: the answer (denied or not), the time to it, the server's peak RSS (VmHWM), and the
server's thread count before, right after, and 5 s after. Targets (issue 9): item 1 denied
within 1 s with peak RSS < 300 MB; item 2 denied, six at once all denied, threads back to
idle within 5 s.

    python bench/hostile.py [--steps 19]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import ssl
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from admission import free_port, make_certs, rss_mb, running, serve_argv  # noqa: E402

RESULTS: list[tuple[str, bool]] = []


def review(env: list[dict[str, str]], uid: str) -> bytes:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "llm"},
           "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.9.2", "env": env}]}}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": "llm", "name": "p", "object": pod}}).encode()


def doubling(steps: int) -> bytes:
    env = [{"name": "VLLM_PORT", "value": "tcp://10.96.0.12:8000"}, {"name": "B0", "value": "x" * 1024}]
    env += [{"name": f"B{i}", "value": f"$(B{i - 1})$(B{i - 1})"} for i in range(1, steps + 1)]
    return review(env, "doubling")


def many(count: int = 40_000) -> bytes:
    env = [{"name": "VLLM_PORT", "value": "tcp://10.96.0.12:8000"}]
    env += [{"name": f"VLLM_X{i}", "value": "1"} for i in range(count)]
    return review(env, "many")


def post(port: int, context: ssl.SSLContext, body: bytes) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    request = urllib.request.Request(f"https://localhost:{port}/validate?timeout=10s", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=context, timeout=30) as answer:
        data = json.loads(answer.read())
    return time.monotonic() - started, data["response"]


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check(what: str, ok: bool) -> None:
    RESULTS.append((what, ok))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=19)
    parser.add_argument("--workers", type=int, default=3,
                        help="serve's --workers (0: leave the option out, for releases without it)")
    args = parser.parse_args()
    pool = ["--workers", str(args.workers)] if args.workers else []
    with tempfile.TemporaryDirectory(prefix="veg-hostile-") as tmp:
        certs = make_certs(Path(tmp))
        ca = str(certs / "ca.crt")
        context = ssl.create_default_context(cafile=ca)
        port = free_port()
        with running(serve_argv(port, certs, "--no-cluster", *pool), port, ca) as proc:
            idle = threads(proc.pid) + args.workers  # the pool's threads start with the first reviews
            body = doubling(args.steps)
            seconds, answer = post(port, context, body)
            peak = rss_mb(proc.pid, "VmHWM")
            print(f"1. doubling $(VAR), {args.steps} steps ({len(body):,} bytes): allowed={answer['allowed']} "
                  f"in {seconds:.3f}s; peak RSS {peak:.0f} MB")
            print(f"   {answer.get('status', {}).get('message', '')[:300]}")
            check("1. denied", answer["allowed"] is False)
            check("1. within 1 s", seconds < 1.0)
            check("1. peak RSS < 300 MB", peak < 300)

            body = many()
            seconds, answer = post(port, context, body)
            print(f"2. 40,000 VLLM_X entries ({len(body):,} bytes): allowed={answer['allowed']} in {seconds:.2f}s")
            check("2. denied", answer["allowed"] is False)
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                started = time.monotonic()
                answers = list(pool.map(lambda _: post(port, context, body), range(6)))
            denied = sum(a["allowed"] is False for _, a in answers)
            print(f"   six at once: {denied} of 6 denied, slowest {max(s for s, _ in answers):.2f}s "
                  f"(all answered {time.monotonic() - started:.2f}s after sending)")
            check("2. six at once all denied", denied == 6)
            busy = threads(proc.pid)
            time.sleep(5)
            before = cpu_seconds(proc.pid)
            time.sleep(1)
            spent = cpu_seconds(proc.pid) - before
            after = threads(proc.pid)
            print(f"   threads: {idle} at rest (with {args.workers} workers), {busy} right after, {after} 5 s later, "
                  f"using {spent:.2f} CPU-seconds in the next second; peak RSS {rss_mb(proc.pid, 'VmHWM'):.0f} MB")
            check("2. threads back to idle within 5 s (no more than at rest, no work left running)",
                  after <= idle and spent < 0.1)
    print("\nsummary")
    for what, ok in RESULTS:
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    return 0 if all(ok for _, ok in RESULTS) else 1


if __name__ == "__main__":
    raise SystemExit(main())
