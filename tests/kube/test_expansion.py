"""expand(): the §7.3 table (upstream expand_test.go) plus derived edge cases."""

from __future__ import annotations

import pytest

from webhook.kube.expansion import expand, references, syntax_wrap

CONTEXT = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(VAR_A)-$(VAR_A)", "A-A"),
        ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
        ("f000-$$VAR_A", "f000-$VAR_A"),
        ("foo\\$(VAR_C)bar", "foo\\Cbar"),
        ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
        ("$(VAR_REF)", "$(VAR_A)"),
        ("foo$(VAR_EMPTY)bar", "foobar"),
        ("foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),
        ("$?_boo_$!", "$?_boo_$!"),
        ("$VAR_A", "$VAR_A"),
        ("${VAR_A}", "${VAR_A}"),
        ("$VAR_A)", "$VAR_A)"),
        ("$$$$$$(VAR_A)", "$$$(VAR_A)"),
        ("$$$$$$$(VAR_A)", "$$$A"),
        ("$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"),
        ("$(VAR_B)_______$(A", "B_______$(A"),
        ("$(VAR_A)foobarzab$", "Afoobarzab$"),
        ("$(foo$$var)", "$(foo$$var)"),
        ("$()", "$()"),
        ("$$", "$"),
        ("$$$", "$$"),
    ],
)
def test_expand_table(text: str, expected: str) -> None:
    assert expand(text, CONTEXT.get) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("$", "$"),
        ("no references", "no references"),
        ("$(VAR_A)", "A"),
        ("$(UNDEFINED)", "$(UNDEFINED)"),
        ("$(VAR_A", "$(VAR_A"),
        ("$(", "$("),
        ("x$(VAR_A)$(VAR_B)y", "xABy"),
        ("$((VAR_A)", "$((VAR_A)"),
        ("$(VAR_A))", "A)"),
        ("é$(VAR_A)é", "éAé"),
    ],
)
def test_expand_edges(text: str, expected: str) -> None:
    assert expand(text, CONTEXT.get) == expected


def test_lookup_sees_each_reference_once_per_occurrence() -> None:
    assert references("$(A)-$(B)-$(A) $$(C) $(D") == ["A", "B", "A"]
    assert references("$()") == [""]


def test_syntax_wrap() -> None:
    assert syntax_wrap("X") == "$(X)"
