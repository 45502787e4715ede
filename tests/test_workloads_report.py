"""`lint --format json` lists every container examined, with the release assumed and why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: llm, namespace: team}
spec:
  selector: {matchLabels: {app: llm}}
  template:
    metadata: {labels: {app: llm}}
    spec:
      initContainers:
      - {name: fetch, image: busybox, env: [{name: VLLM_USE_V1, value: "true"}]}
      containers:
      - name: server
        image: vllm/vllm-openai:v0.8.1
        env: [{name: VLLM_USE_V1, value: "1"}]
      - {name: proxy, image: nginx}
"""


def test_every_container_examined_is_listed_with_its_release(tmp_path: Path) -> None:
    path = tmp_path / "llm.yaml"
    path.write_text(MANIFEST)
    result = subprocess.run([sys.executable, "-m", "webhook", "lint", str(path), "--format", "json"],
                            capture_output=True, text=True, check=False)
    workloads = json.loads(result.stdout)["workloads"]
    rows = {w["container"]: (w["runs_vllm"], w["vllm_version"], w["vllm_version_reason"], w["line"])
            for w in workloads}
    assert rows == {
        "fetch": (False, None, None, 10),
        "server": (True, "0.8.1", "from the image vllm/vllm-openai:v0.8.1", 12),
        "proxy": (False, None, None, 15),
    }
    assert {w["file"] for w in workloads} == {str(path)}
    assert workloads[0]["object"] == {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "team", "name": "llm"}
