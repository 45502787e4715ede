"""The distribution table: images that ship vLLM without saying which, and the release they ship.

Each row names image repositories, a tag (matched whole, or as the start of a tag followed by
`-`, `_` or `.`: `v0.15.1` matches `v0.15.1-gpu`), the vLLM release, and the source of that
pin (the distribution's own build file at its release tag, or its package metadata). Rows are
data (`data/distributions.json`), rebuilt by `scripts/update-distributions` where a public
source can be read, and reviewed like code; a distribution whose pin cannot be sourced has no
row rather than a guessed one.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

DATA_FORMAT = 1
# Registry hosts that name Docker Hub: `docker.io/kserve/x` is `kserve/x`.
_DOCKER_HUB = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")


@dataclass(frozen=True, slots=True)
class Row:
    images: tuple[str, ...]
    tag: str
    vllm: str
    source: str

    def to_json(self) -> dict[str, Any]:
        return {"images": list(self.images), "tag": self.tag, "vllm": self.vllm, "source": self.source}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        return cls(tuple(data["images"]), data["tag"], data["vllm"], data["source"])

    def matches(self, repository: str, tag: str) -> bool:
        return repository in self.images and (
            tag == self.tag or (tag.startswith(self.tag) and tag[len(self.tag)] in "-_."))


def data_path() -> Path:
    return Path(str(resources.files("webhook.registry") / "data" / "distributions.json"))


@functools.cache
def rows() -> tuple[Row, ...]:
    """The bundled table."""
    table = json.loads(data_path().read_text(encoding="utf-8"))
    if table.get("format") != DATA_FORMAT:
        raise RuntimeError(f"{data_path()}: unsupported distribution table format {table.get('format')}")
    return tuple(Row.from_json(r) for r in table["rows"])


def split_image(image: str) -> tuple[str, str | None]:
    """(repository without a Docker Hub host, tag or None) of an image reference."""
    name = image.split("@", 1)[0]
    repository, tag = name, None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = name[: len(name) - len(last)] + last.split(":", 1)[0], last.split(":", 1)[1]
    lowered = repository.lower()
    for host in _DOCKER_HUB:
        if lowered.startswith(host):
            lowered = lowered[len(host):]
    return lowered.removeprefix("library/"), tag


def match(image: str, table: Sequence[Row] | None = None) -> Row | None:
    """The row of the table (the bundled one by default) that `image` falls under, else None."""
    repository, tag = split_image(image)
    if tag is None:
        return None
    return next((row for row in (rows() if table is None else table) if row.matches(repository, tag)), None)


def write(table: Sequence[Row], path: Path) -> None:
    ordered = sorted(table, key=lambda r: (r.images, r.source, r.tag))
    text = json.dumps({"format": DATA_FORMAT, "rows": [r.to_json() for r in ordered]}, indent=1)
    path.write_text(text + "\n", encoding="utf-8")
