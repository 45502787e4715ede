"""The tricky values the conformance harness feeds to every parser.

`values_for(var)` is the list of values for the variable's own name (None = unset);
`cases_for(var)` the full case environments (HOME is added by the harness), including
combinations for the other names the getter reads (`var.reads`).

`var` only needs `.name`; `.reads` (tuple of names) and the choices (`.params["choices"]`
or `.choices`) are optional, so the harness can build cases for a variable that
our registry does not know.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Values every variable gets. Environment values cannot hold NUL, so there is none here.
BASE_VALUES: tuple[str | None, ...] = (
    None,
    "",
    " ",
    "\t",
    "0",
    "1",
    " 1 ",
    "\t1\n",
    "2",
    "-1",
    "+1",
    "-0",
    "00",
    "010",
    "1_000",
    " 8000 ",
    "8000",
    "65536",
    "99999999999999999999",
    "1.0",
    "0.0",
    "1.5",
    "-2.5",
    "1e3",
    "0x10",
    "0o7",
    "0b1",
    "nan",
    "inf",
    "-inf",
    "true",
    "True",
    "TRUE",
    " true ",
    "false",
    "False",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "none",
    "None",
    "null",
    "tcp://10.96.0.12:8000",
    "tcp://[fd00::1]:8000",
    "udp://10.96.0.12:53",
    "10.96.0.12:8000",
    "localhost:8000",
    "http://localhost",
    "10.96.0.12",
    "fd00::1",
    "\u0663",  # Arabic-Indic digit three: int() accepts it
    "\uff11\uff12",  # full-width "12": int() accepts it
    "\u00b2",  # superscript two: isdigit() but int() rejects it
    "[1, 2]",
    '{"a": 1}',
    '"x"',
    "{}",
    "a,b",
    "a, b",
    " , ",
    ",",
    "auto",
    "x",
    "proxy",
    "~",
    "~/x",
    "/tmp/x",
    "/",
    ".",
    "vllm",
)

# Values for the *other* names a getter reads (aliases, fallbacks, feature gates, paths).
OTHER_VALUES: tuple[str | None, ...] = (
    None, "", "0", "1", "2", " 1 ", "true", "False", "x", "proxy", "/tmp/x",
)
# Values of the variable itself when crossed with the other names.
CROSS_VALUES: tuple[str | None, ...] = (
    None, "", "0", "1", "2", " 1 ", "true", "false", "x", "auto", "/tmp/x",
)
# Names read by path defaults: crossed with a few path-like values only.
PATH_NAMES = frozenset({"HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "TMPDIR", "TEMP", "TMP"})
PATH_VALUES: tuple[str | None, ...] = (None, "", "/tmp/x", "relative/dir", "~/x")
# Full cross product of all other names up to this many environments; pairwise beyond.
MAX_FULL_CROSS = 600


def choices_of(var: Any) -> list[str]:
    """The variable's choices: `var.params["choices"]` or `var.choices` (either may be absent)."""
    params = getattr(var, "params", None)
    choices = params.get("choices") if isinstance(params, dict) else None
    if choices is None:
        choices = getattr(var, "choices", None)
    if not choices or isinstance(choices, str):
        return []
    try:
        return [str(c) for c in choices]
    except TypeError:  # a callable or other non-iterable: nothing to add
        return []


def choice_values(choices: Iterable[str]) -> list[str]:
    """Each choice as is, upper-, lower- and title-cased, padded, and comma-joined pairs."""
    choices = list(choices)
    out: list[str] = []
    for choice in choices:
        out += [choice, choice.upper(), choice.lower(), choice.title(), f" {choice} ",
                f"{choice},", f"{choice}, {choice}"]
    for first, second in zip(choices, choices[1:] + choices[:1]):
        if first != second:
            out += [f"{first},{second}", f"{first}, {second}", f" {first.upper()} ,{second}"]
    if choices:
        out += [",".join(choices), f"{choices[0]},,{choices[0]}", f"{choices[0]},bogus"]
    return out


def _dedup(values: Iterable[str | None]) -> list[str | None]:
    seen: set[str | None] = set()
    out: list[str | None] = []
    for value in values:
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out


def values_for(var: Any) -> list[str | None]:
    """Values for the variable's own name (None = unset); at least len(BASE_VALUES)."""
    return _dedup([*BASE_VALUES, *choice_values(choices_of(var))])


def other_names(var: Any) -> list[str]:
    """The names besides `var.name` that the getter reads, in a stable order."""
    reads = getattr(var, "reads", None) or ()
    return sorted({str(n) for n in reads} - {var.name})


def _other_values(name: str) -> tuple[str | None, ...]:
    return PATH_VALUES if name in PATH_NAMES else OTHER_VALUES


def _env(assignments: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    return {name: value for name, value in assignments if value is not None}


def cases_for(var: Any) -> list[dict[str, str]]:
    """Full case environments (without HOME, which the harness adds): the variable set to each
    of `values_for(var)` with nothing else set, then, when the getter reads other names, the
    variable's CROSS_VALUES (plus its choices) crossed with each other name's small set of
    values (all combinations when that stays under MAX_FULL_CROSS, else pairwise)."""
    name = var.name
    envs: list[dict[str, str]] = [_env([(name, value)]) for value in values_for(var)]
    others = other_names(var)
    if others:
        own = _dedup([*CROSS_VALUES, *choices_of(var)[:4]])
        total = len(own)
        for other in others:
            total *= len(_other_values(other))
        if total <= MAX_FULL_CROSS:
            combos: list[list[tuple[str, str | None]]] = [[(name, value)] for value in own]
            for other in others:
                combos = [c + [(other, v)] for c in combos for v in _other_values(other)]
            envs += [_env(c) for c in combos]
        else:
            for other in others:
                envs += [_env([(name, value), (other, v)])
                         for value in own for v in _other_values(other)]
    seen: set[tuple[tuple[str, str], ...]] = set()
    unique: list[dict[str, str]] = []
    for env in envs:
        key = tuple(sorted(env.items()))
        if key not in seen:
            seen.add(key)
            unique.append(env)
    return unique
