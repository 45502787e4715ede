"""A safe evaluator for the getter expressions of vLLM's variable registry.

The importer stores each getter as the Python expression vLLM wrote (`bool(int(os.getenv("X",
"0")))`), checked against a whitelist of syntax and functions. Here we evaluate that expression
against a given environment, with Python's own `int`, `float`, `str.lower`, `json.loads`, ... so
results and exception messages are vLLM's own, character for character. Nothing is ever passed
to `eval`; names, attributes and calls outside the whitelist are rejected at import time by
`check()`, with the reason.

vLLM's helper functions (`env_with_choices`, `get_vllm_port`, ...) are implemented in
`helpers.py`; the importer verifies that each release's helper body is one we implement.
"""

from __future__ import annotations

import ast
import functools
import json
import posixpath
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.registry import helpers

# Functions reachable by a dotted name. Those that look at the machine rather than the
# environment mark the outcome as depending on it (see Evaluation.depends).
_BUILTINS: dict[str, Callable[..., Any]] = {
    "int": int, "float": float, "bool": bool, "str": str, "list": list, "set": set,
    "max": max, "min": min, "hasattr": hasattr, "len": len,
    "json.loads": json.loads, "os.path.join": posixpath.join,
}
_STR_METHODS = frozenset({"lower", "upper", "strip", "split", "replace", "startswith", "endswith"})
_DICT_METHODS = frozenset({"get"})
_ENV_FUNCS = frozenset({"os.getenv", "os.environ.get"})
_MACHINE_FUNCS = frozenset({
    "os.path.expanduser", "os.path.join", "os.path.abspath", "os.path.exists",
    "os.cpu_count", "tempfile.gettempdir", "uuid.uuid4", "__import__",
})


# Directories present in every Linux container (and the working directory).
_ALWAYS_PRESENT = frozenset({".", "..", "/", "/tmp", "/etc", "/dev", "/proc", "/sys", "/usr", "/var"})


class UnsupportedExpression(ValueError):
    """The expression uses syntax or a function this evaluator does not implement."""


@dataclass
class Evaluation:
    """State of one evaluation: the environment, what was read, what the result depends on."""

    env: Mapping[str, str]
    facts: Mapping[str, Any]
    resolve_variable: Callable[[str], Any]
    torch: str = helpers.DEFAULT_TORCH  # the release's pinned torch
    reads: list[str] = field(default_factory=list)
    depends: set[str] = field(default_factory=set)

    def getenv(self, name: str, default: Any = None) -> Any:
        self._read(name)
        return self.env.get(name, default)

    def contains(self, name: str) -> bool:
        self._read(name)
        return name in self.env

    def item(self, name: str) -> str:
        self._read(name)
        return self.env[name]

    def _read(self, name: str) -> None:
        if name not in self.reads:
            self.reads.append(name)

    # --- the machine, as far as a manifest can tell ---

    def expanduser(self, path: str) -> str:
        if not path.startswith("~"):
            return path
        self.depends.add("home")
        home = self.getenv("HOME")
        if home is None:
            return path
        i = path.find("/", 1)
        if i < 0:
            i = len(path)
        if i != 1:  # ~user: the container's passwd database
            return path
        return (home.rstrip("/") + path[i:]) or "/"  # posixpath.expanduser, exactly

    def abspath(self, path: str) -> str:
        if not posixpath.isabs(path):
            self.depends.add("cwd")
            return posixpath.normpath(posixpath.join("/", path))
        return posixpath.normpath(path)

    def exists(self, path: str) -> bool:
        """Only paths every Linux container has are known to exist."""
        self.depends.add("filesystem")
        return path != "" and posixpath.normpath(path) in _ALWAYS_PRESENT

    def cpu_count(self) -> int:
        self.depends.add("cpu")
        return int(self.facts.get("cpu_count", 8))

    def gettempdir(self) -> str:
        """tempfile's choice: the first of TMPDIR, TEMP, TMP that is set (all three are read),
        made absolute as tempfile does; assumed to exist (tempfile skips one that does not)."""
        self.depends.add("tmpdir")
        candidates = [self.getenv(name) for name in ("TMPDIR", "TEMP", "TMP")]
        chosen = next((c for c in candidates if c), "/tmp")
        return chosen if chosen == "." else self.abspath(chosen)

    def uuid4(self) -> uuid.UUID:
        self.depends.add("random")
        return uuid.uuid4()

    def import_module(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name != "torch":
            raise UnsupportedExpression(f"__import__({name!r})")
        self.depends.add("torch")
        return helpers.torch_stub(self.torch)


def check(source: str) -> list[str]:
    """Reasons why `source` cannot be evaluated here (empty when it can)."""
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        return [f"syntax error: {exc.msg}"]
    bound = {t.id for node in ast.walk(tree) for t in _targets(node)}
    reasons = [reason for node in ast.walk(tree) if (reason := _unsupported(node))]
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id not in bound and node.id not in _ROOT_NAMES and not _known_callable(node.id):
                reasons.append(f"name {node.id}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            name = dotted(node)
            if node.value.id in _ROOT_NAMES and not _known_attribute(name):
                reasons.append(f"attribute {name}")
    return reasons


_ROOT_NAMES = frozenset({"os", "json", "tempfile", "uuid", "True", "False", "None"})


def _targets(node: ast.AST) -> list[ast.Name]:
    if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
        return [node.target]
    if isinstance(node, ast.comprehension) and isinstance(node.target, ast.Name):
        return [node.target]
    return []


def _known_attribute(name: str | None) -> bool:
    known = _ENV_FUNCS | _MACHINE_FUNCS | set(_BUILTINS) | {"os.environ", "os.path"}
    return name is not None and any(k == name or k.startswith(name + ".") for k in known)


def evaluate(source: str, ev: Evaluation) -> Any:
    """Evaluate a checked getter expression; exceptions are vLLM's exceptions."""
    return _Interpreter(ev).run(_compile(source), {})


@functools.lru_cache(maxsize=4096)
def _compile(source: str) -> ast.expr:
    return ast.parse(source, mode="eval").body


def dotted(node: ast.AST) -> str | None:
    """`os.environ.get` for the attribute chain os -> environ -> get, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


_ALLOWED_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Store, ast.Call, ast.Attribute,
    ast.keyword, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.IfExp, ast.NamedExpr,
    ast.ListComp, ast.SetComp, ast.comprehension, ast.Tuple, ast.List, ast.Set, ast.Dict,
    ast.Subscript, ast.Slice, ast.BinOp, ast.JoinedStr, ast.FormattedValue, ast.Lambda,
    ast.arguments, ast.cmpop, ast.boolop, ast.unaryop, ast.operator, ast.expr_context,
)


def _unsupported(node: ast.AST) -> str | None:
    if not isinstance(node, _ALLOWED_NODES):
        return f"syntax {type(node).__name__}"
    if isinstance(node, ast.Call):
        name = dotted(node.func)
        if isinstance(node.func, ast.Attribute) and name is None:
            if node.func.attr not in _STR_METHODS | _DICT_METHODS:
                return f"method .{node.func.attr}()"
        elif name is not None and not _known_callable(name):
            return f"function {name}()"
    return None


def _known_callable(name: str) -> bool:
    head, _, method = name.rpartition(".")
    return (
        name in _BUILTINS or name in _ENV_FUNCS or name in _MACHINE_FUNCS
        or name in helpers.HELPERS or (head != "" and method in _STR_METHODS | _DICT_METHODS)
    )

# Functions that read the environment or the machine: methods of Evaluation.
_EVALUATION_METHODS = {
    "os.getenv": "getenv", "os.environ.get": "getenv", "os.path.expanduser": "expanduser",
    "os.path.abspath": "abspath", "os.path.exists": "exists", "os.cpu_count": "cpu_count",
    "tempfile.gettempdir": "gettempdir", "uuid.uuid4": "uuid4", "__import__": "import_module",
}

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: lambda a, b: a is b, ast.IsNot: lambda a, b: a is not b,
}


class _Interpreter:
    def __init__(self, ev: Evaluation) -> None:
        self.ev = ev

    def run(self, node: ast.expr, scope: dict[str, Any]) -> Any:
        method = _DISPATCH.get(type(node))
        if method is None:
            raise UnsupportedExpression(f"syntax {type(node).__name__}")
        return method(self, node, scope)

    def _Constant(self, node: ast.Constant, scope: dict[str, Any]) -> Any:
        return node.value

    def _Name(self, node: ast.Name, scope: dict[str, Any]) -> Any:
        if node.id in scope:
            return scope[node.id]
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        return self._callable(node.id)

    def _Attribute(self, node: ast.Attribute, scope: dict[str, Any]) -> Any:
        name = dotted(node)
        if name == "os.environ":
            return _EnvironView(self.ev)
        if name is not None and name.split(".")[0] not in scope:
            return self._callable(name)
        return getattr(self.run(node.value, scope), node.attr)

    def _callable(self, name: str) -> Callable[..., Any]:
        method = _EVALUATION_METHODS.get(name)
        if method is not None:
            return getattr(self.ev, method)
        if name in _BUILTINS:
            return _BUILTINS[name]
        if name in helpers.HELPERS:
            return functools.partial(helpers.HELPERS[name], self.ev)
        raise UnsupportedExpression(f"name {name}")

    def _Call(self, node: ast.Call, scope: dict[str, Any]) -> Any:
        func = self.run(node.func, scope)
        args = [self.run(a, scope) for a in node.args]
        kwargs = {k.arg: self.run(k.value, scope) for k in node.keywords if k.arg}
        return func(*args, **kwargs)

    def _Lambda(self, node: ast.Lambda, scope: dict[str, Any]) -> Callable[[], Any]:
        return lambda: self.run(node.body, dict(scope))

    def _Compare(self, node: ast.Compare, scope: dict[str, Any]) -> bool:
        left = self.run(node.left, scope)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.run(comparator, scope)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True

    def _BoolOp(self, node: ast.BoolOp, scope: dict[str, Any]) -> Any:
        value: Any = None
        for operand in node.values:
            value = self.run(operand, scope)
            if isinstance(node.op, ast.And) and not value:
                return value
            if isinstance(node.op, ast.Or) and value:
                return value
        return value

    def _UnaryOp(self, node: ast.UnaryOp, scope: dict[str, Any]) -> Any:
        value = self.run(node.operand, scope)
        if isinstance(node.op, ast.Not):
            return not value
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return +value
        raise UnsupportedExpression(f"operator {type(node.op).__name__}")

    def _BinOp(self, node: ast.BinOp, scope: dict[str, Any]) -> Any:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise UnsupportedExpression(f"operator {type(node.op).__name__}")
        return op(self.run(node.left, scope), self.run(node.right, scope))

    def _IfExp(self, node: ast.IfExp, scope: dict[str, Any]) -> Any:
        branch = node.body if self.run(node.test, scope) else node.orelse
        return self.run(branch, scope)

    def _NamedExpr(self, node: ast.NamedExpr, scope: dict[str, Any]) -> Any:
        value = self.run(node.value, scope)
        assert isinstance(node.target, ast.Name)
        scope[node.target.id] = value
        return value

    def _comprehend(self, node: ast.ListComp | ast.SetComp, scope: dict[str, Any]) -> list[Any]:
        (gen,) = node.generators
        assert isinstance(gen.target, ast.Name)
        out = []
        for item in self.run(gen.iter, scope):
            inner = {**scope, gen.target.id: item}
            if all(self.run(cond, inner) for cond in gen.ifs):
                out.append(self.run(node.elt, inner))
        return out

    def _ListComp(self, node: ast.ListComp, scope: dict[str, Any]) -> list[Any]:
        return self._comprehend(node, scope)

    def _SetComp(self, node: ast.SetComp, scope: dict[str, Any]) -> set[Any]:
        return set(self._comprehend(node, scope))

    def _Tuple(self, node: ast.Tuple, scope: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(self.run(e, scope) for e in node.elts)

    def _List(self, node: ast.List, scope: dict[str, Any]) -> list[Any]:
        return [self.run(e, scope) for e in node.elts]

    def _Set(self, node: ast.Set, scope: dict[str, Any]) -> set[Any]:
        return {self.run(e, scope) for e in node.elts}

    def _Dict(self, node: ast.Dict, scope: dict[str, Any]) -> dict[Any, Any]:
        return {self.run(k, scope): self.run(v, scope) for k, v in zip(node.keys, node.values) if k}

    def _Subscript(self, node: ast.Subscript, scope: dict[str, Any]) -> Any:
        container = self.run(node.value, scope)
        if isinstance(node.slice, ast.Slice):
            part = node.slice
            bounds = [self.run(b, scope) if b else None for b in (part.lower, part.upper, part.step)]
            return container[slice(*bounds)]
        return container[self.run(node.slice, scope)]

    def _JoinedStr(self, node: ast.JoinedStr, scope: dict[str, Any]) -> str:
        return "".join(str(self.run(v, scope)) for v in node.values)

    def _FormattedValue(self, node: ast.FormattedValue, scope: dict[str, Any]) -> str:
        value = self.run(node.value, scope)
        conversion = {115: str, 114: repr, 97: ascii}.get(node.conversion, lambda v: v)
        spec = self.run(node.format_spec, scope) if node.format_spec else ""
        return format(conversion(value), spec)


_DISPATCH: dict[type, Callable[[_Interpreter, Any, dict[str, Any]], Any]] = {
    getattr(ast, name[1:]): method for name, method in vars(_Interpreter).items()
    if name.startswith("_") and name[1:2].isupper() and hasattr(ast, name[1:])
}


class _EnvironView:
    """`os.environ` as the getters see it: reads are recorded, lookups go to the case's env."""

    def __init__(self, ev: Evaluation) -> None:
        self._ev = ev

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._ev.contains(name)

    def __getitem__(self, name: str) -> str:
        return self._ev.item(name)

    def get(self, name: str, default: Any = None) -> Any:
        return self._ev.getenv(name, default)

