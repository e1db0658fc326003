"""PyYAML behind moma's rules: the strict loaders and the deterministic dumper.

Imported only when a document is outside the canonical subset or something is written:
PyYAML's import (its reader alone compiles a regular expression over all of Unicode) is a
sixth of a hook command's start-up (docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import yaml

from moma_cli.errors import YamlError

_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Checked:
    """Construction hooks shared by both loaders (the constructor is Python in both)."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        # The safe constructors raise plain ValueError, TypeError, KeyError, ... on values
        # that parse but cannot be built (`!!timestamp 2001-13-99`, `!!int 12x`, `!!bool
        # maybe`): bad input, so an error naming the line, never an internal error.
        try:
            value = super().construct_object(node, deep=deep)  # type: ignore[misc]
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            raise yaml.MarkedYAMLError(None, None, f"invalid {node.tag.rsplit(':', 1)[-1]} "
                                       "value", node.start_mark) from None
        # The pure-Python scanner (the C one does not) turns "\ud800" into a lone
        # surrogate, which no UTF-8 writer, file name or terminal accepts later on.
        if isinstance(value, str) and getattr(node, "style", None) == '"':
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise yaml.MarkedYAMLError(None, None, "unpaired surrogate escape in a string",
                                           node.start_mark) from None
        return value

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        _refuse_odd_keys(self, node, deep)
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc]


def _refuse_odd_keys(loader: Any, node: Any, deep: bool) -> None:
    """Keys are plain scalars, each once: a complex key (`? [a, b]`) would be a list or a
    mapping, which no moma file has and Python cannot hash."""
    seen = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.MarkedYAMLError(None, None, "complex mapping keys are not allowed",
                                       key_node.start_mark)
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.MarkedYAMLError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)


# The pure-Python loader on purpose: the C loader composes nodes in C, where the alias
# hook below would never run. Files read here are small.
class _StrictLoader(_Checked, yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                None, None, "aliases are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _StrictLoader.construct_mapping,  # type: ignore[type-var]
)

_CSafeLoader: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None)
_FastStrictLoader: Any = None
if _CSafeLoader is not None:
    # The C loader, ~10x faster, for text that cannot hold an anchor or alias at all (no
    # '&' or '*' anywhere): the key checks live in the Python constructor, which the C
    # loader still runs. Reading 1,000 pointers from history went from 3.3 s to 0.3 s.
    class _FastStrictLoader(_Checked, _CSafeLoader):  # type: ignore[valid-type,misc,no-redef]
        pass

    _FastStrictLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _FastStrictLoader.construct_mapping
    )


def loads(text: str, source: str) -> Any:
    """Parse YAML text strictly, by PyYAML alone (what the canonical reader is checked
    against); errors name the source and line."""
    try:
        alias_free = "&" not in text and "*" not in text
        loader = _FastStrictLoader if alias_free and _FastStrictLoader else _StrictLoader
        return yaml.load(text, Loader=loader)  # noqa: S506 - strict safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise YamlError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"{source}: invalid YAML: {exc}") from None
    except RecursionError:  # the pure-Python composer recurses once per nesting level
        raise YamlError(f"{source}: invalid YAML: nested too deeply") from None


def dumps(data: Any) -> str:
    """Deterministic YAML: insertion key order, block style, no aliases."""
    return yaml.dump(
        data,
        Dumper=_NoAliasDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
    )


class _NoAliasDumper(_BaseDumper):  # type: ignore[valid-type,misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True


def flow(value: Any) -> str:
    """`value` as one line of flow-style YAML: `blake3`, `8`, `[dev, prod]`."""
    text = yaml.dump(value, Dumper=_NoAliasDumper, default_flow_style=True, width=1 << 20,
                     allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()
