"""A bounded memo for results computed from what requests carry (image names, values).

At most `size` entries (emptied when full: the few distinct keys a cluster uses come back at
once), and nothing kept for a key holding a string over `longest` characters, so a request can
neither grow the process nor leave a long string behind.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """Results by key, computed at most once while kept (safe to share between threads: a
    race computes a result twice, never a wrong one)."""

    def __init__(self, size: int = 1024, longest: int = 256) -> None:
        self.size, self.longest = size, longest
        self._kept: dict[K, V] = {}

    def get(self, key: K, compute: Callable[[], V], texts: tuple[str | None, ...] = ()) -> V:
        """The result for `key`, computed once; `texts`: the request strings the key holds."""
        found = self._kept.get(key, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        value = compute()
        if all(text is None or len(text) <= self.longest for text in texts):
            if len(self._kept) >= self.size:
                self._kept.clear()
            self._kept[key] = value
        return value

    def clear(self) -> None:
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)

    def __iter__(self) -> Iterator[K]:
        return iter(self._kept)


_MISSING = object()
