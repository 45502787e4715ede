"""Reading vLLM's variable registry out of `vllm/envs.py` by AST: never imported, never run.

Every entry of `environment_variables` becomes a `Variable` whose getter is the expression vLLM
wrote, checked against what `expr.py` can evaluate. Helper functions the getters call are
matched, body by body, against the variants `helpers.py` implements. Anything else is refused
with the list of expressions we cannot classify: we never guess what a getter does.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.registry import expr
from webhook.registry.kinds import classify
from webhook.registry.model import Variable, VersionFacts

# Names that vLLM's dependencies read at run time, so a wheel that does not read them is no
# proof they do nothing: torch.utils.cpp_extension (the JIT kernel builds of flashinfer,
# deepgemm, ...) reads CUDA_HOME and MAX_JOBS.
READ_BY_DEPENDENCIES = frozenset({"CUDA_HOME", "MAX_JOBS"})
_INSTALLATION = re.compile(r"^\s*#\s*=+\s*Installation Time", re.I)
_RUNTIME = re.compile(r"^\s*#\s*=+\s*Runtime", re.I)


def build_time_names(table: ast.Dict, lines: list[str], wheel: Mapping[str, Any] | None) -> frozenset[str]:
    """Keys that only matter when building vLLM: listed under envs.py's "Installation Time"
    banner, and read by no module of the wheel (`usage.wheel_facts`) nor by a dependency.
    Empty when the wheel is unknown (a lone envs.py proves nothing about the rest)."""
    if wheel is None:
        return frozenset()
    start = next((i + 1 for i, line in enumerate(lines) if _INSTALLATION.match(line)), None)
    end = next((i + 1 for i, line in enumerate(lines) if _RUNTIME.match(line)), len(lines) + 1)
    if start is None:
        return frozenset()
    installation = {k.value for k in table.keys
                    if isinstance(k, ast.Constant) and isinstance(k.value, str) and start < k.lineno < end}
    return frozenset(installation & set(wheel.get("unread", ()))) - READ_BY_DEPENDENCIES


class ImportRefused(Exception):
    """envs.py holds getters or helpers we cannot classify; `problems` lists each one."""

    def __init__(self, source_name: str, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source_name}: {len(problems)} unclassified expression(s):\n{listing}")


@dataclass
class ImportResult:
    facts: VersionFacts
    variables: list[Variable]
    problems: list[str] = field(default_factory=list)


ModuleSource = Callable[[str], str | None]


def import_envs(source: str, version: str, module_source: ModuleSource = lambda _: None,
                source_name: str = "vllm/envs.py",
                wheel: Mapping[str, Any] | None = None) -> ImportResult:
    """The registry of one vLLM release; raises ImportRefused rather than guess.

    `wheel` holds what the rest of the release's wheel says (`usage.wheel_facts`: the torch
    pin, the keys read nowhere at run time, the sinks); without it those facts stay empty."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ImportRefused(source_name, [f"line {exc.lineno}: not Python: {exc.msg}"]) from None
    table = _find_registry(tree)
    if table is None:
        raise ImportRefused(source_name, ["no `environment_variables = {...}` (or `env_variables`) dict literal"])
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    helper_facts, helper_problems = _match_helpers(functions)
    lines = source.splitlines()
    build_time = build_time_names(table, lines, wheel)
    variables: list[Variable] = []
    problems: list[str] = []
    for key, value in zip(table.keys, table.values):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            problems.append(f"line {value.lineno}: a key that is not a string literal")
            continue
        name = key.value
        try:
            getter = _getter_expression(value, module_source)
        except _Unclassified as exc:
            problems.append(f"line {value.lineno}: {name}: {exc}")
            continue
        text = ast.unparse(getter)
        reasons = expr.check(text)
        reasons += [helper_problems[h] for h in _called_helpers(getter) if h in helper_problems]
        if reasons:
            problems.append(f"line {value.lineno}: {name}: `{_short(text)}` uses {', '.join(reasons)}")
            continue
        variables.append(_variable(name, getter, text, key.lineno, lines, name in build_time))
    if problems:
        raise ImportRefused(source_name, problems)
    facts = VersionFacts(
        version=version,
        eager_evaluation="enable_envs_cache" in functions,
        validates_unknown="validate_environ" in functions
        or "def validate_environ" in (module_source("vllm/platforms/interface.py") or ""),
        helpers=helper_facts,
        torch=(wheel or {}).get("torch"),
        sinks=(wheel or {}).get("sinks", {}),
    )
    return ImportResult(facts=facts, variables=variables)


class _Unclassified(Exception):
    pass


def _short(text: str) -> str:
    return text if len(text) <= 160 else text[:157] + "..."


# The registry dict of vLLM's envs.py, and of platform plugins' (vllm_ascend/envs.py).
REGISTRY_NAMES = ("environment_variables", "env_variables")


def _find_registry(tree: ast.Module) -> ast.Dict | None:
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id in REGISTRY_NAMES:
            value = getattr(node, "value", None)
            return value if isinstance(value, ast.Dict) else None
    return None


def _getter_expression(value: ast.expr, module_source: ModuleSource) -> ast.expr:
    """The expression whose value is what vLLM's getter returns.

    `lambda: body` gives body; a helper reference `get_vllm_port` gives `get_vllm_port()`; a
    getter factory `env_with_choices(...)` gives `env_with_choices(...)()`.
    """
    if isinstance(value, ast.Lambda):
        node = value.body
    elif isinstance(value, (ast.Name, ast.Call)):
        node = ast.Call(func=value, args=[], keywords=[])
    else:
        raise _Unclassified(f"a getter that is a {type(value).__name__}")
    return ast.fix_missing_locations(_Rewriter(module_source).visit(node))


class _Rewriter(ast.NodeTransformer):
    """Turns the two module-reflective idioms into plain data the evaluator understands."""

    def __init__(self, module_source: ModuleSource) -> None:
        self.module_source = module_source

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        # sys.modules[__name__].VLLM_DP_RANK -> registry_value("VLLM_DP_RANK")
        inner = node.value
        if (isinstance(inner, ast.Subscript) and expr.dotted(inner.value) == "sys.modules"
                and isinstance(inner.slice, ast.Name) and inner.slice.id == "__name__"):
            return ast.Call(ast.Name("registry_value", ast.Load()), [ast.Constant(node.attr)], [])
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        # list(__import__(module, fromlist=[...]).Enum.__members__.keys()) -> ["A", "B", ...]
        members = _enum_members_call(node)
        if members is not None:
            module, enum = members
            source = self.module_source(module.replace(".", "/") + ".py")
            names = _enum_member_names(source, enum) if source else None
            if names is None:
                raise _Unclassified(f"choices come from {module}.{enum}, which is not available")
            return ast.List([ast.Constant(n) for n in names], ast.Load())
        return self.generic_visit(node)


def _enum_members_call(node: ast.Call) -> tuple[str, str] | None:
    if not (isinstance(node.func, ast.Name) and node.func.id == "list" and len(node.args) == 1):
        return None
    keys = node.args[0]
    if not (isinstance(keys, ast.Call) and isinstance(keys.func, ast.Attribute)
            and keys.func.attr == "keys"):
        return None
    members = keys.func.value
    if not (isinstance(members, ast.Attribute) and members.attr == "__members__"):
        return None
    enum = members.value
    if not (isinstance(enum, ast.Attribute) and isinstance(enum.value, ast.Call)):
        return None
    call = enum.value
    if not (isinstance(call.func, ast.Name) and call.func.id == "__import__" and call.args
            and isinstance(call.args[0], ast.Constant)):
        return None
    return str(call.args[0].value), enum.attr


def _enum_member_names(source: str, enum: str) -> list[str] | None:
    """Member names of `class <enum>(Enum)` in source, in definition order."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == enum:
            names: list[str] = []
            for item in node.body:
                targets = item.targets if isinstance(item, ast.Assign) else (
                    [item.target] if isinstance(item, ast.AnnAssign) and item.value else [])
                names += [t.id for t in targets if isinstance(t, ast.Name) and not t.id.startswith("_")]
            return names
    return None


def _called_helpers(node: ast.AST) -> set[str]:
    from webhook.registry.helpers import HELPERS

    return {
        n.func.id for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in HELPERS
    }


# --- what each getter reads -------------------------------------------------------------

_HELPER_READS: dict[str, tuple[str, ...]] = {
    "get_default_cache_root": ("HOME", "XDG_CACHE_HOME"),
    "get_default_config_root": ("HOME", "XDG_CONFIG_HOME"),
    "get_vllm_port": ("VLLM_PORT",),
    "disable_compile_cache": ("VLLM_DISABLE_COMPILE_CACHE",),
    "use_aot_compile": ("VLLM_USE_AOT_COMPILE", "VLLM_DISABLE_COMPILE_CACHE", "VLLM_BATCH_INVARIANT"),
    "use_mega_aot_artifact": ("VLLM_USE_MEGA_AOT_ARTIFACT", "VLLM_USE_AOT_COMPILE",
                              "VLLM_DISABLE_COMPILE_CACHE", "VLLM_BATCH_INVARIANT"),
    "_resolve_rust_frontend_path": ("VLLM_USE_RUST_FRONTEND", "VLLM_RUST_FRONTEND_PATH"),
    "_resolve_rust_cli_path": ("VLLM_USE_RUST_FRONTEND", "VLLM_USE_RUST_BENCH",
                               "VLLM_RUST_FRONTEND_PATH"),
    "_deprecated_triton_attn_use_td": ("VLLM_TRITON_ATTN_USE_TD",),
}
_NAME_FIRST_ARG = frozenset({
    "os.getenv", "os.environ.get", "env_with_choices", "env_list_with_choices",
    "env_set_with_choices", "get_env_or_set_default", "deprecated_env", "registry_value",
})
_MACHINE_READS = {"os.path.expanduser": ("HOME",), "tempfile.gettempdir": ("TMPDIR", "TEMP", "TMP")}


def static_reads(getter: ast.expr) -> list[str]:
    """Every environment variable the getter can read, in source order."""
    reads: list[str] = []
    for node in ast.walk(getter):
        names: tuple[str, ...] = ()
        if isinstance(node, ast.Call):
            func = expr.dotted(node.func) or ""
            first = node.args[0] if node.args else None
            if func in _NAME_FIRST_ARG and isinstance(first, ast.Constant):
                names = (str(first.value),)
            names += _HELPER_READS.get(func, ()) + _MACHINE_READS.get(func, ())
        elif isinstance(node, ast.Compare) and expr.dotted(node.comparators[0]) == "os.environ":
            if isinstance(node.left, ast.Constant):
                names = (str(node.left.value),)
        elif isinstance(node, ast.Subscript) and expr.dotted(node.value) == "os.environ":
            if isinstance(node.slice, ast.Constant):
                names = (str(node.slice.value),)
        reads += [n for n in names if n not in reads]
    return reads


# --- one Variable --------------------------------------------------------------------------

def _variable(name: str, getter: ast.expr, text: str, line: int, lines: list[str],
              build_time: bool) -> Variable:
    kind = classify(name, getter)
    return Variable(
        name=name,
        expression=text,
        kind=kind.kind,
        reads=tuple(static_reads(getter)),
        default=kind.default,
        choices=kind.choices,
        case_sensitive=kind.case_sensitive,
        build_time=build_time,
        deprecated=kind.deprecated,
        description=_description(lines, line),
    )


_BANNER = re.compile(r"^#\s*=+")


def _description(lines: list[str], key_line: int) -> str:
    """The comment block right above a key, as one sentence."""
    block: list[str] = []
    i = key_line - 2
    while i >= 0 and lines[i].strip().startswith("#") and not _BANNER.match(lines[i].strip()):
        block.insert(0, lines[i].strip().lstrip("#").strip())
        i -= 1
    text = " ".join(b for b in block if b)
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return sentence if len(sentence) <= 200 else sentence[:197] + "..."


# --- helper functions: which variant does this release use? -----------------------------------

def _fingerprint(function: ast.FunctionDef) -> str:
    """Hash of a helper's body with docstrings, annotations, strings and import paths erased."""
    node = ast.parse(ast.unparse(function)).body[0]
    for sub in ast.walk(node):
        if isinstance(sub, ast.arg):
            sub.annotation = None
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
            sub.returns = None
            if sub.body and isinstance(sub.body[0], ast.Expr) and isinstance(sub.body[0].value, ast.Constant):
                sub.body = sub.body[1:] or [ast.Pass()]
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            sub.value = "S"
        elif isinstance(sub, ast.ImportFrom):
            sub.module = "M"
    return hashlib.sha256(ast.unparse(node).encode()).hexdigest()[:16]


def _fstrings(function: ast.FunctionDef) -> list[str]:
    """The f-string messages of a helper, as str.format templates."""
    out = []
    nodes = sorted((n for n in ast.walk(function) if isinstance(n, ast.JoinedStr)),
                   key=lambda n: (n.lineno, n.col_offset))
    for node in nodes:
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value).replace("{", "{{").replace("}", "}}"))
            elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name):
                parts.append("{" + value.value.id + "}")
        out.append("".join(parts))
    return out


def _string_constants(function: ast.FunctionDef) -> list[str]:
    return [n.value for n in ast.walk(function) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _vllm_port_facts(function: ast.FunctionDef, variant: str) -> dict[str, Any]:
    messages = _fstrings(function)
    uri = next((m for m in messages if "URI" in m), "")
    return {"uri_check": variant, "uri_message": uri, "int_message": messages[-1]}


def _aot_facts(function: ast.FunctionDef, variant: str) -> dict[str, Any]:
    torch = next(s for s in _string_constants(function) if re.match(r"^\d+\.\d+", s))
    source = ast.unparse(function)
    batch_invariant = ("module" if "vllm_is_batch_invariant" in source
                       else "env" if "VLLM_BATCH_INVARIANT" in source else None)
    return {"torch": torch, "cpu_check": "current_platform" in source, "batch_invariant": batch_invariant}


def _plain(function: ast.FunctionDef, variant: str) -> dict[str, Any]:
    return {"variant": variant}


Extractor = Callable[[ast.FunctionDef, str], dict[str, Any]]

# helper -> body fingerprint -> (variant, fact extractor): every body in vLLM 0.6.0 - 0.33.0.
# A new body is refused until helpers.py implements it and it is added here.
KNOWN_HELPERS: dict[str, dict[str, tuple[str, Extractor]]] = {
    "get_default_cache_root": {"40232b4c7f732f12": ("xdg", _plain)},
    "get_default_config_root": {"fc6cfafa8649fbe8": ("xdg", _plain)},
    "maybe_convert_int": {"a0238e3c5aa580d9": ("int", _plain)},
    "maybe_convert_bool": {"4462983320dca515": ("bool_int", _plain)},
    "maybe_convert_json_str_or_file": {"d26bc2b5673476fc": ("json_or_file", _plain)},
    "get_vllm_port": {
        "12833a22aa6d4b1c": ("swallowed", _vllm_port_facts),  # 0.9.0: URI error caught
        "d94811e13385a9f6": ("urlparse", _vllm_port_facts),
        "1c8eefb1647c7e3f": ("urllib3", _vllm_port_facts),
    },
    "env_with_choices": {"b728634dbb254da3": ("choices", _plain)},
    "env_list_with_choices": {"059c146708d44610": ("choices", _plain)},
    "env_set_with_choices": {"dffb405faf72d6ff": ("choices", _plain)},
    "disable_compile_cache": {"5980d9da7e82d9ca": ("bool_int", _plain)},
    "use_aot_compile": {
        "6cebbded4f030923": ("batch_invariant_module", _aot_facts),
        "778f85e6e1f2a59e": ("cpu_check", _aot_facts),
        "2d86119dae97ed8b": ("batch_invariant_env", _aot_facts),
        "f35aa1011934ff7c": ("plain", _aot_facts),
    },
    "use_mega_aot_artifact": {"bf9edbbf534e89ca": ("plain", _plain)},
    "get_env_or_set_default": {"f43179639dd9a07c": ("plain", _plain)},
    "_generate_shm_name": {"42c3bfff1577451c": ("uuid4", _plain)},
    "deprecated_env": {"ac04ad3df51bd737": ("warn", _plain)},
    "_resolve_rust_frontend_path": {"f602bb2b01dc710b": ("frontend", _plain)},
    "_resolve_rust_cli_path": {"6f802ca122f75865": ("frontend_or_bench", _plain)},
    "_deprecated_triton_attn_use_td": {"49f01765757410fb": ("warn", _plain)},
}


def _match_helpers(functions: Mapping[str, ast.FunctionDef]) -> tuple[dict[str, Any], dict[str, str]]:
    """Facts for each helper whose body we know; a problem text for each we don't."""
    from webhook.registry.helpers import HELPERS

    facts: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, function in functions.items():
        if name not in HELPERS:
            continue
        known = KNOWN_HELPERS.get(name, {}).get(_fingerprint(function))
        if known is None:
            problems[name] = f"helper {name}() whose body (fingerprint {_fingerprint(function)}) we do not implement"
            continue
        variant, extract = known
        facts[name] = extract(function, variant)
    return facts, problems
