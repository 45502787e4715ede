"""What vLLM does with a value: run the getter, and flag values that are accepted but misread."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from webhook.registry import checks, expr, helpers
from webhook.registry.model import Outcome, Variable

if TYPE_CHECKING:
    from webhook.registry.model import Registry

# How a person reads a raw value meant as a switch.
_MEANS_TRUE = frozenset({"1", "true", "yes", "y", "on", "t", "enable", "enabled"})
_MEANS_FALSE = frozenset({"0", "false", "no", "n", "off", "f", "disable", "disabled", ""})


def intended(raw: str) -> bool | None:
    """True/False when `raw` reads as a switch to a person, None when it does not."""
    word = raw.strip().lower()
    if word in _MEANS_TRUE:
        return True
    if word in _MEANS_FALSE:
        return False
    return None


def evaluate(var: Variable, env: Mapping[str, str], registry: Registry | None = None) -> Outcome:
    """Run `var`'s getter over `env` (the container's whole environment)."""
    facts = registry.facts.helpers if registry is not None else {}
    torch = (registry.facts.torch if registry is not None else None) or helpers.DEFAULT_TORCH
    sink = registry.facts.sinks.get(var.name) if registry is not None else None
    resolving: set[str] = set()

    def resolve_variable(name: str) -> Any:
        other = registry.get(name) if registry is not None else None
        if other is None or name in resolving:
            raise expr.UnsupportedExpression(f"registry value {name}")
        resolving.add(name)
        return expr.evaluate(other.expression, ev)

    ev = expr.Evaluation(env=env, facts=facts, resolve_variable=resolve_variable, torch=torch)
    after = None
    try:
        value = expr.evaluate(var.expression, ev)
        if sink is not None:
            after = checks.WHERE[sink["check"]]
            checks.run(sink, value, resolve_variable)
    except expr.UnsupportedExpression:
        raise
    except Exception as exc:  # noqa: BLE001 - vLLM's exception is the result
        return Outcome(error=type(exc).__name__, message=str(exc), reads=tuple(ev.reads),
                       depends=frozenset(ev.depends), after=after)
    return Outcome(value=value, reads=tuple(ev.reads), depends=frozenset(ev.depends),
                   surprise=surprise(var, env.get(var.name), value))


def surprise(var: Variable, raw: str | None, value: Any) -> str | None:
    """Why an accepted `raw` almost certainly does not mean what its writer meant, or None."""
    if raw is None:
        return None
    intent = intended(raw)
    if isinstance(value, bool) and intent is not None and value != intent:
        return (f"{raw!r} reads as {'on' if intent else 'off'}, but vLLM's parser "
                f"makes it {value}")
    if var.kind == "tri_state" and value is None and raw.strip():
        return f"{raw!r} is neither '1' nor '0', so vLLM ignores it and decides by itself"
    if raw == "" and var.kind == "path" and value == "":
        return "an empty path is not unset: vLLM uses '' (the working directory), not the default"
    if raw == "" and var.kind == "csv_list" and value == [""]:
        return "an empty list is not unset: vLLM gets [''], which matches nothing"
    if var.name in ADDRESSES and isinstance(value, str) and _not_an_address(value):
        return (f"{raw!r} is not an IP address or host name: vLLM uses it verbatim as the address "
                "other ranks connect to (tcp://<it>:<port>), which torch.distributed cannot resolve")
    if var.kind == "float_positive_else_default" and value != _float_or_none(raw):
        return f"{raw!r} is not a positive number, so vLLM silently uses {value!r} instead"
    return None


# Variables whose value vLLM uses as this node's address (get_ip() returns it unchecked).
ADDRESSES = frozenset({"VLLM_HOST_IP"})


def _not_an_address(value: str) -> bool:
    """Whitespace anywhere, or a URI (`tcp://10.0.0.1:8000`), where a bare address belongs."""
    return any(c.isspace() for c in value) or "://" in value


def _float_or_none(raw: str) -> float | None:
    try:
        return float(raw)
    except ValueError:
        return None
