"""Reading manifests: line numbers, multi-document streams, lists, bad input, files and directories."""

from __future__ import annotations

import io
import json
import math
import os
import random
import sys
import textwrap

import pytest
import yaml

from webhook import manifests
from webhook.manifests import (
    Document,
    InvalidYAML,
    ManifestError,
    Node,
    find_files,
    iter_paths,
    line_of,
    load_text,
    parse_yaml,
)


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


STREAM = dedent("""
    # Source: vllm/templates/service.yaml
    apiVersion: v1
    kind: Service
    metadata:
      name: vllm
    ---
    # Source: vllm/templates/deployment.yaml
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: vllm
      namespace: llm
    spec:
      template:
        spec:
          containers:
            - name: vllm
              image: vllm/vllm-openai:v0.9.2
              env:
                - name: VLLM_USE_V1
                  value: "true"
                - {name: VLLM_PORT, value: "8000"}
""")


def test_line_numbers_of_nested_keys_in_a_multi_document_stream() -> None:
    service, deployment = load_text(STREAM, "deploy.yaml")
    assert (service.path, service.index, service.line) == ("deploy.yaml", 0, 2)
    assert line_of(service.obj["metadata"], "name") == 5
    assert (deployment.index, deployment.line) == (1, 8)
    assert line_of(deployment.obj) == 8
    assert line_of(deployment.obj, "kind") == 9
    container = deployment.obj["spec"]["template"]["spec"]["containers"][0]
    assert line_of(container) == 17
    assert line_of(container, "env") == 19
    first, second = container["env"]
    assert (line_of(first), line_of(first, "value")) == (20, 21)
    assert (line_of(second), line_of(second, "value")) == (22, 22)  # flow mapping on one line
    assert line_of(container, "missing") is None
    assert isinstance(container, Node) and container == {
        "name": "vllm", "image": "vllm/vllm-openai:v0.9.2", "env": [
            {"name": "VLLM_USE_V1", "value": "true"}, {"name": "VLLM_PORT", "value": "8000"}]}


def test_line_of_is_none_for_objects_not_loaded_here() -> None:
    assert line_of({"a": 1}) is None
    assert line_of({"a": 1}, "a") is None
    assert line_of(["x"]) is None
    assert line_of(None, "a") is None


def test_helm_output_with_empty_documents_and_source_comments() -> None:
    text = dedent("""
        ---
        # Source: chart/templates/disabled.yaml
        ---
        # Source: chart/templates/cm.yaml
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: cm
        ---
        ---
        # Source: chart/templates/svc.yaml
        apiVersion: v1
        kind: Service
        metadata: {name: svc}
        ...
    """)
    docs = load_text(text, "out.yaml")
    assert [(d.index, d.line, d.obj["kind"]) for d in docs] == [(1, 5, "ConfigMap"), (3, 12, "Service")]
    assert all(d.error is None for d in docs)


def test_kind_list_items_become_documents_with_their_own_lines() -> None:
    text = dedent("""
        apiVersion: v1
        kind: List
        items:
          - apiVersion: v1
            kind: Service
            metadata: {name: a}
          - apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: b
          - 42
        ---
        apiVersion: apps/v1
        kind: DeploymentList
        items:
          - metadata:
              name: c
    """)
    a, b, bad, c = load_text(text, "list.yaml")
    assert (a.obj["kind"], a.line, a.index) == ("Service", 4, 0)
    assert (b.obj["kind"], b.line, line_of(b.obj["metadata"], "name")) == ("Deployment", 7, 10)
    assert bad.obj is None and bad.error_line == 3 and "found a scalar (int)" in bad.error
    # typed lists leave kind and apiVersion out of their items
    assert (c.obj["kind"], c.obj["apiVersion"], c.line, c.index) == ("Deployment", "apps/v1", 16, 1)


def test_a_malformed_document_in_the_middle_does_not_hide_the_others() -> None:
    text = dedent("""
        apiVersion: v1
        kind: Service
        metadata: {name: first}
        ---
        apiVersion: v1
        kind: ConfigMap
        data:
          key: [unclosed, flow
          other: 1
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: third}
        ---
        apiVersion: v1
        kind: Secret
        stringData:
          token: "\x01"
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: fifth}
    """)
    docs = load_text(text, "mixed.yaml")
    assert [(d.index, d.line, d.error_line) for d in docs] == [(0, 1, None), (1, 4, 9), (2, 11, None),
                                                                (3, 14, 18), (4, 20, None)]
    assert [d.obj["metadata"]["name"] for d in docs if d.obj] == ["first", "third", "fifth"]
    assert docs[1].error.startswith("invalid YAML: ") and "flow sequence" in docs[1].error
    assert "line 8" in docs[1].error  # where the unclosed flow sequence started
    assert "control characters are not allowed" in docs[3].error
    assert line_of(docs[4].obj["metadata"], "name") == 22


@pytest.mark.parametrize(("text", "reason", "error_line"), [
    ("- a\n- b\n", "expected a mapping with apiVersion and kind, found a list", 1),
    ("just a string\n", "found a scalar (str)", 1),
    ("\n\nkind: Deployment\nmetadata: {}\n", "no apiVersion", 3),
    ("apiVersion: v1\nmetadata: {}\n", "no kind", 1),
    ("apiVersion: v1\nkind: 3\n", "no kind", 2),
    ("a: b: c\n", "mapping values are not allowed in this context", 1),
    ("a: 1\n\tb: 2\n", "found a tab character that violates indentation", 2),
    ("apiVersion: v1\nkind: Pod\nspec: *nothing\n", "found undefined alias", 3),
    ("apiVersion: v1\nkind: Pod\nspec: !Ref foo\n", "could not determine a constructor for the tag '!Ref'", 3),
    ("apiVersion: v1\nkind: Pod\nspec: !!int abc\n", "invalid tag:yaml.org,2002:int value 'abc'", 3),
    ("apiVersion: v1\nkind: Pod\nspec:\n  ? [a]\n  : 1\n", "found unhashable key", 4),
    ("apiVersion: v1\nkind: Pod\n<<: [1]\n", "expected a mapping for merging", 3),
    ("a: 1\nb: \ud800\n", "invalid text: surrogates not allowed (U+D800)", 2),
    ("a: " + "[" * 900 + "]" * 900 + "\n", "nested too deeply", None),
])
def test_bad_documents_become_error_documents(text: str, reason: str, error_line: int | None) -> None:
    (doc,) = load_text(text, "bad.yaml")
    assert doc.obj is None
    assert reason in doc.error
    assert doc.error_line == error_line


def test_bad_input_never_raises() -> None:
    """Property: random damage to a valid stream gives Documents, never an exception."""
    rng = random.Random(3)
    alphabet = [*" \t\n-:[]{}#&*!|>'\"%@`,?~\x00\x01é", "---\n", "<<: ", "!!set ", "&a ", "*a"]
    for _ in range(300):
        chars = list(STREAM)
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(chars))
            if rng.random() < 0.5:
                del chars[pos]
            else:
                chars.insert(pos, rng.choice(alphabet))
        for doc in load_text("".join(chars), "fuzz.yaml"):
            assert isinstance(doc, Document)
            assert (doc.obj is None) != (doc.error is None)


def test_json_input_has_line_numbers() -> None:
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "labels": {"a": "b"}}}
    (doc,) = load_text(json.dumps(obj, indent=2), "svc.json")
    assert doc.obj == obj
    assert line_of(doc.obj["metadata"], "labels") == 6


def test_large_json_takes_the_json_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifests, "JSON_FAST_PATH_BYTES", 10)
    listing = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "port": 1e3}}]}
    (doc,) = load_text(json.dumps(listing), "big.json")
    assert doc.obj == listing["items"][0]
    assert doc.obj["metadata"]["port"] == 1000.0  # JSON semantics (YAML 1.1 would say "1e3")
    (bad,) = load_text('{"apiVersion": "v1", "kind": ', "broken.json")
    assert bad.error.startswith("invalid YAML") and bad.error_line is not None
    (flow,) = load_text("{apiVersion: v1, kind: Service}", "flow.yaml")  # YAML flow, not JSON
    assert flow.obj == {"apiVersion": "v1", "kind": "Service"}


def test_byte_order_mark_is_ignored() -> None:
    (doc,) = load_text("\ufeff" + json.dumps({"apiVersion": "v1", "kind": "Service"}), "bom.json")
    assert doc.obj["kind"] == "Service"


# --- parity with yaml.safe_load -------------------------------------------------------------------

SCALARS = [
    "yes", "Yes", "YES", "no", "No", "on", "On", "OFF", "off", "true", "False", "y", "n", "Y", "N",
    "~", "null", "Null", "NULL", "", "0", "00", "-0", "+0", "12", "-12", "+12", "0755", "-0755", "0o17", "0x1F",
    "-0x1f", "0b101", "1_000", "1:30", "-1:30:05", "190:20:30", "1.5", "-1.5", "1e3", "1.0e+3", "1.0e3",
    ".5", "6.8523015e+5", "685_230.15", "190:20:30.15", ".inf", "-.Inf", "+.INF", ".nan", ".NaN", "2001-12-14",
    "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10", "12:30", "8000", "0.90", "v1", "8Gi", "=",
    "'quoted yes'", '"0755"', "!!str 123", "!!str yes", "!!int '42'", "!!float '1'", "!!bool 'on'", "!!null ''",
    "!!binary aGVsbG8=", "! 12", "'12'", "https://example.com:8080/x", "a:b", "- not a seq", "nvidia.com/gpu",
]


def _typed(obj: object) -> object:
    """A structure where equal means same values *and* same types (True != 1, NaN == NaN)."""
    if isinstance(obj, dict):
        return ("dict", sorted(((_typed(k), _typed(v)) for k, v in obj.items()), key=repr))
    if isinstance(obj, list):
        return ("list", [_typed(v) for v in obj])
    if isinstance(obj, float) and math.isnan(obj):
        return ("float", "nan")
    return (type(obj).__name__, obj if not isinstance(obj, (set, frozenset)) else sorted(obj))


def _random_yaml(rng: random.Random, depth: int = 0) -> str:
    """A random block mapping of scalars, flow collections, block sequences and nested mappings."""
    lines = []
    indent = "  " * depth
    for i in range(rng.randint(1, 5)):
        key = rng.choice(["name", "value", "yes", "on", "12", f"'k{i}'", f"k{i}", "~"])
        choice = rng.random()
        if choice < 0.5 or depth > 2:
            lines.append(f"{indent}{key}: {rng.choice(SCALARS)}")
        elif choice < 0.65:
            items = ", ".join(rng.choice(SCALARS) or "''" for _ in range(rng.randint(0, 4)))
            lines.append(f"{indent}{key}: [{items}]")
        elif choice < 0.8:
            lines.append(f"{indent}{key}:")
            for _ in range(rng.randint(1, 3)):
                lines.append(f"{indent}  - {rng.choice(SCALARS)}")
        else:
            lines.append(f"{indent}{key}:")
            lines.append(_random_yaml(rng, depth + 1))
    return "\n".join(lines)


def assert_loads_like_safe_load(text: str) -> None:
    """Same objects (types and key order included) as SafeLoader, or InvalidYAML where it fails."""
    try:
        expected = list(yaml.load_all(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError:
        with pytest.raises(InvalidYAML):
            parse_yaml(text)
    else:
        assert _typed(parse_yaml(text)) == _typed(expected), text


def test_scalars_resolve_exactly_like_safe_load() -> None:
    for scalar in SCALARS:
        assert_loads_like_safe_load(f"a: {scalar}\nb: [{scalar}]\n{scalar or '~'}: 1\n- {scalar}\n")
        assert_loads_like_safe_load(f"- {scalar}\n- [{scalar}, {{{scalar}: {scalar}}}]\n")


def test_key_order_is_kept() -> None:
    assert list(parse_yaml("b: 1\na: 2\nc: {z: 1, y: 2}\n")[0]) == ["b", "a", "c"]


def test_random_documents_load_like_safe_load() -> None:
    """Property: for random streams, our objects equal (with types and key order) SafeLoader's."""
    rng = random.Random(7)
    for _ in range(200):
        assert_loads_like_safe_load("\n---\n".join(_random_yaml(rng) for _ in range(rng.randint(1, 3))) + "\n")


def test_anchors_aliases_and_merge_keys_like_safe_load() -> None:
    text = dedent("""
        base: &base {a: 1, b: 2, shared: base}
        more: &more {c: 3, shared: more}
        env: &env
          - {name: A, value: "1"}
        one:
          <<: *base
          b: own
        many:
          x: first
          <<: [*more, *base]
          shared: own
        nested:
          <<: {<<: *base, d: 4}
        envs: [*env, *env]
        set: !!set {a, b}
        omap: !!omap [{a: 1}, {b: 2}]
        when: 2024-01-02T03:04:05Z
        keyless:
          =: equals
    """)
    ours = parse_yaml(text)[0]
    assert _typed(ours) == _typed(yaml.load(text, Loader=yaml.CSafeLoader))
    assert ours["envs"][0] is ours["envs"][1] is ours["env"]
    assert line_of(ours["one"], "a") == 1  # a merged key points at where it is defined
    assert line_of(ours["one"], "b") == 7
    assert line_of(ours["many"], "c") == 2


def test_merge_precedence_follows_the_merge_key_spec() -> None:
    """Own keys win, then earlier mappings of a `<<` list. (PyYAML >= 6.0.2 decides conflicts
    between merged mappings by the identity of key strings, so this is checked on its own.)"""
    text = dedent("""
        first: &first {shared: first, f: 1}
        second: &second {shared: second, s: 2, own: second}
        merged:
          <<: [*first, *second]
          own: own
    """)
    merged = parse_yaml(text)[0]["merged"]
    assert merged == {"shared": "first", "f": 1, "s": 2, "own": "own"}
    assert list(merged) == ["shared", "f", "s", "own"]
    assert (line_of(merged, "shared"), line_of(merged, "s"), line_of(merged, "own")) == (1, 2, 5)


def test_recursive_alias_builds_a_recursive_object() -> None:
    (obj,) = parse_yaml("&a [1, *a]\n")
    assert obj[1] is obj


def test_parse_yaml_raises_invalid_yaml_with_a_line() -> None:
    with pytest.raises(InvalidYAML) as caught:
        parse_yaml("ok: 1\n---\nbad: [\n\n")
    assert caught.value.line == 3  # found at the end of the text: reported on its last line with text
    assert str(caught.value).startswith("line 3: invalid YAML")


# --- files, directories, stdin ----------------------------------------------------------------------

SERVICE = "apiVersion: v1\nkind: Service\nmetadata: {name: %s}\n"


@pytest.fixture
def tree(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A repository-like tree; the current directory is its root."""
    files = {
        "a.yaml": SERVICE % "a",
        "b.yml": SERVICE % "b",
        "c.json": json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c"}}),
        "notes.txt": "not a manifest",
        ".hidden.yaml": SERVICE % "hidden",
        ".git/config.yaml": SERVICE % "git",
        "charts/vllm/templates/svc.yaml": SERVICE % "chart",
        "charts/vllm/tests/test.yaml": SERVICE % "chart-test",
        "charts/tests/top.yaml": SERVICE % "top-test",
        "sub/Z.YAML": SERVICE % "upper",
    }
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def names(docs) -> list[str]:
    return [d.obj["metadata"]["name"] for d in docs]


def test_directory_is_walked_recursively_and_sorted(tree) -> None:
    docs = list(iter_paths(["."]))
    assert [d.path for d in docs] == ["a.yaml", "b.yml", "c.json", os.path.join("charts", "tests", "top.yaml"),
                                      os.path.join("charts", "vllm", "templates", "svc.yaml"),
                                      os.path.join("charts", "vllm", "tests", "test.yaml"),
                                      os.path.join("sub", "Z.YAML")]
    assert names(docs) == ["a", "b", "c", "top-test", "chart", "chart-test", "upper"]


def test_ignore_globs_match_paths_and_parent_directories(tree) -> None:
    assert names(iter_paths(["."], ignore=["charts/**/tests/**"])) == ["a", "b", "c", "chart", "upper"]
    assert names(iter_paths(["charts"], ignore=["tests"])) == ["chart"]  # a bare name: any directory
    assert names(iter_paths(["."], ignore=["*.json", "sub"])) == ["a", "b", "top-test", "chart", "chart-test"]
    assert names(iter_paths(["charts/vllm"], ignore=["charts/v*"])) == []
    assert names(iter_paths([str(tree / "a.yaml"), "b.yml"], ignore=["a.yaml"])) == ["b"]


def test_find_files_lists_files_that_hold_no_object(tree) -> None:
    (tree / "sub" / "empty.yaml").write_text("# nothing rendered\n")
    assert find_files(["sub", "-"]) == [os.path.join("sub", "Z.YAML"), os.path.join("sub", "empty.yaml"), "-"]
    assert list(iter_paths(["sub/empty.yaml"])) == []


def test_explicit_files_are_read_whatever_their_name(tree) -> None:
    (tree / "notes.txt").write_text(SERVICE % "txt")
    assert names(iter_paths(["notes.txt", ".hidden.yaml"])) == ["txt", "hidden"]


def test_missing_path_is_a_usage_error_before_anything_is_read(tree) -> None:
    with pytest.raises(ManifestError) as caught:
        iter_paths(["a.yaml", "nope.yaml"])
    assert (caught.value.path, caught.value.reason) == ("nope.yaml", "no such file or directory")


def test_undecodable_file_is_an_error_document(tree) -> None:
    (tree / "latin1.yaml").write_bytes(b"apiVersion: v1\nkind: ConfigMap\ndata: {a: caf\xe9}\n")
    (doc,) = iter_paths(["latin1.yaml"])
    assert doc.obj is None and doc.error == "not UTF-8 text (byte 0xe9)" and doc.error_line == 3


def test_unreadable_file_is_an_error_document(tree) -> None:
    os.symlink("gone.yaml", "sub/dangling.yaml")  # listed by the walk, cannot be opened
    docs = list(iter_paths(["sub"]))
    assert [(d.path, d.error) for d in docs] == [
        (os.path.join("sub", "Z.YAML"), None),
        (os.path.join("sub", "dangling.yaml"), "cannot read file: No such file or directory")]


def test_stdin(tree, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = (SERVICE % "one") + "---\n" + (SERVICE % "two")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbf" + stream.encode())))
    docs = list(iter_paths(["-", "a.yaml"]))
    assert [(d.path, d.line) for d in docs] == [("<stdin>", 1), ("<stdin>", 5), ("a.yaml", 1)]
    assert names(docs) == ["one", "two", "a"]
