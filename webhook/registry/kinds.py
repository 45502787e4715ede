"""Naming the shape of a getter: the parser kind, its default, its choices.

The evaluator runs any checked getter exactly; the kind is for people and for rules: it groups
getters that treat values alike (`bool_int`: `bool(int(os.getenv(X, "0")))`, `eq_1`:
`os.getenv(X, "0") == "1"`, ...) so docs and messages can say what a value means.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass

from webhook.registry.expr import dotted


@dataclass(frozen=True, slots=True)
class KindInfo:
    kind: str
    default: str | None
    choices: tuple[str, ...] | None = None
    case_sensitive: bool | None = None
    deprecated: str | None = None


# (kind, canonical-form regex). Canonical form: the getter with its own name as NAME, other
# strings as S, numbers as N, and os.environ.get spelled os.getenv. First match wins.
_KINDS: tuple[tuple[str, str], ...] = (
    ("bool_int", r"bool\(int\(os\.getenv\(NAME, S\)\)\)|disable_compile_cache\(\)"),
    ("eq_1_torch_default", r"use_aot_compile\(\)|use_mega_aot_artifact\(\)"),
    ("int", r"(int\()?int\(os\.getenv\(NAME, (S|N|str\(.*\))\)\)\)?"),
    ("float", r"float\(os\.getenv\(NAME, S\)\)"),
    ("float_positive_else_default", r"val if \(val := float\(os\.getenv\(NAME, S\)\)\) > N else N"),
    ("port", r"get_vllm_port\(\)"),
    ("optional_int", r"maybe_convert_int\(os\.getenv\(NAME, None\)\)"
                     r"|int\(os\.(getenv\(NAME, S\)|environ\[NAME\])\) if NAME in os\.environ else (None|N)"),
    ("optional_bool_int", r"maybe_convert_bool\(os\.getenv\(NAME(, None|, S)?\)\)"
                          r"|bool\(int\(os\.environ\[NAME\]\)\) if NAME in os\.environ else (None|True)"),
    ("eq_1", r"os\.getenv\(NAME, S\) == S"),
    ("ne_0", r"(bool\()?os\.getenv\(NAME, S\) != S\)?"),
    ("lower_eq_true", r"os\.getenv\(NAME, S\)\.lower\(\) == S"),
    ("lower_in", r"os\.getenv\(NAME, S\)\.lower\(\) in \(S(, S)*\)"),
    ("strip_lower_in", r"os\.getenv\(NAME, S\)\.strip\(\)\.lower\(\) in \(S(, S)*\)"),
    ("optional_lower_in", r"None if NAME not in os\.environ else os\.environ\[NAME\]\.lower\(\) in \(S(, S)*\)"),
    ("truthy_string", r"bool\(os\.getenv\(NAME(, N|, False|, None)?\)\)"),
    ("tri_state", r"\{S: True, S: False\}\.get\(os\.getenv\(NAME, S\)\.strip\(\)\)"),
    ("choice", r"env_with_choices\(NAME, .*\)\(\)"),
    ("choice_list", r"env_list_with_choices\(NAME, .*\)\(\)"),
    ("choice_set", r"env_set_with_choices\(NAME, .*\)\(\)"),
    ("csv_list", r"(None|\[\]) if NAME not in os\.environ else os\.environ\[NAME\]\.split\(S\)"
                 r"|None if NAME not in os\.environ else \[v\.strip\(\) for v in os\.environ\[NAME\]"
                 r"\.split\(S\) if v\.strip\(\)\]|os\.getenv\(NAME, S\)\.replace\(S, S\)\.split\(S\)"),
    ("json", r"json\.loads\(os\.getenv\(NAME, S\)\)"),
    ("json_or_file", r"maybe_convert_json_str_or_file\(os\.getenv\(NAME, None\)\)"),
    ("path", r"os\.path\.expanduser\(os\.getenv\(NAME, .*\)\)"
             r"|None if .*os\.path\.(abspath|expanduser)\(.*"),
    ("str_lower", r"os\.getenv\(NAME, S\)\.lower\(\)( or S)?"),
    ("str_upper", r"os\.getenv\(NAME, S\)\.upper\(\)"),
    ("str", r"os\.getenv\(NAME(, S|, None|, False|, tempfile\.gettempdir\(\))?\)"),
    ("generated_default", r"get_env_or_set_default\(NAME, .*\)\(\)"),
)
_COMPILED = tuple((kind, re.compile(pattern)) for kind, pattern in _KINDS)


def canonical(name: str, getter: ast.expr) -> str:
    node = copy.deepcopy(getter)
    for sub in ast.walk(node):
        if isinstance(sub, ast.JoinedStr):
            continue
        for field, value in ast.iter_fields(sub):
            if isinstance(value, ast.Constant):
                setattr(sub, field, _placeholder(name, value))
            elif isinstance(value, list):
                setattr(sub, field, [_placeholder(name, v) if isinstance(v, ast.Constant) else v
                                     for v in value])
    return ast.unparse(node).replace("os.environ.get(", "os.getenv(")


def _placeholder(name: str, node: ast.Constant) -> ast.expr:
    value = node.value
    if value == name:
        return ast.Name("NAME")
    if isinstance(value, str):
        return ast.Name("S")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ast.Name("N")
    return node


def classify(name: str, getter: ast.expr) -> KindInfo:
    deprecated = None
    inner = getter
    wrapper = _deprecation(name, getter)
    if wrapper is not None:
        inner, deprecated = wrapper
    form = canonical(name, inner)
    kind = next((k for k, rx in _COMPILED if rx.fullmatch(form)), "composite")
    choices, case_sensitive = _choices(inner)
    return KindInfo(kind, _default(name, inner), choices, case_sensitive, deprecated)


def _deprecation(name: str, getter: ast.expr) -> tuple[ast.expr, str] | None:
    """deprecated_env(NAME, removal, replacement, getter)() -> (getter(), note)."""
    call = getter.func if isinstance(getter, ast.Call) and isinstance(getter.func, ast.Call) else None
    if call is not None and dotted(call.func) == "deprecated_env" and len(call.args) == 4:
        removal, replacement, inner = call.args[1], call.args[2], call.args[3]
        note = f"deprecated, to be removed in {_text(removal)}. {_text(replacement)}".strip()
        body = inner.body if isinstance(inner, ast.Lambda) else ast.Call(inner, [], [])
        return body, note
    if dotted(getattr(getter, "func", None) or getter) == "_deprecated_triton_attn_use_td":
        return getter, "deprecated and ignored"
    return None


def _text(node: ast.expr) -> str:
    return str(node.value) if isinstance(node, ast.Constant) else ast.unparse(node)


def _default(name: str, getter: ast.expr) -> str | None:
    """The default as vLLM wrote it, from the first read of the variable's own name."""
    for node in ast.walk(getter):
        if not isinstance(node, ast.Call):
            continue
        func = dotted(node.func)
        if func in ("os.getenv", "os.environ.get", "env_with_choices", "env_list_with_choices",
                    "env_set_with_choices"):
            if node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == name:
                default = node.args[1] if len(node.args) > 1 else next(
                    (k.value for k in node.keywords if k.arg == "default"), None)
                return ast.unparse(default) if default is not None else "None"
    return None


def _choices(getter: ast.expr) -> tuple[tuple[str, ...] | None, bool | None]:
    for node in ast.walk(getter):
        if isinstance(node, ast.Call) and dotted(node.func) in (
                "env_with_choices", "env_list_with_choices", "env_set_with_choices"):
            args = {k.arg: k.value for k in node.keywords}
            choices = node.args[2] if len(node.args) > 2 else args.get("choices")
            sensitive = node.args[3] if len(node.args) > 3 else args.get("case_sensitive")
            values = None
            if isinstance(choices, (ast.List, ast.Tuple)):
                values = tuple(str(e.value) for e in choices.elts if isinstance(e, ast.Constant))
            flag = sensitive.value if isinstance(sensitive, ast.Constant) else True
            return values, bool(flag)
    return None, None
