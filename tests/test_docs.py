"""docs/rules.md is generated from the rule catalog and must not drift from it."""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from webhook.findings import Severity
from webhook.rules import CATALOG
from webhook.rules.docs import DOCS_PATH, render_markdown

ROOT = Path(__file__).resolve().parent.parent
# Examples that are deliberately not valid YAML: the rule is about unreadable documents.
UNPARSEABLE_BAD = {"manifest-invalid"}


def test_docs_rules_md_is_current() -> None:
    path = ROOT / DOCS_PATH
    assert path.exists(), f"{DOCS_PATH} is missing: run scripts/gen-docs"
    current = path.read_text(encoding="utf-8")
    wanted = render_markdown(CATALOG)
    if current != wanted:
        diff = "".join(list(difflib.unified_diff(
            current.splitlines(keepends=True), wanted.splitlines(keepends=True),
            fromfile=f"{DOCS_PATH} (committed)", tofile=f"{DOCS_PATH} (generated)"))[:60])
        pytest.fail(f"{DOCS_PATH} is stale: run scripts/gen-docs\n{diff}")


def test_every_rule_has_a_section_and_a_table_row() -> None:
    page = render_markdown(CATALOG)
    for rule_id, rule in CATALOG.items():
        assert f"\n## {rule_id}\n" in page
        assert f"| [`{rule_id}`](#{rule_id}) | {rule.severity} |" in page
        assert f'vllm-env-guard.io/ignore: "{rule_id}"' in page or rule_id in UNPARSEABLE_BAD
        assert f"  {rule_id}: off" in page


def test_help_uri_anchors_exist() -> None:
    page = render_markdown(CATALOG)
    for rule in CATALOG.values():
        anchor = rule.help_uri.rsplit("#", 1)[1]
        assert f"\n## {anchor}\n" in page, rule.help_uri


@pytest.mark.parametrize("rule_id", sorted(CATALOG))
def test_rule_documentation_is_complete(rule_id: str) -> None:
    rule = CATALOG[rule_id]
    assert rule.id == rule_id
    assert isinstance(rule.severity, Severity)
    for field in ("summary", "rationale", "bad", "good", "fix"):
        value = getattr(rule, field)
        assert isinstance(value, str) and value.strip(), f"{rule_id}: empty {field}"
    assert rule.bad.strip() != rule.good.strip(), f"{rule_id}: bad and good examples are the same"


@pytest.mark.parametrize("rule_id", sorted(CATALOG))
def test_examples_parse_as_yaml(rule_id: str) -> None:
    rule = CATALOG[rule_id]
    if rule_id in UNPARSEABLE_BAD:
        with pytest.raises(yaml.YAMLError):
            list(yaml.safe_load_all(rule.bad))
    else:
        bad = list(yaml.safe_load_all(rule.bad))
        assert any(doc is not None for doc in bad), f"{rule_id}: the bad example holds no YAML"
    list(yaml.safe_load_all(rule.good))  # may be a comment only, but must parse


def _gen_docs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-docs"), *args],
                          capture_output=True, text=True, env={**os.environ}, check=False)


def test_gen_docs_check_passes_on_the_committed_page() -> None:
    result = _gen_docs("--check")
    assert result.returncode == 0, f"run scripts/gen-docs\n{result.stdout}{result.stderr}"


def test_gen_docs_check_fails_with_a_diff_when_stale(tmp_path: Path) -> None:
    page = tmp_path / "rules.md"
    page.write_text(render_markdown(CATALOG).replace("## env-parse-error", "## env-parse-eror"))
    result = _gen_docs("--check", "--output", str(page))
    assert result.returncode == 1
    assert "-## env-parse-eror" in result.stdout and "+## env-parse-error" in result.stdout
    assert "run scripts/gen-docs" in result.stderr
    assert _gen_docs("--output", str(page)).returncode == 0  # regenerates
    assert page.read_text() == render_markdown(CATALOG)


# --- examples/: what their comments say the linter finds, it finds ------------------------------

EXAMPLES = ROOT / "examples"


def _lint_json(*args: str) -> tuple[int, dict]:
    result = subprocess.run([sys.executable, "-m", "webhook", "lint", *args, "--format", "json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    try:
        return result.returncode, json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"lint printed no JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")


def _promised_rules(path: Path) -> set[str]:
    """Rule ids named in parentheses in the example's leading comment."""
    header = "".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("#"))
    named = {part.strip() for group in re.findall(r"\(([^()]*)\)", header) for part in group.split(",")}
    return named & set(CATALOG)


@pytest.mark.parametrize("name", sorted(p.name for p in (EXAMPLES / "bad").glob("*.yaml")))
def test_bad_example_gets_the_findings_it_describes(name: str) -> None:
    path = EXAMPLES / "bad" / name
    promised = _promised_rules(path)
    assert promised, f"{name}: its header names no rule"
    code, report = _lint_json(str(path.relative_to(ROOT)))
    found = {f["rule"] for f in report["findings"]}
    assert promised <= found, f"{name}: promised {sorted(promised)}, found {sorted(found)}"
    assert code == (1 if any(f["severity"] == "error" for f in report["findings"]) else 0)
    assert (EXAMPLES / "good" / name).is_file(), f"{name} has no fixed version in examples/good"


def test_bad_examples_fail_lint() -> None:
    code, report = _lint_json("examples/bad")
    assert code == 1 and report["summary"]["errors"] > 0


def test_good_examples_have_no_findings_at_all() -> None:
    code, report = _lint_json("examples/good", "--show-info")
    assert report["findings"] == [], report["findings"]
    assert code == 0
    assert report["summary"]["objects"] >= len(list((EXAMPLES / "good").glob("*.yaml")))
