"""docs/rules.md, generated from the rule catalog: `scripts/gen-docs` writes it, a test keeps it current.

Everything here comes from the `Rule` records in `webhook/rules/*.py`; to change the page, change
the rule module and run `scripts/gen-docs`.
"""

from __future__ import annotations

from collections.abc import Mapping

from webhook.detect import IGNORE_ANNOTATION
from webhook.rules.base import Rule

DOCS_PATH = "docs/rules.md"
GENERATOR = "scripts/gen-docs"

# Rules reported on a document that could not be read: it has no annotations to carry an opt-out.
_NO_ANNOTATION = frozenset({"manifest-invalid"})

_SEVERITY_MEANING = {
    "error": "`lint`/`audit` exit 1; the webhook denies the request in `enforce` mode "
             "(in `warn` mode it is a warning)",
    "warning": "reported; the webhook admits the request and returns an admission warning "
               "(`kubectl` prints `Warning: ...`)",
    "info": "only reported by `lint`/`audit` with `--show-info`; never at admission",
}


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _yaml_block(text: str) -> list[str]:
    return ["```yaml", text.rstrip("\n"), "```"]


def _rule_section(rule: Rule) -> list[str]:
    severity = str(rule.severity)
    lines = [
        f"## {rule.id}",
        "",
        rule.summary,
        "",
        f"**Default severity:** `{severity}`: {_SEVERITY_MEANING.get(severity, severity)}.",
        "",
        "### Why it matters",
        "",
        rule.rationale,
        "",
        "### Bad",
        "",
        *_yaml_block(rule.bad),
        "",
        "### Good",
        "",
        *_yaml_block(rule.good),
        "",
        "### Fix",
        "",
        rule.fix,
        "",
        "### Change the severity or turn the rule off",
        "",
        "In the config file (`.vllm-env-guard.yaml`, `--config`, or the Helm chart's `config` value):",
        "",
        *_yaml_block(f"rules:\n  {rule.id}: off        # or: error | warning | info"),
        "",
    ]
    if rule.id in _NO_ANNOTATION:
        lines += [
            "This rule is reported on a document that could not be read, so there is no object "
            "to carry an ignore annotation: use the config file.",
            "",
        ]
    else:
        lines += [
            "For one object only, annotate it (or its pod template):",
            "",
            *_yaml_block(f'metadata:\n  annotations:\n    {IGNORE_ANNOTATION}: "{rule.id}"'),
            "",
        ]
    return lines


def render_markdown(catalog: Mapping[str, Rule]) -> str:
    """The whole docs/rules.md page for `catalog` (id -> Rule), in catalog order."""
    rules = list(catalog.values())
    lines = [
        f"<!-- Generated from webhook/rules/*.py by {GENERATOR}. Do not edit by hand: edit the rule "
        f"module and run {GENERATOR}. -->",
        "",
        "# vllm-env-guard rules",
        "",
        "Every finding names one of these rules. Rule ids are stable: use them in config files, "
        "ignore annotations and CI filters. Each finding links here (`#<rule-id>`).",
        "",
        "Severities:",
        "",
        *[f"- `{name}`: {meaning}." for name, meaning in _SEVERITY_MEANING.items()],
        "",
        "| Rule | Default severity | Summary |",
        "|---|---|---|",
        *[f"| [`{r.id}`](#{r.id}) | {r.severity} | {_cell(r.summary)} |" for r in rules],
        "",
        "Change severities or turn rules off in the config file:",
        "",
        *_yaml_block("rules:\n  env-unknown-variable: error   # raise\n"
                     "  env-plaintext-secret: info    # lower\n"
                     "  service-link-prefix: off      # turn off"),
        "",
        f"or for one object with the annotation `{IGNORE_ANNOTATION}: \"rule-id,rule-id\"` on the "
        "object or its pod template. See [configuration.md](configuration.md).",
        "",
    ]
    for rule in rules:
        lines += _rule_section(rule)
    return "\n".join(lines).rstrip("\n") + "\n"
