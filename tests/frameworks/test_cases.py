"""One real upstream example per framework, rewritten with a bad value: lint finds exactly the
findings each file's `# expect:` lines name (rule, severity, line, variable, container)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from webhook.engine import Item, Settings, analyze
from webhook.manifests import read_file

CASES = Path(__file__).parent / "cases"
_EXPECT = re.compile(r"^# expect: (\S+) (\S+) (\d+) (\S+)(?: (\S+))?$", re.M)

Key = tuple[str, str, int, str | None, str | None]


def expected(path: Path) -> set[Key]:
    return {(rule, severity, int(line), variable, container)
            for rule, severity, line, variable, container in _EXPECT.findall(path.read_text())}


def found(path: Path) -> set[Key]:
    documents = read_file(str(path))
    assert all(d.error is None for d in documents), [d.error for d in documents]
    findings = analyze([Item(d.obj, d.path) for d in documents if d.obj is not None], Settings())
    return {(f.rule, str(f.severity), f.line or 0, f.variable, f.container or "") for f in findings}


@pytest.mark.parametrize("name", sorted(p.name for p in CASES.glob("*.yaml")))
def test_case_gets_exactly_the_findings_it_expects(name: str) -> None:
    path = CASES / name
    assert found(path) == {(r, s, line, v, c or "") for r, s, line, v, c in expected(path)}


@pytest.mark.parametrize("name", sorted(p.name for p in CASES.glob("*.yaml")))
def test_expected_lines_point_at_the_variable_or_the_name(name: str) -> None:
    lines = (CASES / name).read_text().splitlines()
    for rule, _, line, variable, _ in expected(CASES / name):
        text = lines[line - 1]
        assert (variable in text or "name:" in text or rule == "service-link-collision"), (line, text)
