"""Building the pods a controller makes from fields that are not pod specs: env maps, env
lists and YAML strings become one synthetic container whose entries keep their manifest lines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from webhook.frameworks.base import VLLM_ANNOTATION, Path, VirtualPod
from webhook.manifests import InvalidYAML, Node, line_of, parse_yaml


def _node(values: Mapping[str, Any], line: int | None) -> Node:
    node = Node(values)
    node.line = line or 0
    node.key_lines = dict.fromkeys(values, line or 0)
    return node


def env_entries(env_map: Any, shift: int = 0) -> list[Mapping[str, Any]]:
    """``{NAME: value}`` as ``env`` entries, each at the line of its key (plus ``shift``)."""
    if not isinstance(env_map, Mapping):
        return []
    entries: list[Mapping[str, Any]] = []
    for name, value in env_map.items():
        line = line_of(env_map, name) or line_of(env_map)
        entries.append(_node({"name": str(name), "value": value}, line and line + shift))
    return entries


def env_list(value: Any) -> list[Mapping[str, Any]]:
    """An ``env``-shaped list (``[{name, value|valueFrom}]``) as it is: its entries have lines."""
    return [entry for entry in value if isinstance(entry, Mapping)] if isinstance(value, list) else []


def embedded_yaml(owner: Any, key: str) -> tuple[Any, int]:
    """The YAML document held as a string in ``owner[key]``, and the line shift that maps its
    lines to the manifest's (a block scalar starts on the line after its key). ``(None, 0)``
    when it is absent or does not parse."""
    text = owner.get(key) if isinstance(owner, Mapping) else None
    if not isinstance(text, str) or not text.strip():
        return None, 0
    try:
        documents = parse_yaml(text)
    except InvalidYAML:
        return None, 0
    key_line = line_of(owner, key) or 0
    shift = key_line if "\n" in text.strip() else 0
    return (documents[0] if documents else None), shift


def virtual_pod(path: Path, role: str, env: Sequence[Mapping[str, Any]], *, vllm: bool | None,
                image: Any = None, command: Iterable[Any] = (), args: Iterable[Any] = (),
                env_from: Any = None, links: bool = True, at: Any = None) -> VirtualPod:
    """One synthetic container named ``role``; ``vllm`` is the framework's say on whether it runs
    vLLM (``None``: judge it like any container). ``at``: the mapping whose line it reports."""
    container = _node({"name": role}, line_of(at))
    for key, value in (("image", image), ("command", list(command)), ("args", list(args)),
                       ("env", list(env)), ("envFrom", env_from)):
        if value:
            container[key] = value
    spec: dict[str, Any] = {"containers": [container]}
    if not links:
        spec["enableServiceLinks"] = False
    metadata = None if vllm is None else {"annotations": {VLLM_ANNOTATION: str(vllm).lower()}}
    return VirtualPod(path, spec, metadata, role)
