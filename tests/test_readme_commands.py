"""Every shell command in README.md and docs/*.md works as written.

The commands are read from the fenced code blocks (```bash, ```sh, ```shell: every line;
```console: the `$ ` lines, and the output shown under them, where `...` stands for any text,
must appear in what the command prints). Each one is run, or listed in NOT_RUN with the reason:

- `pip install ...` in a fresh venv, once (slow; pip's own cache makes reruns cheap); that venv
  also proves the light install: lint without fastapi, uvicorn, kubernetes or cryptography.
- `vllm-env-guard ...` with this environment's command, from the repository root.
- `helm ...` and `kubectl ...` against a real kube-apiserver when KUBEBUILDER_ASSETS is set
  (skipped with that reason otherwise), in the order the page gives them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = {"bash", "sh", "shell", "console"}
SERVER_PACKAGES = ("fastapi", "uvicorn", "kubernetes", "prometheus_client", "cryptography", "starlette", "pydantic",
                   "aiohttp")
LIGHT_INSTALL = "pip install . && vllm-env-guard lint examples/"
RUN_PREFIXES = ("pip install ", "vllm-env-guard ", "helm ", "kubectl ")

# Commands that are not run here, each with the reason.
NOT_RUN = {
    "pip install -e '.[test]'": "installs the test extra, which this suite runs under; the venv here checks the light install",
    'export KUBEBUILDER_ASSETS="$(scripts/envtest-assets)"   # part (b) needs a real kube-apiserver':
        "builds the control plane; this suite's e2e tests use the KUBEBUILDER_ASSETS it printed",
    "python bench/admission.py          # (a) throughput, (b) namespace size, (c) lint scaling, (d) decide()":
        "a benchmark of several minutes that measures, it does not test; docs/performance.md gives its output",
    "python bench/hostile.py            # the two reviews that used to be admitted unchecked":
        "a benchmark (docs/performance.md gives its output); tests/test_bounded_work.py checks the same reviews",
    "python bench/lint_stream.py        # lint vs PyYAML on a 10,000-document stream":
        "a benchmark (docs/performance.md gives its output)",
    "python bench/corpus.py             # lint vs PyYAML on ../shared/corpus (229 real manifests)":
        "a benchmark on the corpus beside the project (docs/performance.md gives its output)",
    "pip install -e '.[test]' && KUBEBUILDER_ASSETS=\"$(scripts/envtest-assets)\" python -m pytest":
        "runs this test suite, this test included (.ci/run runs exactly this)",
    "export KUBEBUILDER_ASSETS=$(scripts/envtest-assets)":
        "builds the control plane; the e2e tests below use the KUBEBUILDER_ASSETS it printed",
    "python -m pytest tests/e2e": "runs the e2e suite, which the full test run includes",
    "export KUBEBUILDER_ASSETS=$(setup-envtest use -p path 1.33.x)":
        "setup-envtest downloads prebuilt binaries from the internet; the tests build theirs from source",
    "mkdir -p /tmp/veg-assets": "part of the setup-envtest recipe above",
    'ln -sf "$(setup-envtest use -p path 1.33.x)"/* "$(command -v helm)" /tmp/veg-assets/':
        "part of the setup-envtest recipe above",
    "export KUBEBUILDER_ASSETS=/tmp/veg-assets": "part of the setup-envtest recipe above",
    "pip install vllm-env-guard": "installs a published release from PyPI; this tree is what is tested",
    "vllm-env-guard lint deploy/                      # files and directories (*.yaml, *.yml, *.json)":
        "deploy/ stands for the reader's manifests",
    "helm template my-release charts/my-chart | vllm-env-guard lint -    # - reads stdin":
        "charts/my-chart stands for the reader's chart",
    "kubectl -n vllm-env-guard rollout status deployment/env-guard":
        "the e2e control plane runs no controllers or nodes, so no pod ever starts",
    "kubectl -n my-llm-namespace create service clusterip vllm --tcp=8000 --dry-run=server":
        "needs the webhook serving (pods) and the reader's namespace; tests/e2e/test_webhook.py covers the warning",
    "kubectl label namespace llm-staging vllm-env-guard.io/mode=enforce": "llm-staging stands for the reader's namespace",
    "kubectl apply -f manifests/install.yaml":
        "the e2e control plane runs no pods to serve it; tests/e2e/test_chart_install.py dry-runs these manifests",
    "kubectl patch validatingadmissionpolicybinding env-guard-service-names --type merge -p "
    "'{\"spec\":{\"validationActions\":[\"Deny\",\"Audit\"]}}'":
        "switches the policy applied above (not run here); tests/e2e/test_chart_install.py runs this patch",
    "vllm-env-guard serve --self-managed-tls vllm-env-guard/env-guard-tls --webhook-configuration env-guard "
    "--tls-hosts env-guard.vllm-env-guard.svc,env-guard.vllm-env-guard.svc.cluster.local":
        "runs in the cluster with its ServiceAccount; tests/e2e/test_self_managed_tls.py runs it with these flags",
    "kubectl delete -f manifests/install.yaml            # plain manifests": "see kubectl apply -f manifests/install.yaml",
    "kubectl apply -f manifests/validating-admission-policy.yaml":
        "tests/e2e/test_chart_install.py applies the policy and checks its verdicts",
    "kubectl -n llm create service clusterip vllm --tcp=8000":
        "llm stands for the reader's namespace; tests/e2e/test_chart_install.py checks the policy's verdicts",
    "kubectl delete -f manifests/validating-admission-policy.yaml": "see kubectl apply -f the policy above",
}


@dataclass(frozen=True)
class Command:
    page: Path
    line: int
    text: str
    shown: tuple[str, ...] = ()  # the output a ```console block shows under it

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}: {self.text}"


def extract(page: Path) -> Iterator[Command]:
    """The shell commands of one Markdown page's code blocks, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    fence: str | None = None
    pending: list[str] = []
    start = 0
    console: tuple[int, str, list[str]] | None = None  # a console command and the output under it
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if text.startswith("```"):
            if fence is None:
                fence = text[3:].strip()
                continue
            if console:
                yield Command(page, console[0], console[1], tuple(console[2]))
            fence, console = None, None
            continue
        if fence not in SHELLS:
            continue
        if fence == "console":
            if text.startswith("$ "):
                if console:
                    yield Command(page, console[0], console[1], tuple(console[2]))
                console = (number, text[2:], [])
            elif console:
                console[2].append(raw)
            continue
        if not text or (text.startswith("#") and not pending):
            continue
        if not pending:
            start = number
        if text.endswith("\\"):
            pending.append(text[:-1].strip())
            continue
        yield Command(page, start, " ".join([*pending, text]))
        pending = []


COMMANDS = [command for page in PAGES for command in extract(page)]


def run(command: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def shows(output: str, shown: tuple[str, ...]) -> bool:
    """Whether `output` holds the `shown` lines in order (`...` in a shown line stands for any text,
    the spaces around it included)."""
    remaining = iter(output.splitlines())
    for line in shown:
        pattern = re.compile(".*".join(re.escape(part.strip()) for part in line.strip().split("...")))
        if not any(pattern.fullmatch(actual.strip()) for actual in remaining):
            return False
    return True


# --- the inventory --------------------------------------------------------------------------


def test_the_pages_have_commands_and_the_readme_starts_with_the_light_install() -> None:
    readme = [c for c in COMMANDS if c.page.name == "README.md"]
    assert readme[0].text == LIGHT_INSTALL
    assert any(c.text.startswith("helm install ") for c in readme)


def test_every_command_is_run_or_has_a_reason_not_to_be() -> None:
    unknown = [str(c) for c in COMMANDS if c.text not in NOT_RUN and not c.text.startswith(RUN_PREFIXES)]
    assert not unknown, "commands neither run nor listed in NOT_RUN:\n" + "\n".join(unknown)
    listed = {c.text for c in COMMANDS}
    assert not [text for text in NOT_RUN if text not in listed], "NOT_RUN lists commands no page has"


def test_the_readme_helm_install_uses_a_release_name_the_chart_accepts() -> None:
    installs = [c for c in COMMANDS if c.text.startswith("helm install ")]
    assert installs and all(not c.text.split()[2].startswith("vllm") for c in installs)


# --- vllm-env-guard -------------------------------------------------------------------------


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.text.startswith("vllm-env-guard ")
                                     and c.text not in NOT_RUN], ids=str)
def test_vllm_env_guard_command(command: Command) -> None:
    here = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{here}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = run(command.text, ROOT, env, timeout=120)
    # 0: nothing wrong; 1: the findings the example is there to show. 2 is a usage error.
    assert result.returncode in (0, 1), f"{command}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    assert shows(result.stdout, command.shown), f"{command}: the page shows output this command does not print:\n" \
                                                f"{result.stdout}"


# --- pip: a fresh venv, once ----------------------------------------------------------------


@dataclass
class Venv:
    path: Path
    tree: Path  # the copy of the repository the pip commands ran in
    env: dict[str, str]
    results: dict[str, subprocess.CompletedProcess[str]]


def _copy_tree(destination: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                    ".ruff_cache")
    return Path(shutil.copytree(ROOT, destination, ignore=ignore))


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A venv in which the pages' pip commands ran, in a copy of this tree (no build/ left here)."""
    base = tmp_path_factory.mktemp("readme")
    tree = _copy_tree(base / "tree")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env |= {"PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(venv),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    results = {c.text: run(c.text, tree, env, timeout=900) for c in COMMANDS
               if c.text.startswith("pip install ") and c.text not in NOT_RUN}
    return Venv(venv, tree, env, results)


@pytest.mark.slow
def test_pip_commands(fresh_venv: Venv) -> None:
    assert LIGHT_INSTALL in fresh_venv.results
    for text, result in fresh_venv.results.items():
        expected = 1 if text == LIGHT_INSTALL else 0  # examples/bad holds broken deployments
        assert result.returncode == expected, f"{text}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    lint = fresh_venv.results[LIGHT_INSTALL].stdout
    assert "service-link-collision" in lint and "env-parse-error" in lint


@pytest.mark.slow
def test_the_light_install_has_no_server_packages(fresh_venv: Venv) -> None:
    python = fresh_venv.path / "bin" / "python"
    probe = ("import importlib.util, json; "
             f"print(json.dumps([m for m in {SERVER_PACKAGES!r} if importlib.util.find_spec(m)]))")
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert found.stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.parametrize("args", [["serve", "--dev"], ["audit", "-A"]])
def test_the_light_install_says_how_to_get_serve_and_audit(fresh_venv: Venv, args: list[str]) -> None:
    tool = fresh_venv.path / "bin" / "vllm-env-guard"
    result = subprocess.run([str(tool), *args], capture_output=True, text=True, timeout=120, env=fresh_venv.env,
                            cwd=fresh_venv.tree, check=False)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.endswith("is not installed): pip install 'vllm-env-guard[server]'\n")


# --- helm and kubectl against a real API server ---------------------------------------------

RELEASE_CLEANUP = ("helm", "uninstall", "env-guard", "-n", "vllm-env-guard", "--ignore-not-found")


@pytest.fixture(scope="module")
def cluster_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """PATH with kubectl and helm, and KUBECONFIG for a control plane of this module's own."""
    assets = os.environ.get("KUBEBUILDER_ASSETS", "")
    if not assets:
        reason = "KUBEBUILDER_ASSETS is not set; run scripts/envtest-assets"
        if os.environ.get("VEG_REQUIRE_E2E") == "1":
            pytest.fail(f"{reason} (VEG_REQUIRE_E2E=1)", pytrace=False)
        pytest.skip(reason)
    from tests.e2e.controlplane import ControlPlane

    home = tmp_path_factory.mktemp("helm-home")
    with ControlPlane(assets) as cp:
        yield {"PATH": f"{assets}{os.pathsep}/usr/bin:/bin", "HOME": str(home), "KUBECONFIG": cp.kubeconfig}


@pytest.mark.e2e
@pytest.mark.parametrize("page", [p for p in PAGES if any(c.page == p and c.text.startswith(("helm ", "kubectl "))
                                                          and c.text not in NOT_RUN for c in COMMANDS)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_helm_and_kubectl_commands(page: Path, cluster_env: dict[str, str]) -> None:
    commands = [c for c in COMMANDS if c.page == page and c.text.startswith(("helm ", "kubectl "))
                and c.text not in NOT_RUN]
    try:
        for command in commands:
            result = run(command.text, ROOT, cluster_env, timeout=300)
            assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    finally:  # each page starts from an empty cluster
        subprocess.run(list(RELEASE_CLEANUP), env=cluster_env, capture_output=True, timeout=300, check=False)
