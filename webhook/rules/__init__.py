"""The rule catalog: one module per rule, each with its id, documentation and checks.

A rule module defines `RULE` and any of the hooks `check_value(ValueSubject)`,
`check_container(ContainerSubject)` and `check_service(ServiceSubject)`, each yielding `Hit`s.
Service-link values go to `check_links(LinksSubject)`, once per (container, Service), so a
Service is reported once with the names it injects; a rule with that hook says which injected
names it looks at with `checks_link(name, Target) -> bool`, and the engine builds subjects for
those names only.
"""

from __future__ import annotations

import functools
from types import ModuleType

from webhook.rules import (
    check_incomplete,
    env_internal_misuse,
    env_invalid_choice,
    env_no_effect,
    env_parse_error,
    env_plaintext_secret,
    env_silent_coercion,
    env_unknown_variable,
    env_unverified_source,
    env_value_too_large,
    manifest_invalid,
    service_link_collision,
    service_link_prefix,
    upgrade_change,
)
from webhook.rules.base import Rule

MODULES: tuple[ModuleType, ...] = (
    service_link_collision,
    service_link_prefix,
    env_parse_error,
    env_invalid_choice,
    env_silent_coercion,
    env_unknown_variable,
    env_no_effect,
    env_internal_misuse,
    env_plaintext_secret,
    env_unverified_source,
    env_value_too_large,
    check_incomplete,
    upgrade_change,
    manifest_invalid,
)
CATALOG: dict[str, Rule] = {m.RULE.id: m.RULE for m in MODULES}


@functools.cache
def hooks(name: str) -> list[tuple[Rule, object]]:
    """(rule, function) for every rule module that defines hook `name`."""
    return [(m.RULE, getattr(m, name)) for m in MODULES if hasattr(m, name)]
