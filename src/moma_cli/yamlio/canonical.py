"""A line reader for the YAML moma itself writes: block mappings and block sequences of
one-line scalars, as `dumps` lays out pointers (sequences indentless) and as people write
config (sequences indented by two). PyYAML's constructor is Python even under the C loader:
~200 us a pointer, 2.1 s for the 10,000 of the registry benchmark (docs/performance.md),
where this reads one in ~15 us, and importing PyYAML costs a hook command ~15 ms.

`read` returns exactly what the strict loader would return, or None for anything it does not
recognise exactly, and the caller then runs the full load, which decides (and words the
errors). Pointers come from anyone who can push, so the subset is narrow and every doubt is a
None: printable ASCII only, two-space nesting, no comments, blank lines, flow collections
(but `{}` and `[]`), tags, anchors, aliases, document markers, multi-line or double-quoted
scalars, and no duplicate key. A plain scalar's type is the one PyYAML's own resolver gives
(YAML 1.1: `yes`, `0755`, `1_000`, `1:30` and dates are not strings); only the plainest of
each type is built here (`true`, `null`, `12`, `-0.5`, `1.0e-05`), the rest goes to YAML.
tests/yamlio/test_canonical.py checks fast == YAML over generated and hostile documents.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

# Inside a plain scalar: characters that never end it or start a token there. A ':' or a
# space is allowed only before one of them, so `: ` and ` #` (a value, a comment) never occur.
_INNER = r"[A-Za-z0-9_./+=<>@'?~(),-]"  # `<>`: checks say `accuracy >= 0.8`
# A plain scalar cannot start with an indicator; `-` only when a non-space follows (`- ` is a
# sequence entry).
_PLAIN = rf"(?:[A-Za-z0-9_./+]|-(?={_INNER})){_INNER}*(?:[: ]{_INNER}+)*"
_QUOTED = r"'(?:[ -&(-~]|'')*'"  # one line, printable ASCII, '' for a quote
_VALUE = rf"{_PLAIN}|{_QUOTED}|\{{\}}|\[\]"
_KEY = rf"[A-Za-z0-9_][A-Za-z0-9_./-]*|{_QUOTED}"
_LINE = re.compile(rf"( *)(- )?(?:({_KEY}):(?: ({_VALUE}))?|({_VALUE}))")
_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")  # no `_`, base prefix or sexagesimal
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})\.[0-9]{1,20}(?:e[-+][0-9]{1,3})?")
# YAML limits an implicit key to 1024 characters; nesting beyond a pointer's is left to YAML.
MAX_KEY = 128
MAX_DEPTH = 16

_STR, _INT_TAG, _FLOAT_TAG, _BOOL, _NULL = "str", "int", "float", "bool", "null"
# YAML 1.1's implicit types (yaml.org/type), in the order PyYAML's resolver tries them: a
# plain scalar is of the first type whose pattern it matches whole, else a string. Written
# out here so that reading a pointer does not import PyYAML (yamlio/strict.py);
# tests/yamlio/test_canonical.py checks that PyYAML's resolver gives the same types.
_IMPLICIT = re.compile("|".join(f"(?P<{tag}>{pattern})" for tag, pattern in (
    (_BOOL, r"yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"),
    (_FLOAT_TAG, r"[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?"
                 r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
                 r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)"
                 r"|\.(?:nan|NaN|NAN)"),
    (_INT_TAG, r"[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
               r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+"),
    ("merge", r"<<"),
    (_NULL, r"~|null|Null|NULL|"),
    ("timestamp", r"[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)"
                  r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
                  r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?"),
    ("value", r"="),
    ("yaml", r"[!&*]"),
)))
# The first characters of those patterns' texts: a plain scalar starting with another one
# (`sha256`, `joblib`, most keys) is a string without asking.
_TYPED_FIRST = frozenset("yYnNtTfFoO" "-+0123456789." "<" "~" "=" "!&*")
_SLOW_KEY = _TYPED_FIRST | {"'"}
_SLOW_VALUE = _TYPED_FIRST | {"'", "{", "["}


class _NotCanonical(Exception):
    pass


_OPENS, _NEW_MAP, _NEW_SEQ = object(), object(), object()


def read(text: str) -> dict[str, Any] | None:
    """The mapping `text` holds when it is in the subset, else None."""
    try:
        return _read(text) if text.endswith("\n") else None
    except _NotCanonical:
        return None


def _read(text: str) -> dict[str, Any]:
    root: dict[str, Any] = {}
    stack: list[tuple[int, Any]] = [(0, root)]  # open collections: (indent, dict or list)
    opener: tuple[int, dict[str, Any], str] | None = None  # a `key:` awaiting its block
    for line in text[:-1].split("\n"):
        indent, dash, key, value = _cached_line(line) if len(line) <= MAX_CACHED else _line(line)
        if value is _NEW_MAP:
            value = {}
        elif value is _NEW_SEQ:
            value = []
        if dash:  # a sequence item
            if opener is not None:  # the first: a sequence under the key, at its indent or two in
                if indent != opener[0] and indent != opener[0] + 2:
                    raise _NotCanonical
                items: list[Any] = []
                opener[1][opener[2]] = items
                stack.append((indent, items))
                opener = None
            else:
                while stack[-1][0] > indent:
                    stack.pop()
                if stack[-1][0] != indent or type(stack[-1][1]) is not list:
                    raise _NotCanonical
            items = stack[-1][1]
            if key is None:
                items.append(value)
                continue
            entry: dict[str, Any] = {}  # `- key: ...`: a mapping item, keys at indent + 2
            items.append(entry)
            indent += 2
            stack.append((indent, entry))
        elif opener is not None:  # the first key of the opener's mapping
            if indent != opener[0] + 2:
                raise _NotCanonical
            entry = {}
            opener[1][opener[2]] = entry
            stack.append((indent, entry))
            opener = None
        else:
            while stack[-1][0] > indent or (stack[-1][0] == indent
                                            and type(stack[-1][1]) is list):
                stack.pop()
            if stack[-1][0] != indent:
                raise _NotCanonical
        if len(stack) > MAX_DEPTH or key is None:  # (only an item has no key)
            raise _NotCanonical
        mapping = stack[-1][1]
        if key in mapping:
            raise _NotCanonical  # YAML refuses it, with the line
        if value is _OPENS:
            opener = (indent, mapping, key)
            mapping[key] = None  # holds the key's place in the order
        else:
            mapping[key] = value
    if opener is not None:
        raise _NotCanonical  # `key:` and nothing: null, left to YAML
    return root


def _line(line: str) -> tuple[int, bool, str | None, Any]:
    """(indent, whether it is a sequence item, its key or None, its value or _OPENS for a
    `key:` whose block follows)."""
    match = _LINE.fullmatch(line)
    if match is None:
        raise _NotCanonical
    spaces, dash, key, value, item = match.groups()
    if key is None:
        if dash is None:
            raise _NotCanonical  # a bare scalar line
        return len(spaces), True, None, _value(item)
    if len(key) > MAX_KEY:
        raise _NotCanonical
    key = key if key[0] not in _SLOW_KEY else _key(key)
    return len(spaces), dash is not None, key, _OPENS if value is None else _value(value)


# Most lines recur from one pointer to the next (`hash: sha256`, `  name: clf`): each is
# matched once. Short lines only, so the memory held stays small whatever the input.
MAX_CACHED = 200
_cached_line = lru_cache(maxsize=8192)(_line)


def _value(text: str) -> Any:
    return text if text[0] not in _SLOW_VALUE else _scalar(text)


def _key(text: str) -> str:
    if text[0] == "'":
        return text[1:-1].replace("''", "'")
    if _resolved(text) != _STR:
        raise _NotCanonical  # `1:`, `true:`, `null:` are not string keys
    return text


def _scalar(text: str) -> Any:
    """A scalar that is quoted, an empty collection, or may not be a string."""
    if text[0] == "'":
        return text[1:-1].replace("''", "'")
    if text == "{}":
        return _NEW_MAP  # a new one each time: the line's parse is shared
    if text == "[]":
        return _NEW_SEQ
    tag = _resolved(text)
    if tag == _STR:
        return text
    if tag == _INT_TAG and _INT.fullmatch(text):
        return int(text)
    if tag == _FLOAT_TAG and _FLOAT.fullmatch(text):
        return float(text)
    if tag == _BOOL and text in ("true", "false"):
        return text == "true"
    if tag == _NULL and text == "null":
        return None
    raise _NotCanonical  # `yes`, `0x1F`, `1_000`, `.inf`, `~`, dates: YAML builds them


@lru_cache(maxsize=4096)
def _resolved(text: str) -> str:
    """The YAML 1.1 type of the plain scalar `text`: `int`, `str`, `timestamp` ..."""
    match = _IMPLICIT.fullmatch(text)
    return _STR if match is None else str(match.lastgroup)
