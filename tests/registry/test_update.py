"""`registry update --dir` then `lint|explain --registry-dir`: a vLLM release newer than the
bundled table, served by a package index on loopback (a wheel built from the real envs.py of
the newest bundled release plus one new variable, read by the same byte-range reads as PyPI)."""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from webhook.registry import bundled_versions, fetch

pytestmark = pytest.mark.conformance  # reads the newest bundled release from PyPI (cached)

NEW = "0.99.0"
NEW_VARIABLE = "VLLM_BRAND_NEW_SWITCH"


def _wheel() -> bytes:
    newest = bundled_versions()[-1]
    sources = fetch.fetch_sources(newest)
    envs = sources[fetch.ENVS_MEMBER] or ""
    table = next(n for n in ast.parse(envs).body if isinstance(n, (ast.Assign, ast.AnnAssign))
                 and "environment_variables" in ast.unparse(n.targets[0] if isinstance(n, ast.Assign) else n.target))
    lines = envs.splitlines(keepends=True)
    opening = table.value.lineno  # the line that opens the dict
    lines.insert(opening, f'    "{NEW_VARIABLE}": lambda: bool(int(os.getenv("{NEW_VARIABLE}", "0"))),\n')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        wheel.writestr(fetch.ENVS_MEMBER, "".join(lines))
        for member, source in sources.items():
            if member != fetch.ENVS_MEMBER and source is not None:
                wheel.writestr(member, source)
        wheel.writestr(f"vllm-{NEW}.dist-info/METADATA",
                       f"Metadata-Version: 2.1\nName: vllm\nVersion: {NEW}\nRequires-Dist: torch==2.14.0\n")
    return buffer.getvalue()


class _Index(BaseHTTPRequestHandler):
    """/pypi/vllm/json lists one release; its wheel is served with Range support."""

    wheel = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/pypi/vllm/json":
            files = [{"packagetype": "bdist_wheel", "filename": f"vllm-{NEW}-cp38-abi3-manylinux1_x86_64.whl",
                      "url": f"/files/vllm-{NEW}.whl", "size": len(self.wheel), "yanked": False}]
            self._send(200, json.dumps({"releases": {NEW: files}}).encode())
        elif self.path == f"/files/vllm-{NEW}.whl":
            first, _, last = self.headers["Range"].removeprefix("bytes=").partition("-")
            self._send(206, self.wheel[int(first): int(last) + 1])
        else:
            self._send(404, b"")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def index() -> Iterator[str]:
    _Index.wheel = _wheel()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def cli(*args: str, env: dict[str, str], cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "webhook", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, input=stdin, timeout=300)


MANIFEST = f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: llm, namespace: default}}
spec:
  selector: {{matchLabels: {{app: llm}}}}
  template:
    metadata: {{labels: {{app: llm}}}}
    spec:
      containers:
      - name: vllm
        image: vllm/vllm-openai:v{NEW}
        env:
        - name: {NEW_VARIABLE}
          value: "true"
"""


def test_update_then_lint_and_explain_use_the_new_release(index: str, tmp_path: Path) -> None:
    env = {**os.environ, "VEG_PYPI_URL": index, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    directory = tmp_path / "registries"
    done = cli("registry", "update", "--dir", str(directory), env=env)
    assert done.returncode == 0, done.stderr
    assert f"imported vLLM {NEW}" in done.stderr
    assert json.loads((directory / "registries.json").read_text())["versions"] == [NEW]
    again = cli("registry", "update", "--dir", str(directory), env=env)
    assert again.returncode == 0 and "up to date" in again.stderr

    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(MANIFEST)
    with_dir = cli("lint", str(manifest), "--format", "json", "--registry-dir", str(directory), env=env)
    assert with_dir.returncode == 1, with_dir.stderr
    findings = json.loads(with_dir.stdout)["findings"]
    assert [(f["rule"], f["vllm_version"]) for f in findings] == [("env-parse-error", NEW)]

    without = cli("lint", str(manifest), "--format", "json", env=env)
    findings = json.loads(without.stdout)["findings"]
    assert [f["rule"] for f in findings] == ["env-unknown-variable"]
    newest = bundled_versions()[-1]
    assert findings[0]["vllm_version"] == newest and "newer than every bundled release" in findings[0]["message"]

    (tmp_path / ".vllm-env-guard.yaml").write_text(f"registryDir: {directory}\n")
    by_config = cli("lint", "deploy.yaml", "--format", "json", env=env, cwd=tmp_path)
    assert [f["rule"] for f in json.loads(by_config.stdout)["findings"]] == ["env-parse-error"]

    explained = cli("explain", f"{NEW_VARIABLE}=true", "--vllm-version", NEW, "--format", "json",
                    "--registry-dir", str(directory), env=env)
    assert json.loads(explained.stdout)[0]["result"]["error"] == "ValueError"


def test_a_registry_dir_without_a_table_is_a_usage_error(tmp_path: Path) -> None:
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(MANIFEST)
    done = cli("lint", str(manifest), "--registry-dir", str(tmp_path / "nothing"), env=dict(os.environ))
    assert done.returncode == 2
    assert "registry update --dir" in done.stderr and "Traceback" not in done.stderr
