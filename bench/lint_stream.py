#!/usr/bin/env python3
"""bench/lint: linting a 10,000-document stream vs parsing it with PyYAML's C loader alone.

Both are measured in the same run on the same text (best of --repeat runs each); the target is
a ratio below 1.5. The stream mixes vLLM Deployments (with VLLM_* env, some bad), Services
(some colliding) and ConfigMaps, the shape `helm template` produces for a large platform.

    python bench/lint_stream.py [--documents 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from webhook.engine import Item, Settings, analyze  # noqa: E402
from webhook.manifests import load_text  # noqa: E402
from webhook.registry.store import _table, load_registry  # noqa: E402

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: model-{i}
  namespace: team-{ns}
  labels: {{app: model-{i}, tier: inference}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: model-{i}}}
  template:
    metadata:
      labels: {{app: model-{i}}}
    spec:
      containers:
      - name: vllm
        image: vllm/vllm-openai:v0.{minor}.0
        args: ["--model", "org/model-{i}", "--port", "8000", "--tensor-parallel-size", "2"]
        ports:
        - containerPort: 8000
        env:
        - name: VLLM_LOGGING_LEVEL
          value: INFO
        - name: VLLM_USE_V1
          value: "{v1}"
        - name: VLLM_NO_USAGE_STATS
          value: "1"
        - name: HF_HOME
          value: /models/cache
        - name: VLLM_API_KEY
          valueFrom:
            secretKeyRef: {{name: api-{i}, key: key}}
        resources:
          limits: {{nvidia.com/gpu: 2, memory: 64Gi}}
        volumeMounts:
        - {{name: models, mountPath: /models}}
      volumes:
      - name: models
        persistentVolumeClaim: {{claimName: models-{i}}}
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: team-{ns}
spec:
  selector: {{app: model-{i}}}
  ports:
  - {{name: http, port: 8000, targetPort: 8000}}
"""
CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings-{i}
  namespace: team-{ns}
data:
  VLLM_LOGGING_LEVEL: DEBUG
  chat-template: "{{{{ messages }}}}"
"""


def stream(documents: int) -> str:
    parts = []
    for i in range(documents):
        ns = i % 50
        kind = i % 4
        if kind in (0, 1):
            parts.append(DEPLOYMENT.format(i=i, ns=ns, minor=8 + i % 3, v1="true" if i % 97 == 0 else "1"))
        elif kind == 2:
            parts.append(SERVICE.format(i=i, ns=ns, name="vllm" if i % 501 == 2 else f"model-{i}"))
        else:
            parts.append(CONFIGMAP.format(i=i, ns=ns))
    return "---\n".join(parts)


def cpu_seconds(fn) -> float:  # noqa: ANN001
    """CPU time of one call: steadier than wall time on a shared machine."""
    gc.collect()
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    text = stream(args.documents)
    findings: list = []

    def baseline() -> None:
        list(yaml.load_all(text, Loader=yaml.CSafeLoader))

    def lint() -> None:
        # Each run starts cold, as a CLI run does: bundled registries reloaded, no memo.
        load_registry.cache_clear()
        _table.cache_clear()
        documents = load_text(text, "stream.yaml")
        findings[:] = analyze([Item(d.obj, d.path) for d in documents if d.obj is not None], Settings())

    # Interleaved, best of `repeat` each, so both see the same machine.
    runs = [(cpu_seconds(baseline), cpu_seconds(lint)) for _ in range(args.repeat)]
    parse_s = min(r[0] for r in runs)
    lint_s = min(r[1] for r in runs)
    ratio = lint_s / parse_s
    print(f"documents: {args.documents}, bytes: {len(text)}, findings: {len(findings)}")
    print(f"PyYAML CSafeLoader load_all: {parse_s:.3f}s CPU")
    print(f"vllm-env-guard lint:         {lint_s:.3f}s CPU")
    print(f"ratio: {ratio:.2f}x (target < 1.5x) -> {'PASS' if ratio < 1.5 else 'FAIL'}")
    return 0 if ratio < 1.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
