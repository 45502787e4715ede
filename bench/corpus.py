#!/usr/bin/env python3
"""bench/corpus: linting a directory of real manifests vs parsing it with PyYAML's C loader alone.

Both are measured in the same run on the same files (CPU seconds, best of --repeat each,
interleaved); the target is a ratio of at most 2. The default directory is the field corpus
kept beside the project (../shared/corpus: 229 real vLLM manifests); any directory works.

    python bench/corpus.py [DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lint_stream import cpu_seconds  # noqa: E402

from webhook.engine import Item, Settings  # noqa: E402
from webhook.lint import scoped_analysis  # noqa: E402
from webhook.manifests import iter_paths  # noqa: E402
from webhook.registry.store import _table, load_registry  # noqa: E402

TARGET = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = sorted(p for p in Path(args.directory).rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
    if not files:
        print(f"no manifests under {args.directory}", file=sys.stderr)
        return 2
    texts = [p.read_text(encoding="utf-8") for p in files]
    findings: list = []

    def parse() -> None:
        for text in texts:
            try:
                list(yaml.load_all(text, Loader=yaml.CSafeLoader))
            except yaml.YAMLError:
                pass

    def lint() -> None:
        load_registry.cache_clear()  # cold, as one CLI run is
        _table.cache_clear()
        items = [Item(d.obj, d.path) for d in iter_paths([args.directory]) if d.obj is not None]
        findings[:] = scoped_analysis(items, Settings(), apply_together=False)

    runs = [(cpu_seconds(parse), cpu_seconds(lint)) for _ in range(args.repeat)]
    parse_s, lint_s = min(r[0] for r in runs), min(r[1] for r in runs)
    ratio = lint_s / parse_s
    print(f"{len(files)} files, {sum(map(len, texts)):,} bytes, {len(findings)} findings")
    print(f"PyYAML CSafeLoader load_all: {parse_s:.3f}s CPU")
    print(f"vllm-env-guard lint:         {lint_s:.3f}s CPU")
    print(f"ratio: {ratio:.2f}x (target <= {TARGET}x) -> {'PASS' if ratio <= TARGET else 'FAIL'}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
