"""Safe, bounded YAML reading and deterministic writing.

Pointers and config files come from git, i.e. from anyone who can push: they are read with
the safe loader only, duplicate keys are an error (silently keeping the last one hides
merge accidents), and anchors/aliases are refused so an alias bomb cannot expand. Text in
the layout `dumps` writes is read by `canonical` first, which gives the same value or
leaves the text to YAML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moma_cli.errors import YamlError
from moma_cli.yamlio import canonical

MAX_YAML_BYTES = 1 << 20


def loads(text: str, source: str = "<string>") -> Any:
    """Parse YAML text strictly; errors name the source and line."""
    if len(text) > MAX_YAML_BYTES:
        raise YamlError(f"{source}: file is larger than {MAX_YAML_BYTES // 1024} KiB")
    quick = canonical.read(text)  # moma's own layout, read without PyYAML
    if quick is not None:
        return quick
    from moma_cli.yamlio import strict

    return strict.loads(text, source)


def load_file(path: Path, source: str | None = None, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """Read and parse a YAML file, refusing oversized files before reading them whole."""
    label = source or str(path)
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise YamlError(f"{label}: file is larger than {max_bytes // 1024} KiB")
    return load_bytes(data, label)


def load_bytes(data: bytes, source: str) -> Any:
    """Parse YAML bytes (a file, or a blob read from git) that must be UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise YamlError(f"{source}: not UTF-8 text") from None
    return loads(text, source)


def dumps(data: Any) -> str:
    """Deterministic YAML: insertion key order, block style, no aliases."""
    from moma_cli.yamlio import strict

    return strict.dumps(data)


# Editing in place (`moma config`): one entry of a block-style mapping is set or removed and
# every other line (comments, blank lines, order, quoting) is kept as the user wrote it.
# PyYAML cannot round-trip comments, and ruamel.yaml is not worth a dependency for this:
# the caller re-parses the result and compares it with the document it meant to write.

def set_in_text(text: str, keys: Sequence[str], value: Any) -> str:
    """`text` with the entry at `keys` set to `value` (a scalar or a list, written in flow
    style); a missing entry is added at the end of its parent's block."""
    lines = text.splitlines()
    start, end, indent = 0, len(lines), -1
    for depth, key in enumerate(keys):
        found = _find_key(lines, start, end, indent, key)
        if found is None:
            at = _block_end(lines, start, indent)
            child = _child_indent(lines, start, end, indent)
            lines[at:at] = _new_entries(keys[depth:], value, child)
            return _joined(lines)
        line_no, key_indent = found
        entry_end = _entry_end(lines, line_no, key_indent, end)
        if depth == len(keys) - 1:
            lines[line_no:entry_end] = [_with_value(lines[line_no], value)]
            return _joined(lines)
        start, end, indent = line_no + 1, entry_end, key_indent
    return _joined(lines)


def unset_in_text(text: str, keys: Sequence[str]) -> str:
    """`text` without the entry at `keys` (and its parents, when it was their last one)."""
    lines = text.splitlines()
    for depth in range(len(keys), 0, -1):
        found = _locate(lines, keys[:depth])
        if found is None:
            break
        line_no, key_indent = found
        entry_end = _entry_end(lines, line_no, key_indent, len(lines))
        if depth < len(keys) and entry_end > line_no + 1:
            break  # the parent keeps other entries
        del lines[line_no:entry_end]
    return _joined(lines)


def _locate(lines: list[str], keys: Sequence[str]) -> tuple[int, int] | None:
    start, end, indent = 0, len(lines), -1
    found = None
    for key in keys:
        found = _find_key(lines, start, end, indent, key)
        if found is None:
            return None
        start, end, indent = found[0] + 1, _entry_end(lines, *found, end), found[1]
    return found


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _find_key(lines: list[str], start: int, end: int, indent: int,
              key: str) -> tuple[int, int] | None:
    child = None
    pattern = re.compile(r"(?:%s|'%s'|\"%s\")[ \t]*:(?:\s|$)" % ((re.escape(key),) * 3))
    for i in range(start, end):
        line = lines[i]
        if not _is_content(line) or _indent(line) <= indent:
            continue
        child = _indent(line) if child is None else child
        if _indent(line) == child and pattern.match(line, child):
            return i, child
    return None


def _entry_end(lines: list[str], line_no: int, indent: int, end: int) -> int:
    """After the last line of the entry at `line_no`: its nested lines (a block sequence
    may sit at the key's own indentation), not the comments that follow it."""
    last = line_no
    for i in range(line_no + 1, end):
        line = lines[i]
        if not _is_content(line):
            continue
        if _indent(line) < indent or (_indent(line) == indent
                                      and not line.lstrip().startswith("- ")):
            break
        last = i
    return last + 1


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """Where a new last entry of a block goes: after its last line, indented comments
    included (a key's explaining comment often continues on the lines below it)."""
    last = start - 1
    for i in range(start, len(lines)):
        line = lines[i]
        if _is_content(line) and _indent(line) <= indent:
            break
        if line.strip() and _indent(line) > indent:
            last = i
    return last + 1


def _child_indent(lines: list[str], start: int, end: int, indent: int) -> int:
    for i in range(start, end):
        if _is_content(lines[i]) and _indent(lines[i]) > indent:
            return _indent(lines[i])
    return indent + 2 if indent >= 0 else 0


def _new_entries(keys: Sequence[str], value: Any, indent: int) -> list[str]:
    out = [" " * (indent + 2 * i) + f"{flow(key)}:" for i, key in enumerate(keys[:-1])]
    return [*out, " " * (indent + 2 * (len(keys) - 1)) + f"{flow(keys[-1])}: {flow(value)}"]


def _with_value(line: str, value: Any) -> str:
    """The line `key: old  # comment` as `key: new  # comment`, the comment in its column."""
    colon = _value_start(line)
    comment = _comment_start(line, colon)
    head = line[:colon].rstrip() + " " + flow(value)
    if comment is None:
        return head
    return head.ljust(comment - 1) + " " + line[comment:]


def _value_start(line: str) -> int:
    """Just after the colon that ends the (plain or quoted) key."""
    stripped = line.lstrip(" ")
    quote = stripped[0] if stripped[:1] in ("'", '"') else None
    at = _indent(line)
    if quote is not None:
        at = line.index(quote, at + 1) + 1
    return line.index(":", at) + 1


def _comment_start(line: str, at: int) -> int | None:
    quote = None
    for i in range(at, len(line)):
        char = line[i]
        if quote is not None:
            quote = None if char == quote else quote
        elif char in ("'", '"') and not line[at:i].strip():
            quote = char
        elif char == "#" and line[i - 1] in (" ", "\t"):
            return i
    return None


def flow(value: Any) -> str:
    """`value` as one line of flow-style YAML: `blake3`, `8`, `[dev, prod]`."""
    from moma_cli.yamlio import strict

    return strict.flow(value)


def _joined(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""
