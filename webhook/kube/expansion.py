"""``$(VAR)`` expansion, ported from Kubernetes ``third_party/forked/golang/expansion/expand.go``.

The kubelet uses it for ``env[].value`` (against the variables defined so far) and for
``command``/``args`` (against the final environment).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["expand", "references", "syntax_wrap"]

_OPERATOR = "$"
_OPENER = "("
_CLOSER = ")"


def syntax_wrap(name: str) -> str:
    """``name`` written back as a reference: ``$(name)``."""
    return f"{_OPERATOR}{_OPENER}{name}{_CLOSER}"


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Expand ``$(NAME)`` references in ``text`` the way ``expansion.Expand`` does.

    ``lookup`` returns a variable's value or ``None`` when it is not defined; an undefined
    reference is written back verbatim (``MappingFuncFor``). ``$$`` is an escaped ``$``,
    expansion is single-pass, and a ``$`` that starts nothing is kept.
    """

    def mapping(name: str) -> str:
        value = lookup(name)
        return syntax_wrap(name) if value is None else value

    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == _OPERATOR and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_var, advance = _try_read_variable_name(text[cursor + 1 :])
            out.append(mapping(read) if is_var else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def references(text: str) -> list[str]:
    """Names that :func:`expand` would look up in ``text``, in order (duplicates kept)."""
    names: list[str] = []

    def record(name: str) -> None:
        names.append(name)

    expand(text, record)
    return names


def _try_read_variable_name(text: str) -> tuple[str, bool, int]:
    """Port of ``tryReadVariableName``: ``(read, is_variable, characters consumed)``.

    ``text`` is the input just after a ``$`` and is never empty.
    """
    first = text[0]
    if first == _OPERATOR:  # "$$": an escaped operator
        return first, False, 1
    if first == _OPENER:  # "$(": scan to the first closer
        closer = text.find(_CLOSER, 1)
        if closer != -1:
            return text[1:closer], True, closer + 1
        return _OPERATOR + _OPENER, False, 1  # incomplete reference
    return _OPERATOR + first, False, 1  # "$x": not an expression
