"""Run vLLM's *real* environment-variable getters, one release at a time.

`run_real(version, cases)` calls `environment_variables[name]()` from the real `vllm/envs.py` of
that release for every case (variable name, full process environment) and reports what
happened: `{"error": cls_name, "message": str(exc)}` or `{"repr": ..., "type": ...}`, plus
`"reads"`, the sorted names of the environment variables the getter looked at.

How (all of it in a temporary directory that is deleted afterwards; nothing of vLLM's is
written into this repository):

* The cached `vllm/envs.py` (`~/.cache/vllm-env-guard/envs/<version>/envs.py`, fetched from
  the PyPI wheel by `webhook.registry.fetch` when missing) is copied into a fake `vllm`
  package whose other modules are small stubs (`STUBS` below), so that importing it needs
  neither torch nor the rest of vLLM.
* All cases of one version run in ONE fresh `python -I` subprocess (the interpreter running
  this module, so the real `urllib3` installed next to it is used), with cwd set to "/" (what
  our evaluator assumes of a container, so relative paths resolve alike on both sides).
  Requests and answers are JSON on stdin/stdout.
* Per case, `os.environ` is replaced by a recording `os._Environ` subclass holding exactly
  `{"HOME": <temp home>, **case_env}`. `os.getenv` is `os.environ.get` looked up through the
  `os` module's globals, so it, `os.environ.get`, `os.environ[...]`, `in os.environ` and
  `posixpath.expanduser`'s HOME lookup are all recorded. Writes (`get_env_or_set_default`)
  land only in that per-case mapping, never in the real process environment, and are
  reported as `"writes"`. `tempfile.tempdir` is reset per case so that `gettempdir()` really
  consults TMPDIR/TEMP/TMP every time.
* The dict lambda is called directly: the `functools.cache` of `enable_envs_cache()` (>= 0.11.1)
  is never installed.

Deterministic stand-ins (documented, because they decide some defaults):

* torch is pretended to be the CUDA torch the release's wheel pins (`Requires-Dist: torch==X`
  in its METADATA, `pinned_torch`; 2.4.0 for 0.6.0 ... 2.14.0 for 0.33.0): `torch.version.hip`
  is None (`VLLM_DBO_COMM_SMS` default 20) and `is_torch_equal_or_newer(...)` compares with the
  pin (so `use_aot_compile()` defaults to "1" from the releases pinning torch >= 2.10).
  Pass `torch_version=` to change it.
* `vllm.platforms.current_platform` is a CUDA platform: `is_cuda()` True, every other `is_*()`
  False.
* `vllm.model_executor.layers.batch_invariant.vllm_is_batch_invariant()` (0.11.1-0.18.1) has
  the real semantics of those releases: `int(os.getenv("VLLM_BATCH_INVARIANT", "0")) != 0`,
  False on ValueError (the real one caches it per process; here it is read per call so the
  read is recorded).
* `uuid.uuid4()` returns a fixed UUID (`FIXED_UUID`) on both sides, and `os.cpu_count()` is 8,
  what our evaluator assumes, so "random" and CPU-count defaults compare exactly.
* After the getter, the value of `VLLM_LOGGING_LEVEL` goes through the release's real
  `vllm/logger.py` (imported fresh, then `_configure_vllm_root_logger()`, with its real
  formatter package), and that of `VLLM_WORKER_MULTIPROC_METHOD` through
  `multiprocessing.get_context()`, as vLLM does: an exception there is the case's outcome.
* `pybase64` is the standard `base64`.
* Attention-backend enums that `VLLM_ATTENTION_BACKEND` lists as its choices (0.11.0-0.14.1,
  `__import__("vllm....", fromlist=[...])`) are rebuilt with the member names of the real
  class, read with `ast` from that release's own module (fetched from the wheel once and
  cached next to envs.py); the member values are not needed.

Set values (`env_set_with_choices`) are reported with a canonical repr (`canonical_repr`), as
set order depends on the per-process hash seed.

`compare_version(version)` (used by test_conformance.py and scripts/conformance-sweep) runs
every case of every variable through the real getters and through our
`webhook.registry.evaluate`, in two rounds (the second crosses a variable with names its real
getter read but our `var.reads` does not declare), and returns a `VersionReport`.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TORCH_VERSION = "2.9.0"  # for a release whose wheel pins no torch (see pinned_torch)
FIXED_UUID = "12345678-1234-4678-9234-567812345678"  # what uuid.uuid4() gives on both sides
PACKAGE_PLACEHOLDER = "<vllm package>"  # the vllm package directory, in both sides' messages
# Seconds one version's subprocess may take (a full version takes about 1 s).
DEFAULT_TIMEOUT = float(os.environ.get("VEG_CONFORMANCE_TIMEOUT", "300"))

# The HOME every case sees: this empty directory inside the run's temporary directory.
HOME_DIRNAME = "home"


class RealEnvsError(RuntimeError):
    """The real envs.py of a release could not be run."""


# --------------------------------------------------------------------------------------------
# canonical repr (shared verbatim with the worker)

_CANONICAL_REPR_SOURCE = r'''
def canonical_repr(value):
    """repr(), except that sets and frozensets list their items sorted by repr."""
    if isinstance(value, (set, frozenset)):
        items = sorted(repr(item) for item in value)
        if not items:
            return f"{type(value).__name__}()"
        body = "{" + ", ".join(items) + "}"
        return body if type(value) is set else f"{type(value).__name__}({body})"
    return repr(value)
'''
_ns: dict[str, Any] = {}
exec(_CANONICAL_REPR_SOURCE, _ns)  # noqa: S102 - our own constant source, shared with the worker
canonical_repr = _ns["canonical_repr"]


# --------------------------------------------------------------------------------------------
# stubs of the vLLM modules envs.py imports (at import time or inside getters)

_STUB_LOGGER = r'''
import logging


class _VllmLogger(logging.LoggerAdapter):
    """vLLM's logger has *_once variants (with a `scope=` keyword); log every time here."""

    def process(self, msg, kwargs):
        kwargs.pop("scope", None)
        return msg, kwargs

    def debug_once(self, msg, *args, **kwargs):
        self.debug(msg, *args, **kwargs)

    def info_once(self, msg, *args, **kwargs):
        self.info(msg, *args, **kwargs)

    def warning_once(self, msg, *args, **kwargs):
        self.warning(msg, *args, **kwargs)


def init_logger(name):
    return _VllmLogger(logging.getLogger(name), {})
'''

_STUB_TORCH_UTILS = r'''
import re

TORCH_VERSION = "@TORCH_VERSION@"


def _key(version):
    match = re.match(r"^(\d+(?:\.\d+)*)(.*)$", str(version))
    release = tuple(int(part) for part in match.group(1).split("."))
    release = release + (0,) * (4 - len(release))
    rest = match.group(2)
    # PEP 440 order for what vLLM passes: X.Y.Z.dev < X.Y.Z(a|b|rc) < X.Y.Z < X.Y.Z.post
    if ".dev" in rest or rest.startswith("dev"):
        tag = 0
    elif re.match(r"^(a|b|rc)", rest):
        tag = 1
    elif rest.startswith(".post") or rest.startswith("+"):
        tag = 3
    else:
        tag = 2
    return release, tag


def is_torch_equal_or_newer(target):
    """Pretend torch == TORCH_VERSION (deterministic; the harness documents it)."""
    return _key(TORCH_VERSION) >= _key(target)


def _is_torch_equal_or_newer(torch_version, target):
    return _key(torch_version) >= _key(target)
'''

_STUB_CONFIG_UTILS = r'''
def normalize_value(value):
    return value
'''

_STUB_PLATFORMS = r'''
class _CudaPlatform:
    """A CUDA platform: is_cuda() is True, every other is_*() is False."""

    device_type = "cuda"
    device_name = "cuda"

    def is_cuda(self):
        return True

    def is_cuda_alike(self):
        return True

    def __getattr__(self, name):
        if name.startswith("is_"):
            return lambda *args, **kwargs: False
        raise AttributeError(name)


current_platform = _CudaPlatform()
'''

_STUB_BATCH_INVARIANT = r'''
import os


def vllm_is_batch_invariant():
    # Semantics of vLLM 0.11.1-0.18.1 (read per call here; vLLM caches it per process).
    val = os.getenv("VLLM_BATCH_INVARIANT", "0")
    try:
        return int(val) != 0
    except ValueError:
        return False
'''

_STUB_TORCH = r'''
"""Stand-in for torch: CUDA build (version.hip is None), __version__ @TORCH_VERSION@."""
import types

__version__ = "@TORCH_VERSION@"
version = types.SimpleNamespace(__version__=__version__, hip=None, cuda="12.8", git_version="")
'''

_STUB_PYBASE64 = r'''
from base64 import (b64decode, b64encode, standard_b64decode, standard_b64encode,
                    urlsafe_b64decode, urlsafe_b64encode)
'''

_STUB_ENUM_MODULE = r'''
import enum

@CLASSES@
'''


def _stub_files(torch_version: str) -> dict[str, str]:
    torch_utils = _STUB_TORCH_UTILS.replace("@TORCH_VERSION@", torch_version)
    return {
        "vllm/__init__.py": "",
        "vllm/logger.py": _STUB_LOGGER,
        "vllm/utils/__init__.py": "",
        "vllm/utils/torch_utils.py": torch_utils,
        "vllm/utils/torch_version.py": torch_utils,
        "vllm/config/__init__.py": "",
        "vllm/config/utils.py": _STUB_CONFIG_UTILS,
        "vllm/platforms/__init__.py": _STUB_PLATFORMS,
        "vllm/model_executor/__init__.py": "",
        "vllm/model_executor/layers/__init__.py": "",
        "vllm/model_executor/layers/batch_invariant.py": _STUB_BATCH_INVARIANT,
        "torch/__init__.py": _STUB_TORCH.replace("@TORCH_VERSION@", torch_version),
        "pybase64/__init__.py": _STUB_PYBASE64,
    }


# --------------------------------------------------------------------------------------------
# the worker (runs in the subprocess)

_WORKER = r'''
import json
import logging
import os
import sys
import tempfile
import traceback
import uuid
import warnings

root = sys.argv[1]
sys.path.insert(0, root)
request = json.loads(sys.stdin.read())
real_stdout = sys.stdout
sys.stdout = sys.stderr  # getters that print must not corrupt the JSON answer

@CANONICAL_REPR@

_FIXED_UUID = uuid.UUID("@FIXED_UUID@")
uuid.uuid4 = lambda: _FIXED_UUID
os.cpu_count = lambda: 8  # what our evaluator assumes for a container

_real_environ = os.environ


class RecordingEnviron(os._Environ):
    """os.environ stand-in: records every name looked up; writes stay in this mapping."""

    def __init__(self, mapping):
        enc_k, dec_k = _real_environ.encodekey, _real_environ.decodekey
        enc_v, dec_v = _real_environ.encodevalue, _real_environ.decodevalue
        data = {enc_k(k): enc_v(v) for k, v in mapping.items()}
        super().__init__(data, enc_k, dec_k, enc_v, dec_v)
        self.reads = set()
        self.writes = {}

    def _note(self, key):
        if isinstance(key, str):
            self.reads.add(key)

    def __getitem__(self, key):
        self._note(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self._note(key)
        try:
            super().__getitem__(key)
        except KeyError:
            return False
        return True

    def get(self, key, default=None):
        self._note(key)
        try:
            return super().__getitem__(key)
        except KeyError:
            return default

    def __iter__(self):
        self.reads.add("*")
        return super().__iter__()

    def __setitem__(self, key, value):
        encoded_key, encoded_value = self.encodekey(key), self.encodevalue(value)
        self.writes[key] = value
        self._data[encoded_key] = encoded_value  # no putenv: the process env stays untouched

    def __delitem__(self, key):
        encoded_key = self.encodekey(key)
        try:
            del self._data[encoded_key]
        except KeyError:
            raise KeyError(key) from None
        self.writes[key] = None


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        try:
            message = record.getMessage()
        except Exception as exc:  # a broken format string is vLLM's problem, not ours
            message = f"{record.msg!r} (unformattable: {exc})"
        self.messages.append(f"{record.levelname}: {message}")


def _real_logging_config(value):
    """vLLM's own vllm/logger.py of this release, imported fresh (<= 0.10: the import configures
    logging), then its _configure_vllm_root_logger() with no arguments (the environment path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "vllm._real_logger", os.path.join(root, "vllm", "_real_logger.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._configure_vllm_root_logger()


def _real_mp_context(value):
    """What vLLM does with the getter's value when it starts workers."""
    import multiprocessing

    multiprocessing.get_context(value)


# Where each value goes after the getter, run for every release (independently of which
# releases our registry says have the sink).
CONSUMERS = {"VLLM_LOGGING_LEVEL": _real_logging_config,
             "VLLM_WORKER_MULTIPROC_METHOD": _real_mp_context}

capture = _Capture()
logging.getLogger().addHandler(capture)
logging.getLogger().setLevel(logging.INFO)

answer = {"keys": None, "results": [], "fatal": None}
home = request["home"]
try:
    os.environ = RecordingEnviron({"HOME": home})
    tempfile.tempdir = None
    envs_file = os.path.join(root, *request["module"].split(".")) + ".py"
    with open(envs_file, encoding="utf-8") as handle:
        if "urllib3" in handle.read():
            import urllib3  # the real one: fail loudly here rather than inside VLLM_PORT's getter
    import importlib
    envs = importlib.import_module(request["module"])
    registry = getattr(envs, request["table"])
    answer["keys"] = list(registry.keys())
    answer["import_reads"] = sorted(os.environ.reads)
except BaseException:
    answer["fatal"] = traceback.format_exc()
else:
    for name, env in request["cases"]:
        environ = RecordingEnviron({"HOME": home, **env})
        os.environ = environ
        tempfile.tempdir = None
        capture.messages.clear()
        getter = registry.get(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if getter is None:
                out = {"error": "KeyError", "message": repr(name), "missing": True}
            else:
                try:
                    value = getter()
                except Exception as exc:
                    out = {"error": type(exc).__name__, "message": str(exc)}
                else:
                    out = {"repr": canonical_repr(value), "type": type(value).__name__}
                    reads = sorted(environ.reads)
                    consumer = CONSUMERS.get(name)
                    try:
                        if consumer is not None:
                            consumer(value)
                    except ImportError as exc:
                        out = {"error": "HarnessError", "message": f"{type(exc).__name__}: {exc}"}
                    except Exception as exc:
                        out = {"error": type(exc).__name__, "message": str(exc), "after": name}
                    environ.reads = set(reads)
        out["reads"] = sorted(environ.reads)
        if environ.writes:
            out["writes"] = environ.writes
        logs = capture.messages + [f"{w.category.__name__}: {w.message}" for w in caught]
        if logs:
            out["logs"] = list(logs)
        answer["results"].append(out)
    os.environ = _real_environ

real_stdout.write(json.dumps(answer))
real_stdout.flush()
'''.replace("@CANONICAL_REPR@", _CANONICAL_REPR_SOURCE).replace("@FIXED_UUID@", FIXED_UUID)


# --------------------------------------------------------------------------------------------
# sources

def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vllm-env-guard"


def envs_path(version: str) -> Path:
    """Path of the cached real envs.py of `version`, fetching it from PyPI when missing."""
    release_member_source(version, "vllm/envs.py")
    return _cache_root() / "envs" / version / "envs.py"


def cached_versions() -> list[str]:
    """Versions whose envs.py is in the cache, oldest first."""
    root = _cache_root() / "envs"
    if not root.is_dir():
        return []
    found = [p.name for p in root.iterdir() if (p / "envs.py").is_file()]
    return sorted(found, key=version_key)


def version_key(version: str) -> tuple:
    """Sort key for final vLLM versions: 0.6.1 < 0.6.1.post1 < 0.6.2 < 0.9.0 < 0.9.0.1 < 0.10.0."""
    match = re.match(r"^(\d+(?:\.\d+)*)(?:\.post(\d+))?", version)
    if not match:
        return ((), -1, version)
    release = tuple(int(part) for part in match.group(1).split("."))
    release += (0,) * (4 - len(release))
    return (release, int(match.group(2) or -1), version)


_DYNAMIC_IMPORT = re.compile(
    r"""__import__\(\s*\\?\s*['"](?P<module>[\w.]+)['"]\s*,\s*\\?\s*fromlist\s*=\s*\[\s*['"](?P<name>\w+)['"]""",
    re.S,
)


def dynamic_imports(source: str) -> list[tuple[str, str]]:
    """(module, class) pairs a getter imports with `__import__(module, fromlist=[class])`."""
    found = []
    for match in _DYNAMIC_IMPORT.finditer(source):
        pair = (match.group("module"), match.group("name"))
        if pair[0].startswith("vllm.") and pair not in found:
            found.append(pair)
    return found


def enum_member_names(source: str, class_name: str) -> list[str]:
    """Names in `class_name.__members__` (definition order, aliases included), read with ast."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            names: list[str] = []
            for item in node.body:
                targets = []
                if isinstance(item, ast.Assign):
                    targets = [t for t in item.targets if isinstance(t, ast.Name)]
                elif isinstance(item, ast.AnnAssign) and item.value is not None:
                    targets = [item.target] if isinstance(item.target, ast.Name) else []
                for target in targets:
                    name = target.id
                    if name.startswith("_"):  # dunder, _sunder_ and private names are no members
                        continue
                    if name not in names:
                        names.append(name)
            return names
    raise RealEnvsError(f"class {class_name} not found")


def release_member_source(version: str, member: str) -> str:
    """Text of `member` (e.g. 'vllm/platforms/interface.py') from the vLLM `version` wheel,
    through webhook.registry.fetch's cache (~/.cache/vllm-env-guard/envs/<version>/...)."""
    from webhook.registry import fetch

    try:
        text = fetch.fetch_sources(version).get(member)
    except fetch.FetchError as exc:
        raise RealEnvsError(f"cannot fetch {member} of vLLM {version}: {exc}") from exc
    if text is None:
        raise RealEnvsError(f"vLLM {version}: the wheel has no {member} (or it is not among "
                            "webhook.registry.fetch.SOURCE_MEMBERS)")
    return text


def _enum_stub_files(version: str, source: str) -> dict[str, str]:
    """Stub modules for the enums that getters import dynamically, with the real member names."""
    by_module: dict[str, list[str]] = {}
    for module, class_name in dynamic_imports(source):
        member = module.replace(".", "/") + ".py"
        names = enum_member_names(release_member_source(version, member), class_name)
        body = f"{class_name} = enum.Enum({class_name!r}, {names!r})\n"
        by_module.setdefault(module, []).append(body)
    files: dict[str, str] = {}
    for module, bodies in by_module.items():
        parts = module.split(".")
        for i in range(2, len(parts)):
            files.setdefault("/".join(parts[:i]) + "/__init__.py", "")
        files["/".join(parts) + ".py"] = _STUB_ENUM_MODULE.replace("@CLASSES@", "".join(bodies))
    return files


def _logging_files(cached: Path) -> dict[str, str]:
    """The release's real vllm/logger.py (as vllm/_real_logger.py: envs.py imports the stub
    vllm.logger) and its real formatter packages (vllm/logging/, vllm/logging_utils/)."""
    files = {"vllm/_real_logger.py": (cached / "logger.py").read_text(encoding="utf-8")}
    for package in ("logging", "logging_utils"):
        for path in (cached / package).rglob("*.py") if (cached / package).is_dir() else ():
            files[f"vllm/{package}/{path.relative_to(cached / package).as_posix()}"] = path.read_text(
                encoding="utf-8")
    return files


def pinned_torch(version: str) -> str:
    """The torch release the wheel of `version` pins (`Requires-Dist: torch==X` in the wheel's
    METADATA); TORCH_VERSION when it pins none."""
    from webhook.registry import fetch
    from webhook.registry.usage import torch_pin

    try:
        return torch_pin(fetch.fetch_metadata(version)) or TORCH_VERSION
    except fetch.FetchError as exc:
        raise RealEnvsError(f"cannot read the METADATA of vLLM {version}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# running

@dataclass
class RealRun:
    """Everything one subprocess reported for one version."""

    version: str
    keys: list[str]
    results: list[dict[str, Any]]
    home: str
    seconds: float
    import_reads: list[str] = field(default_factory=list)

    @property
    def machine(self) -> dict[str, str]:
        """What every case's environment holds on both sides besides the case itself: the same
        HOME; TMPDIR/TEMP/TMP stay unset, so gettempdir() is /tmp on both sides."""
        return {"HOME": self.home}


def run_version(
    version: str,
    cases: Sequence[tuple[str, Mapping[str, str]]],
    *,
    timeout: float | None = None,
    torch_version: str = TORCH_VERSION,
    home: str | None = None,
    plugin: str | None = None,
) -> RealRun:
    """Run every case of `version` in one fresh subprocess; see the module docstring.

    `home` is the HOME every case sees (default: an empty directory inside the run's temporary
    directory; it is reported back so the caller can give our evaluator the same HOME).
    With `plugin` (`vllm-ascend`), `version` is a release of that platform plugin and the
    getters are those of its `env_variables` (`vllm_ascend/envs.py`)."""
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    label = f"{plugin} {version}" if plugin else f"vLLM {version}"
    files = _stub_files(torch_version)
    module, table = "vllm.envs", "environment_variables"
    if plugin:
        from webhook.registry import fetch

        package = plugin.replace("-", "_")
        module, table = f"{package}.envs", "env_variables"
        files.update({f"{package}/__init__.py": "",
                      f"{package}/envs.py": fetch.fetch_plugin_envs(plugin, version) or ""})
    else:
        source_path = envs_path(version)
        source = source_path.read_text(encoding="utf-8")
        files.update(_enum_stub_files(version, source))
        files["vllm/envs.py"] = source
        files.update(_logging_files(source_path.parent))
    cases = [(str(name), {str(k): str(v) for k, v in env.items()}) for name, env in cases]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="veg-realenvs-") as tmp:
        root = Path(tmp) / "root"
        for rel, text in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        worker = Path(tmp) / "worker.py"
        worker.write_text(_WORKER, encoding="utf-8")
        cwd = "/"  # the working directory our evaluator assumes for a container
        if home is None:
            home_dir = Path(tmp) / HOME_DIRNAME
            home_dir.mkdir()
            home = str(home_dir)
        request = json.dumps({"home": home, "cases": cases, "module": module, "table": table})
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
               "PYTHONIOENCODING": "utf-8"}
        try:
            done = subprocess.run(
                [sys.executable, "-I", str(worker), str(root)],
                input=request, capture_output=True, text=True, encoding="utf-8",
                cwd=cwd, env=env, timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise RealEnvsError(
                f"{label}: the real-envs subprocess did not finish within {timeout:g}s "
                f"({len(cases)} cases); raise VEG_CONFORMANCE_TIMEOUT or look for a getter "
                f"that blocks. stderr tail: {(exc.stderr or '')[-1000:]!s}"
            ) from None
        if done.returncode != 0 or not done.stdout.strip():
            raise RealEnvsError(
                f"{label}: the real-envs subprocess failed (exit {done.returncode}); "
                f"stderr tail:\n{done.stderr[-3000:]}"
            )
        try:
            answer = json.loads(done.stdout)
        except ValueError as exc:
            raise RealEnvsError(f"{label}: unreadable answer from the subprocess: {exc}; "
                                f"stdout head: {done.stdout[:500]!r}") from None
    if answer.get("fatal"):
        raise RealEnvsError(f"{label}: importing the real envs.py failed:\n{answer['fatal']}")
    if len(answer["results"]) != len(cases):
        raise RealEnvsError(f"{label}: {len(answer['results'])} results for {len(cases)} cases")
    package = str(root / "vllm")
    for result in answer["results"]:  # where the harness put vllm is no part of vLLM's answer
        for key in ("message", "repr"):
            if package in result.get(key, ""):
                result[key] = result[key].replace(package, PACKAGE_PLACEHOLDER)
    return RealRun(
        version=version,
        keys=answer["keys"],
        results=answer["results"],
        home=home,
        seconds=time.perf_counter() - started,
        import_reads=answer.get("import_reads", []),
    )


def run_real(version: str, cases: Sequence[tuple[str, Mapping[str, str]]], **kwargs) -> list[dict]:
    """Outcome of the real `environment_variables[name]()` of `version` for each case."""
    return run_version(version, cases, **kwargs).results


_KEYS: dict[str, list[str]] = {}


def real_keys(version: str) -> list[str]:
    """`environment_variables.keys()` of the real envs.py of `version`, in order (memoized per
    process; importing envs.py does not depend on the torch stand-in)."""
    if version not in _KEYS:
        _KEYS[version] = run_version(version, []).keys
    return list(_KEYS[version])


# --------------------------------------------------------------------------------------------
# comparison with our re-implementation (webhook.registry: load_registry / evaluate)

# Names no getter legitimately needs declared: none. The real reads must be covered by
# `var.reads` exactly (HOME/XDG_*/TMPDIR included), so that a linter knows every input.
IMPLICIT_READS: frozenset[str] = frozenset()


def registry_api():
    """webhook.registry if it offers load_registry/evaluate/bundled_versions, else None."""
    try:
        import webhook.registry as api
    except Exception:  # noqa: BLE001 - a half-written package must not break the harness
        return None
    if all(hasattr(api, attr) for attr in ("load_registry", "evaluate")):
        return api
    return None


def bundled_or_cached_versions(api=None) -> list[str]:
    """Versions shipped in our package (oldest first), or the cached releases without it."""
    api = api if api is not None else registry_api()
    if api is not None and hasattr(api, "bundled_versions"):
        try:
            return list(api.bundled_versions())
        except Exception:  # noqa: BLE001
            pass
    return cached_versions()


def ci_versions(versions: Sequence[str], seed: str = "0.8.1") -> list[str]:
    """The seed, the newest, and the newest patch of every minor series, oldest first."""
    ordered = sorted(versions, key=version_key)
    newest_of_series: dict[tuple[int, ...], str] = {}
    for version in ordered:
        series = version_key(version)[0][:2]
        newest_of_series[series] = version  # ordered: the last one wins
    chosen = set(newest_of_series.values())
    if seed in ordered:
        chosen.add(seed)
    if ordered:
        chosen.add(ordered[-1])
    return [v for v in ordered if v in chosen]


def select_versions(spec: str | None, available: Sequence[str]) -> list[str]:
    """VEG_CONFORMANCE_VERSIONS semantics: unset/"" or "all" -> every available version (what
    CI runs); "ci" -> ci_versions (a quicker subset); otherwise a comma list (taken as given)."""
    spec = (spec or "").strip()
    if spec == "ci":
        return ci_versions(available)
    if spec in ("", "all"):
        return sorted(available, key=version_key)
    return [v.strip() for v in spec.split(",") if v.strip()]


@dataclass
class Disagreement:
    version: str
    name: str
    env: dict[str, str]
    real: dict[str, Any]
    ours: dict[str, Any] | None
    reason: str

    def describe(self) -> str:
        value = self.env.get(self.name)
        shown = "unset" if value is None else repr(value)
        others = {k: v for k, v in self.env.items() if k != self.name}
        extra = f" with {others!r}" if others else ""
        return (f"{self.name}={shown}{extra}: real {describe_outcome(self.real)}; "
                f"ours {describe_outcome(self.ours)} [{self.reason}]")


def describe_outcome(outcome: dict[str, Any] | None) -> str:
    if outcome is None:
        return "-"
    if "error" in outcome:
        return f"{outcome['error']}({outcome.get('message')!r})"
    return f"{outcome['type']} {outcome['repr']}"


@dataclass
class VersionReport:
    version: str
    cases: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    cases_per_variable: dict[str, int] = field(default_factory=dict)
    missing_reads: dict[str, list[str]] = field(default_factory=dict)
    real_names: list[str] = field(default_factory=list)
    our_names: list[str] | None = None
    error: str | None = None
    seconds_real: float = 0.0
    seconds_ours: float = 0.0
    seconds: float = 0.0
    relaxed: int = 0  # cases compared by kind only (unverifiable_tempdir)

    def by_variable(self) -> dict[str, list[Disagreement]]:
        grouped: dict[str, list[Disagreement]] = {}
        for item in self.disagreements:
            grouped.setdefault(item.name, []).append(item)
        return grouped

    @property
    def failing_variables(self) -> set[str]:
        return set(self.by_variable()) | set(self.missing_reads)

    def line(self) -> str:
        gaps = f", reads gaps {len(self.missing_reads)}" if self.missing_reads else ""
        gaps += f", {self.relaxed} by kind only" if self.relaxed else ""
        err = f"  ERROR {self.error.splitlines()[0]}" if self.error else ""
        return (f"{self.version:<12} {len(self.real_names):>4} vars {self.cases:>8} cases "
                f"{len(self.disagreements):>7} disagreements in {len(self.by_variable()):>3} vars{gaps}  "
                f"{self.seconds:6.2f}s (real {self.seconds_real:.2f}s, ours {self.seconds_ours:.2f}s){err}")


def _our_outcome(out: Any) -> dict[str, Any]:
    if getattr(out, "error", None) is not None:
        return {"error": out.error, "message": out.message}
    value = out.value
    return {"repr": canonical_repr(value), "type": type(value).__name__}


def outcomes_agree(real: dict[str, Any], ours: dict[str, Any], kind_only: bool = False) -> str | None:
    """None when they agree exactly (class and message, or type and repr), else the reason.

    Strict: the harness makes what a getter consults beyond the case's environment identical
    on both sides (HOME, the temporary directory, the working directory, uuid4, the CPU count,
    torch's version, the platform), so nothing our evaluator says about its own outcome can
    relax the comparison. `kind_only` (exception class, or value type) is for the cases the
    harness itself finds it cannot make identical (`unverifiable_tempdir`)."""
    if real.get("error") == "HarnessError":
        return f"the harness could not run vLLM's code: {real['message']}"
    if ("error" in real) != ("error" in ours):
        return "outcome differs"
    if "error" in real:
        if real["error"] != ours["error"]:
            return "exception class differs"
        if real["message"] != ours["message"] and not kind_only:
            return "message differs"
        return None
    if real["type"] != ours["type"]:
        return "type differs"
    if real["repr"] != ours["repr"] and not kind_only:
        return "value differs"
    return None


class _SameMachine:
    """Evaluate ours with uuid4() giving FIXED_UUID, as the real getters run."""

    def __enter__(self):
        import uuid

        self._uuid4 = uuid.uuid4
        uuid.uuid4 = lambda: uuid.UUID(FIXED_UUID)
        return self

    def __exit__(self, *exc):
        import uuid

        uuid.uuid4 = self._uuid4


def unverifiable_tempdir(env: Mapping[str, str]) -> str | None:
    """The harness's one relaxation, decided from the case alone: tempfile.gettempdir() skips a
    TMPDIR/TEMP/TMP that is no writable directory on the machine, which our evaluator cannot see
    (it assumes the directory exists); such a case compares by outcome kind and type only."""
    chosen = next((env[name] for name in ("TMPDIR", "TEMP", "TMP") if env.get(name)), None)
    if chosen is None:
        return None
    path = chosen if chosen == "." else os.path.abspath(os.path.join("/", chosen))
    return None if os.path.isdir(path) and os.access(path, os.W_OK) else chosen


def _compare_cases(report: VersionReport, api, variables: dict[str, Any],
                   cases: list[tuple[str, dict[str, str]]], reads_seen: dict[str, set[str]],
                   timeout: float | None, torch_version: str) -> None:
    version = report.version
    run = run_version(version, cases, timeout=timeout, torch_version=torch_version)
    report.seconds_real += run.seconds
    real_set = set(report.real_names)
    ours_started = time.perf_counter()
    with _SameMachine():
        for (name, env), real in zip(cases, run.results):
            var = variables[name]
            reads_seen.setdefault(name, set()).update(real.get("reads", ()))
            if name not in real_set:
                report.disagreements.append(Disagreement(version, name, env, real, None,
                                                         "not in vLLM's registry (extra in ours)"))
                continue
            if var is None:
                reason = report.error or "missing from our registry"
                report.disagreements.append(Disagreement(version, name, env, real, None, reason))
                continue
            try:
                ours = _our_outcome(api.evaluate(var, {**run.machine, **env}))
            except Exception as exc:  # noqa: BLE001
                report.disagreements.append(Disagreement(
                    version, name, env, real, None, f"our evaluate raised {type(exc).__name__}: {exc}"))
                continue
            relaxed = unverifiable_tempdir(env) is not None
            report.relaxed += relaxed
            reason = outcomes_agree(real, ours, kind_only=relaxed)
            if reason:
                report.disagreements.append(Disagreement(version, name, env, real, ours, reason))
    report.seconds_ours += time.perf_counter() - ours_started


def compare_version(version: str, api=None, *, timeout: float | None = None,
                    torch_version: str | None = None) -> VersionReport:
    """Run every case of every variable (ours and vLLM's) of `version` through the real getters
    and through our evaluator; never raises for a gap on our side (it is a disagreement).
    The real getters see the torch the release pins (`pinned_torch`) unless told otherwise."""
    import types

    torch_version = torch_version or pinned_torch(version)

    from .values import cases_for, choices_of

    api = api if api is not None else registry_api()
    started = time.perf_counter()
    report = VersionReport(version)
    report.real_names = real_keys(version)
    registry = None
    if api is None:
        report.error = "webhook.registry has no load_registry/evaluate yet"
    else:
        try:
            registry = api.load_registry(version)
            report.our_names = list(registry.names())
        except Exception as exc:  # noqa: BLE001
            report.error = f"load_registry({version!r}) raised {type(exc).__name__}: {exc}"
    names = list(report.real_names)
    names += [n for n in (report.our_names or []) if n not in set(report.real_names)]

    variables: dict[str, Any] = {}
    cases: list[tuple[str, dict[str, str]]] = []
    for name in names:
        var = registry.get(name) if registry is not None else None
        variables[name] = var
        spec = var if var is not None else types.SimpleNamespace(name=name, reads=(name,), params={})
        try:
            envs = cases_for(spec)
        except Exception:  # noqa: BLE001 - odd params on our side: fall back to the plain values
            envs = cases_for(types.SimpleNamespace(name=name, reads=(name,), params={}))
        report.cases_per_variable[name] = len(envs)
        cases += [(name, env) for env in envs]
    report.cases = len(cases)

    reads_seen: dict[str, set[str]] = {}
    real_set = set(report.real_names)
    _compare_cases(report, api, variables, cases, reads_seen, timeout, torch_version)

    # Second round: a getter read names our var.reads does not declare, so the first round
    # never varied them; cross the variable with those names too (e.g. VLLM_DP_RANK_LOCAL
    # evaluating VLLM_DP_RANK as its default).
    extra: list[tuple[str, dict[str, str]]] = []
    for name, seen in reads_seen.items():
        var = variables.get(name)
        if var is None or name not in real_set:
            continue
        declared = set(getattr(var, "reads", ()) or ()) | IMPLICIT_READS
        missing = sorted(seen - declared - {"*"})
        if not missing:
            continue
        done = {tuple(sorted(env.items())) for n, env in cases if n == name}
        spec = types.SimpleNamespace(name=name, reads=tuple(sorted(declared | set(missing))),
                                     params={"choices": choices_of(var)})
        new_envs = [env for env in cases_for(spec) if tuple(sorted(env.items())) not in done]
        report.cases_per_variable[name] += len(new_envs)
        extra += [(name, env) for env in new_envs]
    if extra:
        report.cases += len(extra)
        _compare_cases(report, api, variables, extra, reads_seen, timeout, torch_version)

    for name, seen in reads_seen.items():
        var = variables.get(name)
        if var is None or name not in real_set:
            continue
        declared = set(getattr(var, "reads", ()) or ()) | IMPLICIT_READS
        missing = sorted(seen - declared)
        if missing:
            report.missing_reads[name] = missing
    report.seconds = time.perf_counter() - started
    return report
