"""What a vLLM wheel does with its variables after the getter, read by AST over its modules.

`wheel_facts()` takes every `vllm/**.py` of one release (never imported) and its METADATA, and
derives the facts the importer folds into the bundled table:

- `torch`: the torch release the wheel pins (`Requires-Dist: torch==X`), which decides the
  defaults of getters that ask torch for its version;
- `unread`: registry keys that no module reads at run time (no `envs.NAME`, no `"NAME"`, no
  import of the name anywhere outside the key's own getter): vLLM reads them only when building;
- `sinks`: values that flow into a call that raises after the getter accepted them (see
  `SINKS`), with what the check needs (the logging handler's name).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

ENVS = "vllm/envs.py"
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_TORCH_PIN = re.compile(r"^Requires-Dist:\s*torch\s*\(?\s*==\s*([0-9][^\s;,)]*)", re.I | re.M)


def torch_pin(metadata: str) -> str | None:
    """The exact torch version a wheel's METADATA requires, else None (no pin, or a range)."""
    pins = {m.group(1) for m in _TORCH_PIN.finditer(metadata)}
    return pins.pop() if len(pins) == 1 else None


def wheel_facts(modules: Mapping[str, str | None], metadata: str) -> dict[str, Any]:
    envs = _parse(modules.get(ENVS))
    keys = _registry_keys(envs) if envs is not None else []
    read = _envs_names(envs) if envs is not None else set()
    # Only modules that mention a key (or a sink's variable) as text are parsed.
    mentions = re.compile("|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)) or "(?!)")
    trees: dict[str, ast.Module] = {}
    for path, source in modules.items():
        if path == ENVS or not path.endswith(".py") or not source or not mentions.search(source):
            continue
        tree = _parse(source)
        if tree is not None:
            trees[path] = tree
            read |= _names(tree)
    return {
        "torch": torch_pin(metadata),
        "unread": [k for k in keys if k not in read],
        "sinks": _sinks(trees),
    }


def _parse(source: str | None) -> ast.Module | None:
    try:
        return ast.parse(source) if source else None
    except SyntaxError:
        return None  # templates and such: nothing we can read


def _registry_dict(tree: ast.Module) -> ast.Dict | None:
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id == "environment_variables" and isinstance(value, ast.Dict):
            return value
    return None


def _registry_keys(tree: ast.Module) -> list[str]:
    table = _registry_dict(tree)
    if table is None:
        return []
    return [k.value for k in table.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]


def _names(tree: ast.AST) -> set[str]:
    """Every upper-case name a module refers to: attributes, names, imports, string constants."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.alias):
            found.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)
    return {n for n in found if _NAME.match(n)}


def _envs_names(tree: ast.Module) -> set[str]:
    """Names envs.py itself reads at run time: outside the registry's keys and their own
    `os.getenv("NAME")` reads, outside the `if TYPE_CHECKING:` declarations, plus the
    registry values a getter takes from another key (`sys.modules[__name__].NAME`)."""
    found: set[str] = set()
    table = _registry_dict(tree)
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            continue
        if isinstance(node, (ast.AnnAssign, ast.Assign)) and getattr(node, "value", None) is table:
            for value in table.values if table is not None else ():
                found |= {n.attr for n in ast.walk(value) if isinstance(n, ast.Attribute)}
            continue
        if isinstance(node, ast.AnnAssign) and node.value is None:
            continue
        found |= _names(node)
    return {n for n in found if _NAME.match(n)}


# --- sinks: where a value raises after the getter -------------------------------------------

def _sinks(trees: Mapping[str, ast.Module]) -> dict[str, dict[str, Any]]:
    sinks: dict[str, dict[str, Any]] = {}
    logger = trees.get("vllm/logger.py")
    handler = _logging_level_handler(logger) if logger is not None else None
    if handler is not None:
        sinks["VLLM_LOGGING_LEVEL"] = {"check": "logging_level", "handler": handler}
    if any(_passes_to_get_context(tree) for tree in trees.values()):
        sinks["VLLM_WORKER_MULTIPROC_METHOD"] = {"check": "mp_context"}
    return sinks


def _logging_level_handler(tree: ast.Module) -> str | None:
    """The handler whose "level" is `VLLM_LOGGING_LEVEL` in the default logging config, if any.

    dictConfig() configures handlers first, so a bad level raises "Unable to configure handler
    '<name>'" there."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values):
            if not (isinstance(key, ast.Constant) and key.value == "handlers" and isinstance(value, ast.Dict)):
                continue
            for name, handler in zip(value.keys, value.values):
                if isinstance(name, ast.Constant) and isinstance(handler, ast.Dict) and _level_is_env(handler):
                    return str(name.value)
    return None


def _level_is_env(handler: ast.Dict) -> bool:
    return any(isinstance(k, ast.Constant) and k.value == "level" and "VLLM_LOGGING_LEVEL" in ast.unparse(v)
               for k, v in zip(handler.keys, handler.values))


def _passes_to_get_context(tree: ast.Module) -> bool:
    """A scope (a function, or the module's own statements: 0.6.0-0.6.2 call it at import)
    that reads VLLM_WORKER_MULTIPROC_METHOD and calls `multiprocessing.get_context`."""
    module_level = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    scopes = [ast.Module(body=module_level, type_ignores=[])]
    scopes += [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    for scope in scopes:
        text = ast.unparse(scope)
        if "VLLM_WORKER_MULTIPROC_METHOD" in text and re.search(r"\bget_context\(", text):
            return True
    return False
