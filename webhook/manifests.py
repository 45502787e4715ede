"""Reading Kubernetes manifests (YAML streams, JSON, `kind: List`) with line numbers.

Mappings come back as `Node`, a `dict` that also knows its own line and the line of each key
(`line_of`). Scalars resolve exactly as `yaml.safe_load` resolves them (YAML 1.1: `yes`/`off`
are booleans, `0755` is octal). Bad input never raises: a document that cannot be read becomes a
`Document` with an `error`, and the other documents of the file are still read.

JSON is YAML too: it is read as YAML (so it has line numbers) up to JSON_FAST_PATH_BYTES, and by
`json` (much faster, no line numbers) above that.
"""

from __future__ import annotations

import gc
import json
import os
import re
import sys
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

__all__ = [
    "Document",
    "InvalidYAML",
    "ManifestError",
    "Node",
    "find_files",
    "iter_paths",
    "line_of",
    "load_text",
    "parse_yaml",
    "read_file",
]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN_NAME = "<stdin>"
JSON_FAST_PATH_BYTES = 1 << 20

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"

# A `---` line starts a document wherever it is (libyaml ends block scalars there too).
_SEPARATOR = re.compile(r"^---(?=\s|$)", re.M)
_JSON_START = re.compile(r"\s*[{\[]")
# A line that holds YAML content: not blank, not a comment, not a directive.
_CONTENT = re.compile(r"^(?!%)[ \t]*[^\s#]", re.M)


class Node(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers where it came from (1-based lines)."""

    __slots__ = ("key_lines", "line")
    line: int
    key_lines: dict[Any, int]


def line_of(obj: object, key: str | None = None) -> int | None:
    """The line of a mapping loaded here (or of one of its keys); None for any other object."""
    if key is None:
        return getattr(obj, "line", None)
    key_lines = getattr(obj, "key_lines", None)
    return None if key_lines is None else key_lines.get(key)


@dataclass
class Document:
    """One Kubernetes object of an input file, or the reason a document of it could not be read."""

    path: str
    index: int
    line: int
    obj: Mapping[str, Any] | None = None
    error: str | None = None
    error_line: int | None = None
    not_kubernetes: bool = False  # valid YAML/JSON, but not a Kubernetes object


class ManifestError(Exception):
    """A path given on the command line that cannot be used at all (a usage error)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class InvalidYAML(ValueError):
    """Text that is not valid YAML; `line` is 1-based, None when unknown."""

    def __init__(self, reason: str, line: int | None) -> None:
        super().__init__(reason if line is None else f"line {line}: {reason}")
        self.reason = reason
        self.line = line


# libyaml's loader when PyYAML was built with it (PyPI's wheels are), else PyYAML's pure-Python
# one: the same documents, lines and errors (messages worded by that parser), several times slower.
LIBYAML = hasattr(yaml, "CSafeLoader")
_FALLBACK_NOTE = ("vllm-env-guard: note: this PyYAML has no libyaml (yaml.CSafeLoader), so YAML is read by "
                  "the slower pure-Python loader; a PyYAML wheel from PyPI includes libyaml\n")
_noted = False


def _note_fallback() -> None:
    """Say once per process that the pure-Python loader is in use."""
    global _noted
    if not _noted:
        _noted = True
        sys.stderr.write(_FALLBACK_NOTE)


class _Loader(yaml.CSafeLoader if LIBYAML else yaml.SafeLoader):  # type: ignore[misc]
    """The safe loader whose tag resolution is memoised: a plain scalar's tag depends on its text only."""

    def __init__(self, text: str, tags: dict[str, str]) -> None:
        if not LIBYAML:
            _note_fallback()
        super().__init__(text)
        self._tags = tags

    def resolve(self, kind: type, value: str | None, implicit: Any) -> str:
        if kind is not ScalarNode:
            return _SEQ if kind is SequenceNode else _MAP
        if not implicit[0]:
            return _STR
        tag = self._tags.get(value)  # type: ignore[arg-type]
        if tag is None:
            tag = self._tags[value] = super().resolve(kind, value, implicit)  # type: ignore[index]
        return tag

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        """No path resolvers here: skip PyYAML's bookkeeping for them."""

    def ascend_resolver(self) -> None:
        """No path resolvers here."""


def _builder() -> Callable[[Any, int], Any]:
    """A constructor for composed documents: `Node` mappings, lists, SafeLoader's scalars.

    Faster than SafeConstructor (no generators, no per-node constructor lookup); anything
    unusual (floats, timestamps, !!set, unknown tags) is handed to a SafeConstructor so the
    result is the same as `yaml.safe_load`. Make one per stream: the functions here refer to
    each other, a reference cycle that only the cyclic GC frees.
    """
    memo: dict[int, Any] = {}  # id(node) -> object: aliases share one object, as in PyYAML
    constructor = SafeConstructor()
    bools = constructor.bool_values
    fallback = constructor.construct_object
    line0 = 1  # added to 0-based marks: the 1-based line of the document's text

    def scalar(node: ScalarNode) -> Any:
        tag = node.tag
        value = node.value
        if tag == _STR:
            return value
        if tag == _INT and value.isdigit() and (value[0] != "0" or value == "0"):
            return int(value)
        if tag == _BOOL:
            flag = bools.get(value.lower())
            if flag is not None:
                return flag
        elif tag == _NULL:
            return None
        try:
            return fallback(node, deep=True)
        except (ValueError, KeyError, TypeError) as exc:  # e.g. `!!int abc`, `!!bool maybe`
            raise ConstructorError(None, None, f"invalid {tag} value {value!r}", node.start_mark) from exc

    def as_mapping(node: MappingNode) -> Node:
        return memo[id(node)] if id(node) in memo else mapping(node)

    def merge_sources(owner: MappingNode, node: Any) -> list[Node]:
        """The mappings a `<<` key merges, in order of precedence."""
        if node.__class__ is MappingNode:
            return [as_mapping(node)]
        if node.__class__ is SequenceNode:
            for sub in node.value:
                if sub.__class__ is not MappingNode:
                    raise ConstructorError("while constructing a mapping", owner.start_mark,
                                           f"expected a mapping for merging, but found {sub.id}",
                                           sub.start_mark)
            return [as_mapping(sub) for sub in node.value]
        raise ConstructorError("while constructing a mapping", owner.start_mark,
                               f"expected a mapping or list of mappings for merging, but found {node.id}",
                               node.start_mark)

    def mapping(node: MappingNode) -> Node:
        obj = Node()
        obj.line = node.start_mark.line + line0
        key_lines = obj.key_lines = {}
        memo[id(node)] = obj
        merged: list[Node] | None = None
        for key_node, value_node in node.value:
            if key_node.__class__ is ScalarNode and key_node.tag in (_STR, _VALUE):
                key = key_node.value
            elif key_node.tag == _MERGE:
                merged = (merged or []) + merge_sources(node, value_node)
                continue
            else:
                key = build(key_node)
                if not isinstance(key, Hashable):
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           "found unhashable key", key_node.start_mark)
            if value_node.__class__ is ScalarNode:
                obj[key] = value_node.value if value_node.tag == _STR else scalar(value_node)
            else:
                obj[key] = build(value_node)
            key_lines[key] = key_node.start_mark.line + line0
        if merged:  # merged keys come first; the mapping's own keys, then earlier sources, win
            own, own_lines = dict(obj), key_lines
            obj.clear()
            key_lines = obj.key_lines = {}
            for source in merged:
                for key, value in source.items():
                    if key not in obj:
                        obj[key] = value
                        key_lines[key] = source.key_lines[key]
            obj.update(own)
            key_lines.update(own_lines)
        return obj

    def build(node: Any) -> Any:
        """Any composed node (checked by exact class: the hot path avoids isinstance)."""
        cls = node.__class__
        if cls is ScalarNode:
            return scalar(node)
        done = memo.get(id(node))
        if done is not None:
            return done
        if cls is MappingNode and node.tag == _MAP:
            return mapping(node)
        if cls is SequenceNode and node.tag == _SEQ:
            items: list[Any] = []
            memo[id(node)] = items
            items.extend([item.value if item.__class__ is ScalarNode and item.tag == _STR else build(item)
                          for item in node.value])
            return items
        return fallback(node, deep=True)  # !!set, !!omap, !!pairs; unknown tags raise

    def build_document(root: Any, base: int) -> Any:
        """The object of one composed document of a text whose first line is 0-based line `base`."""
        nonlocal line0
        line0 = base + 1
        try:
            return build(root)
        finally:
            memo.clear()
            constructor.constructed_objects.clear()

    return build_document


def _yaml_error(exc: yaml.YAMLError, text: str, base: int) -> InvalidYAML:
    """A parser/constructor error of `text` (which starts at 0-based line `base`) as InvalidYAML."""
    if isinstance(exc, yaml.reader.ReaderError):  # libyaml: a byte offset into UTF-8; PyYAML: an index
        before = text.encode()[: exc.position].count(b"\n") if LIBYAML else text.count("\n", 0, exc.position)
        line = before + base + 1
        return InvalidYAML(f"invalid YAML: {exc.reason} (character U+{exc.character:04X})", line)
    if not isinstance(exc, yaml.MarkedYAMLError):
        return InvalidYAML(f"invalid YAML: {exc}", None)
    last = text.rstrip().count("\n")  # an error found at the end points at the last line with text

    def line(mark: Any) -> int:
        return min(mark.line, last) + base + 1

    reason = f"invalid YAML: {exc.problem or exc.context}"
    if exc.problem and exc.context:
        reason += f" ({exc.context} at line {line(exc.context_mark)})" if exc.context_mark else f" ({exc.context})"
    mark = exc.problem_mark or exc.context_mark
    return InvalidYAML(reason, line(mark) if mark else None)


class _StreamReader:
    """What the segments of one stream share: the tag memo and the constructor."""

    def __init__(self) -> None:
        self.tags: dict[str, str] = {}
        self.build = _builder()

    def documents(self, text: str, base: int) -> Iterator[tuple[int, Any]]:
        """(1-based line, object) for each document of `text`, whose first line is line `base` + 1.

        Raises InvalidYAML at the first document that cannot be read.
        """
        try:
            loader = _Loader(text, self.tags)  # encodes to UTF-8 for libyaml
        except UnicodeEncodeError as exc:
            raise InvalidYAML(f"invalid text: {exc.reason} (U+{ord(text[exc.start]):04X})",
                              text.count("\n", 0, exc.start) + base + 1) from None
        except yaml.YAMLError as exc:  # PyYAML's own reader checks the whole text first
            raise _yaml_error(exc, text, base) from None
        try:
            while loader.check_node():
                node: Any = loader.get_node()
                yield node.start_mark.line + base + 1, self.build(node, base)
        except yaml.YAMLError as exc:
            raise _yaml_error(exc, text, base) from None
        except RecursionError:
            raise InvalidYAML("document is nested too deeply", None) from None
        finally:
            loader.dispose()


def _segments(text: str) -> Iterator[tuple[str, int]]:
    """Split a YAML stream before each `---` line: (segment, 0-based line where it starts).

    Each segment is parsed on its own, so a syntax error cannot take the next documents with it.
    Comments and directives before the first `---` stay with the first document.
    """
    starts = [m.start() for m in _SEPARATOR.finditer(text)]
    if not starts or (starts[0] and _CONTENT.search(text, 0, starts[0])):
        starts.insert(0, 0)
    starts[0] = 0
    line = 0
    for start, end in zip(starts, [*starts[1:], len(text)], strict=True):
        yield text[start:end], line
        line += text.count("\n", start, end)


def parse_yaml(text: str) -> list[Any]:
    """Every document of a YAML stream, mappings as `Node`; raises InvalidYAML on bad input."""
    reader = _StreamReader()
    return [obj for segment, base in _segments(text) for _, obj in reader.documents(segment, base)]


def _what(obj: Any) -> str:
    if isinstance(obj, list):
        return "a list"
    return "null" if obj is None else f"a scalar ({type(obj).__name__})"


def _objects(path: str, index: int, line: int, obj: Any) -> Iterator[Document]:
    """The Kubernetes objects of one loaded document: `*List` kinds are expanded into their items."""
    if not isinstance(obj, dict):
        yield Document(path, index, line, error_line=line, not_kubernetes=True,
                       error="not a Kubernetes object: expected a mapping "
                                                                 f"with apiVersion and kind, found {_what(obj)}")
        return
    missing = [key for key in ("apiVersion", "kind") if not (isinstance(obj.get(key), str) and obj[key])]
    if missing:
        yield Document(path, index, line,
                       error=f"not a Kubernetes object: no {' or '.join(missing)}", not_kubernetes=True,
                       error_line=line_of(obj, missing[0]) or line)
        return
    kind, items = obj["kind"], obj.get("items")
    if not (kind.endswith("List") and isinstance(items, list)):
        yield Document(path, index, line, obj)
        return
    items_line = line_of(obj, "items") or line
    for item in items:
        if isinstance(item, dict) and kind != "List":  # typed lists (DeploymentList) omit kind
            item.setdefault("kind", kind.removesuffix("List"))
            item.setdefault("apiVersion", obj["apiVersion"])
        yield from _objects(path, index, line_of(item) or items_line, item)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: building a large acyclic tree otherwise triggers collection after
    collection over everything built so far (loading takes twice as long); refcounting still
    frees whatever is dropped."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_text(text: str, path: str) -> list[Document]:
    """The Kubernetes objects of one file's text (`path` is for display; `-` means stdin)."""
    path = STDIN_NAME if path == "-" else path
    text = text.removeprefix("\ufeff")
    with _gc_paused():
        if len(text) > JSON_FAST_PATH_BYTES and _JSON_START.match(text):
            try:
                return list(_objects(path, 0, 1, json.loads(text)))
            except ValueError:
                pass  # not JSON after all: YAML says what is wrong, with a line
        return _load_yaml(text, path)


def _load_yaml(text: str, path: str) -> list[Document]:
    """Every document of a YAML stream; one that cannot be parsed becomes an error Document."""
    documents: list[Document] = []
    reader = _StreamReader()
    index = 0
    for segment, base in _segments(text):
        try:
            for line, obj in reader.documents(segment, base):
                if obj is not None:  # empty documents (Helm's skipped templates) are no objects
                    documents.extend(_objects(path, index, line, obj))
                index += 1
        except InvalidYAML as exc:
            documents.append(Document(path, index, base + 1, error=exc.reason, error_line=exc.line))
            index += 1
    return documents


def _ignore_pattern(pattern: str) -> re.Pattern[str]:
    """Glob to regex: `*` and `?` stay within a path segment, `**` spans any number of them."""
    out = []
    for token in re.split(r"(\*\*/|/\*\*$|\*\*|\*|\?)", pattern.strip("/")):
        out.append({"**/": "(?:.*/)?", "/**": "(?:/.*)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token)
                   or re.escape(token))
    return re.compile("".join(out) + r"\Z")


def _is_ignored(path: str, patterns: Sequence[re.Pattern[str]]) -> bool:
    """Whether `path` (relative to the current directory), a directory above it, or (for patterns
    with no `/`) any single name in it matches."""
    parts = os.path.relpath(path).replace(os.sep, "/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))] + parts
    return any(p.match(c) for p in patterns for c in candidates)


def _expand(path: str, patterns: Sequence[re.Pattern[str]]) -> Iterator[str]:
    """The files one argument names (see find_files)."""
    if path == "-":
        yield path
        return
    if not os.path.exists(path):
        raise ManifestError(path, "no such file or directory")
    if _is_ignored(path, patterns):
        return
    if not os.path.isdir(path):
        yield path
        return

    def unreadable(exc: OSError) -> None:
        raise ManifestError(str(exc.filename), f"cannot read directory: {exc.strerror}")

    for root, dirs, files in os.walk(path, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs
                         if not d.startswith(".") and not _is_ignored(os.path.join(root, d), patterns))
        for name in sorted(files):
            full = os.path.normpath(os.path.join(root, name))
            if (not name.startswith(".") and name.lower().endswith(MANIFEST_SUFFIXES)
                    and not _is_ignored(full, patterns)):
                yield full


def find_files(paths: Sequence[str], ignore: Sequence[str] = ()) -> list[str]:
    """The files that command-line paths name: files as given, directories walked recursively
    (*.yaml, *.yml, *.json, sorted, hidden files and directories skipped), `-` for stdin.

    `ignore` holds glob patterns matched against each path relative to the current directory and
    against every directory above it; `**` matches any number of directories, and a pattern with
    no `/` matches any single name (`tests`, `*.json`). Raises ManifestError for a path that does
    not exist or a directory that cannot be listed.
    """
    patterns = [_ignore_pattern(p) for p in ignore]
    return [file for path in paths for file in _expand(path, patterns)]


def read_file(path: str) -> list[Document]:
    """The documents of one file (`-` = stdin); a file that cannot be read is one error Document."""
    display = STDIN_NAME if path == "-" else path
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
        text = data.decode("utf-8-sig")
    except OSError as exc:
        return [Document(display, 0, 1, error=f"cannot read file: {exc.strerror}")]
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return [Document(display, 0, 1, error=f"not UTF-8 text (byte 0x{data[exc.start]:02x})", error_line=line)]
    return load_text(text, path)


def iter_paths(paths: Sequence[str], ignore: Sequence[str] = ()) -> Iterator[Document]:
    """The documents of every file that `paths` name (see find_files).

    All paths are checked when this is called, before anything is read: ManifestError then.
    """
    files = find_files(paths, ignore)
    return (doc for path in files for doc in read_file(path))
