"""The command line as a user's shell sees it: closed pipes, --quiet, --color, usage lines,
`explain` exit codes, did-you-mean, the server extra, the pure-Python YAML loader.

Most tests run `python -m webhook` in a subprocess: pipes, terminals and the interpreter's
own exit are part of what is tested.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from webhook.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ESC = "\033["


def cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
        prelude: str = "") -> subprocess.CompletedProcess[str]:
    """`vllm-env-guard ARGS` in a fresh interpreter (after `prelude`, Python run first)."""
    code = f"{prelude}\nfrom webhook.cli import main\nraise SystemExit(main({list(args)!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, input=stdin,
                          env={**os.environ, **(env or {})}, cwd=ROOT, timeout=120, check=False)


def piped_into_head(*args: str) -> tuple[int, str, str]:
    """`vllm-env-guard ARGS | head -1`: the exit code of the command, its first line, its stderr."""
    command = [sys.executable, "-m", "webhook", *args]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline().decode()
        proc.stdout.close()  # what head does after its line
        err = proc.stderr.read().decode()
        return proc.wait(timeout=120), first, err


def on_a_terminal(*args: str, env: dict[str, str]) -> str:
    """The output of `vllm-env-guard ARGS` with stdout on a pseudo-terminal."""
    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")} | env
    proc = subprocess.Popen([sys.executable, "-m", "webhook", *args], stdout=follower, stderr=subprocess.DEVNULL,
                            cwd=ROOT, env=environ)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    proc.wait(timeout=120)
    return b"".join(chunks).decode()


# --- closed pipes ---------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "expected"), [
    (["registry", "list"], 0),
    (["registry", "list", "--format", "json"], 0),
    (["lint", str(EXAMPLES / "bad"), "--format", "json"], 1),
    (["explain", "VLLM_USE_V1=true", "--vllm-version", "0.8.1", "--format", "json"], 1),
])
def test_a_closed_pipe_ends_the_output_quietly_with_the_usual_exit_code(args: list[str], expected: int) -> None:
    code, first, err = piped_into_head(*args)
    assert first.strip()
    assert (code, err) == (expected, "")


def test_a_closed_pipe_on_a_long_report() -> None:
    # More output than a pipe buffer holds (64 KiB), so a write fails for sure, not just the final flush.
    code, first, err = piped_into_head("lint", str(EXAMPLES / "bad"), str(EXAMPLES / "bad"), str(EXAMPLES / "bad"),
                                       "--format", "sarif")
    assert first == "{\n" and (code, err) == (1, "")


# --- --quiet and --color --------------------------------------------------------------------


def test_quiet_prints_only_the_summary_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(EXAMPLES / "bad")]) == 1
    full = capsys.readouterr().out.splitlines()
    assert main(["lint", str(EXAMPLES / "bad"), "--quiet"]) == 1
    quiet = capsys.readouterr().out.splitlines()
    assert len(full) > 1 and quiet == full[-1:]
    assert quiet[0].startswith(f"{sum(': error ' in line for line in full)} errors, ")


def test_quiet_is_for_text_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(EXAMPLES / "bad"), "-q", "--format", "json"]) == 2
    assert capsys.readouterr().err == "vllm-env-guard lint: --quiet applies to --format text only, not json\n"


@pytest.mark.parametrize(("flag", "env", "colored"), [
    ([], {}, True),
    ([], {"NO_COLOR": "1"}, False),
    ([], {"NO_COLOR": ""}, True),  # no-color.org: only a non-empty value counts
    ([], {"TERM": "dumb"}, False),
    (["--color", "never"], {}, False),
    (["--color", "always"], {"NO_COLOR": "1", "TERM": "dumb"}, True),  # an explicit flag wins
])
def test_color_on_a_terminal(flag: list[str], env: dict[str, str], colored: bool) -> None:
    out = on_a_terminal("lint", str(EXAMPLES / "bad"), *flag, env={"TERM": "xterm", **env})
    assert "service-link-collision" in out
    assert (ESC in out) is colored


@pytest.mark.parametrize(("flag", "colored"), [([], False), (["--color", "always"], True)])
def test_color_into_a_pipe(flag: list[str], colored: bool) -> None:
    result = cli("lint", str(EXAMPLES / "bad"), *flag, env={"TERM": "xterm"})
    assert result.returncode == 1 and (ESC in result.stdout) is colored


def test_color_never_touches_machine_formats() -> None:
    result = cli("lint", str(EXAMPLES / "bad"), "--color", "always", "--format", "json")
    assert ESC not in result.stdout and json.loads(result.stdout)["summary"]["errors"] > 0


# --- usage lines ----------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "usage", "bad"), [
    (["lint", "--bogus", "x.yaml"], "usage: vllm-env-guard lint ", "--bogus"),
    (["explain", "VLLM_PORT=1", "--colour"], "usage: vllm-env-guard explain ", "--colour"),
    (["audit", "--bogus"], "usage: vllm-env-guard audit ", "--bogus"),
    (["registry", "show", "VLLM_PORT", "--bogus"], "usage: vllm-env-guard registry show ", "--bogus"),
    (["registry", "list", "--colour"], "usage: vllm-env-guard registry list ", "--colour"),
    (["--bogus", "lint"], "usage: vllm-env-guard [-h]", "--bogus"),
])
def test_a_bad_flag_prints_the_usage_of_its_own_command(args: list[str], usage: str, bad: str) -> None:
    result = cli(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(usage)
    assert result.stderr.endswith(f"error: unrecognized arguments: {bad}\n")


# --- explain --------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "code"), [
    (["VLLM_USE_V1=1", "VLLM_LOGGING_LEVEL=INFO"], 0),
    (["VLLM_KEEP_ALIVE_ON_ENGINE_DEATH=0"], 0),  # a warning: vLLM starts, with a surprise
    (["VLLM_USE_V1=1", "VLLM_USE_V1X=1"], 0),  # an unknown name is a warning
    (["VLLM_LOGGING_LEVEL=INFO", "VLLM_USE_V1=true"], 1),  # int("true") raises
    (["VLLM_PORT=tcp://10.96.0.12:8000"], 1),
])
def test_explain_exits_1_when_vllm_would_fail(settings: list[str], code: int,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", *settings, "--vllm-version", "0.8.1"]) == code
    assert main(["explain", *settings, "--vllm-version", "0.8.1", "--format", "json"]) == code


def test_explain_refuses_a_repeated_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "VLLM_PORT=8000", "VLLM_USE_V1=1", "VLLM_PORT"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("vllm-env-guard explain: VLLM_PORT is given twice: its arguments form one environment, "
                   "so each NAME may appear once (run explain again for another value)\n")


# --- registry show --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "meant"), [
    ("vllm_port", "VLLM_PORT"),  # the same letters in another case come first
    ("Vllm_Host_Ip", "VLLM_HOST_IP"),
    ("VLLM_PROT", "VLLM_PORT"),  # else the closest name
    ("vllm_loging_level", "VLLM_LOGGING_LEVEL"),
])
def test_registry_show_suggests_the_variable_meant(name: str, meant: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", "show", name, "--vllm-version", "0.8.1"]) == 2
    assert capsys.readouterr().err == (f"vllm-env-guard registry: {name} is not a variable of vLLM 0.8.1; "
                                       f"did you mean {meant}?\n")


def test_registry_show_suggests_nothing_far_off(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", "show", "HOME", "--vllm-version", "0.8.1"]) == 2
    assert capsys.readouterr().err == "vllm-env-guard registry: HOME is not a variable of vLLM 0.8.1\n"


# --- the server extra -----------------------------------------------------------------------

# Makes the server extra's packages unimportable, as in an install without [server].
WITHOUT_SERVER = ("import sys\n"
                  "for name in ('fastapi', 'uvicorn', 'kubernetes', 'prometheus_client', 'cryptography'):\n"
                  "    sys.modules[name] = None\n")


@pytest.mark.parametrize("args", [["serve", "--dev"], ["audit", "-A"]])
def test_serve_and_audit_without_the_server_extra_say_what_to_install(args: list[str]) -> None:
    result = cli(*args, prelude=WITHOUT_SERVER)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"vllm-env-guard {args[0]}: needs the server extra (")
    assert result.stderr.endswith(" is not installed): pip install 'vllm-env-guard[server]'\n")


def test_lint_explain_and_registry_need_no_server_package() -> None:
    check = ("import sys\n"
             "from webhook.cli import main\n"
             f"assert main(['lint', {str(EXAMPLES)!r}]) == 1\n"
             "assert main(['explain', 'VLLM_PORT=tcp://10.96.0.12:8000']) == 1\n"
             "assert main(['registry', 'show', 'VLLM_PORT']) == 0\n"
             "loaded = {m.partition('.')[0] for m in sys.modules if sys.modules[m] is not None}\n"
             "print(sorted(loaded & {'fastapi', 'uvicorn', 'kubernetes', 'prometheus_client', 'cryptography',"
             " 'starlette', 'pydantic', 'aiohttp'}))\n")
    result = subprocess.run([sys.executable, "-c", WITHOUT_SERVER + check], capture_output=True, text=True,
                            cwd=ROOT, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


# --- PyYAML without libyaml -----------------------------------------------------------------

NO_LIBYAML = "import yaml\ndel yaml.CSafeLoader\n"
TRICKY = """\
# comments, anchors, merge keys, YAML 1.1 scalars, flow style, block scalars
apiVersion: apps/v1
kind: Deployment
metadata: &meta {name: llm, namespace: llm, labels: {app: llm}}
spec:
  template:
    metadata: {labels: {app: llm}}
    spec:
      containers:
      - name: vllm
        image: vllm/vllm-openai:v0.8.1
        env:
        - &flag {name: VLLM_USE_V1, value: "true"}
        - name: VLLM_KEEP_ALIVE_ON_ENGINE_DEATH
          value: "0"
        - <<: *flag
          name: VLLM_LOGGING_LEVEL
        args: [--port, $(VLLM_PORT)]
---
apiVersion: v1
kind: Service
metadata: {name: vllm, namespace: llm}
spec: {ports: [{port: 8000}]}
---
kind: [unclosed
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: llm}
data:
  script: |
    line one
    line two
  bad: "\x01"
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Service, metadata: {name: vllm-dp-master, namespace: llm}, spec: {ports: [{port: 1}]}}
---
a: b: c
"""


def test_without_libyaml_the_pure_python_loader_gives_the_same_report(tmp_path: Path) -> None:
    (tmp_path / "tricky.yaml").write_text(TRICKY)
    args = ("lint", "--format", "json", "--show-info", str(EXAMPLES), str(tmp_path))
    fast, pure = cli(*args), cli(*args, prelude=NO_LIBYAML)

    assert fast.returncode == pure.returncode == 1
    assert fast.stderr == ""
    assert pure.stderr.count("note: this PyYAML has no libyaml") == 1  # once, though many files were read
    fast_findings, pure_findings = (json.loads(r.stdout)["findings"] for r in (fast, pure))
    # The same findings at the same lines; a syntax error is worded by the parser that found it.
    assert [{**f, "message": None} for f in pure_findings] == [{**f, "message": None} for f in fast_findings]
    assert [f for f in pure_findings if f["rule"] != "manifest-invalid"] == \
           [f for f in fast_findings if f["rule"] != "manifest-invalid"]
    invalid = [(f["file"].rsplit("/", 1)[-1], f["line"]) for f in pure_findings if f["rule"] == "manifest-invalid"]
    assert invalid == [("tricky.yaml", 25), ("tricky.yaml", 34), ("tricky.yaml", 41)]


def test_without_libyaml_stdin_and_bad_text() -> None:
    result = cli("lint", "-", "--format", "json", prelude=NO_LIBYAML,
                 stdin="apiVersion: v1\nkind: Service\nmetadata: {name: vllm}\nspec: {ports: [{port: 1}]}\n"
                 "---\na: 1\n\tb: 2\n")
    findings = {(f["file"], f["line"], f["rule"]) for f in json.loads(result.stdout)["findings"]}
    assert result.returncode == 1
    assert findings >= {("<stdin>", 3, "service-link-collision"), ("<stdin>", 7, "manifest-invalid")}
