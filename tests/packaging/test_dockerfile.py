"""The Dockerfile: linted with rules in the spirit of hadolint, and its install steps run for real.

There is no container engine here, so the image is not built. Instead the Dockerfile is parsed,
checked against the rules below, and the commands of its two stages are replayed on the host:
the build stage's `pip wheel` on a context made of exactly what its COPY lines copy (after
.dockerignore), and the final stage's `pip install` into a fresh venv, whose `vllm-env-guard`
must then run.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from webhook.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# What the image may be built from; anything else in a COPY is a lint error.
ALLOWED_SOURCES = ("pyproject.toml", "README.m[d]", "README.md", "LICENSE", "webhook/", "webhook")
OCI_LABELS = ("title", "description", "version", "licenses", "source")
NONROOT_UID = "65532"


# --- a small Dockerfile parser ----------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    value: str  # the rest, continuation lines joined
    line: int  # 1-based line of the keyword
    stage: int  # index of the FROM this belongs to (-1 before the first FROM)
    flags: dict[str, str] = field(default_factory=dict)  # leading --name=value options
    body: str = ""  # value without the flags

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, else None (shell form)."""
        text = self.body.strip()
        if not text.startswith("["):
            return None
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed) else None


def _split_flags(value: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = value.lstrip()
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        name, _, flag_value = token[2:].partition("=")
        flags[name] = flag_value
        rest = rest.lstrip()
    return flags, rest


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile: comments and blank lines dropped, `\\` continuations joined
    (comment lines inside a continuation are skipped, as Docker does)."""
    instructions: list[Instruction] = []
    stage = -1
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        logical = " ".join(p for p in pending if p)
        pending = []
        keyword, _, value = logical.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        flags, body = _split_flags(value)
        instructions.append(Instruction(keyword, value.strip(), start, stage, flags, body))
    if pending:
        raise ValueError(f"line {start}: the file ends inside a line continuation")
    return instructions


def stage_names(instructions: Iterable[Instruction]) -> dict[str, int]:
    names = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            parts = ins.body.split()
            if len(parts) == 3 and parts[1].upper() == "AS":
                names[parts[2]] = ins.stage
    return names


# --- lint rules --------------------------------------------------------------------------------


def lint(instructions: list[Instruction]) -> list[str]:
    """Problems, each `line N: RULE message`. Empty: the Dockerfile passes."""
    problems: list[str] = []

    def problem(ins: Instruction | None, rule: str, message: str) -> None:
        problems.append(f"line {ins.line if ins else 0}: {rule} {message}")

    stages = stage_names(instructions)
    froms = [i for i in instructions if i.keyword == "FROM"]
    if not froms:
        problem(None, "no-from", "no FROM instruction")
        return problems
    final = froms[-1].stage
    for ins in froms:
        image = ins.body.split()[0]
        if image in stages or image == "scratch":
            continue
        name, _, digest = image.partition("@")
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
        if not tag and not digest:
            problem(ins, "pin-base", f"{image}: base image without a tag (means :latest)")
        if tag == "latest":
            problem(ins, "pin-base", f"{image}: the latest tag is not a pin")
        if "$" in image:
            problem(ins, "pin-base", f"{image}: base image from a build argument cannot be checked")
    for ins in instructions:
        if ins.keyword == "ADD":
            if re.search(r"\b(https?|ftp)://", ins.body) or "git@" in ins.body:
                problem(ins, "no-add-url", "ADD of a URL: download in a RUN with a checksum instead")
            else:
                problem(ins, "copy-not-add", "use COPY, not ADD, for local files")
        if ins.keyword == "MAINTAINER":
            problem(ins, "no-maintainer", "MAINTAINER is deprecated: use a LABEL")
        if ins.keyword == "RUN":
            command = ins.body
            for match in re.finditer(r"\bpip3?\s+(install|wheel)\b|\bpython3?\s+-m\s+pip\s+(install|wheel)\b",
                                     command):
                segment = command[match.start():].split("&&")[0]
                if "--no-cache-dir" not in segment:
                    problem(ins, "pip-no-cache", "pip install/wheel without --no-cache-dir")
            if re.search(r"\bapt-get\s+install\b", command):
                if "--no-install-recommends" not in command:
                    problem(ins, "apt-recommends", "apt-get install without --no-install-recommends")
                if "rm -rf /var/lib/apt/lists" not in command:
                    problem(ins, "apt-lists", "apt lists not removed in the same RUN")
            if re.search(r"(^|[;&|]\s*)cd\s", command):
                problem(ins, "use-workdir", "cd in RUN: use WORKDIR")
            if re.search(r"\bsudo\b", command):
                problem(ins, "no-sudo", "sudo in RUN")
            if re.search(r"\b(curl|wget)\b[^|]*\|\s*(ba)?sh\b", command):
                problem(ins, "no-curl-pipe-sh", "piping a download into a shell")
        if ins.keyword == "COPY":
            if "from" in ins.flags:
                continue
            sources = shlex.split(ins.body)[:-1]
            for source in sources:
                if source not in ALLOWED_SOURCES:
                    problem(ins, "copy-minimal", f"COPY {source}: copy only what the image is built from")
    final_ins = [i for i in instructions if i.stage == final]
    users = [i for i in final_ins if i.keyword == "USER"]
    if not users:
        problem(froms[-1], "non-root", "the final stage has no USER: it runs as root")
    else:
        user = users[-1].body.split(":")[0]
        if not user.isdigit():
            problem(users[-1], "non-root", f"USER {user}: use a numeric uid (runAsNonRoot can verify it)")
        elif user == "0":
            problem(users[-1], "non-root", "USER 0 is root")
        runs_after = [i for i in final_ins if i.keyword == "RUN" and i.line > users[-1].line]
        for ins in runs_after:
            problem(ins, "non-root", "RUN after USER: install as root, then drop privileges last")
    entrypoints = [i for i in final_ins if i.keyword == "ENTRYPOINT"]
    if not entrypoints:
        problem(froms[-1], "exec-entrypoint", "the final stage has no ENTRYPOINT")
    for ins in entrypoints + [i for i in final_ins if i.keyword == "CMD"]:
        if ins.exec_form is None:
            problem(ins, "exec-form", f"{ins.keyword} in shell form: signals do not reach the process")
    labels = " ".join(i.body for i in final_ins if i.keyword == "LABEL")
    for label in OCI_LABELS:
        if f"org.opencontainers.image.{label}=" not in labels:
            problem(froms[-1], "oci-labels", f"missing LABEL org.opencontainers.image.{label}")
    return problems


# --- .dockerignore -----------------------------------------------------------------------------


def _dockerignore_patterns(text: str) -> list[tuple[bool, str]]:
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        patterns.append((negate, os.path.normpath(pattern).lstrip("/")))
    return patterns


def _pattern_matches(pattern: str, path: str) -> bool:
    """Docker's rule: a pattern matches a path or any of its parent directories."""
    regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
    regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    parts = path.split("/")
    return any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1))


def context_files(root: Path, dockerignore: str) -> set[str]:
    """Files (relative paths) Docker sends as the build context, after .dockerignore."""
    patterns = _dockerignore_patterns(dockerignore)

    def excluded(rel: str) -> bool:
        result = False
        for negate, pattern in patterns:
            if _pattern_matches(pattern, rel):
                result = not negate
        return result

    def reincluded_below(rel: str) -> bool:
        return any(negate and (pattern.startswith(rel + "/") or "*" in pattern) for negate, pattern in patterns)

    kept = set()
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        # Skip directories that are excluded and that no "!" pattern can bring back (.git, .venv).
        dirnames[:] = [d for d in dirnames if not (excluded(prefix + d) and not reincluded_below(prefix + d))]
        kept |= {prefix + name for name in filenames if not excluded(prefix + name)}
    return kept


def copy_context(instructions: list[Instruction], stage: int, context: set[str], dest: Path) -> None:
    """Replay the COPY lines (not --from) of `stage` from the filtered context into `dest`."""
    workdir = Path("/")
    for ins in instructions:
        if ins.stage != stage:
            continue
        if ins.keyword == "WORKDIR":
            workdir = workdir / ins.body
        if ins.keyword != "COPY" or "from" in ins.flags:
            continue
        *sources, target = shlex.split(ins.body)
        base = dest / (workdir / target).relative_to("/")
        for source in sources:
            pattern = source.rstrip("/")
            matched = sorted(f for f in context if fnmatch.fnmatchcase(f, pattern)
                             or f.startswith(pattern + "/"))
            if not matched and not any(ch in source for ch in "*?["):
                raise AssertionError(f"line {ins.line}: COPY {source}: not in the build context")
            for rel in matched:
                if rel.startswith(pattern + "/"):  # a directory: its contents go into the target
                    out = base / rel[len(pattern) + 1:]
                elif target.endswith("/") or len(sources) > 1:
                    out = base / Path(rel).name
                else:
                    out = base
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, out)


# --- tests: the parser and the linter themselves -------------------------------------------------


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def test_parser_joins_continuations_and_skips_comments() -> None:
    parsed = parse_dockerfile(
        "# syntax=docker/dockerfile:1\nFROM python:3.12-slim AS build\n"
        "RUN pip install \\\n    # a comment inside\n    --no-cache-dir x\n"
        "COPY --from=build /dist /dist\n")
    assert [(i.keyword, i.line, i.stage) for i in parsed] == [("FROM", 2, 0), ("RUN", 3, 0), ("COPY", 6, 0)]
    assert parsed[1].body == "pip install --no-cache-dir x"
    assert parsed[2].flags == {"from": "build"} and parsed[2].body == "/dist /dist"


@pytest.mark.parametrize(("dockerfile", "rule"), [
    ("FROM python\nUSER 1000\nENTRYPOINT [\"x\"]", "pin-base"),
    ("FROM python:latest\nUSER 1000\nENTRYPOINT [\"x\"]", "pin-base"),
    ("FROM python:3.12-slim\nRUN pip install x\nUSER 1000\nENTRYPOINT [\"x\"]", "pip-no-cache"),
    ("FROM python:3.12-slim\nENTRYPOINT [\"x\"]", "non-root"),
    ("FROM python:3.12-slim\nUSER app\nENTRYPOINT [\"x\"]", "non-root"),
    ("FROM python:3.12-slim\nUSER 0\nENTRYPOINT [\"x\"]", "non-root"),
    ("FROM python:3.12-slim\nUSER 1000\nRUN true\nENTRYPOINT [\"x\"]", "non-root"),
    ("FROM python:3.12-slim\nUSER 1000\nENTRYPOINT x serve", "exec-form"),
    ("FROM python:3.12-slim\nUSER 1000\nENTRYPOINT [\"x\"]\nCMD serve --dev", "exec-form"),
    ("FROM python:3.12-slim\nADD https://example.com/x.tgz /x\nUSER 1000\nENTRYPOINT [\"x\"]", "no-add-url"),
    ("FROM python:3.12-slim\nADD webhook /w\nUSER 1000\nENTRYPOINT [\"x\"]", "copy-not-add"),
    ("FROM python:3.12-slim\nCOPY . .\nUSER 1000\nENTRYPOINT [\"x\"]", "copy-minimal"),
    ("FROM python:3.12-slim\nRUN cd /src && make\nUSER 1000\nENTRYPOINT [\"x\"]", "use-workdir"),
    ("FROM python:3.12-slim\nRUN apt-get update && apt-get install -y gcc\nUSER 1000\nENTRYPOINT [\"x\"]",
     "apt-recommends"),
    ("FROM python:3.12-slim\nUSER 1000\nENTRYPOINT [\"x\"]", "oci-labels"),
])
def test_linter_catches(dockerfile: str, rule: str) -> None:
    problems = lint(parse_dockerfile(dockerfile))
    assert any(f" {rule} " in p for p in problems), problems


# --- tests: the real Dockerfile ----------------------------------------------------------------


def test_dockerfile_passes_the_linter(instructions: list[Instruction]) -> None:
    assert lint(instructions) == []


def test_two_stages_python_312_slim(instructions: list[Instruction]) -> None:
    froms = [i for i in instructions if i.keyword == "FROM"]
    assert len(froms) == 2
    assert froms[0].body.split()[0].split("@")[0] == "python:3.12-slim"
    assert froms[1].body.split()[0].split("@")[0] == "python:3.12-slim"
    assert froms[0].body.split()[1:] == ["AS", "build"]


def test_build_stage_makes_a_wheel(instructions: list[Instruction]) -> None:
    runs = [i.body for i in instructions if i.keyword == "RUN" and i.stage == 0]
    assert any(re.search(r"pip wheel .*--no-deps .*-w /dist \.$", r) for r in runs), runs


def test_final_stage_installs_the_wheel_from_the_build_stage(instructions: list[Instruction]) -> None:
    runs = [i for i in instructions if i.keyword == "RUN" and i.stage == 1]
    copies = [i for i in instructions if i.keyword == "COPY" and i.stage == 1]
    mounted = any("from=build" in i.flags.get("mount", "") and "target=/dist" in i.flags.get("mount", "")
                  for i in runs)
    copied = any(i.flags.get("from") == "build" for i in copies)
    assert mounted or copied
    assert any(re.search(r"pip install .*/dist/\*\.whl", i.body) for i in runs)
    assert not [i for i in copies if "from" not in i.flags], "the final stage copies nothing from the context"


def test_user_entrypoint_cmd(instructions: list[Instruction]) -> None:
    final = [i for i in instructions if i.stage == 1]
    assert [i.body for i in final if i.keyword == "USER"][-1].split(":")[0] == NONROOT_UID
    entrypoint = [i for i in final if i.keyword == "ENTRYPOINT"][-1].exec_form
    cmd = [i for i in final if i.keyword == "CMD"][-1].exec_form
    assert entrypoint == ["vllm-env-guard"]
    assert cmd and cmd[0] == "serve"
    args = build_parser().parse_args(cmd)  # CMD is a valid command line of the real CLI
    assert args.command == "serve" and args.port == 8443
    assert args.tls_cert == "/tls/tls.crt" and args.tls_key == "/tls/tls.key"
    assert "8443" in [i.body for i in final if i.keyword == "EXPOSE"]


def test_version_label_matches_the_package(instructions: list[Instruction]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    args = [i.body for i in instructions if i.keyword == "ARG" and i.stage == 1]
    assert f"VERSION={version}" in args
    assert 'org.opencontainers.image.version="${VERSION}"' in " ".join(
        i.body for i in instructions if i.keyword == "LABEL")


def test_dockerignore_sends_only_the_sources() -> None:
    context = context_files(ROOT, DOCKERIGNORE.read_text(encoding="utf-8"))
    assert "pyproject.toml" in context
    assert "webhook/cli.py" in context
    assert any(f.startswith("webhook/registry/data/") for f in context), "package data missing"
    leaked = sorted(f for f in context if not (f.startswith("webhook/") or f in
                                               ("pyproject.toml", "README.md", "LICENSE")))
    assert leaked == []
    assert not [f for f in context if "__pycache__" in f or f.endswith(".pyc")]


def test_dockerignore_matcher() -> None:
    ignore = "*\n!webhook/\n**/__pycache__\n"
    assert _pattern_matches("*", "tests/test_x.py")
    assert _pattern_matches("**/__pycache__", "webhook/__pycache__/x.pyc")
    assert not _pattern_matches("**/__pycache__", "webhook/x.py")
    patterns = _dockerignore_patterns(ignore)
    assert patterns == [(False, "*"), (True, "webhook"), (False, "**/__pycache__")]


# --- the install steps, for real -----------------------------------------------------------------


def _run(argv: list[str] | str, *, cwd: Path, env: dict[str, str], shell: bool = False,
         timeout: float = 900) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, shell=shell, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"{argv} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _venv(path: Path) -> tuple[Path, dict[str, str]]:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(path)
    return path / "bin", env


def _stage_env(instructions: list[Instruction], stage: int, env: dict[str, str]) -> dict[str, str]:
    """`env` plus the ENV lines of `stage` (KEY=VALUE form)."""
    env = dict(env)
    for ins in instructions:
        if ins.stage == stage and ins.keyword == "ENV":
            for token in shlex.split(ins.body):
                key, sep, value = token.partition("=")
                if sep:
                    env[key] = value
    return env


def _shell_steps(instructions: list[Instruction], stage: int, dist: Path) -> list[str]:
    """The stage's RUN commands, with /dist (the wheel directory) moved to `dist`."""
    return [re.sub(r"(?<![\w/])/dist\b", str(dist), i.body)
            for i in instructions if i.stage == stage and i.keyword == "RUN"]


@pytest.mark.slow
def test_install_steps_build_and_run(instructions: list[Instruction], tmp_path: Path) -> None:
    context = context_files(ROOT, DOCKERIGNORE.read_text(encoding="utf-8"))
    build_root = tmp_path / "build-stage"
    copy_context(instructions, 0, context, build_root)
    workdir = [i.body for i in instructions if i.stage == 0 and i.keyword == "WORKDIR"][-1]
    src = build_root / workdir.lstrip("/")
    assert (src / "pyproject.toml").is_file() and (src / "webhook" / "cli.py").is_file()
    dist = tmp_path / "dist"

    # Stage 1: the build stage's own commands, with pip from a fresh venv (the image's python).
    build_bin, build_env = _venv(tmp_path / "venv-build")
    build_env = _stage_env(instructions, 0, build_env)
    for step in _shell_steps(instructions, 0, dist):
        _run(step, cwd=src, env=build_env, shell=True)
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1 and wheels[0].name.startswith("vllm_env_guard-"), wheels

    # Stage 2: install the wheel with its dependencies into a clean venv, as the image does.
    bin_dir, env = _venv(tmp_path / "venv-image")
    env = _stage_env(instructions, 1, env)
    for step in _shell_steps(instructions, 1, dist):
        _run(step, cwd=tmp_path, env=env, shell=True)
    tool = bin_dir / "vllm-env-guard"
    assert tool.is_file()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    out = _run([str(tool), "--version"], cwd=tmp_path, env=env)
    assert out.stdout.strip() == f"vllm-env-guard {version}"
    out = _run([str(tool), "explain", "VLLM_USE_V1=true", "--vllm-version", "0.8.1"], cwd=tmp_path, env=env)
    assert "env-parse-error" in out.stdout and "ValueError" in out.stdout
    # It runs from the wheel, not from this source tree.
    where = _run([str(bin_dir / "python"), "-c", "import webhook, sys; print(webhook.__file__)"],
                 cwd=tmp_path, env=env)
    assert str(tmp_path / "venv-image") in where.stdout
    # The bundled registries (package data) made it into the wheel.
    out = _run([str(tool), "registry", "list", "--versions"], cwd=tmp_path, env=env)
    assert "0.8.1" in out.stdout
